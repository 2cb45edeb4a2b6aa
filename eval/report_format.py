"""Formatting shared by the report and the suites' own report sections: rounding, latency percentiles, table
cells, and matplotlib without a display."""
from __future__ import annotations

from eval import metrics as M


def rounded(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def latency_stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {}
    return {"n": len(values), "p50_ms": rounded(M.percentile(values, 50), 1), "p95_ms": rounded(M.percentile(values, 95), 1),
            "mean_ms": rounded(M.mean(values), 1)}


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fmt_value(v, pct: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}" if pct else f"{v:.3f}"
    return str(v)


def fmt_latency(lat: dict, unit: str = "ms") -> str:
    if not lat:
        return "–"
    if unit == "s":
        return f"{lat['p50_ms'] / 1000:.1f} / {lat['p95_ms'] / 1000:.1f}"
    return f"{lat['p50_ms']:.0f} / {lat['p95_ms']:.0f}"


def short_text(text, n: int = 60) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"
