from pathlib import Path

import pytest

from ingest.chunking import (Block, Chunk, chunk_blocks, chunk_text, format_heading_path, restore_paragraphs,
                            split_sentences)

SEED = Path("/work/shared/data/seed/shanghai_data_bureau_2025_work_points.md")
ENDS = "。！？；!?;”’）》」』\"')"

REGULATION = """上海市公共数据管理办法
（2025年1月10日上海市人民政府令第20号公布）
第一章　总则
第一条　为了规范公共数据管理，促进公共数据共享开放，根据有关法律、法规，结合本市实际，制定本办法。
第二条　本办法适用于本市行政区域内公共数据的收集、归集、共享、开放及其相关管理活动。
本办法所称公共数据，包括：
（一）本市各级行政机关在依法履职过程中产生的数据；
（二）履行公共管理和服务职能的事业单位产生的数据；
（三）法律、法规规定的其他数据。
第二章　数据资源
第一节　一般规定
第三条　市数据主管部门负责统筹公共数据资源目录编制工作。各区、各部门应当按照目录规范编制本单位公共数据资源目录。
第二节　共享
第四条　公共数据以共享为原则，不共享为例外。
第五条之一　因履行职责需要使用其他部门公共数据的，应当通过市大数据资源平台申请。
"""

WORK_POINTS = """**某区数据局2025年工作要点**

2025年是“十四五”规划收官之年。区数据局将坚持稳中求进工作总基调，全面推进城市数字化转型。

---

### 一、夯实数据基础

1. **完善公共数据目录**。加快编制全区公共数据资源目录。推进目录动态更新。

2. **推进数据共享**
加强跨部门数据共享，提升共享时效。

### 二、深化数字治理

#### （一）城市运行

3. **建设城运平台**。完善区城运平台功能，强化事件闭环处置。
"""


def _paths(chunks: list[Chunk]) -> list[list[str]]:
    return [c.heading_path for c in chunks]


def test_split_sentences_keeps_punctuation_and_closers():
    text = "他说：“数据要用起来。”随后离开！这样可行吗？方案一；方案二\r\n下一行（完）。"
    assert split_sentences(text) == ["他说：“数据要用起来。”", "随后离开！", "这样可行吗？", "方案一；", "方案二", "下一行（完）。"]
    assert split_sentences("  \n\u3000\n") == []
    assert split_sentences("好的？！继续。") == ["好的？！", "继续。"]


def test_regulation_articles_carry_chapter_section_and_article():
    chunks = chunk_text(REGULATION)
    assert [c.text.split()[0] for c in chunks] == ["上海市公共数据管理办法", "第一条", "第二条", "第三条", "第四条", "第五条之一"]
    assert _paths(chunks) == [
        [],
        ["第一章 总则", "第一条"],
        ["第一章 总则", "第二条"],
        ["第二章 数据资源", "第一节 一般规定", "第三条"],
        ["第二章 数据资源", "第二节 共享", "第四条"],
        ["第二章 数据资源", "第二节 共享", "第五条之一"],
    ]
    assert [c.article for c in chunks] == [None, "第一条", "第二条", "第三条", "第四条", "第五条之一"]
    assert [c.position for c in chunks] == list(range(6))
    # 款 and （一） items stay inside their article, one per line; full-width space normalised
    assert chunks[2].text == (
        "第二条 本办法适用于本市行政区域内公共数据的收集、归集、共享、开放及其相关管理活动。\n"
        "本办法所称公共数据，包括：\n"
        "（一）本市各级行政机关在依法履职过程中产生的数据；\n"
        "（二）履行公共管理和服务职能的事业单位产生的数据；\n"
        "（三）法律、法规规定的其他数据。"
    )
    # heading-only sections (第一章 总则, 第一节 一般规定) yield no chunk of their own
    assert all(not c.text.startswith(("第一章", "第二章", "第一节", "第二节")) for c in chunks)


def test_long_article_is_split_at_sentence_ends():
    sentences = [f"第{n}项措施由市数据主管部门会同有关部门组织实施并定期评估成效。" for n in range(1, 9)]
    article = "第二十条　" + "".join(sentences[:3]) + "\n" + "".join(sentences[3:])
    chunks = chunk_text("第三章　数据资源\n" + article, max_chars=80, min_chars=20)
    for c in chunks:
        assert len(c.text) <= 80
        assert c.text.endswith("。")
        assert c.heading_path == ["第三章 数据资源", "第二十条"]
        assert c.article == "第二十条"
    assert chunks[0].text.startswith("第二十条 第1项措施")
    # nothing lost or reordered; the 款 break survives as a newline
    assert "".join(c.text for c in chunks).replace("\n", "") == article.replace("\u3000", " ").replace("\n", "")
    assert [c.text for c in chunks] == ["第二十条 " + "".join(sentences[:2]), sentences[2] + "\n" + sentences[3],
                                        "".join(sentences[4:6]), "".join(sentences[6:])]


def test_long_sentence_split_at_commas_then_hard_cut():
    sentence = "，".join(["数据资源目录应当载明数据名称"] * 8) + "。"
    chunks = chunk_text(sentence, max_chars=50, min_chars=10)
    assert all(len(c.text) <= 50 for c in chunks)
    assert all(c.text.endswith(("，", "。")) for c in chunks)
    assert "".join(c.text for c in chunks) == sentence

    hard = chunk_text("数" * 130, max_chars=50)
    assert [len(c.text) for c in hard] == [50, 50, 30]
    assert all(c.heading_path == [] and c.article is None for c in hard)


def test_unstructured_text_is_length_chunked_and_tail_rebalanced():
    text = ("甲" * 99 + "。") * 3 + "乙" * 9 + "。"
    chunks = chunk_text(text)  # greedy packing would give 300 + 10
    assert [len(c.text) for c in chunks] == [200, 110]
    assert all(c.heading_path == [] and c.text.endswith("。") for c in chunks)


def test_work_points_markdown_headings():
    chunks = chunk_text(WORK_POINTS)
    assert _paths(chunks) == [
        [],
        ["一、夯实数据基础", "完善公共数据目录"],
        ["一、夯实数据基础", "推进数据共享"],
        ["二、深化数字治理", "（一）城市运行", "建设城运平台"],
    ]
    assert chunks[0].text.startswith("某区数据局2025年工作要点\n2025年是")  # a bold line is body, not a heading
    assert chunks[1].text == "1. 完善公共数据目录。加快编制全区公共数据资源目录。推进目录动态更新。"
    assert chunks[2].text == "2. 推进数据共享\n加强跨部门数据共享，提升共享时效。"
    assert all(c.article is None for c in chunks)
    assert all("---" not in c.text and "**" not in c.text for c in chunks)


def test_parsed_blocks_get_same_paths_as_markdown_and_drop_doc_title():
    blocks = [
        Block("某区数据局2025年工作要点", is_title=True),  # document title: not part of any path
        Block("2025年是“十四五”规划收官之年。区数据局将全面推进城市数字化转型。"),
        Block("一、夯实数据基础", is_title=True),
        Block("加快编制全区公共数据资源目录，推进目录动态更新，提升数据质量。", is_title=True),  # long: body
        Block("二、深化数字治理", is_title=True),
        Block("（一）城市运行", is_title=True),
        Block("完善区城运平台功能，强化事件闭环处置。"),
        Block("数据安全", is_title=True),  # short unnumbered title: level 2
        Block("落实数据分类分级保护制度。"),
    ]
    chunks = chunk_blocks(blocks)
    assert _paths(chunks) == [[], ["一、夯实数据基础"], ["二、深化数字治理", "（一）城市运行"], ["数据安全"]]
    assert chunks[1].text == "加快编制全区公共数据资源目录，推进目录动态更新，提升数据质量。"


def test_numbered_paragraph_heading_and_enumerations():
    text = (
        "一、总体要求。以数据要素市场化配置改革为主线，统筹发展和安全，加快构建数据基础制度体系，充分释放数据要素价值。\n"
        "本意见所称数据包括：\n"
        "（一）公共数据；\n"
        "（二）企业数据。\n"
        "2. 各区要结合实际抓好落实。\n"
    )
    chunks = chunk_text(text)
    assert len(chunks) == 1
    assert chunks[0].heading_path == ["一、总体要求"]
    assert chunks[0].text.startswith("一、总体要求。以数据要素")
    assert "（一）公共数据；\n（二）企业数据。\n2. 各区要结合实际抓好落实。" in chunks[0].text


def test_tiny_pieces_merge_under_same_path_but_never_across_articles():
    blocks = [
        Block("工作动态", is_title=True),
        Block("本周召开专题会议。"),
        Block("工作动态", is_title=True),  # e.g. a repeated page header from the parser
        Block("数据条例修订调研已启动，各区数据局积极参与并提交意见建议。"),
    ]
    # "工作动态" is not the first block, so it is a real heading rather than the document title
    chunks = chunk_blocks([Block("前言部分说明本简报的编写背景和主要内容。")] + blocks)
    assert chunks[1].heading_path == ["工作动态"]
    assert chunks[1].text == "本周召开专题会议。\n数据条例修订调研已启动，各区数据局积极参与并提交意见建议。"
    assert len(chunks) == 2

    articles = chunk_text("第一章　总则\n第一条　短条文一。\n第二条　短条文二。")
    assert [(c.article, c.text) for c in articles] == [("第一条", "第一条 短条文一。"), ("第二条", "第二条 短条文二。")]


def test_crlf_fullwidth_spaces_blank_blocks_and_determinism():
    text = "第一章\u3000总则\r\n\r\n\u3000\u3000第一条\u3000为了规范管理，制定本办法。\r\n"
    chunks = chunk_text(text)
    assert chunks == [Chunk("第一条 为了规范管理，制定本办法。", ["第一章 总则", "第一条"], 0, "第一条", 12, 29)]
    assert text[12:29] == "第一条\u3000为了规范管理，制定本办法。"
    assert chunk_blocks([Block("  "), Block("\u3000\n"), Block("")]) == []
    assert chunk_text(REGULATION, max_chars=60) == chunk_text(REGULATION, max_chars=60)
    assert all(c.text.strip() for c in chunk_text(REGULATION + WORK_POINTS, max_chars=60))


def test_format_heading_path():
    path = ["第三章 数据资源", "第二十条"]
    assert format_heading_path("上海市数据条例", path) == "《上海市数据条例》第三章 数据资源 > 第二十条"
    assert format_heading_path("《上海市数据条例》", path) == "《上海市数据条例》第三章 数据资源 > 第二十条"
    assert format_heading_path(None, path) == "第三章 数据资源 > 第二十条"
    assert format_heading_path("上海市数据条例", []) == "《上海市数据条例》"
    assert format_heading_path(None, []) == ""


@pytest.mark.skipif(not SEED.exists(), reason="seed document not available")
@pytest.mark.parametrize("max_chars", [300, 120])
def test_real_work_points_document(max_chars):
    source = SEED.read_text(encoding="utf-8")
    source_lines = [ln.replace("**", "").strip() for ln in source.splitlines() if ln.strip()]
    long_sentences = [s for ln in source_lines for s in split_sentences(ln) if len(s) > max_chars]
    chunks = chunk_text(source, max_chars=max_chars)
    assert chunks and chunks == chunk_text(source, max_chars=max_chars)
    for c in chunks:
        assert c.text.strip() and len(c.text) <= max_chars
        last_line = c.text.splitlines()[-1]
        tail = split_sentences(last_line)[-1]
        # a chunk ends at a sentence end or where a source line ends (e.g. "2025年3月10日印");
        # only a sentence longer than max_chars may be cut, and then at a comma
        assert (c.text.endswith(tuple(ENDS)) or any(ln.endswith(last_line) for ln in source_lines)
                or (c.text.endswith(("，", ",", "、")) and any(tail in s for s in long_sentences))), c.text
    first_item = [c for c in chunks if "统筹数据安全、数据发展管理" in c.text]
    assert first_item[0].heading_path == ["一、强化规划引领，健全制度规则", "深化“数字上海”谋篇布局"]
    intro = [c for c in chunks if not c.heading_path]
    assert intro == chunks[:len(intro)] and intro[0].text.startswith("市数据局2025年工作要点")
    sections = {c.heading_path[0] for c in chunks[len(intro):]}
    assert sections == {"一、强化规划引领，健全制度规则", "二、夯实数字基础设施底座", "三、促进数据要素流通利用",
                        "四、激发数字经济新动能", "五、深化数字治理创新"}
    assert all(len(c.heading_path) == 2 for c in chunks[len(intro):])
    assert ["五、深化数字治理创新", "升级完善城市数字服务"] in _paths(chunks)
    if max_chars == 120:  # items longer than 120 chars are split, keeping their path
        split = [c for c in chunks if c.heading_path == first_item[0].heading_path]
        assert len(split) >= 2


def test_a_flattened_page_gets_its_item_breaks_back():
    flat = ("国家税务总局南阳市税务局 各单位：为坚决贯彻落实，提出以下要求。 一、支持疫情防控物资供应 对生产、销售防控物资的"
            "统一、规范管理。 二、支持公益捐赠 （一）捐赠可以扣除。（二）另有规定。第三条 本法自公布之日起施行。“一、二”并列。")
    assert restore_paragraphs(flat, min_line_chars=0).split("\n") == [
        "国家税务总局南阳市税务局 各单位：为坚决贯彻落实，提出以下要求。",
        "一、支持疫情防控物资供应 对生产、销售防控物资的统一、规范管理。",   # 统一、 inside a sentence is no item
        "二、支持公益捐赠", "（一）捐赠可以扣除。", "（二）另有规定。",
        "第三条 本法自公布之日起施行。“一、二”并列。"]
    assert restore_paragraphs(flat) == flat                      # a short line is left as it is
    broken = "一、总则\n本办法适用于全市。 二、附则"             # text with its own breaks: only long lines change
    assert restore_paragraphs(broken) == broken
    chunks = chunk_text(restore_paragraphs(flat * 2))
    assert any(c.heading_path and c.heading_path[0].startswith("二、") for c in chunks)
