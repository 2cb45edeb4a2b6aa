"""Action items (assistant/services/action_items.py): the rules, the one schema and reader of the model's
rows, unit cleaning and the merge of rule rows with model rows — shared by extract-actions and the summaries'
action-items style. Pure functions, hand-checked 公文 cases."""
from __future__ import annotations

from assistant.services.action_items import (
    ActionRow, merge, read_rows, rows_schema, rule_actions, source_units, split_units, unread_paragraphs,
)


def _cells(rows: list[ActionRow]) -> list[tuple[str, str, str]]:
    return [(r.task, "、".join(r.units), r.deadline) for r in rows]


def _model(task: str, units: str, deadline: str, section: str = "S1", where: str = "") -> ActionRow:
    return read_rows({"rows": [{"section": section, "事项": task, "责任单位": units, "完成时限": deadline}]},
                     {section: where})[0]


# --- rules --------------------------------------------------------------------------------------------------

def test_a_task_table_gives_one_row_per_line():
    text = ("附件：任务分工表\n"
            "| 序号 | 工作任务 | 牵头单位 | 完成时限 |\n|---|---|---|---|\n"
            "| 1 | 编制公共数据开放目录 | 市数据局 | 2026年3月底前 |\n"
            "| 2 | 建设数据开放平台 | 市数据局，市财政局 | — |\n"
            "| 3 | 开展宣传培训 | | 2026年6月 |\n")
    rows = rule_actions(text)
    # a row without a 牵头单位 is no row; "—" states no 完成时限; units split at ，
    assert _cells(rows) == [("编制公共数据开放目录", "市数据局", "2026年3月底前"),
                            ("建设数据开放平台", "市数据局、市财政局", "")]
    assert all(r.rule for r in rows) and text[rows[0].pos:].startswith("| 1 | 编制")


def test_labels_under_an_item_give_its_units_and_deadline():
    text = ("（一）统一编制数据目录。各公共管理和服务机构应当全面梳理本单位公共数据资源。"
            "责任单位：市数据局，各区人民政府。完成时限：2025年6月底前。\n"
            "2. 完成政务云迁移\n牵头单位：市数据局（牵头）\n配合单位：市财政局\n时间节点：2026年6月底前\n"
            "3. 做好宣传。完成时限：2025年12月底前。")
    assert _cells(rule_actions(text)) == [
        ("统一编制数据目录", "市数据局、各区人民政府", "2025年6月底前"),     # the run-in heading is the 事项
        ("完成政务云迁移", "市数据局、市财政局", "2026年6月底前"),           # label lines attach to the item
    ]                                                                         # a 完成时限 alone: no row


def test_a_lead_unit_with_partners_and_a_deadline_in_one_sentence():
    text = "市数据局牵头，会同市财政局、市公安局于2025年6月底前完成政务数据共享平台升级改造。"
    assert _cells(rule_actions(text)) == [
        ("完成政务数据共享平台升级改造", "市数据局、市财政局、市公安局", "2025年6月底前")]


def test_meeting_decisions_in_one_paragraph():
    text = ("会议议定：一、市数据局牵头，会同市财政局在2026年3月底前完成政务云迁移方案。二、各区政府要抓紧梳理本区数据资源"
            "目录，6月底前报送市数据局。三、市公安局负责做好数据安全保障工作。")
    rules = rule_actions(text)
    assert _cells(rules) == [("完成政务云迁移方案", "市数据局、市财政局", "2026年3月底前"),
                             ("抓紧梳理本区数据资源目录，报送市数据局", "各区政府", "6月底前")]
    # 三、 has no 时限: left to the model, without the two sentences the rules read
    assert unread_paragraphs(text, rules) == ["会议议定：一、二、三、市公安局负责做好数据安全保障工作。"]


def test_a_subject_that_is_no_organisation_gives_no_row():
    assert rule_actions("我们要在2025年6月底前完成这项工作。") == []
    assert rule_actions("公共数据按照开放属性分为三类，于2025年6月底前公布。") == []


# --- the model's rows ---------------------------------------------------------------------------------------

def test_one_schema_with_the_request_section_ids():
    schema = rows_schema(["S1", "S2"], 8)
    rows = schema["properties"]["rows"]
    assert schema["required"] == ["rows"] and rows["maxItems"] == 8
    assert rows["items"]["required"] == ["section", "事项", "责任单位", "完成时限"]
    assert rows["items"]["properties"]["section"]["enum"] == ["S1", "S2"]
    assert rows["items"]["additionalProperties"] is False


def test_the_reader_cleans_fields_and_places_rows_on_their_section():
    data = {"rows": [{"section": "S2", "事项": "**报送 联系人**〔S2〕", "责任单位": "各区、各部门等",
                      "完成时限": "2025年4月30日前"},
                     {"section": "S9", "事项": "开展大赛", "责任单位": "未明确", "完成时限": "无"}, "not a row"]}
    rows = read_rows(data, {"S1": "第一行", "S2": "第二行"})
    assert [(r.task, r.units, r.deadline, r.sections, r.where) for r in rows] == [
        ("报送 联系人", ["各区", "各部门"], "2025年4月30日前", ["S2"], "第二行"),
        ("开展大赛", [], "", [], "")]                               # S9 is no section of the request
    assert read_rows({"items": []}, {}) == [] and read_rows("[]", {}) == []


def test_units_are_organisations_the_source_names():
    assert split_units("市数据局（牵头），市财政局/ 市公安局等") == ["市数据局", "市财政局", "市公安局"]
    source = "市数据局会同市财政局落实。"
    assert source_units(["市数据局", "市审计局", "推进平台迭代升级", "市数据局", "市财政局"], source) == \
        ["市数据局", "市财政局"]


# --- merge --------------------------------------------------------------------------------------------------

SOURCE = ("二、推进数据归集。市数据局负责牵头推进公共数据归集，力争10月底前全部完成。"
          "责任单位：市数据局、市大数据中心。\n三、开展评估。市审计局要对平台运行情况开展评估，督促整改。")


def test_a_model_row_restating_a_rule_row_only_fills_its_deadline():
    rules = rule_actions(SOURCE)
    assert _cells(rules) == [("推进数据归集", "市数据局、市大数据中心", "")]
    rows = merge(rules, [_model("推进公共数据归集", "市数据局、市财政局", "10月底前")], SOURCE)
    assert _cells(rows) == [("推进数据归集", "市数据局、市大数据中心", "10月底前")]      # its 事项 and units stand
    assert rows[0].rule and rows[0].unverified == []
    # a 完成时限 the source does not state is not taken into a rule row
    rows = merge(rules, [_model("推进公共数据归集", "市数据局", "2025年9月底前")], SOURCE)
    assert _cells(rows) == [("推进数据归集", "市数据局、市大数据中心", "")]
    assert rules[0].deadline == ""                                          # the input rows are not changed


def test_a_model_row_whose_unit_the_source_does_not_name_is_dropped():
    rows = merge([], [_model("开展评估", "市统计局", "未明确"), _model("开展评估", "市审计局、市统计局", "未明确")],
                 SOURCE)
    assert _cells(rows) == [("开展评估", "市审计局", "")]                           # the unknown unit is cut


def test_model_rows_are_bounded_by_the_source():
    source = "一、完成平台升级。由市数据局牵头，于2026年3月底前完成平台升级改造，新增数据集200个。"
    rows = merge([], [_model("平台升级", "市数据局、市财政局", "2026年3月底前"),
                      _model("宣传推广", "市宣传部", "2026年5月"),
                      _model("推进平台改造", "市数据局", "2027年1月"),
                      _model("新增数据集300个", "市数据局", ""),
                      _model("编制年度工作计划", "市数据局", "2026年3月底前")], source)
    # 市财政局 cut, 市宣传部's row dropped; a 事项 the text does not talk about (the kind a model copies from its
    # prompt) dropped; a 完成时限 or figure the text does not state: unverified
    assert [(*c, r.unverified) for c, r in zip(_cells(rows), rows)] == [
        ("平台升级", "市数据局", "2026年3月底前", []), ("推进平台改造", "市数据局", "2027年1月", ["deadline"]),
        ("新增数据集300个", "市数据局", "", ["task"])]


def test_one_model_row_per_unit_becomes_one_row_in_document_order():
    source = "一、开展评估。市审计局会同市统计局对平台开展评估。\n二、压实责任。各区要明确分管负责人。"
    rows = merge([], [_model("压实责任", "各区", "", "S2", "二、压实责任。各区要明确分管负责人。"),
                      _model("开展评估", "市审计局", "", "S1", "一、开展评估。市审计局会同市统计局对平台开展评估。"),
                      _model("开展评估", "市统计局", "", "S1")], source)
    assert _cells(rows) == [("开展评估", "市审计局、市统计局", ""), ("压实责任", "各区", "")]
    assert [r.sections for r in rows] == [["S1"], ["S2"]]


def test_a_row_without_a_unit_is_kept_only_when_asked():
    source = "（一）压实工作责任。明确分管负责人和工作机构。"
    row = _model("明确分管负责人和工作机构", "未明确", "未明确")
    assert merge([], [row], source) == []
    assert _cells(merge([], [row], source, keep_unitless=True)) == [("明确分管负责人和工作机构", "", "")]
