# 政务大模型助手 — one entry point per job. Everything installs from the package registries into .venv.
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
export UV_LINK_MODE ?= copy

.PHONY: install install-test demo serve test test-fast eval-ncp eval-ncp-answers eval-rgb eval-rejection eval-laws clean

$(UV):
	$(PY) -m venv .uv && .uv/bin/pip install -q uv==0.13.8

# the app with the default 1.5B model (idempotent: seconds when nothing changed)
install: $(UV)
	$(UV) sync --inexact --frozen --extra model --extra model-small
	$(BIN)/gov-assistant models prepare

install-test: $(UV)
	$(UV) sync --inexact --frozen --extra model-small --extra test --extra use
	@# browser tests: Debian's chromium (driven by Playwright's Python package; never `playwright install`) and
	@# CJK + emoji fonts so the UI screenshots render Chinese text
	@# and OpenLDAP's slapd (+ ldap-utils) for the LDAP sign-in tests, started by the tests on loopback
	@# and PostgreSQL for the scale-out tests (a server started by the tests on loopback)
	@missing=$$(for p in chromium fonts-wqy-microhei fonts-noto-color-emoji slapd ldap-utils postgresql; do \
	    dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "warning: no apt-get; install $$missing for the browser tests"; \
	  else sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "installing $$missing (browser and LDAP tests)"; \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi

# build the demo knowledge base (samples + a stated subset of the national laws), then start the app
demo: install
	$(BIN)/gov-assistant demo

serve: install
	$(BIN)/gov-assistant serve

# the NCP retrieval benchmark (BM25 vs dense vs hybrid); the first run embeds the corpus (~10 min on 2 idle cores)
eval-ncp: install
	$(BIN)/gov-assistant eval run --suite ncp --retrieval-only --out eval-runs/ncp-retrieval

# the full suites on the default local model: hours of CPU generation on 2 cores; resumable (re-run to go on)
eval-ncp-answers: install
	$(BIN)/gov-assistant eval run --suite ncp --out eval-runs/ncp

eval-rgb: install
	$(BIN)/gov-assistant eval run --suite rgb --out eval-runs/rgb

# refusal of questions whose evidence was removed from the KB vs answers to those still covered (NCP, 25 + 25)
eval-rejection: install
	$(BIN)/gov-assistant eval run --suite rejection --out eval-runs/rejection

# citizens' lay questions whose answer is one article of a law (samples/law_questions.jsonl): article Hit@k per mode
eval-laws: install
	$(BIN)/gov-assistant eval run --suite laws --out eval-runs/laws

# the whole suite on the embedded default, then the API, ACL, ingest-crash and job tests again on the scale-out
# engines (PostgreSQL + Chroma server, started by the tests on loopback)
test: install-test
	$(BIN)/python -m pytest -q
	GOV_TEST_SCALE_OUT=1 $(BIN)/python -m pytest -q -m "not e2e and not browser" \
	  tests/api tests/services tests/security tests/ingest/test_pipeline.py

test-fast: install-test
	$(BIN)/python -m pytest -q -m "not e2e and not browser"

clean:
	rm -rf $(VENV) .uv
