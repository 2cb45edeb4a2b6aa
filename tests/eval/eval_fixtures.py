"""Tiny synthetic evaluation data for the eval-harness tests (written by hand; no shared data needed)."""
from __future__ import annotations

import json
from pathlib import Path

# Five short government-style documents, each with distinctive terms so that BM25 and the hashing embedder
# find them; the sixth line is a text-identical twin of the first (the pipeline stores one of the two).
DOCS = [
    ("doc-tax", "关于延长个体工商户增值税减免期限的公告\n为支持个体工商户纾困发展，小规模纳税人增值税征收率由3%降至1%。"
                "本公告执行至2020年12月31日。纳税人可通过电子税务局申报办理。"),
    ("doc-social", "关于阶段性减免企业社会保险费的通知\n自2020年2月起，免征中小微企业基本养老保险、失业保险、工伤保险单位缴费，"
                   "免征期限不超过5个月。大型企业减半征收，期限不超过3个月。"),
    ("doc-rent", "关于减免中小企业房租的若干措施\n对承租国有资产类经营用房的中小企业，免收2月份房租，3月至4月房租减半收取。"
                 "出租方为民营的，鼓励业主减免租金。"),
    ("doc-loan", "关于加大中小微企业信贷支持的通知\n对受疫情影响暂时经营困难的企业，不得盲目抽贷、断贷、压贷。"
                 "到期还款困难的，可予以展期或续贷，展期期限原则上不超过6个月。"),
    ("doc-exhibit", "关于支持展会项目的政策\n因疫情影响暂停举办的展会项目，如年内继续在京举办且参展中小微企业数量超过参展企业总数50%的，"
                    "按照不超过实际缴纳场租费用50%的标准给予支持，补助金额不超过50万元。"),
]
TWIN = ("doc-tax-copy", DOCS[0][1])

QUESTIONS = [
    ("q1", "doc-tax", "小规模纳税人增值税征收率降至多少？", "由3%降至1%"),
    ("q2", "doc-social", "中小微企业社会保险费免征期限是多久？", "免征期限不超过5个月"),
    ("q3", "doc-rent", "承租国有资产类经营用房的中小企业2月份房租如何减免？", "免收2月份房租"),
    ("q4", "doc-loan", "到期还款困难的企业贷款展期期限是多久？", "展期期限原则上不超过6个月"),
    ("q5", "doc-exhibit", "暂停举办的展会项目补助金额上限是多少？", "补助金额不超过50万元"),
    ("q6", "doc-tax-copy", "个体工商户增值税减免执行到什么时候？", "本公告执行至2020年12月31日"),
]


def write_ncp(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        for docid, text in DOCS + [TWIN]:
            f.write(json.dumps({"docid": docid, "text": text}, ensure_ascii=False) + "\n")
    with open(root / "dev_qa.jsonl", "w", encoding="utf-8") as f:
        for qid, docid, q, a in QUESTIONS:
            f.write(json.dumps({"id": qid, "docid": docid, "question": q, "answer": a}, ensure_ascii=False) + "\n")
    return root


def write_rgb(path: Path, n: int = 3) -> Path:
    rows = []
    for i in range(n):
        rows.append({"id": i, "query": f"第{i}届示范会议在哪个城市举办？", "answer": [[f"城市{i}号", f"城{i}"]],
                     "positive": [f"第{i}届示范会议在城市{i}号举办，会期三天。正面材料{j}。" for j in range(6)],
                     "negative": [f"无关新闻{j}：某地举办了体育比赛，与会议无关。" for j in range(6)]})
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path
