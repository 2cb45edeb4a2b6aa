"""`gov-assistant eval run|compare`: the evaluation harness on the command line (registered in assistant/cli/main.py)."""
from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

eval_app = typer.Typer(help="Evaluation: benchmarks through the product's own services, with reports.",
                       no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@contextmanager
def _progress() -> Iterator:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[detail]}", style="dim"), console=err) as bar:
        task = bar.add_task("eval", total=None, detail="")

        def update(phase: str, done: int, total: int | None, detail: str = "") -> None:
            bar.update(task, description=phase, completed=done, total=total, detail=detail[:40])

        yield update


def _command_line(state: dict, args: list[tuple[str, object]]) -> str:
    """The command that reproduces this run (from the parsed options, so it is right in-process too)."""
    from eval.run_folder import EVAL_SETTINGS
    # the data directory and every settings override from the environment (never a key or secret)
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items())
           if k.startswith("GOV_ASSISTANT_") and v and "KEY" not in k and "SECRET" not in k and "TOKEN" not in k
           and (k == "GOV_ASSISTANT_DATA_DIR" or k[len("GOV_ASSISTANT_"):].lower().split("__")[0] in EVAL_SETTINGS)]
    words = ["gov-assistant"]
    if state.get("profile"):
        words += ["-p", str(state["profile"])]
    if state.get("config"):
        words += ["-c", str(state["config"])]
    words += ["eval", "run"]
    for flag, value in args:
        if value is True:
            words.append(flag)
        elif value not in (None, False):
            words += [flag, str(value)]
    return " ".join(env + [shlex.join(words)])


def _print_summary(summary: dict, suite: str, out: Path) -> None:
    agg = summary["suites"].get(suite, {})
    if agg.get("retrieval"):
        t = Table("mode", "n", "R@1", "R@5", "R@10", "MRR@10", "nDCG@10", title=f"{suite}: document retrieval")
        for mode, m in agg["retrieval"].items():
            t.add_row(mode, str(m["n"]), *(f"{m[k]:.3f}" for k in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")))
        for label, pub in (agg.get("published") or {}).items():
            t.add_row(label, "", *(f"{pub[k]:.3f}" if k in pub else "–" for k in ("R@1", "R@5", "R@10", "MRR@10",
                                                                               "nDCG@10")), style="dim")
        console.print(t)
    a = agg.get("answer")
    if a:
        keys = [k for k in ("f1", "em", "rouge_l", "citation_acc", "refusal_rate") if k in a]
        t = Table("n", *keys, title=f"{suite}: answers")
        t.add_row(str(a["n"]), *(f"{a[k]:.3f}" for k in keys))
        console.print(t)
    if suite == "rgb" and agg.get("noise"):
        t = Table("noise ratio", "n", "accuracy %", "ChatGPT (paper)", "Qwen-7B-Chat (paper)", title="rgb")
        pub = agg["published"]["noise"]
        for ratio, v in agg["noise"].items():
            t.add_row(ratio, str(v["n"]), f"{v['accuracy']:.2f}", str(pub["ChatGPT"].get(ratio, "–")),
                      str(pub["Qwen-7B-Chat"].get(ratio, "–")))
        if agg.get("rejection"):
            r = agg["rejection"]
            t.add_row("rejection", str(r["n"]), f"{r['rate']:.2f}", "5.33", "8.67")
        console.print(t)
    if suite == "summaries":
        t = Table("set", "n", "ROUGE-L char", "ROUGE-L jieba", title="summaries")
        for s, v in agg.get("sets", {}).items():
            t.add_row(s, str(v["n"]), f"{v['rouge_l_char']:.2f}", f"{v['rouge_l_jieba']:.2f}")
        console.print(t)
    if suite == "rejection" and agg.get("n"):
        tg = agg["targets"]
        pct = lambda v: "–" if v is None else f"{100 * v:.1f}"  # noqa: E731
        t = Table("half", "absent n", "refused %", "present n", "answered %", "F1 (answered)", "cites gold %",
                  "meets target", title=f"rejection (target: refuse ≥ {100 * tg['refusal_rate_absent']:.0f}% absent, "
                                        f"answer ≥ {100 * tg['answer_rate_present']:.0f}% present)")
        for name, g in [*agg["halves"].items(), ("all", agg["all"])]:
            t.add_row(name, str(g["absent"]), pct(g["refusal_rate_absent"]), str(g["present"]),
                      pct(g["answer_rate_present"]), "–" if g["f1_answered"] is None else f"{g['f1_answered']:.3f}",
                      pct(g["cites_gold_answered"]), {True: "yes", False: "no", None: "–"}[g["meets_targets"]])
        console.print(t)
    if suite == "laws" and agg.get("articles"):
        from eval.suites.laws import print_table
        console.print(print_table(agg))
    for note in agg.get("run", {}).get("notes", []):
        console.print(f"[dim]note: {note}[/]", highlight=False)
    console.print(f"report: {out / 'report.md'} · {out / 'report.html'} · {out / 'summary.json'} · "
                  f"{out / 'items.jsonl'}", highlight=False)


@eval_app.command("run")
def run(suite: str = typer.Option(..., "--suite", help="ncp | rgb | summaries | custom | rejection | laws"),
        out: Path = typer.Option(..., "--out", help="Run folder (created; a re-run resumes)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML file merged over the profile."),
        data: Optional[Path] = typer.Option(None, "--data", help="Data folder or file (default ../shared/data/...)."),
        kb: Optional[str] = typer.Option(None, "--kb", help="Knowledge base (ncp: default eval-ncp; rejection: eval-rejection; laws: eval-laws; custom: required)."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions (per set for summaries)."),
        retrieval_only: bool = typer.Option(False, "--retrieval-only", help="ncp/custom: skip the answer stage."),
        modes: str = typer.Option("bm25,dense,hybrid", "--modes", help="Retrieval modes, comma-separated."),
        retrieval_k: int = typer.Option(50, "--retrieval-k", help="Chunks retrieved per query for document ranking."),
        crud_sample: int = typer.Option(100, "--crud-sample", help="summaries: CRUD event items sampled."),
        seed: int = typer.Option(2333, "--seed", help="Seed for passage shuffles and samples."),
        judge_url: Optional[str] = typer.Option(None, "--judge-url", help="OpenAI-compatible base URL of an "
                                                "LLM judge (faithfulness, relevance); off by default."),
        judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Judge model (default: the first "
                                                  "the endpoint lists)."),
        no_ingest: bool = typer.Option(False, "--no-ingest", help="ncp, rejection, laws: use --kb as it is, "
                                       "without ingesting."),
        concurrency: int = typer.Option(1, "--concurrency", help="Items in flight at once; up to the local LLM's "
                                        "llm.local.n_parallel slots helps on CPU (answers may differ in the last "
                                        "digits of batched arithmetic)."),
        n: int = typer.Option(25, "--n", help="rejection: absent questions (gold documents removed from the KB), and "
                              "as many present ones."),
        noise: str = typer.Option("0,0.2,0.4,0.6,0.8", "--noise", help="rgb: noise ratios, comma-separated (the "
                                  "rejection test with noise 1.0 always runs; none: only that test)."),
        fresh: bool = typer.Option(False, "--fresh", help="Discard what the run folder holds and start over.")):
    """Run a suite through the product's services; writes summary.json, items.jsonl, report.md/.html and charts."""
    from assistant.cli import context as main
    from eval.base import RunOptions
    from eval.runner import run_suite
    from eval.suites.summaries import SummarizerMissing

    if config:
        main._state["config"] = config
    command = _command_line(main._state, [
        ("--suite", suite), ("--kb", kb), ("--data", data), ("--limit", limit), ("--retrieval-only", retrieval_only),
        ("--modes", None if modes == "bm25,dense,hybrid" else modes),
        ("--retrieval-k", None if retrieval_k == 50 else retrieval_k),
        ("--crud-sample", None if crud_sample == 100 or suite != "summaries" else crud_sample),
        ("--seed", None if seed == 2333 else seed), ("--judge-url", judge_url), ("--judge-model", judge_model),
        ("--no-ingest", no_ingest), ("--concurrency", None if concurrency == 1 else concurrency),
        ("--n", None if n == 25 or suite != "rejection" else n),
        ("--noise", None if noise == "0,0.2,0.4,0.6,0.8" or suite != "rgb" else noise), ("--out", out)])
    try:
        # "none": only the rejection test (all-noise passages), which always runs
        noise_ratios = () if noise.strip().lower() == "none" else tuple(float(x) for x in noise.split(",") if x.strip())
    except ValueError:
        err.print(f"[red]错误 error:[/red] --noise: comma-separated ratios like 0,0.4 (got {noise!r})")
        raise typer.Exit(2) from None
    if (not noise_ratios and noise.strip().lower() != "none") or not all(0 <= r < 1 for r in noise_ratios):
        err.print(f"[red]错误 error:[/red] --noise: ratios from 0 up to (not including) 1, or none (got {noise!r})")
        raise typer.Exit(2) from None
    options = RunOptions(suite=suite, out=out, data=data, kb=kb, limit=limit, retrieval_only=retrieval_only,
                         modes=tuple(m.strip() for m in modes.split(",") if m.strip()), retrieval_k=retrieval_k,
                         crud_sample=crud_sample, seed=seed, judge_url=judge_url, judge_model=judge_model,
                         fresh=fresh, no_ingest=no_ingest, concurrency=concurrency, n=n, command=command,
                         noise_ratios=noise_ratios)
    with main.friendly_errors():
        try:
            c = main.container()
            with _progress() as progress:
                summary = run_suite(c, options, progress)
        except SummarizerMissing as exc:
            err.print(f"[yellow]skipped:[/] {exc}")
            raise typer.Exit(0) from None
        except RuntimeError as exc:     # the judge endpoint, an LLM backend
            err.print(f"[red]错误 error:[/red] {exc}")
            raise typer.Exit(2) from None
    _print_summary(summary, suite, out)


@eval_app.command("report")
def report_cmd(out: Path = typer.Argument(..., help="Run folder (of a run finished, still going or cut off).")):
    """Rebuild summary.json, report.md/.html and charts from the run folder's items, without running anything."""
    from assistant.cli import context as main
    from eval.runner import report_run

    with main.friendly_errors():
        summary = report_run(main.container(), out)
    for suite in summary["suites"]:
        _print_summary(summary, suite, out)


@eval_app.command("compare")
def compare_cmd(dir1: Path = typer.Argument(..., help="Baseline run folder (A)."),
                dir2: Path = typer.Argument(..., help="Run folder to compare (B)."),
                out: Optional[Path] = typer.Option(None, "--out", help="Markdown file (default DIR2/compare.md).")):
    """Metric deltas B − A between two runs (rich table), written to compare.md."""
    from assistant.cli import context as main
    from eval.compare import compare, to_markdown

    with main.friendly_errors():
        result = compare(dir1, dir2)
    t = Table("metric", "A", "B", "Δ", title=f"{dir2} − {dir1}")
    for r in result["rows"]:
        style = {True: "green", False: "red", None: ""}[r["better"]]
        fmt = lambda v, s="": "–" if v is None else f"{v:{s}.4f}"  # noqa: E731
        t.add_row(r["metric"], fmt(r["a"]), fmt(r["b"]), fmt(r["delta"], "+"), style=style)
    console.print(t)
    for key, va, vb in result["config_diff"]:
        console.print(f"[dim]config {key}: {va} → {vb}[/]", highlight=False)
    target = out or Path(dir2) / "compare.md"
    target.write_text(to_markdown(result), encoding="utf-8")
    console.print(f"written: {target}", highlight=False)


@eval_app.command("calibrate")
def calibrate_cmd(run_dir: Path = typer.Argument(..., help="A rejection run folder that recorded the answerability "
                                                 "signal (answer.answerability on, answer.min_answerability 0)."),
                  min_answered: float = typer.Option(0.95, "--min-answered", help="Present questions of the tuned "
                                                     "half that must still be answered."),
                  signal: str = typer.Option("answerability", "--signal", help="answerability "
                                             "(answer.min_answerability) | support (answer.min_support) | anchor "
                                             "(answer.min_anchor).")):
    """Pick a refusal threshold on the rejection run's tuned half; report both halves; calibration-<signal>.json/png."""
    from assistant.cli import context as main
    from eval.calibrate import calibrate

    with main.friendly_errors():
        result = calibrate(run_dir, min_answered, signal)
    t = Table("half", "AUC", "refused absent (off → at t)", "answered present (off → at t)",
              title=f"min_{signal} {result['threshold']:.4f} (picked on tuned: answer ≥ {min_answered:.0%})")
    pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    for half, at in result["at_threshold"].items():
        off = result["without"][half]
        t.add_row(half, str(result["auc"][half]), f"{pct(off['refused_absent'])} → {pct(at['refused_absent'])}",
                  f"{pct(off['answered_present'])} → {pct(at['answered_present'])}")
    console.print(t)
    console.print(f"written: {Path(run_dir) / f'calibration-{signal}.json'} and .png", highlight=False)


@eval_app.command("fit-answerability")
def fit_answerability_cmd(
        out: Path = typer.Option(..., "--out", help="Folder for pairs.jsonl, fit.json and fit.png."),
        kb: str = typer.Option("eval-ncp", "--kb", help="A knowledge base holding the NCP corpus (the ncp suite's: "
                               "`gov-assistant eval run --suite ncp --retrieval-only` ingests it)."),
        data: Optional[Path] = typer.Option(None, "--data", help="The NCP folder (corpus.jsonl, dev_qa.jsonl)."),
        max_loss: float = typer.Option(0.05, "--max-loss", help="Share of the tuned half's answerable pairs the "
                                       "threshold may refuse."),
        limit: Optional[int] = typer.Option(None, "--limit", help="The first N questions only (a smoke run).")):
    """Fit the answerability scorer (answer.answerability: scorer) on NCP dev with and without each question's gold
    documents; fitted on the tuned half, both halves reported; prints the configs/ block."""
    from assistant.cli import context as main
    from eval.fit_answerability import config_block, run

    if not 0 <= max_loss < 1:
        main.err.print("[red]错误 error:[/red] --max-loss must be in [0, 1)")
        raise typer.Exit(2)
    with main.friendly_errors(), _progress() as update:     # FitError is a ValueError: one line
        result = run(main.container(), kb, out, data, max_loss, limit,
                     lambda done, total: update("retrieve + screen", done, total))
    t = Table("half", "pairs", "AUC scorer", "best single signal", "present kept", "absent refused",
              title=f"answerability scorer, threshold {result['threshold']} (picked on tuned: keep ≥ "
                    f"{1 - max_loss:.0%} of its answerable pairs)")
    t.add_column("passage scorer (handed-in passages): AUC, present kept, absent refused")
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for half, at in result["at_threshold"].items():
        aucs = {k: v for k, v in result["auc"][half].items() if k != "scorer" and v is not None}
        best = max(aucs, key=aucs.get) if aucs else "–"
        p = result["passages"]
        t.add_row(half, str(result["pairs"][half]), str(result["auc"][half]["scorer"]),
                  f"{best} {aucs.get(best, '–')}", pct(at["answered_present"]), pct(at["refused_absent"]),
                  f"{p['auc'][half]['scorer']}, {pct(p['at_threshold'][half]['answered_present'])}, "
                  f"{pct(p['at_threshold'][half]['refused_absent'])} (at {p['threshold']})")
    console.print(t)
    console.print(config_block(result), highlight=False, markup=False)
    console.print(f"written: {out / 'fit.json'}, {out / 'fit.png'}, {out / 'pairs.jsonl'}", highlight=False)
