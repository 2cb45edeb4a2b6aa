"""Secrets never reach a log line: API keys (gak_…), `api_key=` / `key=` / `token=` style values (a query string
in uvicorn's access log), Authorization and X-API-Key values. `gov-assistant serve` installs it on every log record
(a record factory: the app's loggers, uvicorn's access and error loggers and any library's) and as a filter on
uvicorn's handlers."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_PATTERNS = [
    (re.compile(r"gak_[A-Za-z0-9_\-]+"), "gak_" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]+"), r"\1\2" + MASK),
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=,]\s*['\"]?)[^\s'\",;&]+"), r"\1" + MASK),
    (re.compile(r"(?i)(?<![a-z0-9])((?:api[_-]?key|access[_-]?token|token|key|secret|password|passwd)(?:=|%3D))"
                r"[^&\s'\"#]+"),
     r"\1" + MASK),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def redact_record(record: logging.LogRecord) -> None:
    """In place. Arguments are redacted one by one, so formatters that read them by position (uvicorn's access
    formatter: client, method, path, version, status) keep working; when a secret shows only in the formatted
    message (a `Bearer %s` template), the record becomes that message redacted. The format string itself is never
    edited (its placeholders would break). A traceback is formatted and redacted too."""
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(a) for a in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {k: _redact_arg(v) for k, v in record.args.items()}
    if not record.args:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
    elif record.name != "uvicorn.access":   # whose arguments are the request line's parts, each redacted above
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken template is the logging call's problem, reported by logging
            message = None
        if message is not None and redact(message) != message:
            record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed: dict[str, Any] = {}


def install() -> None:
    """Redact every record as it is created (idempotent)."""
    if "factory" in _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    _installed["factory"], _installed["previous"] = factory, previous
    logging.setLogRecordFactory(factory)


def uninstall() -> None:
    if "factory" in _installed and logging.getLogRecordFactory() is _installed["factory"]:
        logging.setLogRecordFactory(_installed["previous"])
    _installed.clear()
