"""Answers on the command line: `ask` and `chat`, with the verification notes and the related passages."""
from __future__ import annotations

import json

import typer

from assistant.cli import context
from assistant.cli.context import console, friendly_errors
from assistant.services.access import LOCAL_ADMIN   # the CLI is the trusted local operator


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
            console.print(f"[dim]  [{c.n}] {c.noted_label} {c.metadata.get('heading', '')}[/]",
                          highlight=False)


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer_json(answer), ensure_ascii=False, indent=1))
        return
    console.print(answer.answer, highlight=False)
    for note in verification_notes(answer):
        console.print(f"[yellow]{note}[/]", highlight=False)
    for c in answer.citations:
        mark = "*" if c.cited else " "
        console.print(f"[dim]{mark}[{c.n}] {c.noted_label} {c.metadata.get('heading', '')}[/]",
                      highlight=False)
    _print_related(answer)
    t = answer.timings
    console.print(f"[dim]首字 {t.get('first_token_ms', 0) / 1000:.1f}s · 总计 {t.get('total_ms', 0) / 1000:.1f}s · "
                  f"{answer.model} · 人工智能生成内容[/]")


def ask(question: str, kb: list[str] = typer.Option(..., "--kb"),
        filter: list[str] = typer.Option([], "--filter"), as_json: bool = typer.Option(False, "--json")):
    """A grounded answer with [n] citations, or a refusal when the knowledge base has no evidence."""
    from assistant.filters import Filters
    with friendly_errors():
        answer = context.container().qa.ask(question, list(kb), Filters.parse(filter), principal=LOCAL_ADMIN)
    _print_answer(answer, as_json)


def chat(kb: list[str] = typer.Option(..., "--kb"), filter: list[str] = typer.Option([], "--filter")):
    """Multi-turn chat in the terminal, streaming; follow-ups are rewritten into standalone questions."""
    from assistant.filters import Filters
    with friendly_errors():
        c = context.container()
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
                            console.print(f"[dim][{cit.n}] {cit.noted_label}[/]", highlight=False)
                    _print_related(answer)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
