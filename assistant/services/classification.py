"""数据分类分级: the configured levels (lowest first), what a clearance admits, and level checks with the field named.
A principal's `levels` are computed here once, when it is built; retrieval and document views compare a document's
level against them (access.scope, access.require_visible)."""
from __future__ import annotations

from assistant.settings import ClassificationSettings


class Classification:
    def __init__(self, settings: ClassificationSettings):
        self.settings = settings
        self.levels = tuple(settings.levels)

    def require(self, level: str | None, field: str = "level") -> str:
        if level not in self.levels:
            raise ValueError(f"{field} {level!r} is not a classification level; use one of {', '.join(self.levels)}")
        return level

    def higher(self, a: str | None, b: str | None) -> str | None:
        known = [x for x in (a, b) if x in self.levels]
        return max(known, key=self.levels.index) if known else None

    def visible(self, role: str, clearance: str | None) -> tuple[str, ...]:
        """The document levels a principal of this role and clearance may see: admins all; others their clearance
        and below (no clearance given: the configured default; an unknown one: nothing)."""
        if role == "admin":
            return ("*",)
        clearance = clearance or self.settings.default_clearance
        if clearance not in self.levels:
            return ()
        return self.levels[:self.levels.index(clearance) + 1]

    def clearance_of(self, levels: tuple[str, ...]) -> str | None:
        """The highest level in `levels` (for display)."""
        if "*" in levels:
            return self.levels[-1]
        return max(levels, key=self.levels.index) if levels else None
