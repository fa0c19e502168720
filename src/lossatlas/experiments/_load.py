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
from ._spec import (
    DataSpec,
    ReportConfig,
    RunConfig,
    StudentSpec,
    SweepSpec,
    TeacherEntry,
    TeacherSpec,
    default_teacher_label,
)

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
    unknown = set(doc) - set(_TABLES) - {"experiment", "teachers"}
    if unknown:
        raise spec_error(sorted(unknown)[0], f"unknown table; known: experiment, {', '.join(_TABLES)}, teachers.")
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
    teacher = _teacher(t, "teacher", TeacherSpec())
    data = _data(d, "data", DataSpec())
    if ("teachers" in doc or "widths_relative" in s) and not kind.several_teachers:
        field = "teachers" if "teachers" in doc else "student.widths_relative"
        raise spec_error(field, f"the {kind_name} kind has one teacher and absolute widths.")
    if "widths" in s and "widths_relative" in s:
        raise spec_error("student.widths_relative", "give student.widths or student.widths_relative, not both.")
    relative = None
    if "widths_relative" in s:
        relative = _int_list("student.widths_relative", s["widths_relative"], -100_000, 100_000)
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
    if relative is not None:  # several teachers: resolved per teacher (`[teacher]` only gives defaults)
        widths = () if "teachers" in doc else _resolve_relative("student.widths_relative", relative, teacher, "")
    student = StudentSpec(widths=kind.parse_widths(widths, teacher), init_scale=init_scale,
                          freeze=tuple(freeze), depth=check_int("student.depth", s.get("depth", 2), 2, 50),
                          widths_relative=relative)
    teachers = _teachers(doc.get("teachers"), teacher, data, student) if "teachers" in doc else ()
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
                     report=report, teachers=teachers)
    kind.validate(spec)
    return spec


def _teacher(t: dict, prefix: str, base: TeacherSpec) -> TeacherSpec:
    """The teacher fields of table `t` (named ``prefix.field`` in errors), defaults from `base`."""
    act = check_str(f"{prefix}.activation", t.get("activation", base.activation))
    try:
        check_activation(act)
    except InputError as e:
        raise spec_error(f"{prefix}.activation", str(e)) from None
    return TeacherSpec(
        activation=act,
        width=check_int(f"{prefix}.width", t.get("width", base.width), 1, 10_000),
        input_dim=check_int(f"{prefix}.input_dim", t.get("input_dim", base.input_dim), 1, 100_000),
        scale=check_float(f"{prefix}.scale", t.get("scale", base.scale), positive=True),
        seed=check_int(f"{prefix}.seed", t.get("seed", base.seed), 0),
    )


def _data(d: dict, prefix: str, base: DataSpec) -> DataSpec:
    """The data fields of table `d` (named ``prefix.field`` in errors), defaults from `base`."""
    ss = d.get("sample_sizes", base.sample_sizes)
    if not isinstance(ss, list | tuple) or not ss:
        raise spec_error(f"{prefix}.sample_sizes", "must be a non-empty list of sample sizes.")
    return DataSpec(
        population=check_bool(f"{prefix}.population", d.get("population", base.population)),
        n_samples=check_int(f"{prefix}.n_samples", d.get("n_samples", base.n_samples), 1, 10_000_000),
        noise=check_float(f"{prefix}.noise", d.get("noise", base.noise), nonneg=True),
        seed=check_int(f"{prefix}.seed", d.get("seed", base.seed), 0),
        output_dim=check_int(f"{prefix}.output_dim", d.get("output_dim", base.output_dim), 1, 100_000),
        sample_sizes=tuple(check_int(f"{prefix}.sample_sizes", x, 1, 1_000_000) for x in ss),
    )


def _int_list(field: str, v, lo: int, hi: int) -> tuple[int, ...]:
    if not isinstance(v, list | tuple) or not v:
        raise spec_error(field, f"must be a non-empty list of integers, got {v!r}.")
    out = tuple(check_int(field, x, lo, hi) for x in v)
    if len(set(out)) != len(out):
        raise spec_error(field, f"lists a width twice: {list(out)}.")
    return out


def _resolve_relative(field: str, relative: tuple[int, ...], teacher: TeacherSpec, label: str) -> tuple[int, ...]:
    """Absolute widths r* + k; every one must be at least 1."""
    widths = tuple(teacher.width + k for k in relative)
    if min(widths) < 1:
        who = f"teacher {label!r}" if label else "the teacher"
        raise spec_error(field, f"{who} has r* = {teacher.width}: r* + {min(relative)} = {min(widths)} is no width "
                         "(widths are >= 1).")
    return widths


_ENTRY_FIELDS = ("label", "activation", "width", "input_dim", "scale", "seed", "data", "widths", "widths_relative",
                 "seeds")
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _teachers(entries, base_teacher: TeacherSpec, base_data: DataSpec,
              student: StudentSpec) -> tuple[TeacherEntry, ...]:
    """The ``[[teachers]]`` entries: each a table of teacher fields (defaults: ``[teacher]``), an
    optional ``label``, ``data`` (overrides of ``[data]``), ``widths`` or ``widths_relative``
    (default: the student's) and ``seeds`` (default: ``run.seeds``)."""
    if not isinstance(entries, list) or not entries:
        raise spec_error("teachers", "must be a non-empty array of tables ([[teachers]]).")
    if len(entries) > 100:
        raise spec_error("teachers", f"at most 100 teachers, got {len(entries)}.")
    out, seen = [], {}
    for i, e in enumerate(entries):
        where = f"teachers[{i}]"
        if not isinstance(e, dict):
            raise spec_error(where, "must be a table.")
        for k in e:
            if k not in _ENTRY_FIELDS:
                raise spec_error(f"{where}.{k}", f"unknown field; known: {', '.join(_ENTRY_FIELDS)}.")
        teacher = _teacher(e, where, base_teacher)
        d = e.get("data", {})
        if not isinstance(d, dict):
            raise spec_error(f"{where}.data", "must be a table, e.g. data = { population = false, n_samples = 2000 }.")
        known = {f.name for f in dataclasses.fields(DataSpec)}
        for k in d:
            if k not in known:
                raise spec_error(f"{where}.data.{k}", f"unknown field; known: {', '.join(sorted(known))}.")
        data = _data(d, f"{where}.data", base_data)
        label = e.get("label", default_teacher_label(teacher))
        if (not isinstance(label, str) or not label or len(label) > 40 or not set(label) <= _LABEL_CHARS
                or label[0] in "-."):
            raise spec_error(f"{where}.label", "must be 1-40 letters, digits, '-', '_' or '.' (not starting with "
                             f"'-' or '.'), got {label!r}.")
        if label in seen:
            raise spec_error(f"{where}.label", f"{label!r} is the label of teachers[{seen[label]}] too; give each "
                             "teacher its own label.")
        seen[label] = i
        if "widths" in e and "widths_relative" in e:
            raise spec_error(f"{where}.widths_relative", "give widths or widths_relative, not both.")
        if "widths" in e:
            widths = _int_list(f"{where}.widths", e["widths"], 1, 100_000)
        elif "widths_relative" in e:
            rel = _int_list(f"{where}.widths_relative", e["widths_relative"], -100_000, 100_000)
            widths = _resolve_relative(f"{where}.widths_relative", rel, teacher, label)
        elif student.widths_relative is not None:
            widths = _resolve_relative("student.widths_relative", student.widths_relative, teacher, label)
        else:
            widths = tuple(student.widths)
        seeds = check_int(f"{where}.seeds", e["seeds"], 1, 1_000_000) if "seeds" in e else None
        entry = TeacherEntry(label=label, teacher=teacher, data=data, widths=widths, seeds=seeds)
        for j, other in enumerate(out):
            if other.teacher == entry.teacher and other.data == entry.data:
                raise spec_error(where, f"the same teacher and data as teachers[{j}] ({other.label!r}): their runs "
                                 "would be the same runs.")
        out.append(entry)
    return tuple(out)


def spec_from_record(d: dict) -> SweepSpec:
    """The spec stored in a sweep folder (``SweepSpec.to_dict()``, e.g. ``spec.json``), validated again."""
    if not isinstance(d, dict) or "kind" not in d or "name" not in d:
        raise InputError("not a stored lossatlas sweep spec (no name and kind).")
    doc = {"experiment": {"name": d["name"], "kind": d["kind"]}}
    doc.update({t: d[t] for t in (*_TABLES, "teachers") if t in d})
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
