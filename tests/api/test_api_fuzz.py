"""API fuzzing: schemathesis generates requests from the app's own OpenAPI schema (valid and invalid bodies,
paths, queries, multipart uploads) and sends them in-process; no request may produce a 5xx.

Bounded (a few examples per operation) so it stays well under a minute; for a longer run:
  GOV_ASSISTANT_FUZZ_EXAMPLES=200 python -m pytest -q tests/api/test_api_fuzz.py
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from assistant.api.app import create_app
from assistant.services.access import LOCAL_ADMIN
from tests.api.conftest import make_container, secret_document

EXAMPLES = int(os.environ.get("GOV_ASSISTANT_FUZZ_EXAMPLES", "8"))
ADMIN_KEY = "fuzz-admin-key-0123456789"


# The schema is loaded when the module is imported: schemathesis' lazy fixture loader (from_fixture) breaks on
# pytest 9 (it sets Function._nodeid). Building the app is cheap (everything in the container is lazy);
# the knowledge bases are filled by the fixture below, before the first generated request.
_DATA = Path(tempfile.mkdtemp(prefix="gov-assistant-fuzz-"))
atexit.register(shutil.rmtree, _DATA, True)
_CONTAINER = make_container(_DATA / "data", GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="0",
                            GOV_ASSISTANT_API__MAX_UPLOAD_MB="1")
_CONTAINER.api_keys.create("fuzzer", "admin", ["*"], secret=ADMIN_KEY)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_CONTAINER, with_ui=False))


@pytest.fixture(scope="module", autouse=True)
def _knowledge_bases():
    # plain-text documents (no file parsing): generated requests reach retrieval and the scripted LLM
    for kb in ("samples", "secret"):
        assert _CONTAINER.knowledge_bases.ingest_documents(kb, [secret_document()], principal=LOCAL_ADMIN).ok


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case):
    # an admin key, so generated requests reach the handlers instead of stopping at 401/403
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, checks=[not_a_server_error])
