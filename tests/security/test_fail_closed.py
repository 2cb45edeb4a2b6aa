"""#14 item 7: services fail closed. A service method that takes a principal takes it as a required keyword-only
argument: a caller that forgets it gets a TypeError, never the local admin's rights (the CLI and the eval harness
pass LOCAL_ADMIN themselves)."""
from __future__ import annotations

import inspect
from functools import cached_property

import pytest

from assistant.container import Container
from conftest import make_container


def service_classes(container: Container) -> dict[str, type]:
    """Every object the container builds whose class is a service (assistant.services.*), by attribute name."""
    out = {}
    for name, attr in vars(Container).items():
        if isinstance(attr, cached_property):
            cls = type(getattr(container, name))
            if cls.__module__.startswith("assistant.services."):
                out[name] = cls
    return out


def public_methods(cls: type):
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            yield name, fn


def takes_principal(param: inspect.Parameter) -> bool:
    return param.name == "principal" or "Principal" in str(param.annotation)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("fail-closed") / "data")
    return c, service_classes(c)


def test_every_principal_parameter_is_required_and_keyword_only(services):
    _, classes = services
    assert {"knowledge_bases", "search", "qa", "drafting", "service_guide", "feedback"} <= set(classes)
    checked, wrong = [], []
    for attr, cls in classes.items():
        for name, fn in public_methods(cls):
            for param in inspect.signature(fn).parameters.values():
                if not takes_principal(param):
                    continue
                if param.default is not inspect.Parameter.empty:
                    wrong.append(f"{cls.__name__}.{name}: {param.name} has a default ({param.default!r})")
                elif param.name == "principal" and param.kind is not inspect.Parameter.KEYWORD_ONLY:
                    wrong.append(f"{cls.__name__}.{name}: principal is not keyword-only")
                else:
                    checked.append(f"{attr}.{name}")
    assert wrong == [], "services must fail closed:\n" + "\n".join(wrong)
    assert len(checked) >= 18, checked          # the 18 methods of #14 item 7 (and jobs.submit's owner)
    for method in ("qa.ask", "qa.stream", "search.search", "knowledge_bases.ingest_paths", "knowledge_bases.list",
                   "knowledge_bases.delete", "drafting.draft", "service_guide.guide", "feedback.add"):
        assert method in checked


def test_a_call_without_a_principal_is_a_type_error(services):
    c, classes = services
    for attr in classes:
        service = getattr(c, attr)
        for name, fn in public_methods(type(service)):
            params = list(inspect.signature(fn).parameters.values())[1:]
            if not any(p.name == "principal" for p in params):
                continue
            required = [object() for p in params if p.default is inspect.Parameter.empty
                        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            with pytest.raises(TypeError, match="principal"):
                getattr(service, name)(*required)


def test_qa_ask_without_a_principal_does_no_work(tmp_path, monkeypatch):
    c = make_container(tmp_path / "data")
    touched = []

    class Tripwire:
        def __getattr__(self, name):
            touched.append(name)
            raise AssertionError(f"{name} used without a principal")

    monkeypatch.setattr(c.qa, "answerer", Tripwire())
    monkeypatch.setattr(c.qa, "catalog", Tripwire())
    with pytest.raises(TypeError, match="principal"):
        c.qa.ask("q", ["kb"])
    with pytest.raises(TypeError, match="principal"):
        c.qa.stream("q", ["kb"])
    with pytest.raises(TypeError, match="principal"):
        c.search.search("q", ["kb"])
    with pytest.raises(TypeError, match="principal"):
        c.knowledge_bases.list()
    assert touched == []
