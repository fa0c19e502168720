"""The interface every experiment kind implements, and the small typed objects it returns.

A kind is one module (``_kind_<name>.py``) with one :class:`ExperimentKind` subclass, listed
once in :mod:`._registry`. The sweep runner, the store, the report and the command line only
ever go through this interface; none of them compares kind names.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import ClassVar

from ._spec import RunSpec, SweepSpec, TeacherSpec
from ._store import Store


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of a report: its PNG, a caption saying what it shows and what to look for, and
    whether it has data (a figure without data says why in its caption instead of empty axes)."""

    name: str
    path: Path
    caption: str
    has_data: bool = True


@dataclasses.dataclass(frozen=True)
class Table:
    """A summary table: a title, column names and rows of display strings."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


class ExperimentKind(abc.ABC):
    """One kind of experiment: its widths, its runs, one run, its summary, figures and tables."""

    #: The ``experiment.kind`` string of specs.
    name: ClassVar[str]
    #: One line for help texts and the report.
    title: ClassVar[str]
    #: Whether specs may list several teachers (``[[teachers]]``) and widths relative to the
    #: teacher's (``student.widths_relative``).
    several_teachers: ClassVar[bool] = False
    #: The record format, hashed into every run id: a new format recomputes the kind's runs.
    run_format: ClassVar[str] = "lossatlas-run/2"

    # ----------------------------------------------------------------- specs and runs
    @abc.abstractmethod
    def parse_widths(self, widths: list, teacher: TeacherSpec) -> tuple:
        """Validate ``student.widths`` for this kind and return them typed (raise InputError
        naming ``student.widths``)."""

    def validate(self, spec: SweepSpec) -> None:
        """Checks across fields, after every field has been checked on its own."""
        return None

    @abc.abstractmethod
    def run_key(self, spec: SweepSpec) -> dict:
        """The plain data that determines a run besides its width and seed (hashed into its id)."""

    def run_widths(self, spec: SweepSpec) -> list:
        """The width of every group of runs (default: ``student.widths``)."""
        return list(spec.student.widths)

    def runs(self, spec: SweepSpec) -> list[RunSpec]:
        """Every run of the sweep, width-major, in a deterministic order."""
        key = json.dumps(self.run_key(spec), sort_keys=True, separators=(",", ":"))
        return [RunSpec(spec, w, seed, key, format=self.run_format) for w in self.run_widths(spec)
                for seed in spec.seeds]

    # ----------------------------------------------------------------- running
    def run_one(self, run: RunSpec) -> tuple[dict, dict]:
        """Compute one run: ``(fields, arrays)`` for its record (plain data) and its ``.npz``."""
        raise NotImplementedError(f"the {self.name} kind runs its runs in groups (run_group)")

    def run_group(self, store: Store, runs: list[RunSpec]) -> list[tuple[str, bool]]:
        """Compute runs of one shape and store each record as soon as it is complete; returns
        ``(run_id, ok)``. Default: :meth:`run_one` per run; a failing run stores its error."""
        out = []
        for r in runs:
            t0 = time.perf_counter()
            try:
                fields, arrays = self.run_one(r)
            except Exception as e:  # noqa: BLE001 - one bad run never kills a sweep
                store.write(r.run_id, error_record(r, e), {})
                out.append((r.run_id, False))
                continue
            record = {"run_id": r.run_id, "run_status": "ok", "kind": self.name, "width": r.width_str,
                      "seed": int(r.seed), **fields, "wall_time": time.perf_counter() - t0}
            store.write(r.run_id, record, arrays)
            out.append((r.run_id, True))
        return out

    def export(self, spec: SweepSpec, store: Store) -> dict[str, Path]:
        """Files for other commands, written after the runs (e.g. networks); name → path."""
        return {}

    def extras(self, spec: SweepSpec, store: Store) -> dict:
        """Sweep-level results computed once after the runs (stored under ``extras/``)."""
        return {}

    # ----------------------------------------------------------------- results
    @abc.abstractmethod
    def summary(self, df) -> list[dict]:
        """Summary rows (JSON-ready) from the gathered results table."""

    @abc.abstractmethod
    def table(self, spec: SweepSpec, rows: list[dict]) -> Table:
        """The summary rows as a display table (CLI and report)."""

    def extra_tables(self, spec: SweepSpec, extras: dict) -> list[Table]:
        """Further display tables from :meth:`extras`."""
        return []

    def extra_lines(self, extras: dict) -> list[str]:
        """Further one-line findings from :meth:`extras`."""
        return []

    @abc.abstractmethod
    def figures(self, store: Store, df, spec: SweepSpec, figdir: Path) -> list[Figure]:
        """Write this kind's figures (PNG) into `figdir` from stored results only."""


def error_record(r: RunSpec, e: Exception) -> dict:
    """The record of a run that raised."""
    rec = {"run_id": r.run_id, "kind": r.kind, "width": r.width_str, "seed": int(r.seed), "run_status": "error",
           "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}
    if r.teacher:
        rec.update(teacher=r.teacher, teacher_index=int(r.teacher_index))
    return rec
