"""Dense vectors in Chroma: embedded PersistentClient by default, HttpClient to a Chroma server by config.

One collection per knowledge base, cosine space, no Chroma embedding function (Chroma's default would
download an ONNX model): vectors always come from our own embeddings component.
"""
from __future__ import annotations

from pathlib import Path

from assistant.settings import VectorStoreSettings


def _http_client(settings: VectorStoreSettings, chroma_settings):
    """A client of the Chroma server's tenant/database, creating the database on first use (a fresh deployment
    needs no manual step; the default database always exists)."""
    import chromadb
    from chromadb.errors import NotFoundError

    h = settings.http
    try:
        return chromadb.HttpClient(host=h.host, port=h.port, ssl=h.ssl, settings=chroma_settings, tenant=h.tenant,
                                   database=h.database)
    except (ValueError, NotFoundError) as exc:   # "Database [x] not found. Are you sure it exists?"
        if "database" not in str(exc).lower():
            raise
    from chromadb.config import Settings as ChromaSettings
    admin = chromadb.AdminClient(ChromaSettings(**{**chroma_settings.model_dump(), "chroma_api_impl":
                                                   "chromadb.api.fastapi.FastAPI", "chroma_server_host": h.host,
                                                   "chroma_server_http_port": h.port,
                                                   "chroma_server_ssl_enabled": h.ssl}))
    admin.create_database(h.database, tenant=h.tenant)
    return chromadb.HttpClient(host=h.host, port=h.port, ssl=h.ssl, settings=chroma_settings, tenant=h.tenant,
                               database=h.database)


def _bound_time(client, timeout_s: float) -> None:
    """chromadb's HTTP client sends with timeout=None: a Chroma server that stops answering would hold a request (and
    its API worker) forever. Its session is an httpx.Client; bound it (a timeout then raises, the API answers 503)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))


class VectorStore:
    def __init__(self, settings: VectorStoreSettings, persist_dir: Path):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if settings.mode == "http":
            self.client = _http_client(settings, chroma_settings)
            _bound_time(self.client, settings.http.timeout_s)
        else:
            persist_dir.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(persist_dir), settings=chroma_settings)
        self._collections: dict = {}

    @staticmethod
    def collection_name(kb: str) -> str:
        return f"kb_{kb}"

    def collection(self, kb: str):
        if kb not in self._collections:
            self._collections[kb] = self.client.get_or_create_collection(
                self.collection_name(kb), embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        return self._collections[kb]

    def upsert(self, kb: str, ids: list[str], embeddings: list[list[float]], metadatas: list[dict],
               documents: list[str]) -> None:
        col = self.collection(kb)
        step = 1000
        for i in range(0, len(ids), step):
            col.upsert(ids=ids[i:i + step], embeddings=embeddings[i:i + step],
                       metadatas=[_clean(m) for m in metadatas[i:i + step]], documents=documents[i:i + step])

    def set_flags(self, kb: str, key: str, flags: dict[str, bool]) -> None:
        """Set (True) or remove (False) a boolean metadata key of these vectors (Chroma merges an update into
        the stored metadata; None removes a key); ids without a vector yet get it when they are written."""
        col, ids = self.collection(kb), list(flags)
        for i in range(0, len(ids), 1000):
            have = col.get(ids=ids[i:i + 1000], include=[])["ids"]
            if have:
                col.update(ids=have, metadatas=[{key: True if flags[c] else None} for c in have])

    def delete_document(self, kb: str, doc_id: str, keep: set[str] | None = None) -> None:
        """Delete a document's vectors, except the ids in keep (the ones just written)."""
        col = self.collection(kb)
        ids = col.get(where={"doc_id": doc_id}, include=[])["ids"]
        stale = [i for i in ids if not keep or i not in keep]
        if stale:
            col.delete(ids=stale)

    def query(self, kb: str, embedding: list[float], n: int, where: dict | None) -> list[tuple[str, float]]:
        col = self.collection(kb)
        count = col.count()
        if count == 0:
            return []
        res = col.query(query_embeddings=[embedding], n_results=min(n, count), where=where or None,
                        include=["distances"])
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(res["ids"][0], res["distances"][0])]

    def ids(self, kb: str, page: int = 5000) -> set[str]:
        col, out, offset = self.collection(kb), set(), 0
        while True:
            got = col.get(include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def delete_ids(self, kb: str, ids: list[str]) -> None:
        col = self.collection(kb)
        for i in range(0, len(ids), 1000):
            col.delete(ids=ids[i:i + 1000])

    def count(self, kb: str) -> int:
        return self.collection(kb).count()

    def drop(self, kb: str) -> None:
        self._collections.pop(kb, None)
        try:
            self.client.delete_collection(self.collection_name(kb))
        except Exception:  # noqa: BLE001 - chroma raises different types per version when it does not exist
            pass


def _clean(meta: dict) -> dict:
    """Chroma accepts str/int/float/bool values only."""
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) and not k.startswith("_")}
