"""A notice and its repost handed in as two passages, on the real 0.5B: whichever copy the model cites, the other is
cited too, as the same text (answering.cite_copies), and the reply itself is left as the model wrote it."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

NOTICE = ("各相关省份要抓紧将农业生产救灾资金拨付到位，及时支持做好农作物重大病虫害防控等农业生产救灾工作，"
          "促进当地蔬菜稳产保供。")


def test_the_copy_of_the_cited_notice_is_cited_as_the_same_text(e2e_container):
    passages = [{"text": NOTICE, "title": "财政部 农业农村部关于拨付农业生产救灾资金的通知"},
                {"text": "据财政部网站消息，" + NOTICE.replace("后", "後"), "title": "新闻网：中央财政拨付农业生产救灾资金"}]
    a = e2e_container.qa.answerer.answer_from_passages("各相关省份要抓紧将什么资金拨付到位？", passages)
    assert not a.refused, a.verification
    assert "救灾资金" in a.answer
    marked = [c for c in a.citations if c.cited and c.same_as is None]
    copies = [c for c in a.citations if c.same_as is not None]
    assert len(marked) == 1 and len(copies) == 1 and copies[0].same_as == marked[0].n and copies[0].cited
    assert f"[{copies[0].n}]" not in a.answer
