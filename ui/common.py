"""What every page shares: the container, the logged-in principal (a per-session gr.State held on the server,
never sent to the browser), event registration (UIContext.bind: session check and audit, ui/session.py), refresh
hooks and Chinese error messages."""
from __future__ import annotations

import functools
import html
import inspect
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from assistant.services.access import AccessDenied, Principal
from ui.session import SessionCheck, note, session_handler

ROLE_NAMES = {"admin": "管理员", "editor": "编辑", "reader": "只读用户"}
STATUS_BADGE = {"现行有效": "badge-ok", "已废止": "badge-bad", "历史版本": "badge-warn", "已被修改": "badge-warn",
                "尚未生效": "badge-warn"}
DISABLED = "功能未启用"


@dataclass
class Refresher:
    fn: Callable          # fn(principal, *inputs)
    outputs: list
    inputs: list = field(default_factory=list)


@dataclass
class UIContext:
    container: Any
    principal: gr.State
    session_check: SessionCheck          # Login.check: is this principal's session still live?
    # called (principal) after login and after a knowledge base changes, so every page shows what it may read
    on_login: list[Refresher] = field(default_factory=list)
    on_kbs_changed: list[Refresher] = field(default_factory=list)
    _kb_events: list = field(default_factory=list)
    _login_events: list = field(default_factory=list)

    @property
    def llm_queue(self) -> dict:
        """Event options that put every LLM-bound handler (answers, drafts, summaries) in one queue, as many at a
        time as the model serves in parallel; the rest wait with their queue position shown."""
        llm = self.container.settings.llm
        slots = llm.local.n_parallel if llm.mode == "local" else 4
        return {"concurrency_id": "llm", "concurrency_limit": max(int(slots), 1)}

    def bind(self, trigger: Callable, fn: Callable, inputs: list | None, outputs: list, **kwargs):
        """trigger(handler, inputs, outputs): `ctx.bind(button.click, handler, [...], [...])` — the one way pages
        register a handler. One that takes the session principal takes it first and then runs only while the
        session is live, audited (ui/session.py). Handlers are not offered to Gradio's API clients: programs use
        the HTTP API, with the same services."""
        inputs = list(inputs or [])
        positions = [i for i, x in enumerate(inputs) if x is self.principal]
        if positions:
            if positions != [0]:
                raise ValueError(f"{fn.__name__}: the session principal must be the handler's first input")
            fn = session_handler(fn, self.container, self.session_check)
        kwargs.setdefault("api_visibility", "private")
        return trigger(guard(fn, len(outputs)), inputs, outputs, **kwargs)

    def kbs_changed(self, event) -> None:
        """After `event` (an upload, a new knowledge base ...) every page refreshes its knowledge-base lists; chained
        in finish(), once every page has registered its refreshers."""
        self._kb_events.append(event)

    def finish(self) -> None:
        for event in self._kb_events:
            self.chain(event, self.on_kbs_changed)
        for event in self._login_events:
            self.chain(event, self.on_login)

    def logged_in(self, event) -> None:
        self._login_events.append(event)

    def chain(self, event, refreshers: list[Refresher]):
        """Run the refreshers after `event`, each only when someone is logged in (and still valid)."""
        for r in refreshers:
            fn = _when_logged_in(guard(session_handler(r.fn, self.container, self.session_check), len(r.outputs)),
                                 len(r.outputs))
            event = event.then(fn, inputs=[self.principal, *r.inputs],
                               outputs=r.outputs, show_progress="hidden", api_visibility="private")
        return event


def _skips(n: int):
    return gr.skip() if n == 1 else tuple(gr.skip() for _ in range(n))


def _when_logged_in(fn: Callable, n: int) -> Callable:
    """A refresher chained after a login attempt: nothing to do (or report) when the login failed."""
    @functools.wraps(fn)
    def wrapper(principal, *args):
        if principal is None:
            return _skips(n)
        return fn(principal, *args)
    return wrapper


def guard(fn: Callable, n_outputs: int) -> Callable:
    """A handler whose gr.Error becomes a toast while its outputs stay as they were. (A raised gr.Error would also
    put an error overlay over every output component, which blocks them until the next successful run.)"""
    def toast(exc: gr.Error) -> None:
        gr.Warning(str(exc.message), duration=8, title=exc.title if exc.title != "Error" else "提示")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error as exc:
                toast(exc)
                yield _skips(n_outputs)
        return gen

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            toast(exc)
            return _skips(n_outputs)
    return wrapper


def service(container: Any, name: str) -> Any | None:
    """A container service that may not exist in this build (drafting, summarize, feedback ...): None if missing
    or if building it fails."""
    try:
        return getattr(container, name)
    except AttributeError:
        return None
    except Exception:  # noqa: BLE001 - a service that cannot be built is as good as missing for its page
        return None


def can_read(principal: Principal | None, kb: str | None) -> bool:
    """Checked again on the server for every knowledge base a request names (a value from the browser)."""
    return principal is not None and bool(kb) and principal.can_read(kb)


def readable_kbs(container: Any, principal: Principal | None) -> list[dict]:
    if principal is None:
        return []
    return container.knowledge_bases.list(principal=principal)


def kb_names(container: Any, principal: Principal | None) -> list[str]:
    return [kb["name"] for kb in readable_kbs(container, principal)]


_ENGLISH = [
    (re.compile(r"knowledge base '?([^'\s]+)'? does not exist"), "知识库 {0} 不存在"),
    (re.compile(r"knowledge base '?([^'\s]+)'? already exists"), "知识库 {0} 已存在"),
    (re.compile(r"question is empty|query is empty"), "请输入问题"),
    (re.compile(r"question is longer than (\d+) characters"), "问题过长（不超过 {0} 字）"),
    (re.compile(r"invalid date '([^']*)'"), "日期格式有误：{0}（应为 YYYY、YYYY-MM 或 YYYY-MM-DD）"),
    (re.compile(r"document '?([^'\s]+)'? not found"), "文档 {0} 不存在"),
    (re.compile(r"^(?:text|topic) is empty"), "内容为空"),
    (re.compile(r"(text|topic|requirements|issuer|recipients) is longer than (\d+) characters"),
     "内容过长（{0} 不超过 {1} 字）"),
    (re.compile(r"the model returned (?:an empty summary|no usable)"), "模型没有给出可用的结果，请稍后重试或缩短文本"),
    (re.compile(r"no text to summarize"), "没有可摘要的文字"),
    (re.compile(r"date: cannot read '([^']*)'"), "成文日期格式有误：{0}（应为 YYYY-MM-DD）"),
    (re.compile(r"doc_ids: not found"), "所选参考文件不在所选知识库中"),
]


def friendly(exc: BaseException) -> str:
    """A one-line Chinese message for errors the services raise; the original text stays for the details."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, AccessDenied):
        return f"无权限：{msg}"
    for pattern, template in _ENGLISH:
        m = pattern.search(msg)
        if m:
            return template.format(*m.groups())
    return msg


def fail(exc: BaseException, what: str = "操作失败") -> gr.Error:
    """The service's exception as a toast; the handler's audit row says denied, rejected (input) or error."""
    note(outcome="denied" if isinstance(exc, PermissionError)
         else "rejected" if isinstance(exc, (ValueError, LookupError)) else "error")
    return gr.Error(f"{what}：{friendly(exc)}", title=what)


def denied(message: str) -> gr.Error:
    """A refusal the page itself decides (role, knowledge base): a toast, and the audit row says denied."""
    note(outcome="denied")
    return gr.Error(message, title="无权限")


def esc(text: Any) -> str:
    return html.escape(str(text if text is not None else ""))


def notice(text: str, kind: str = "") -> str:
    return f'<div class="notice {kind}">{text}</div>'


def disabled_notice(feature: str, detail: str = "") -> str:
    extra = f"<br><span style='font-size:12px'>{esc(detail)}</span>" if detail else ""
    return notice(f"<b>{DISABLED}</b>：本系统尚未配置“{esc(feature)}”服务。{extra}", "warn")


def highlight(text: str, terms: set[str] | list[str]) -> str:
    """HTML-escaped text with every occurrence of the terms wrapped in <mark> (longest first, no overlaps)."""
    terms = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if not terms:
        return esc(text)
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.I)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(esc(text[pos:m.start()]))
        out.append(f"<mark>{esc(m.group(0))}</mark>")
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def status_badge(status: str) -> str:
    if not status:
        return ""
    return f'<span class="badge {STATUS_BADGE.get(status, "badge-warn")}">{esc(status)}</span>'


def sensitivity_badge(level: str | None) -> str:
    """数据分类分级 beside a citation or document (the reader may see it, or it would not be shown)."""
    if not level:
        return ""
    return f'<span class="badge badge-level" title="数据分级">{esc(level)}</span>'


DOWNLOADS = Path(tempfile.gettempdir()) / "gov-assistant-ui"
DOWNLOADS_KEPT_S = 24 * 3600


def download_file(name: str, text: str, encoding: str = "utf-8") -> str:
    """A file for a download button, in its own folder under DOWNLOADS (so two users' files never collide);
    folders older than a day are removed on the way."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - DOWNLOADS_KEPT_S
    for old in DOWNLOADS.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    folder = DOWNLOADS / uuid.uuid4().hex
    folder.mkdir()
    safe = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .") or "download.txt"
    path = folder / safe[:120]
    path.write_text(text, encoding=encoding, newline="")
    return str(path)
