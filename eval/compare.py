"""`eval compare DIR1 DIR2`: metric deltas between two runs (DIR2 − DIR1), from their summary.json files."""
from __future__ import annotations

import json
from pathlib import Path

from eval.base import EvalError

SKIP = ("published", "run", "recall_curve", "p95_ms", "mean_ms", "config", "charts")
LOWER_IS_BETTER = ("latency", "first_token", "refusal_rate", "false_refusal_rate", "_ms")


def load_summary(path: Path) -> dict:
    path = Path(path)
    f = path / "summary.json" if path.is_dir() else path
    if not f.is_file():
        raise EvalError(f"no summary.json in {path}: run `gov-assistant eval run ... --out {path}` first")
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalError(f"{f}: invalid JSON ({exc.msg})") from None


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if k in SKIP:
            continue
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def config_diff(a: dict, b: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(va, dict) and isinstance(vb, dict):
            rows += config_diff(va, vb, key)
        elif va != vb:
            rows.append((key, json.dumps(va, ensure_ascii=False), json.dumps(vb, ensure_ascii=False)))
    return rows


def compare(dir1: Path, dir2: Path) -> dict:
    a, b = load_summary(dir1), load_summary(dir2)
    fa, fb = flatten(a.get("suites", {})), flatten(b.get("suites", {}))
    rows = []
    for key in [k for k in fa if k in fb] + [k for k in fb if k not in fa] + [k for k in fa if k not in fb]:
        va, vb = fa.get(key), fb.get(key)
        delta = None if va is None or vb is None else vb - va
        better = None
        if delta not in (None, 0.0) and not key.endswith(".n"):
            lower = any(t in key for t in LOWER_IS_BETTER)
            better = (delta < 0) if lower else (delta > 0)
        rows.append({"metric": key, "a": va, "b": vb, "delta": delta, "better": better})
    return {"a": {"dir": str(dir1), "model": a.get("model"), "embedding": a.get("embedding"),
                  "generated": a.get("generated")},
            "b": {"dir": str(dir2), "model": b.get("model"), "embedding": b.get("embedding"),
                  "generated": b.get("generated")},
            "config_diff": config_diff(a.get("config", {}), b.get("config", {})), "rows": rows}


def _num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "–"
    if float(v).is_integer() and abs(v) >= 10:
        return f"{v:+.0f}" if signed else f"{v:.0f}"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def to_markdown(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = ["# Evaluation comparison", "",
             f"- A: `{a['dir']}` — {a['model']}, {a['embedding']} ({a['generated']})",
             f"- B: `{b['dir']}` — {b['model']}, {b['embedding']} ({b['generated']})",
             "- Δ = B − A; ✓ marks an improvement (lower is better for latency and refusal of answerable questions)", ""]
    if result["config_diff"]:
        lines += ["## Configuration differences", "", "| setting | A | B |", "|---|---|---|"]
        lines += [f"| {k} | {va} | {vb} |" for k, va, vb in result["config_diff"]] + [""]
    lines += ["## Metrics", "", "| metric | A | B | Δ | |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        mark = {True: "✓", False: "✗", None: ""}[r["better"]]
        lines.append(f"| {r['metric']} | {_num(r['a'])} | {_num(r['b'])} | {_num(r['delta'], True)} | {mark} |")
    return "\n".join(lines) + "\n"
