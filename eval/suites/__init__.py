"""Evaluation suites: ncp (retrieval + answers), rgb (noise robustness, negative rejection), summaries (ROUGE-L),
custom (any question set against any knowledge base), rejection (questions whose evidence was removed), laws
(lay questions answered by one article). Each calls the product's services; the runner finds them here."""
from __future__ import annotations

from importlib import import_module

from eval.base import EvalError, Suite

REGISTRY = {
    "ncp": "eval.suites.ncp:NCPSuite",
    "rgb": "eval.suites.rgb:RGBSuite",
    "summaries": "eval.suites.summaries:SummariesSuite",
    "custom": "eval.suites.custom:CustomSuite",
    "rejection": "eval.suites.rejection:RejectionSuite",
    "laws": "eval.suites.laws:LawsSuite",
}
SUITES = tuple(REGISTRY)


def get_suite(name: str) -> Suite:
    if name not in REGISTRY:
        raise EvalError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(import_module(module), cls)()
