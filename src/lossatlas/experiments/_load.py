"""Reading and validating sweep specs (TOML): every field checked for type and range before
anything is written, with errors naming the field (``spec field run.seeds: must be >= 1``).

The format is documented in :mod:`lossatlas.experiments._spec`; the checks that depend on the
experiment kind are the kind's own (:meth:`ExperimentKind.parse_widths`, :meth:`~ExperimentKind.validate`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from .._errors import InputError
from ..models import check_activation
from ._checks import check_bool, check_float, check_int, check_str, spec_error
from ._registry import KINDS, get_kind
from ._spec import DataSpec, ReportConfig, RunConfig, StudentSpec, SweepSpec, TeacherSpec

_TABLES = {"teacher": TeacherSpec, "student": StudentSpec, "data": DataSpec, "run": RunConfig,
           "report": ReportConfig}


def _table(doc: dict, table: str) -> dict:
    sub = doc.get(table, {})
    if not isinstance(sub, dict):
        raise spec_error(table, "must be a table.")
    cls = _TABLES[table]
    fields = {f.name for f in dataclasses.fields(cls)}
    for k in sub:
        if k not in fields:
            raise spec_error(f"{table}.{k}", f"unknown field; known: {', '.join(sorted(fields))}.")
    return dict(sub)


def spec_from_dict(doc: dict) -> SweepSpec:
    """Validate a parsed TOML document and build the :class:`SweepSpec`."""
    if not isinstance(doc, dict):
        raise InputError("a spec must be a TOML table.")
    unknown = set(doc) - set(_TABLES) - {"experiment"}
    if unknown:
        raise spec_error(sorted(unknown)[0], f"unknown table; known: experiment, {', '.join(_TABLES)}.")
    exp = doc.get("experiment", {})
    if not isinstance(exp, dict):
        raise spec_error("experiment", "must be a table.")
    for k in set(exp) - {"name", "kind"}:
        raise spec_error(f"experiment.{k}", "unknown field; known: name, kind.")
    name = exp.get("name", "atlas")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\\0"):
        raise spec_error("experiment.name", f"must be a non-empty string without slashes, got {name!r}.")
    kind_name = exp.get("kind", "teacher_student")
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        raise spec_error("experiment.kind", f"must be one of {', '.join(KINDS)}, got {kind_name!r}.")
    kind = get_kind(kind_name)
    t, s, d, r, rep = (_table(doc, k) for k in ("teacher", "student", "data", "run", "report"))

    act = check_str("teacher.activation", t.get("activation", TeacherSpec.activation))
    try:
        check_activation(act)
    except InputError as e:
        raise spec_error("teacher.activation", str(e)) from None
    teacher = TeacherSpec(
        activation=act,
        width=check_int("teacher.width", t.get("width", TeacherSpec.width), 1, 10_000),
        input_dim=check_int("teacher.input_dim", t.get("input_dim", TeacherSpec.input_dim), 1, 100_000),
        scale=check_float("teacher.scale", t.get("scale", TeacherSpec.scale), positive=True),
        seed=check_int("teacher.seed", t.get("seed", TeacherSpec.seed), 0),
    )
    ss = d.get("sample_sizes", DataSpec.sample_sizes)
    if not isinstance(ss, list | tuple) or not ss:
        raise spec_error("data.sample_sizes", "must be a non-empty list of sample sizes.")
    data = DataSpec(
        population=check_bool("data.population", d.get("population", DataSpec.population)),
        n_samples=check_int("data.n_samples", d.get("n_samples", DataSpec.n_samples), 1, 10_000_000),
        noise=check_float("data.noise", d.get("noise", DataSpec.noise), nonneg=True),
        seed=check_int("data.seed", d.get("seed", DataSpec.seed), 0),
        output_dim=check_int("data.output_dim", d.get("output_dim", DataSpec.output_dim), 1, 100_000),
        sample_sizes=tuple(check_int("data.sample_sizes", x, 1, 1_000_000) for x in ss),
    )
    widths = s.get("widths", StudentSpec.widths)
    if not isinstance(widths, list | tuple) or not widths:
        raise spec_error("student.widths", "must be a non-empty list.")
    init_scale = s.get("init_scale", "xavier")
    if init_scale != "xavier":
        if isinstance(init_scale, str):
            raise spec_error("student.init_scale", f'must be "xavier" or a positive number, got {init_scale!r}.')
        check_float("student.init_scale", init_scale, positive=True)
    freeze = s.get("freeze", [])
    if not isinstance(freeze, list | tuple) or not all(isinstance(x, str) for x in freeze):
        raise spec_error("student.freeze", 'must be a list of array names such as ["W2"].')
    student = StudentSpec(widths=kind.parse_widths(widths, teacher), init_scale=init_scale,
                          freeze=tuple(freeze), depth=check_int("student.depth", s.get("depth", 2), 2, 50))
    run = RunConfig(
        seeds=check_int("run.seeds", r.get("seeds", RunConfig.seeds), 1, 1_000_000),
        first_seed=check_int("run.first_seed", r.get("first_seed", RunConfig.first_seed), 0, 2**31 - 1),
        t1=check_float("run.t1", r.get("t1", RunConfig.t1), positive=True),
        handoff_tol=check_float("run.handoff_tol", r.get("handoff_tol", RunConfig.handoff_tol), positive=True),
        gtol=check_float("run.gtol", r.get("gtol", RunConfig.gtol), nonneg=True),
        batch=check_bool("run.batch", r.get("batch", RunConfig.batch)),
        batch_size=check_int("run.batch_size", r.get("batch_size", RunConfig.batch_size), 1, 100_000),
        starts=check_int("run.starts", r.get("starts", RunConfig.starts), 1, 10_000_000),
        lam=check_float("run.lam", r.get("lam", RunConfig.lam), nonneg=True),
        steps=check_int("run.steps", r.get("steps", RunConfig.steps), 1, 10_000_000),
        eps=check_float("run.eps", r.get("eps", RunConfig.eps), positive=True),
    )
    report = ReportConfig(
        slices=check_bool("report.slices", rep.get("slices", ReportConfig.slices)),
        slice_points=check_int("report.slice_points", rep.get("slice_points", ReportConfig.slice_points), 3, 201),
        path=check_bool("report.path", rep.get("path", ReportConfig.path)),
    )
    spec = SweepSpec(name=name, kind=kind_name, teacher=teacher, student=student, data=data, run=run,
                     report=report)
    kind.validate(spec)
    return spec


def spec_from_record(d: dict) -> SweepSpec:
    """The spec stored in a sweep folder (``SweepSpec.to_dict()``, e.g. ``spec.json``), validated again."""
    if not isinstance(d, dict) or "kind" not in d or "name" not in d:
        raise InputError("not a stored lossatlas sweep spec (no name and kind).")
    doc = {"experiment": {"name": d["name"], "kind": d["kind"]}}
    doc.update({t: d[t] for t in _TABLES if t in d})
    return spec_from_dict(doc)


def load_spec(path) -> SweepSpec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"spec file {path} does not exist.")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"spec file {path} is not valid TOML: {e}") from None
    return spec_from_dict(doc)


def default_spec() -> SweepSpec:
    """The built-in atlas: erf teacher of minimal width 3 in d = 4, students of widths 3…6,
    population loss, 20 seeds per width."""
    return SweepSpec()
