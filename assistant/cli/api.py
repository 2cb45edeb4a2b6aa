"""`gov-assistant serve | keys | audit | access`: the HTTP API's commands (assembled in assistant/cli/main.py).
They run on the host that holds the data directory, so they act as the local operator."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from assistant.cli import context

keys_app = typer.Typer(help="API keys for the HTTP API (shown once, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log of the HTTP API.", no_args_is_help=True)
access_app = typer.Typer(help="Who may see what: directory mapping rules (SSO users, groups, departments → role, "
                         "department, clearance) and knowledge-base grants. Every change is audited.",
                         no_args_is_help=True)


def serve(host: Optional[str] = typer.Option(None, "--host", help="Default: server.host (127.0.0.1)."),
          port: Optional[int] = typer.Option(None, "--port", help="Default: server.port (8000)."),
          ui: bool = typer.Option(True, "--ui/--no-ui", help="Mount the web UI at /ui when it is installed."),
          workers: int = typer.Option(1, "--workers", min=1, max=64,
                                      help="API processes (scale-out profile only: PostgreSQL + Chroma server)."),
          ui_port: Optional[int] = typer.Option(None, "--ui-port", help="With --workers N: the port of the web UI's "
                                                "own process (default: server.ui_port, 7860).")):
    """Start the HTTP API (OpenAPI docs at /docs; OpenAI-compatible at /v1)."""
    import os
    import subprocess

    import uvicorn

    from assistant.api.app import create_app
    from assistant.api.server import check_ports_free, uvicorn_options
    from assistant.services.auth import ENV_ADMIN_KEY
    with context.friendly_errors():
        c = context.container()
        from assistant.api import factory
        factory.check_workers(c.settings, workers)
        host, port = host or c.settings.server.host, port or c.settings.server.port
        ui_port = (ui_port or c.settings.server.ui_port) if workers > 1 and ui else None
        check_ports_free(host, (port, "--port / server.port"),
                         *([(ui_port, "--ui-port / server.ui_port")] if ui_port else []))
        if workers > 1:
            from assistant.settings import dump_settings
            run = Path(c.settings.data_dir) / "run"
            os.environ[factory.ENV_SETTINGS] = str(dump_settings(c.settings, run / f"serve-settings-{os.getpid()}.yaml"))
            os.environ[factory.ENV_UI] = "0"
            app = "assistant.api.factory:app"
        else:
            app = create_app(c, with_ui=ui)
        if not c.api_keys.list():
            context.err.print("[yellow]No API key exists yet[/]: every request will get 401. Create one with\n"
                          "  gov-assistant keys create --name admin --role admin\n"
                          f"or start with {ENV_ADMIN_KEY}=<a secret of 16+ characters> for a demo admin key.")
    context.err.print(f"serving on http://{host}:{port} (docs: /docs, OpenAI base_url: http://{host}:{port}/v1)",
                  soft_wrap=True)
    ui_process = None
    if ui_port:
        os.environ[factory.ENV_UI_PORT] = str(ui_port)
        ui_process = subprocess.Popen(factory.ui_process_args(host, ui_port))
        context.err.print(f"web UI: http://{host}:{ui_port}/ui, one process of its own (Gradio keeps a session in "
                          f"the process serving it; /ui on port {port} redirects there; across hosts route /ui "
                          "with cookie affinity)", soft_wrap=True)
    # bounded headers, connections and redacted logs (assistant/api/server.py)
    if workers > 1:
        context.err.print(f"{workers} worker processes share {c.settings.vectorstore.http.host}:"
                      f"{c.settings.vectorstore.http.port} (Chroma) and the PostgreSQL database", soft_wrap=True)
        # worker processes are spawned: the guarded protocol goes by import name, built from the settings file
        options = {**uvicorn_options(c.settings), "http": "assistant.api.factory:GuardedProtocol"}
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", workers=workers, factory=True, **options)
        finally:
            if ui_process is not None:
                ui_process.terminate()
                try:
                    ui_process.wait(15)
                except subprocess.TimeoutExpired:
                    ui_process.kill()
    else:
        uvicorn.run(app, host=host, port=port, log_level="info", **uvicorn_options(c.settings))


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., "--name", help="Who or what uses the key (unique)."),
                role: str = typer.Option("reader", "--role", help="admin | editor | reader"),
                kb: list[str] = typer.Option([], "--kb", help="Readable knowledge base (repeatable); '*' = all."),
                department: list[str] = typer.Option([], "--department", help="Department (repeatable)."),
                clearance: Optional[str] = typer.Option(None, "--clearance", help="Highest document level it may "
                                                        "see (classification.levels); default: "
                                                        "classification.default_clearance.")):
    """Create a key. The key is printed once and cannot be shown again."""
    with context.friendly_errors():
        secret, rec = context.container().api_keys.create(name, role, list(kb), list(department), clearance=clearance)
    context.err.print(f"created key {rec['id']} for {rec['name']} ({rec['role']}; kbs: {', '.join(rec['kbs']) or '-'}). "
                  "Store it now; it is not shown again:")
    print(secret)


@keys_app.command("list")
def keys_list(all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
              as_json: bool = typer.Option(False, "--json")):
    from assistant.services.auth import public_record
    with context.friendly_errors():
        keys = [public_record(k) for k in context.container().api_keys.list(include_revoked=all_keys)]
    if as_json:
        print(json.dumps(keys, ensure_ascii=False, indent=1))
        return
    table = Table("id", "name", "role", "kbs", "departments", "clearance", "prefix", "created", "last used", "revoked")
    for k in keys:
        table.add_row(k["id"], k["name"], k["role"], ",".join(k["kbs"]), ",".join(k["departments"]),
                      k.get("clearance") or "(default)", k["prefix"] + "…", k["created_at"], k["last_used_at"] or "",
                      k["revoked_at"] or "")
    context.console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="Key id (k_…) or name.")):
    with context.friendly_errors():
        n = context.container().api_keys.revoke(key)
    if not n:
        context.err.print(f"[red]no active key {key!r}[/]")
        raise typer.Exit(1)
    context.console.print(f"revoked {key}")


@audit_app.command("tail")
def audit_tail(n: int = typer.Option(20, "-n", help="How many of the latest entries."),
               as_json: bool = typer.Option(False, "--json")):
    with context.friendly_errors():
        entries = context.container().audit.tail(n)
    if as_json:
        for e in entries:
            print(json.dumps(e, ensure_ascii=False))
        return
    table = Table("time", "principal", "ip", "operation", "status", "outcome", "kb", "question", "sources", "ms")
    for e in entries:
        table.add_row(e["ts"], e["principal"], e["client_ip"] or "", e["operation"], str(e["status"] or ""),
                      e["outcome"], e["kb"] or "", (e["question"] or "")[:30], str(len(e["sources"])),
                      f"{e['latency_ms'] or 0:.0f}")
    context.console.print(table)


@audit_app.command("export")
def audit_export(out: Path = typer.Option(..., "--out", help="JSONL file to write.")):
    with context.friendly_errors():
        n = context.container().audit.export(out)
    context.console.print(f"wrote {n} entries to {out}")


def _access():
    from assistant.services.access import LOCAL_ADMIN
    return context.container().access_admin, LOCAL_ADMIN


def _print(obj, as_json: bool, columns: tuple[str, ...]) -> None:
    rows = obj if isinstance(obj, list) else [obj]
    if as_json:
        print(json.dumps(obj, ensure_ascii=False, indent=1))
        return
    table = Table(*columns)
    for r in rows:
        table.add_row(*[str(r.get(c) if r.get(c) is not None else "") for c in columns])
    context.console.print(table)


RULE_COLUMNS = ("id", "kind", "match", "role", "department", "clearance", "created_by")
GRANT_COLUMNS = ("kb", "kind", "subject", "access", "created_by")


@access_app.command("rules")
def access_rules(as_json: bool = typer.Option(False, "--json")):
    """The mapping rules, oldest first."""
    with context.friendly_errors():
        svc, me = _access()
        _print(svc.rules(principal=me), as_json, RULE_COLUMNS)


@access_app.command("map")
def access_map(kind: str = typer.Argument(..., help="user (oidc:<sub>, ldap:<dn> or the bare subject) | group | "
                                          "department | claim (name=value)"),
               match: str = typer.Argument(..., help="What the rule matches, e.g. cn=editors,ou=groups,dc=x"),
               role: Optional[str] = typer.Option(None, "--role", help="reader | editor | admin"),
               department: Optional[str] = typer.Option(None, "--department", help="A department it puts them in."),
               clearance: Optional[str] = typer.Option(None, "--clearance", help="A clearance it gives them."),
               as_json: bool = typer.Option(False, "--json")):
    """Add a rule: whoever it matches gets the role, department and clearance (the highest of all rules wins)."""
    with context.friendly_errors():
        svc, me = _access()
        _print(svc.add_rule(kind, match, role=role, department=department, clearance=clearance, principal=me,
                            channel="CLI"), as_json, RULE_COLUMNS)


@access_app.command("unmap")
def access_unmap(rule_id: int = typer.Argument(..., help="The rule's id (`access rules`).")):
    with context.friendly_errors():
        svc, me = _access()
        svc.remove_rule(rule_id, principal=me, channel="CLI")
    context.console.print(f"removed rule {rule_id}")


@access_app.command("grants")
def access_grants(kb: Optional[str] = typer.Option(None, "--kb"), as_json: bool = typer.Option(False, "--json")):
    with context.friendly_errors():
        svc, me = _access()
        _print(svc.grants(kb, principal=me), as_json, GRANT_COLUMNS)


@access_app.command("grant")
def access_grant(kb: str = typer.Argument(...),
                 kind: str = typer.Argument(..., help="department | group | user | key"),
                 subject: str = typer.Argument(..., help="The department name, group DN or name, user id "
                                               "(oidc:<sub>, ldap:<dn>) or key id (k_…)."),
                 write: bool = typer.Option(False, "--write", help="Editors among them may also change the KB."),
                 as_json: bool = typer.Option(False, "--json")):
    """Let a department, group, user or key read (or write) a knowledge base."""
    with context.friendly_errors():
        svc, me = _access()
        _print(svc.grant(kb, kind, subject, "write" if write else "read", principal=me, channel="CLI"), as_json,
               GRANT_COLUMNS)


@access_app.command("revoke")
def access_revoke(kb: str = typer.Argument(...), kind: str = typer.Argument(...), subject: str = typer.Argument(...)):
    with context.friendly_errors():
        svc, me = _access()
        svc.revoke(kb, kind, subject, principal=me, channel="CLI")
    context.console.print(f"revoked {kind} {subject} on {kb}")


@access_app.command("classify")
def access_classify(doc_id: str = typer.Argument(...), kb: str = typer.Option(..., "--kb"),
                    level: str = typer.Option(..., "--level", help="One of classification.levels, e.g. 敏感.")):
    """Set a document's sensitivity level (数据分类分级); in force for the next retrieval."""
    with context.friendly_errors():
        svc, me = _access()
        doc = svc.set_sensitivity(kb, doc_id, level, principal=me, channel="CLI")
    context.console.print(f"{doc_id}: {doc['metadata']['sensitivity']}")
