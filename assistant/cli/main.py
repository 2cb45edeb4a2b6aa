"""`gov-assistant`: a thin command line over the services. This module assembles the commands; each command module
(knowledge, answers, demo, api, scale, summarize, and eval/cli.py) imports only assistant.cli.context, the state,
consoles, container, errors and progress renderer they share, never another command module."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from assistant.cli import answers, api, demo, knowledge, scale, summarize
from assistant.cli.context import _state
from eval.cli import eval_app

app = typer.Typer(help="政务大模型助手: government knowledge base with cited answers from a local LLM.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def main(profile: Optional[str] = typer.Option(None, "--profile", "-p", envvar="GOV_ASSISTANT_PROFILE",
                                               help="Settings profile(s) from configs/, comma-separated."),
         config: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML file merged over the profile.")):
    _state["profile"], _state["config"] = profile, config
    _state.pop("container", None)  # each invocation builds from its own options (matters when run in-process)


app.command()(knowledge.ingest)
app.command("ingest-laws")(knowledge.ingest_laws)
app.command()(knowledge.search)
app.command()(answers.ask)
app.command()(answers.chat)
app.command()(demo.demo)
app.command()(api.serve)                       # HTTP API (#3)
app.command()(scale.worker)                    # scale-out embedding worker (#18)
app.command("summarize")(summarize.summarize)  # batch summaries (#5)
app.add_typer(knowledge.kb_app, name="kb")
app.add_typer(knowledge.doc_app, name="doc")
app.add_typer(demo.models_app, name="models")
app.add_typer(api.keys_app, name="keys")
app.add_typer(api.audit_app, name="audit")
app.add_typer(api.access_app, name="access")   # directory rules and grants (#17)
app.add_typer(scale.db_app, name="db")
app.add_typer(eval_app, name="eval")           # evaluation harness (#6)
