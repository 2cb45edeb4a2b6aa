"""A small OFD writer for tests: a valid GB/T 33190 package laid out as a 公文 is (A4, 三号 body text in 28-character
lines with a two-character indent, a 二号 centred title, a red-head template, page numbers), each line emitted as
several TextObjects in shuffled order, as producers do, so a reader must rebuild the reading order itself."""
from __future__ import annotations

import random
import zipfile
from xml.sax.saxutils import escape

NS = "http://www.ofdspec.org/2016"
LEFT, WIDTH, TOP, BOTTOM = 28.0, 156.0, 37.0, 262.0
BODY, TITLE = 5.6, 7.7                  # mm: 三号 (16 pt), 二号 (22 pt)
PITCH = 1.75                            # line pitch as a multiple of the size


class OfdWriter:
    def __init__(self, seed: int = 7):
        self.pages: list[list[tuple[float, float, float, str]]] = [[]]
        self.y = TOP
        self.rng = random.Random(seed)
        self.template: list[tuple[float, float, float, str]] = []

    # layout -------------------------------------------------------------------------------------------------------
    def _line(self, x: float, text: str, size: float) -> None:
        if self.y + size > BOTTOM:
            self.new_page()
        self.pages[-1].append((x, self.y + size, size, text))      # y: the baseline
        self.y += size * PITCH

    def new_page(self) -> None:
        self.pages.append([])
        self.y = TOP

    def gap(self, lines: float = 1) -> None:
        self.y += BODY * PITCH * lines

    def centred(self, text: str, size: float = BODY) -> None:
        per = int(WIDTH // size)
        for i in range(0, len(text), per):
            part = text[i:i + per]
            self._line(LEFT + (WIDTH - len(part) * size) / 2, part, size)

    def right(self, text: str, size: float = BODY, margin_chars: int = 4) -> None:
        self._line(LEFT + WIDTH - (len(text) + margin_chars) * size, text, size)

    def paragraph(self, text: str, indent: int = 2, size: float = BODY) -> None:
        per, first = int(WIDTH // size), True
        while text:
            room = per - (indent if first else 0)
            self._line(LEFT + (indent * size if first else 0), text[:room], size)
            text, first = text[room:], False

    def grid(self, rows: list[list[str]], columns: list[float], size: float = BODY) -> None:
        """A table without rules: each row a line, each cell at its column's x (mm from the left margin)."""
        for row in rows:
            if self.y + size > BOTTOM:
                self.new_page()
            for x, cell in zip(columns, row):
                self.pages[-1].append((LEFT + x, self.y + size, size, cell))
            self.y += size * PITCH

    def red_head(self, text: str) -> None:
        """The issuing organ's 红头, on a template every page refers to (first page only in a real 公文)."""
        self.template.append((LEFT + (WIDTH - len(text) * 11.0) / 2, 30.0, 11.0, text))
        self.y = 50.0

    # package ------------------------------------------------------------------------------------------------------
    def _objects(self, items, page_no: int, first_id: int) -> tuple[str, int]:
        objs, oid = [], first_id
        for x, y, size, text in items:
            # each line as 1-3 runs (producers break at font or style changes)
            cuts = sorted(self.rng.sample(range(1, len(text)), min(2, len(text) - 1))) if len(text) > 3 else []
            start = 0
            for end in cuts + [len(text)]:
                part, px = text[start:end], x + start * size
                deltas = f"g {len(part) - 1} {size:g}" if len(part) > 2 else " ".join([f"{size:g}"] * (len(part) - 1))
                objs.append(
                    f'<ofd:TextObject ID="{oid}" Boundary="{px:.2f} {y - size:.2f} {len(part) * size:.2f} '
                    f'{size * 1.2:.2f}" Font="3" Size="{size:g}"><ofd:FillColor Value="0 0 0"/>'
                    f'<ofd:TextCode X="0" Y="{size:g}"' + (f' DeltaX="{deltas}"' if deltas else "") +
                    f'>{escape(part)}</ofd:TextCode></ofd:TextObject>')
                oid += 1
                start = end
        self.rng.shuffle(objs)
        return "".join(objs), oid

    def save(self, path, title: str = "", author: str = "", date: str = "", custom: dict | None = None,
             page_numbers: bool = True) -> None:
        customs = "".join(f'<ofd:CustomData Name="{escape(k)}">{escape(v)}</ofd:CustomData>'
                          for k, v in (custom or {}).items())
        info = (f"<ofd:DocID>6d1f0c1a2b3c4d5e</ofd:DocID>" + (f"<ofd:Title>{escape(title)}</ofd:Title>" if title else "")
                + (f"<ofd:Author>{escape(author)}</ofd:Author>" if author else "")
                + (f"<ofd:CreationDate>{date}</ofd:CreationDate>" if date else "")
                + "<ofd:Creator>test-writer</ofd:Creator>" + (f"<ofd:CustomDatas>{customs}</ofd:CustomDatas>" if customs else ""))
        files = {
            "OFD.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{NS}" Version="1.1" DocType="OFD">'
                       f"<ofd:DocBody><ofd:DocInfo>{info}</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>"
                       "</ofd:DocBody></ofd:OFD>",
            "Doc_0/PublicRes.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Res xmlns:ofd="{NS}" BaseLoc="Res">'
                                   '<ofd:Fonts><ofd:Font ID="3" FontName="仿宋" FamilyName="仿宋"/></ofd:Fonts></ofd:Res>',
        }
        pages, oid = [], 10
        template = ""
        if self.template:
            objs, oid = self._objects(self.template, 0, oid)
            files["Doc_0/Tpls/Tpl_0/Content.xml"] = (
                f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
                f'<ofd:Layer ID="{oid}">{objs}</ofd:Layer></ofd:Content></ofd:Page>')
            oid += 1
            template = '<ofd:TemplatePage ID="2" BaseLoc="Tpls/Tpl_0/Content.xml"/>'
        for n, items in enumerate(self.pages):
            items = list(items)
            if page_numbers:
                label = f"— {n + 1} —"
                items.append((LEFT + WIDTH - len(label) * BODY, 282.0, BODY, label))
            objs, oid = self._objects(items, n, oid)
            use = '<ofd:Template TemplateID="2" ZOrder="Background"/>' if template and n == 0 else ""
            files[f"Doc_0/Pages/Page_{n}/Content.xml"] = (
                f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{NS}">{use}<ofd:Content>'
                f'<ofd:Layer ID="{oid}">{objs}</ofd:Layer></ofd:Content></ofd:Page>')
            oid += 1
            pages.append(f'<ofd:Page ID="{oid}" BaseLoc="Pages/Page_{n}/Content.xml"/>')
            oid += 1
        files["Doc_0/Document.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
            f"<ofd:MaxUnitID>{oid}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox>"
            f"</ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes>{template}</ofd:CommonData>"
            f"<ofd:Pages>{''.join(pages)}</ofd:Pages></ofd:Document>")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in files.items():
                zf.writestr(name, text)


NOTICE_TITLE = "示范市人民政府办公厅关于印发《示范市企业开办“一网通办”实施办法》的通知"
MATERIALS = [["序号", "材料名称", "份数", "提交方式"],
             ["1", "公司登记申请书", "1份", "网上提交"],
             ["2", "公司章程", "1份", "网上提交"],
             ["3", "法定代表人身份证明", "1份", "窗口核验"],
             ["4", "住所使用证明", "1份", "网上提交"]]
BODY_PARAS = [
    "为深化“放管服”改革，持续优化营商环境，进一步压缩企业开办时间，经市政府同意，现将《示范市企业开办“一网通办”"
    "实施办法》印发给你们，请认真贯彻执行。",
    "申请人通过示范市政务服务网“企业开办”专区在线填报信息，系统自动生成登记材料，申请人在线签名后提交。材料齐全、"
    "符合法定形式的，登记机关应当在一个工作日内办结。",
]
LATE_PARAS = [
    "企业开办全流程实行“一表填报、一网通办、一窗领取”，营业执照、印章、发票和税控设备可以一次领取，企业开办时间"
    "压缩至一个工作日以内，全程不收取费用。各区人民政府应当加强窗口人员培训，确保服务质量。",
    "本通知自印发之日起施行。",
]


def notice(path, with_info: bool = True, seed: int = 7) -> None:
    """A two-page 通知 as issued: red head, 文号, title, salutation, paragraphs, a 申请材料 grid, a heading,
    a paragraph running over the page break, the signature and date."""
    w = OfdWriter(seed)
    w.red_head("示范市人民政府办公厅文件")
    w.centred("示政办发〔2025〕12号")
    w.gap()
    w.centred(NOTICE_TITLE, TITLE)
    w.gap()
    w.paragraph("各区人民政府，市政府各委、办、局：", indent=0)
    w.paragraph(BODY_PARAS[0])
    w.paragraph("一、申请材料")
    w.grid(MATERIALS, [0, 20, 80, 110])
    w.paragraph("二、办理流程")
    w.paragraph(BODY_PARAS[1])
    w.paragraph("三、办理时限")
    while len(w.pages) == 1 and w.y < BOTTOM - 3 * BODY * PITCH:
        w.paragraph("企业开办各环节由市场监管、公安、税务等部门并联办理，信息实时共享，申请人无需重复提交材料。")
    w.paragraph(LATE_PARAS[0])                       # runs over the page break
    w.paragraph(LATE_PARAS[1])
    w.gap(2)
    w.right("示范市人民政府办公厅")
    w.right("2025年3月1日", margin_chars=5)
    w.save(path, **({"title": NOTICE_TITLE, "author": "示范市人民政府办公厅", "date": "2025-03-01",
                     "custom": {"文号": "示政办发〔2025〕12号", "发文机关": "示范市人民政府办公厅"}} if with_info else {}))
