"""Metadata filters shared by both retrievers: one definition, three renderings (Chroma `where` for dense, an SQL
condition over the catalog's chunk rows for lexical search, a Python predicate).

Validity is a hard filter: unless the caller names statuses, only `retrieval.default_status` is retrieved.
A filter that matches nothing returns nothing.
"""
from __future__ import annotations

import json

import re
from dataclasses import dataclass, field, fields, replace

STATUSES = ("现行有效", "已废止", "历史版本", "已被修改", "尚未生效")
ANY = "*"


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
        known = {f.name for f in fields(cls)} - {"extra", "levels"}
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
        # an empty list is "not given" too: it must never mean "any validity"
        return self if self.status else replace(self, status=list(default))

    def _conditions(self) -> list[tuple[str, str, object]]:
        conds: list[tuple[str, str, object]] = []
        if self.status and ANY not in self.status:
            conds.append(("status", "$in", list(self.status)))
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
        parts = [{key: {op: value}} for key, op, value in self._conditions()]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def to_sql(self, column: str = "c.metadata", dialect: str = "sqlite") -> tuple[str, list]:
        """The condition over a JSON metadata column, and its parameters: what `matches` keeps (a missing key
        matches nothing; json_extract and jsonb keep JSON types, so "2020" is not 2020, as in Python). Keys are
        passed as parameters too (JSON paths quoted), values never enter the SQL text."""
        parts: list[str] = []
        args: list = []
        pg = dialect == "postgresql"
        for key, op, value in self._conditions():
            # jsonb compares jsonb: the value goes in as JSON text, cast (a number stays a number)
            field_sql, mark = (f"({column}::jsonb -> ?)", "?::jsonb") if pg else (f"json_extract({column}, ?)", "?")
            args.append(key if pg else f'$."{key}"')
            wrap = (lambda v: json.dumps(v, ensure_ascii=False)) if pg else (lambda v: v)
            if op == "$in":
                parts.append(f"{field_sql} IN ({','.join([mark] * len(value))})")
                args += [wrap(v) for v in value]
            else:
                parts.append(f"{field_sql} {_SQL_OPS[op]} {mark}")
                args.append(wrap(value))
        return (" AND ".join(parts) or ("TRUE" if pg else "1")), args

    def matches(self, meta: dict) -> bool:
        for key, op, value in self._conditions():
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

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("extra", "levels") and getattr(self, f.name)}
        out.update(self.extra)
        return out
