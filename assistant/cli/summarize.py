"""`gov-assistant summarize PATH... --out DIR`: batch summaries (issue #5), assembled in assistant/cli/main.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from assistant.cli import context


def summarize(paths: list[Path] = typer.Argument(..., help="Files or folders (.txt .md .html .docx .pdf .xlsx "
                                                           ".pptx .doc; each .jsonl line is a document)."),
              out: Path = typer.Option(..., "--out", "-o", help="Output folder: summaries.jsonl + digest.md."),
              style: Optional[str] = typer.Option(None, "--style", help="brief | structured | action-items "
                                                                        "(default: summarize.style)."),
              concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1,
                                                        help="Requests in flight (default: llm.local.n_parallel)."),
              max_docs: Optional[int] = typer.Option(None, "--max-docs", min=1,
                                                     help="Only the first N documents of the input."),
              as_json: bool = typer.Option(False, "--json", help="Print the run report as JSON.")):
    """Summarize documents one by one into DIR/summaries.jsonl and DIR/digest.md; resumable (rerun the same
    command: documents already done with the same settings are skipped, failed ones retried)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with context.friendly_errors():
        c = context.container()
        svc = c.summarize
        style = svc.check_style(style or c.settings.summarize.style)
        with Progress(TextColumn("[bold]summarize[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[detail]}", style="dim"),
                      console=context.err, transient=False) as bar:
            task = bar.add_task(style, total=None, detail="")

            def progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
                bar.update(task, completed=done, total=total, detail=detail[:60])

            try:
                report = svc.summarize_paths([str(p) for p in paths], out, style, concurrency, max_docs, progress)
            except KeyboardInterrupt:
                bar.stop()
                context.err.print(f"[yellow]interrupted[/]: finished documents are in {out / 'summaries.jsonl'}; "
                              "run the same command again to continue.")
                raise typer.Exit(130) from None
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        n = report["counts"]
        context.console.print(f"[bold]{report['total']}[/] documents: summarized {n['summarized']}, skipped (done) "
                          f"{n['skipped']}, reused {n['reused']}, failed {n['failed']} in {report['seconds']:.0f}s "
                          f"({report['docs_per_minute']:.1f}/min, concurrency {report['concurrency']})",
                          highlight=False)
        for f in report["failures"]:
            context.console.print(f"[red]failed[/] {f['source']}: {f['error']}", highlight=False)
        context.console.print(f"{report['summaries']}\n{report['digest']}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)
