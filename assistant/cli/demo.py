"""`demo` (build the demo knowledge base, then serve) and `models prepare`."""
from __future__ import annotations

from typing import Optional

import typer

from assistant.cli import context
from assistant.cli.context import console, friendly_errors, rich_progress

models_app = typer.Typer(help="Packaged local models.", no_args_is_help=True)


def demo(serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the app when the KB is ready."),
         host: Optional[str] = typer.Option(None, "--host"), port: Optional[int] = typer.Option(None, "--port")):
    """Build the demo knowledge base (samples + a subset of national laws), then serve the API and the UI."""
    from assistant.demo import build_demo, demo_admin_key
    with friendly_errors():
        c = context.container()
        models_prepare()
        with rich_progress("demo knowledge base") as progress:
            reports = build_demo(c, progress)
    for report in reports:
        console.print(f"[bold]{report.kb}[/]: " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
                      + f" ({report.seconds:.1f}s)")
        for r in report.results:
            if r.status == "failed":
                console.print(f"[red]failed[/] {r.source}: {r.message}", highlight=False)
    pending = c.store.catalog.vector_counts(c.settings.demo.kb)[1]
    if pending:
        console.print(f"{pending:,} chunks are searchable by BM25 and still without vectors: "
                      + ("the server embeds them in the background" if serve and c.settings.api.fill_vectors_in_background
                         else f"gov-assistant kb embed {c.settings.demo.kb}") + f" (progress: gov-assistant kb info "
                      f"{c.settings.demo.kb}).", soft_wrap=True)
    if serve:
        with friendly_errors():
            key_file, secret = demo_admin_key(c)
        h, p = host or c.settings.server.host, port or c.settings.server.port
        console.print(f"\n[bold green]Ready.[/] Open http://{h}:{p}/ui/ and log in with the demo admin key "
                      f"(kept in {key_file}):\n  {secret}\nAPI docs: http://{h}:{p}/docs — "
                      f"terminal chat instead: gov-assistant chat --kb {c.settings.demo.kb}", soft_wrap=True)
        from assistant.cli.api import serve as serve_app
        serve_app(host=h, port=p, ui=True)


@models_app.command("prepare")
def models_prepare():
    """Assemble and verify the configured local model, build the configured encoder (idempotent)."""
    from assistant.models import ensure_model, prepare_embeddings
    with friendly_errors():
        s = context.container().settings
        encoder = prepare_embeddings(s.embedding, log=console.print)
        if encoder:
            console.print(f"encoder ready: {encoder}")
        if s.llm.mode != "local":
            console.print(f"llm.mode is {s.llm.mode}: no local model to prepare")
            return
        with rich_progress(f"model {s.llm.local.model}") as progress:
            path = ensure_model(s.llm.local.model, s.resolved_models_dir,
                                lambda done, total: progress("model", done >> 20, total >> 20, "MiB"))
    console.print(f"ready: {path}")
