"""The vector store against a real Chroma server (`chroma run`): a database of its own created on first use, and a
server that stops answering costs a bounded wait, not a request held forever (chromadb's client sets no timeout)."""
from __future__ import annotations

import signal
import time

import httpx
import pytest

from assistant.components.store.vectors import VectorStore
from assistant.settings import VectorStoreSettings
from scale_out_engines import start_chroma, stop_process


@pytest.fixture
def chroma(tmp_path):
    port, proc = start_chroma(tmp_path / "chroma")
    yield port, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
    stop_process(proc)


def store(port: int, database: str, timeout_s: float = 60) -> VectorStore:
    cfg = VectorStoreSettings.model_validate({"mode": "http", "http": {"port": port, "database": database,
                                                                        "timeout_s": timeout_s}})
    return VectorStore(cfg, persist_dir=None)


def test_each_database_is_its_own_and_created_on_first_use(chroma):
    port, _ = chroma
    a, b = store(port, "deployment_a"), store(port, "deployment_b")
    a.upsert("kb", ["x#0"], [[1.0, 0.0, 0.0]], [{"doc_id": "x"}], ["甲"])
    assert a.count("kb") == 1 and b.count("kb") == 0            # same KB name, other database: nothing shared
    assert store(port, "deployment_a").query("kb", [1.0, 0.0, 0.0], 5, None)[0][0] == "x#0"   # reopened: kept


def test_a_server_that_stops_answering_times_out(chroma):
    port, proc = chroma
    s = store(port, "hung", timeout_s=2)
    s.upsert("kb", ["x#0"], [[1.0, 0.0]], [{"doc_id": "x"}], ["甲"])
    proc.send_signal(signal.SIGSTOP)                             # alive, listening, never answering
    t0 = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        s.query("kb", [1.0, 0.0], 5, None)
    assert time.monotonic() - t0 < 10
