"""The demo knowledge base and its admin key."""
from assistant.demo import demo_admin_key, sample_documents
from ingest.loaders import LoadError


def test_sample_documents_carry_their_validity():
    docs = sample_documents()
    assert not [d for d in docs if isinstance(d, LoadError)]
    status = {d.source: d.metadata.get("status") for d in docs}
    assert status["samples/示范市公共数据管理暂行办法（已废止）.md"] == "已废止"
    assert status["samples/示范市餐饮服务经营许可办事指南.md"] == "现行有效"
    # document ids derive from the relative source name: every checkout gets the same ids
    assert all(d.doc_id == sample_documents()[i].doc_id for i, d in enumerate(docs))


def test_demo_admin_key_is_kept_and_reused(container):
    path, secret = demo_admin_key(container)
    assert path.stat().st_mode & 0o777 == 0o600
    assert container.api_keys.authenticate(secret).role == "admin"
    assert demo_admin_key(container) == (path, secret)
    # a revoked key is replaced, never reused
    for k in container.api_keys.list():
        container.api_keys.revoke(k["id"])
    _, fresh = demo_admin_key(container)
    assert fresh != secret and container.api_keys.authenticate(fresh).role == "admin"
