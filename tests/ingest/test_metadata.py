from pathlib import Path

import pytest

from ingest.metadata import extract_metadata, find_doc_number, parse_cn_date

SEED = Path("/work/shared/data/seed/shanghai_data_bureau_2025_work_points.md")

NOTICE = """上海市人民政府办公厅文件
沪府办发〔2025〕3号
上海市人民政府办公厅关于印发《上海市公共数据开放实施细则》的
通知
各区人民政府，市政府各委、办、局：
经市政府同意，现将《上海市公共数据开放实施细则》印发给你们，请认真按照执行。
根据《国务院关于加强数字政府建设的指导意见》（国发〔2022〕14号），各区要抓好落实。
上海市人民政府办公厅
2025年3月10日
（此件公开发布）
抄送：市委办公厅，市人大常委会办公厅。
上海市人民政府办公厅　　　　　　2025年3月12日印发
"""


@pytest.mark.parametrize("raw, expected", [
    ("2025年3月10日", "2025-03-10"),
    ("2025年03月10日", "2025-03-10"),
    ("2025 年 3 月 10 日", "2025-03-10"),
    ("二〇二五年三月十日", "2025-03-10"),
    ("二〇二四年十二月三十一日", "2024-12-31"),
    ("二〇二〇年二月二十九日", "2020-02-29"),
    ("2025-3-10", "2025-03-10"),
    ("2025.03.10", "2025-03-10"),
    ("2025/3/1", "2025-03-01"),
    ("２０２５年３月１０日", "2025-03-10"),
    ("2025年3月10日印", "2025-03-10"),
    ("2025年2月30日", None),
    ("2025年13月1日", None),
    ("三月十日", None),
    ("", None),
])
def test_parse_cn_date(raw, expected):
    assert parse_cn_date(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("沪府办发〔2025〕3号", "沪府办发〔2025〕3号"),
    ("国发〔2020〕5号", "国发〔2020〕5号"),
    ("国办发明电〔2020〕1号", "国办发明电〔2020〕1号"),
    ("财税[2020]8号", "财税〔2020〕8号"),
    ("财税（2020）8号", "财税〔2020〕8号"),
    ("人社部发【2020】11号", "人社部发〔2020〕11号"),
    ("京政办发〔2020〕7 号", "京政办发〔2020〕7号"),
    ("沪数发 〔 2025 〕 12 号", "沪数发〔2025〕12号"),
    ("国家税务总局公告2020年第4号", "国家税务总局公告2020年第4号"),
    ("财政部 税务总局公告2020年第8号", "财政部 税务总局公告2020年第8号"),
    ("上海市人民政府令第10号", "上海市人民政府令第10号"),
    ("根据国发〔2020〕5号文件精神", "国发〔2020〕5号"),
    ("本市2025年工作安排", None),
])
def test_find_doc_number_variants(raw, expected):
    assert find_doc_number(raw) == expected


def test_find_doc_number_prefers_own_line_in_header_then_first():
    cited_then_own = "根据国发〔2020〕5号文件要求，制定本方案。\n沪数发〔2025〕2号\n"
    assert find_doc_number(cited_then_own) == "沪数发〔2025〕2号"
    assert find_doc_number("附件说明（财税〔2019〕1号）与（财税〔2020〕8号）。") == "财税〔2019〕1号"
    late = "一" * 500 + "\n沪府发〔2025〕9号"
    assert find_doc_number(late) == "沪府发〔2025〕9号"


def test_notice_with_red_header_wrapped_title_and_print_date():
    meta = extract_metadata(NOTICE)
    assert meta == {
        "title": "上海市人民政府办公厅关于印发《上海市公共数据开放实施细则》的通知",
        "doc_number": "沪府办发〔2025〕3号",
        "agency": "上海市人民政府办公厅",
        "date": "2025-03-10",  # the 成文日期, not the 版记 "3月12日印发"
        "doc_type": "通知",
    }


def test_joint_agencies_and_chinese_numeral_date():
    text = ("关于做好2025年数据要素统计工作的通知\n各有关单位：\n"
            "为全面掌握本市数据要素发展情况，现就做好统计工作通知如下。\n特此通知。\n"
            "**上海市数据局　上海市统计局**\n二〇二五年三月十日\n")
    assert extract_metadata(text) == {
        "title": "关于做好2025年数据要素统计工作的通知",
        "agency": "上海市数据局、上海市统计局",
        "date": "2025-03-10",
        "doc_type": "通知",
    }
    stacked = "关于联合开展数据资产入表试点的通知\n请各单位认真组织实施。\n上海市数据局\n上海市财政局\n2025年4月1日\n"
    meta = extract_metadata(stacked)
    assert meta["agency"] == "上海市数据局、上海市财政局"
    assert meta["date"] == "2025-04-01"


def test_agency_from_title_and_announcement_number():
    opinion = ("国务院关于加强数字政府建设的指导意见\n国发〔2022〕14号\n"
               "各省、自治区、直辖市人民政府：\n加强数字政府建设是适应新一轮科技革命和产业变革趋势的必然要求。")
    assert extract_metadata(opinion) == {
        "title": "国务院关于加强数字政府建设的指导意见",
        "doc_number": "国发〔2022〕14号",
        "agency": "国务院",
        "doc_type": "意见",
    }
    announcement = ("国家税务总局公告2020年第4号\n国家税务总局关于支持新型冠状病毒感染的肺炎疫情防控有关税收征收管理事项的公告\n"
                    "现将有关事项公告如下。\n本公告自发布之日起施行。\n特此公告。\n国家税务总局\n2020年2月10日")
    meta = extract_metadata(announcement)
    assert meta["doc_number"] == "国家税务总局公告2020年第4号"
    assert meta["title"].startswith("国家税务总局关于支持") and meta["doc_type"] == "公告"
    assert meta["agency"] == "国家税务总局"
    assert meta["date"] == "2020-02-10"


def test_title_fallbacks_and_doc_types():
    long_first = ("市数据局转发市政府办公厅关于进一步加强公共数据管理工作的通知，请各单位结合实际认真贯彻执行，"
                  "并于2025年4月底前将落实情况报送市数据局。")
    meta = extract_metadata(long_first)
    assert meta["title"] == "市数据局转发市政府办公厅关于进一步加强公共数据管理工作的通知"
    assert meta["doc_type"] == "通知"
    assert "date" not in meta and "agency" not in meta and "doc_number" not in meta

    assert extract_metadata("正文。", title_hint="中华人民共和国数据安全法") == {"title": "中华人民共和国数据安全法", "doc_type": "法律"}
    assert extract_metadata("正文。", title_hint="上海市公共数据授权运营管理办法（试行）")["doc_type"] == "办法"
    assert extract_metadata("正文。", title_hint="上海市数据条例")["doc_type"] == "条例"
    assert "doc_type" not in extract_metadata("正文。", title_hint="数据质量评估方法")
    assert extract_metadata("") == {}


def test_first_date_used_when_no_signature_date():
    text = "关于2025年数据工作的安排\n会议于2025年1月15日召开，" + "会议研究部署了全年数据工作。" * 20
    assert extract_metadata(text)["date"] == "2025-01-15"


@pytest.mark.skipif(not SEED.exists(), reason="seed document not available")
def test_real_work_points_document():
    meta = extract_metadata(SEED.read_text(encoding="utf-8"))
    assert meta == {
        "title": "市数据局2025年工作要点",
        "agency": "上海市数据局办公室",
        "date": "2025-03-10",
        "doc_type": "工作要点",
    }


def test_metadata_passage_states_only_the_known_fields():
    from ingest.metadata import metadata_passage
    full = {"title": "示范市人民政府办公厅关于推进公共数据开放的通知", "doc_number": "示政办发〔2025〕12号",
            "agency": "示范市人民政府办公厅", "date": "2025-03-18", "doc_type": "通知", "status": "已废止",
            "date_int": 20250318}
    assert metadata_passage(full) == (
        "《示范市人民政府办公厅关于推进公共数据开放的通知》文件信息。文号（发文字号）：示政办发〔2025〕12号；"
        "发文机关（印发单位）：示范市人民政府办公厅；成文日期（印发日期）：2025年3月18日；文种：通知；效力状态：已废止。"
        "本文件由示范市人民政府办公厅于2025年3月18日印发。")
    assert metadata_passage({"title": "某通知", "doc_number": "示发〔2024〕1号", "status": "现行有效"}) == (
        "《某通知》文件信息。文号（发文字号）：示发〔2024〕1号；效力状态：现行有效。")
    assert metadata_passage({"title": "某办法", "date": "2024-12-01"}) == (
        "《某办法》文件信息。成文日期（印发日期）：2024年12月1日。本文件于2024年12月1日印发。")
    law = {"title": "中华人民共和国仲裁法", "law": "中华人民共和国仲裁法", "agency": "全国人民代表大会常务委员会",
           "date": "2025-09-12", "effective_date": "2026-03-01", "doc_type": "法律", "status": "现行有效"}
    assert metadata_passage(law) == (
        "《中华人民共和国仲裁法》文件信息。制定机关（发布单位）：全国人民代表大会常务委员会；公布日期：2025年9月12日；"
        "施行日期：2026年3月1日；文种：法律；效力状态：现行有效。本法由全国人民代表大会常务委员会于2025年9月12日公布。")
    # a title and a validity alone say nothing new: no passage
    assert metadata_passage({"title": "婚姻登记须知", "status": "现行有效", "doc_type": "须知"}) is None
    assert metadata_passage({"agency": "示范市交通局"}) is None


def test_the_issuer_opening_a_flattened_document_is_its_agency():
    # NCP-style text: one line, the signature's date not near the end; the opening names the issuer
    text = ("遂宁市人民政府办公室 印发《关于进一步支持中小微企业等领域的若干措施》的通知 遂府办发〔2020〕2号 各县（市、区）人民政府：" +
            "现印发给你们，请认真贯彻执行。" + "落实好援企稳岗政策。" * 40)
    meta = extract_metadata(text)
    assert meta["agency"] == "遂宁市人民政府办公室" and meta["doc_number"] == "遂府办发〔2020〕2号"
    assert "agency" not in extract_metadata("关于做好疫情防控工作的通知 各单位：请做好防控。")
