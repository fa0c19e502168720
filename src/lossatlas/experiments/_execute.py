"""Executing a group of runs in this process: the entry point of every executor."""

from __future__ import annotations

from ._registry import get_kind
from ._spec import RunSpec, SweepSpec
from ._store import Store


def run_group(store_root: str, runs: list[RunSpec]) -> list[tuple[str, bool]]:
    """Compute the runs of one group (one kind, one shape) whose records are not stored yet, and
    store each; returns ``(run_id, ok)`` for every run given (finished ones count as ok)."""
    store = Store(store_root)
    todo = [r for r in runs if not store.has(r.run_id)]
    done = [(r.run_id, True) for r in runs if r not in todo]
    if not todo:
        return done
    return done + get_kind(todo[0].kind).run_group(store, todo)


def finish_sweep(spec: SweepSpec, store: Store) -> dict:
    """After the runs: the kind's sweep-level results (``extras/``) and its exported files
    (e.g. ``teacher.npz``, ``endpoints/<run_id>.npz``). Returns ``{"extras": ..., "exports": ...}``."""
    kind = get_kind(spec.kind)
    return {"extras": kind.extras(spec, store), "exports": kind.export(spec, store)}
