"""Chunk-level BM25 ranked inside FTS5 first (the default) against joining every matching row to the chunk table
first (what a narrow filter still does), side by side on one store, the same queries interleaved: p50/p95, the ratio,
and whether the top n agree (they must: the rank-first path falls back when fewer than n of its rows pass).

    python benchmarks/lexical_ranking.py --data-dir /var/tmp/store_scale/kb-1000000 --queries 30
    python benchmarks/lexical_ranking.py --data-dir DIR --kb KB --max-postings 100000

A store from benchmarks/store_scale.py (KB "scale", --keep or --lexical-only) or any data dir; reads only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="holds catalog.sqlite3")
    ap.add_argument("--kb", default="scale")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--n", type=int, default=50, help="rows asked for (retrieval.candidates)")
    ap.add_argument("--max-postings", type=int, default=0, help="retrieval bound on the rows scored; 0 = all")
    args = ap.parse_args()
    catalog_file = args.data_dir / "catalog.sqlite3"
    if not catalog_file.is_file():
        print(f"error: {catalog_file} does not exist (build one with benchmarks/store_scale.py --keep)",
              file=sys.stderr)
        return 2
    from assistant.components.store.catalog import Catalog
    from assistant.components.store.lexical import LexicalView
    from assistant.components.store.tokens import tokenize
    from assistant.filters import Filters
    from store_scale import AGENCIES, _pct, queries

    catalog = Catalog(catalog_file)
    view = LexicalView(catalog, args.kb, "chunk", args.max_postings)
    print(f"{catalog.chunk_count(args.kb):,} chunks in {args.kb}; {args.queries} queries, top {args.n}"
          f"{f', bounded to {args.max_postings:,} rows' if args.max_postings else ', all tokens'}")
    default = Filters().with_default_status(["现行有效"]).visible_to(("*",))
    for name, flt in (("validity + clearance (every search)", default),
                      ("+ agency (narrow: joins first either way)", Filters(agency=AGENCIES[3]).visible_to(("*",))
                       .with_default_status(["现行有效"]))):
        where = flt.to_sql("c.metadata")
        lat: dict[bool, list[float]] = {True: [], False: []}
        same = 0
        for i, q in enumerate(queries(args.queries)):
            tokens = view.bounded(tokenize(q))
            tops = {}
            for rank_first in ((True, False) if i % 2 else (False, True)):
                t0 = time.perf_counter()
                tops[rank_first] = catalog.lexical_search(args.kb, tokens, args.n, where=where,
                                                          rank_first=rank_first and not flt.narrows())
                lat[rank_first].append((time.perf_counter() - t0) * 1000)
            same += tops[True] == tops[False]
        new, old = lat[True], lat[False]
        print(f"{name}: rank first p50/p95 {_pct(new, 50):,.0f} / {_pct(new, 95):,.0f} ms, join every row "
              f"{_pct(old, 50):,.0f} / {_pct(old, 95):,.0f} ms, ratio p50 {_pct(old, 50) / _pct(new, 50):.2f}x "
              f"p95 {_pct(old, 95) / _pct(new, 95):.2f}x; identical top {args.n}: {same}/{len(new)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
