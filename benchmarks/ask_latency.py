"""Time to first token and total time of `ask`, the configuration in effect against the pre-#13 one (whole
1,500-character passages each under its full header, no answerability judgement, no constraints, no verification,
gate 0.88/0.6), side by side in one run on the same questions: each question is asked both ways, in alternating
order, so machine noise hits both alike.

    GOV_ASSISTANT_DATA_DIR=./data python benchmarks/ask_latency.py [--profile fast] [--kb demo] [-n 6]
        [--questions samples/questions.jsonl]

Builds the demo knowledge base first if --kb is the demo KB and it is missing. The time to first token of the new
configuration is the time to the first *verified* sentence (nothing unverified is streamed). Prints per-question
timings, the medians and the ratio new/old; the first question of each also pays for loading the model, so it is
left out of the medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from assistant.answering import Answerer, build_context, citation_label
from assistant.container import Container
from assistant.demo import build_demo
from assistant.retrieval import HybridSearcher
from assistant.services.access import LOCAL_ADMIN, scope
from assistant.settings import PROJECT_ROOT, load_settings

OLD = {"answer": {"max_context_chars": 1500, "focus_chars": 0, "max_passages": 0, "min_relative_coverage": 0.0,
                  "answerability": "none", "constraints": False, "verify": False},
       "retrieval": {"min_dense_similarity": 0.88, "min_term_coverage": 0.6}}


def pre13_header(n: int, meta: dict) -> str:
    """The passage header before #13: the heading path (or label) and agency, date and status on every passage."""
    bits = [b for b in (meta.get("agency"), meta.get("date"), meta.get("status")) if b]
    where = meta.get("heading") if meta.get("heading") and not meta.get("law") else citation_label(meta)
    return f"[{n}] {where}" + (f"（{'，'.join(bits)}）" if bits else "")


class Pre13Answerer(Answerer):
    def build_context(self, hits, question="", weights=None):
        return build_context(hits, self.settings.answer.max_context_chars, header=pre13_header)


def old_answerer(c: Container) -> Answerer:
    settings = c.settings.model_copy(deep=True)
    settings.answer = settings.answer.model_copy(update=OLD["answer"])
    settings.retrieval = settings.retrieval.model_copy(update=OLD["retrieval"])
    s = c.searcher
    searcher = HybridSearcher(s.store, s.embeddings, s.reranker, settings.retrieval, c.settings.rerank)
    return Pre13Answerer(lambda: c.llm, searcher, settings, c.model_name)


def flush_prompt_cache(c: Container) -> None:
    """Overwrite every llama.cpp slot, so neither configuration reuses the other's cached passages; each slot keeps
    the answer prompt's system message, shared by both configurations and cached in steady use (the slot with the
    longest common prefix takes a request), so neither pays for it."""
    from concurrent.futures import ThreadPoolExecutor

    from langchain_core.messages import HumanMessage, SystemMessage

    from assistant.prompts import load_prompt

    slots = c.settings.llm.local.n_parallel if c.settings.llm.mode == "local" else 0
    system = load_prompt("answer_system")
    with ThreadPoolExecutor(max(slots, 1)) as pool:
        list(pool.map(lambda i: c.llm.bind(max_tokens=1).invoke(
            [SystemMessage(system), HumanMessage(f"你好{i}" * 8)]), range(slots)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--kb", default=None)
    ap.add_argument("--questions", default=str(PROJECT_ROOT / "samples" / "questions.jsonl"))
    ap.add_argument("-n", type=int, default=6)
    args = ap.parse_args()
    c = Container(load_settings(args.profile))
    kb = args.kb or c.settings.demo.kb
    if c.store.catalog.get_kb(kb) is None:
        if kb != c.settings.demo.kb:
            raise SystemExit(f"knowledge base {kb!r} does not exist")
        build_demo(c)
    questions = [json.loads(line) for line in Path(args.questions).read_text(encoding="utf-8").splitlines()
                 if line.strip()][:args.n]
    answerers = {"old": old_answerer(c), "new": c.answerer}
    rows: dict[str, list[dict]] = {"old": [], "new": []}
    for i, q in enumerate(questions):
        for name in (("old", "new") if i % 2 == 0 else ("new", "old")):
            flush_prompt_cache(c)
            a = answerers[name].ask(q["question"], *scope(LOCAL_ADMIN, [kb]))
            t = a.timings
            rows[name].append({**t, "refused": a.refused, "i": i})
            print(f"{i + 1:2d} {name} ttft {t.get('first_token_ms', 0) / 1000:5.1f}s total {t['total_ms'] / 1000:5.1f}s "
                  f"prompt {a.usage.get('input_tokens', 0):4d} tok refused={a.refused} | {q['question'][:40]}",
                  flush=True)
    medians = {}
    for name, rs in rows.items():
        warm = [r for r in rs if r["i"] > 0] or rs
        answered = [r for r in warm if "first_token_ms" in r and not r["refused"]]
        medians[name] = {"ttft": statistics.median(r["first_token_ms"] for r in answered) / 1000 if answered else 0,
                         # over the answered ones too: a refusal without a model call takes milliseconds
                         "total": statistics.median(r["total_ms"] for r in answered) / 1000 if answered else 0,
                         "answered": len(answered), "n": len(warm)}
        print(f"{name}: median over the answered: ttft {medians[name]['ttft']:.1f}s, total {medians[name]['total']:.1f}s, "
              f"answered {medians[name]['answered']}/{medians[name]['n']}")
    if medians["old"]["ttft"]:
        print(f"model {c.model_name}: new/old ttft ratio {medians['new']['ttft'] / medians['old']['ttft']:.2f}, "
              f"total ratio {medians['new']['total'] / medians['old']['total']:.2f}")


if __name__ == "__main__":
    main()
