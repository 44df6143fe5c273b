"""The dependency rule of events/__init__.py, checked on every module's imports.

events.domain imports neither events.store nor events.audit; events.store does not import
events.audit; nothing in events imports projections or coord; projections never imports coord.
Every import counts, including those under TYPE_CHECKING and inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("events", "projections", "coord")
LAYERS = ("events.domain", "events.store", "events.audit")

# importer prefix -> imported prefixes it must not reach
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "events.domain": ("events.store", "events.audit"),
    "events.store": ("events.audit",),
    "events": ("projections", "coord"),
    "projections": ("coord",),
}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `module` imports; `from a import b` counts as a.b too (b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def violations(module: str, imported: set[str]) -> list[str]:
    out = []
    for importer, banned in FORBIDDEN.items():
        if not _within(module, importer):
            continue
        for name in sorted(imported):
            for prefix in banned:
                if _within(name, prefix):
                    out.append(f"{module} imports {name} ({importer} must not import {prefix})")
    return out


def all_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_module_keeps_the_dependency_rule() -> None:
    found = []
    for path in all_modules():
        module = module_name(path)
        imported = imports_of(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        )
        found.extend(violations(module, imported))
    assert not found, "imports against events/__init__.py's rule:\n" + "\n".join(found)


def test_every_events_module_belongs_to_a_layer() -> None:
    """A module added straight under events/ would escape the rule."""
    stray = [
        module_name(p)
        for p in (ROOT / "events").rglob("*.py")
        if module_name(p) != "events"
        and not any(_within(module_name(p), layer) for layer in LAYERS)
    ]
    assert not stray


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize("package", ["events", "projections"])
def test_no_module_imports_itself_in_a_circle(package: str) -> None:
    """No circle, not even one closed only under TYPE_CHECKING (DecideContext once made one:
    the dispatcher imported the aggregates and they imported it back for the context)."""
    paths = {module_name(p): p for p in (ROOT / package).rglob("*.py")}
    graph = {
        module: {
            name
            for name in imports_of(
                path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
            )
            if name in paths and name != module
        }
        for module, path in paths.items()
    }
    assert not import_cycles(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_modules_are_found() -> None:
    names = {module_name(p) for p in all_modules()}
    assert {"events.domain.types", "events.store.store", "events.audit.merkle"} <= names
    assert {"projections.runner", "coord.app"} <= names


@pytest.mark.parametrize(
    ("module", "source", "bad"),
    [
        ("events.domain.issue", "from events.store.store import EventStore", True),
        ("events.domain.issue", "import events.audit.merkle", True),
        ("events.domain.issue", "from events.audit import merkle", True),
        ("events.domain.issue", "if TYPE_CHECKING:\n    from events.store import records", True),
        ("events.domain.issue", "def f():\n    from ..store import records", True),
        ("events.domain.issue", "from events.domain import timing", False),
        ("events.domain.issue", "from . import timing", False),
        ("events.store.store", "from events.audit.leaf import event_leaf_hash", True),
        ("events.store.store", "from events.domain.types import AnyEvent", False),
        ("events.audit.audit_log", "from events.store.log_head import LogHead", False),
        ("events.audit.audit_log", "from coord.config import Config", True),
        ("events.store", "from .store import EventStore", False),
        ("projections.runner", "from coord import metrics", True),
        ("projections.runner", "from events.store.store import EventStore", False),
        ("coord.app", "from projections.runner import Runner", False),
    ],
)
def test_the_checker_sees_a_forbidden_arrow(module: str, source: str, bad: bool) -> None:
    is_package = module in ("events.store",)
    assert bool(violations(module, imports_of(source, module, is_package=is_package))) is bad
