"""Metadata filters shared by both retrievers: one definition, three renderings (Chroma `where` for dense, an SQL
condition over the catalog's chunk rows for lexical search, a Python predicate).

Validity is a hard filter: unless the caller names statuses, only `retrieval.default_status` is retrieved,
and with 现行有效 in it also an 已被修改 text that is the newest text its knowledge base holds of its law (the
catalog flags its chunks `latest_text`, by `newest_amended`): a law known only as amended is answered from,
with a warning, instead of being hidden whole. A filter that matches nothing returns nothing.
"""
from __future__ import annotations

import json

import re
from dataclasses import dataclass, field, fields, replace

STATUSES = ("现行有效", "已废止", "历史版本", "已被修改", "尚未生效")
CURRENT, AMENDED, NOT_YET = "现行有效", "已被修改", "尚未生效"
ANY = "*"
LATEST_TEXT = "latest_text"     # chunk metadata, set by the catalog: this 已被修改 text is its law's newest


_SQL_OPS = {"$eq": "=", "$gte": ">=", "$lte": "<="}


class FilterError(ValueError):
    pass


class NoClearance(PermissionError):
    """Filters that name no document levels reached the searcher: a path that skipped access.scope."""


def date_to_int(value: str, end: bool = False) -> int:
    """'2020', '2020-03', '2020-03-05' (or 2020年3月5日) -> 20200101 / 20200301 / 20200305; end=True rounds up."""
    m = re.fullmatch(r"(\d{4})(?:[-./年](\d{1,2})(?:[-./月](\d{1,2})日?)?月?)?", str(value).strip())
    if not m:
        raise FilterError(f"invalid date {value!r}: use YYYY, YYYY-MM or YYYY-MM-DD")
    y, mo, d = m.group(1), m.group(2), m.group(3)
    mo_i = int(mo) if mo else (12 if end else 1)
    d_i = int(d) if d else (31 if end else 1)
    if not (1 <= mo_i <= 12 and 1 <= d_i <= 31):
        raise FilterError(f"invalid date {value!r}: month or day out of range")
    return int(y) * 10000 + mo_i * 100 + d_i


def law_key(meta: dict) -> str:
    """Which law a text is a version of: its `law` (laws.db, or stated at ingest), else its title."""
    return str(meta.get("law") or meta.get("title") or "")


def newest_amended(texts: dict[str, dict]) -> set[str]:
    """Of one law's texts in a knowledge base (doc_id → metadata), the 已被修改 ones retrieved by default: none
    when a 现行有效 text is there; else those of the latest version_date (or date), when every text of that date
    is 已被修改 (a newer repealed or historical text means the amended one is not the law's last word). A 尚未生效
    text is not in force yet: it supersedes nothing."""
    if any(m.get("status") == CURRENT for m in texts.values()):
        return set()
    dated = {d: str(m.get("version_date") or m.get("date") or "") for d, m in texts.items()
             if m.get("status") != NOT_YET}
    top = max(dated.values(), default="")
    newest = {d for d, v in dated.items() if v == top}
    return newest if newest and all(texts[d].get("status") == AMENDED for d in newest) else set()


@dataclass
class Filters:
    status: list[str] | None = None     # None: the configured default; ["*"]: any validity
    agency: str | None = None
    doc_type: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    doc_ids: list[str] | None = None
    extra: dict[str, str] = field(default_factory=dict)  # any other exact metadata match, e.g. law=...
    # document levels the caller may see (access.scope sets them from the principal; "*" = all). Never parsed from
    # a request: None means nobody said, and the searcher refuses to search
    levels: tuple[str, ...] | None = None
    # set by with_default_status only: the newest text of a law counts as current when it is 已被修改
    latest_amended: bool = False

    @classmethod
    def parse(cls, items: list[str] | None) -> "Filters":
        """CLI form: ["status=现行有效,已废止", "agency=上海市数据局", "date_from=2024-01-01", "law=..."]."""
        data: dict = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise FilterError(f"invalid filter {item!r}: use key=value")
            data[key] = value
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Filters":
        data = dict(data or {})
        data.pop("levels", None)   # the principal's clearance decides, never the request
        data.pop("latest_amended", None)   # part of the default validity, never a request's
        known = {f.name for f in fields(cls)} - {"extra", "levels", "latest_amended"}
        kwargs: dict = {"extra": {}}
        for key, value in data.items():
            if value is None or value == "" or value == []:
                continue
            if key in ("status", "doc_ids"):
                value = [str(v).strip() for v in (value.split(",") if isinstance(value, str) else value)
                         if str(v).strip()]
                if not value:  # "status=," must not silently drop the validity filter (fail open)
                    raise FilterError(f"filter field {key!r} is empty: give at least one value")
                if key == "status":
                    bad = [v for v in value if v not in STATUSES and v != ANY]
                    if bad:
                        raise FilterError(f"invalid status filter {bad}: use {', '.join(STATUSES)} or *")
                kwargs[key] = value
            elif key in known:
                kwargs[key] = str(value)
            elif re.fullmatch(r"[a-z_]{1,32}", key):
                kwargs["extra"][key] = str(value)
            else:
                raise FilterError(f"unknown filter field {key!r}")
        flt = cls(**kwargs)
        for key in ("date_from", "date_to"):
            if getattr(flt, key):
                try:  # validate early, with the field named
                    date_to_int(getattr(flt, key))
                except FilterError as exc:
                    raise FilterError(f"filter field {key!r}: {exc}") from None
        return flt

    def visible_to(self, levels: tuple[str, ...] | list[str]) -> "Filters":
        """These filters narrowed to the levels a principal may see (an intersection: never wider)."""
        levels = tuple(levels)
        if self.levels is not None and "*" not in self.levels:
            levels = self.levels if "*" in levels else tuple(lv for lv in levels if lv in self.levels)
        return replace(self, levels=levels)

    def level_ok(self, meta: dict) -> bool:
        """The chunk's or document's level is one the caller may see (checked on the catalog's own record)."""
        if self.levels is None:
            return False
        return "*" in self.levels or meta.get("sensitivity") in self.levels

    def with_default_status(self, default: list[str]) -> "Filters":
        # an empty list is "not given" too: it must never mean "any validity"; statuses the caller names keep
        # their exact meaning (no newest-amended rule)
        if self.status:
            return self
        amended = CURRENT in default and AMENDED not in default
        return replace(self, status=list(default), latest_amended=amended)

    def narrows(self) -> bool:
        """A condition the caller chose (agency, type, dates, documents, metadata) and not only validity and
        clearance, which every search carries and most chunks pass: the lexical search ranks differently."""
        return bool(self.agency or self.doc_type or self.date_from or self.date_to or self.doc_ids or self.extra)

    def _conditions(self) -> list[tuple]:
        """(key, op, value) conditions, all required; ("$or", branches) holds when every condition of one of
        its branches does."""
        conds: list[tuple] = []
        if self.status and ANY not in self.status:
            status = ("status", "$in", list(self.status))
            conds.append(("$or", [[status], [("status", "$eq", AMENDED), (LATEST_TEXT, "$eq", True)]])
                         if self.latest_amended else status)
        if self.agency:
            conds.append(("agency", "$eq", self.agency))
        if self.doc_type:
            conds.append(("doc_type", "$eq", self.doc_type))
        if self.date_from:
            conds.append(("date_int", "$gte", date_to_int(self.date_from)))
        if self.date_to:
            conds.append(("date_int", "$lte", date_to_int(self.date_to, end=True)))
        if self.doc_ids:
            conds.append(("doc_id", "$in", list(self.doc_ids)))
        for key, value in self.extra.items():
            conds.append((key, "$eq", value))
        return conds

    def to_where(self) -> dict | None:
        return _where(self._conditions())

    def to_sql(self, column: str = "c.metadata", dialect: str = "sqlite") -> tuple[str, list]:
        """The condition over a JSON metadata column, and its parameters: what `matches` keeps (a missing key
        matches nothing; json_extract and jsonb keep JSON types, so "2020" is not 2020, as in Python). Keys are
        passed as parameters too (JSON paths quoted), values never enter the SQL text."""
        args: list = []
        cond = _sql(self._conditions(), column, dialect == "postgresql", args)
        return cond or ("TRUE" if dialect == "postgresql" else "1"), args

    def matches(self, meta: dict) -> bool:
        return _holds(self._conditions(), meta)

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("extra", "levels", "latest_amended") and getattr(self, f.name)}
        out.update(self.extra)
        return out


def _where(conds: list[tuple]) -> dict | None:
    parts = [{"$or": [_where(b) for b in c[1]]} if c[0] == "$or" else {c[0]: {c[1]: c[2]}} for c in conds]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _sql(conds: list[tuple], column: str, pg: bool, args: list) -> str:
    parts: list[str] = []
    for cond in conds:
        if cond[0] == "$or":
            parts.append("(" + " OR ".join(f"({_sql(b, column, pg, args)})" for b in cond[1]) + ")")
            continue
        key, op, value = cond
        # jsonb compares jsonb: the value goes in as JSON text, cast (numbers and true stay JSON types)
        field_sql, mark = ((f"({column}::jsonb -> ?)", "?::jsonb") if pg
                           else (f"json_extract({column}, ?)", "?"))
        args.append(key if pg else f'$."{key}"')
        wrap = (lambda v: json.dumps(v, ensure_ascii=False)) if pg else (lambda v: v)
        if op == "$in":
            parts.append(f"{field_sql} IN ({','.join([mark] * len(value))})")
            args += [wrap(v) for v in value]
        else:
            parts.append(f"{field_sql} {_SQL_OPS[op]} {mark}")
            args.append(wrap(value))
    return " AND ".join(parts)


def _holds(conds: list[tuple], meta: dict) -> bool:
    for cond in conds:
        if cond[0] == "$or":
            if not any(_holds(b, meta) for b in cond[1]):
                return False
            continue
        key, op, value = cond
        have = meta.get(key)
        if have is None:
            return False
        if op == "$in" and have not in value:
            return False
        if op == "$eq" and have != value:
            return False
        if op == "$gte" and not have >= value:
            return False
        if op == "$lte" and not have <= value:
            return False
    return True
