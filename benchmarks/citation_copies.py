"""Citation accuracy of an NCP answer run with and without citing copies (answering.cite_copies), per half: the run's
stored citations as the model marked them, then through cite_copies. No model call; any run folder of
`gov-assistant eval run --suite ncp` made before cite_copies existed (newer runs already carry it).

    python benchmarks/citation_copies.py RUN_FOLDER [RUN_FOLDER ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    from assistant.answering import Citation, cite_copies
    from eval.run_folder import load_items

    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for folder in argv:
        if not (Path(folder) / "items.jsonl").is_file():
            print(f"error: {folder} holds no items.jsonl (not an eval run folder)", file=sys.stderr)
            return 2
        rows = [r for r in load_items(Path(folder)) if not r.get("refused") and r.get("gold", {}).get("doc_ids")
                and "citation_acc" in r.get("metrics", {}).get("answer", {})]
        for name, half in (("even ids", 0), ("odd ids", 1), ("all", None)):
            group = [r for r in rows if half is None or int(r["id"], 16) % 2 == half]
            if not group:
                continue
            before = after = copies = 0
            for r in group:
                gold = set(r["gold"]["doc_ids"])
                cites = [Citation(c["n"], c["doc_id"], "", "", "", "", c.get("text", ""), {}, False)
                         for c in r["citations"]]
                for c, stored in zip(cites, r["citations"]):
                    c.cited = bool(stored.get("cited")) and stored.get("same_as") is None
                before += any(c.cited and c.doc_id in gold for c in cites)
                marked = sum(c.cited for c in cites)
                cite_copies(cites)
                copies += sum(c.cited for c in cites) - marked
                after += any(c.cited and c.doc_id in gold for c in cites)
            print(f"{folder} {name}: n {len(group)}, citation accuracy {before / len(group):.3f} as marked, "
                  f"{after / len(group):.3f} with copies ({copies} copies cited)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
