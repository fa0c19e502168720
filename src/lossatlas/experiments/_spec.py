"""Sweep specifications: typed dataclasses, and the typed run they expand into.

Parsing and validation live in :mod:`._load`; what each ``kind`` runs lives in its own module
(see :mod:`._registry`).

A spec is a TOML file with the tables below (every field optional; defaults give the built-in
atlas). Unknown tables or fields, wrong types and impossible values raise
:class:`~lossatlas.InputError` naming the field, e.g. ``spec field student.widths: ...``.

.. code-block:: toml

    [experiment]
    name = "atlas-erf"          # folder-friendly label
    kind = "teacher_student"    # or "deep_linear", or "census" (committee machines, below)

    [teacher]                   # teacher_student: two-layer bias-free teacher of minimal width
    activation = "erf"
    width = 3                   # r*
    input_dim = 4
    scale = 1.0                 # std of the teacher's weights
    seed = 0

    [student]
    widths = [3, 4, 5, 6]       # hidden widths m (deep_linear: a list of width lists)
    init_scale = "xavier"       # or a float std
    freeze = []                 # e.g. ["W2"]

    [data]
    population = true           # closed-form Gaussian population loss (erf, relu)
    n_samples = 1000            # otherwise N teacher-labelled Gaussian samples
    noise = 0.0
    seed = 1
    output_dim = 2              # deep_linear only

    [run]
    seeds = 20
    first_seed = 0
    t1 = 1e5
    handoff_tol = 1e-6
    gtol = 1e-12
    batch = false               # true: vmap the flows of one width (see benchmarks/README.md:
                                # slower for the default atlas, whose batch waits for its slowest flow)
    batch_size = 20
    starts = 200                # census: random starts per run (seed)

For ``kind = "census"`` (soft committee machines against the teacher I_n, see
``lossatlas.census``): ``student.widths`` lists k (then n = k) or [k, n] pairs, each run is
one seed with ``run.starts`` starts, and the report shows the spurious fraction versus k with
its Wilson interval and k·loss of the spurious orbits.

For ``kind = "l2_width"`` (Jacot et al. 2022, the width plateau of L2-regularised networks):
N = ``data.n_samples`` teacher-student samples, students of the hidden widths
``student.widths`` (``student.depth`` layers, relu by default through ``teacher.activation``),
each run one seed trained with Adam for ``run.steps`` steps on the loss with ``run.lam``; the
report shows the best loss per width against N(N+1).

For ``kind = "recovery"`` (Zhang, Zhang, Luo: local recovery near the branches of the
global-minimum set): a random teacher of width ``teacher.width`` = m0 in dimension
``teacher.input_dim`` = d (``teacher.seed``), students of widths ``student.widths`` = m; every
branch of every m, every sample size in ``data.sample_sizes`` and every seed is one run of
``run.starts`` trials started ``run.eps`` away from random points of the branch; the report
plots the recovery probability versus n with each branch's threshold marked.

    [report]
    slices = true
    slice_points = 21
    path = true                 # loss along a path between two permuted global minima

Several teachers in one sweep (``teacher_student`` only): an array of tables ``[[teachers]]``,
one per teacher. Each entry takes the fields of ``[teacher]`` (which then gives their defaults),
a ``label`` (letters, digits, ``-``, ``_``, ``.``; default ``<activation>-r<width>``), its own
``data`` (an inline table overriding fields of ``[data]``), its own ``widths`` or
``widths_relative``, and its own number of ``seeds`` per width (default ``run.seeds``).
``student.widths_relative = [-1, 0, 1]`` gives every teacher the students m = r* − 1, r*, r* + 1
(also for a single ``[teacher]``); ``student.widths`` gives every teacher the same widths.
Runs, summaries, tables, figures and counts are per teacher; a teacher's runs are the runs the
same single-``[teacher]`` spec would have (same run ids).

.. code-block:: toml

    [student]
    widths_relative = [-1, 0, 1, 2, 3]

    [teacher]                   # defaults of every entry below
    activation = "erf"
    input_dim = 4

    [[teachers]]
    width = 2

    [[teachers]]
    label = "softplus-N2000"
    activation = "softplus"
    width = 2
    data = { population = false, n_samples = 2000, seed = 1 }
    seeds = 10
"""

from __future__ import annotations

import dataclasses
import hashlib
import json


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    activation: str = "erf"
    width: int = 3
    input_dim: int = 4
    scale: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class StudentSpec:
    widths: tuple = (3, 4, 5, 6)
    init_scale: str | float = "xavier"
    freeze: tuple[str, ...] = ()
    depth: int = 2
    widths_relative: tuple[int, ...] | None = None  # m = r* + k for each k (then `widths` is resolved)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    population: bool = True
    n_samples: int = 1000
    noise: float = 0.0
    seed: int = 1
    output_dim: int = 2
    sample_sizes: tuple[int, ...] = (2, 4, 8, 16)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    seeds: int = 20
    first_seed: int = 0
    t1: float = 1e5
    handoff_tol: float = 1e-6
    gtol: float = 1e-12
    batch: bool = False
    batch_size: int = 20
    starts: int = 200
    lam: float = 1e-3
    steps: int = 4000
    eps: float = 0.03


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    slices: bool = True
    slice_points: int = 21
    path: bool = True


@dataclasses.dataclass(frozen=True)
class TeacherEntry:
    """One teacher of a several-teacher sweep (an entry of ``[[teachers]]``): its label, its
    network, its data and its students' widths (resolved: absolute widths)."""

    label: str
    teacher: TeacherSpec
    data: DataSpec
    widths: tuple[int, ...]
    seeds: int | None = None  # seeds per width of this teacher (default: run.seeds)

    def to_dict(self) -> dict:
        """The entry as a ``[[teachers]]`` table (resolved widths, every data field)."""
        d = {"label": self.label, **dataclasses.asdict(self.teacher), "data": plain(dataclasses.asdict(self.data)),
             "widths": list(self.widths)}
        return d if self.seeds is None else {**d, "seeds": self.seeds}


def default_teacher_label(t: TeacherSpec) -> str:
    """The label of a teacher without one: ``<activation>-r<width>``, e.g. ``erf-r3``."""
    return f"{t.activation}-r{t.width}"


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: what to run (teacher, students, data, seeds) and what to report.

    With ``teachers`` (``[[teachers]]``), `teacher` and `data` are the entries' defaults and
    every entry is a sweep of its own (:meth:`teacher_specs`)."""

    name: str = "atlas"
    kind: str = "teacher_student"
    teacher: TeacherSpec = TeacherSpec()
    student: StudentSpec = StudentSpec()
    data: DataSpec = DataSpec()
    run: RunConfig = RunConfig()
    report: ReportConfig = ReportConfig()
    teachers: tuple[TeacherEntry, ...] = ()

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/TOML-ready). The fields of several-teacher sweeps appear only when
        used, so that a single-teacher spec's dict (its ``spec.json``) is what it always was."""
        d = plain(dataclasses.asdict(self))
        d.pop("teachers")
        if self.teachers:
            d["teachers"] = [e.to_dict() for e in self.teachers]
        if self.student.widths_relative is None:
            d["student"].pop("widths_relative")
        else:
            d["student"].pop("widths")  # resolved from widths_relative (per teacher)
        return d

    def teacher_specs(self) -> tuple[tuple[str, SweepSpec], ...]:
        """``(label, single-teacher spec)`` of every teacher, in spec order: the spec itself for a
        single-teacher spec, else one spec per ``[[teachers]]`` entry (its teacher, data and widths)."""
        if not self.teachers:
            return ((default_teacher_label(self.teacher), self),)
        return tuple((e.label, dataclasses.replace(
            self, teacher=e.teacher, data=e.data, teachers=(),
            student=dataclasses.replace(self.student, widths=e.widths, widths_relative=None),
            run=self.run if e.seeds is None else dataclasses.replace(self.run, seeds=e.seeds)))
            for e in self.teachers)

    @property
    def seeds(self) -> range:
        """The seeds of every width."""
        return range(self.run.first_seed, self.run.first_seed + self.run.seeds)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: its sweep's typed spec, a width (an int, or a tuple: deep-linear hidden widths,
    census ``(k, n)``, recovery ``(m, branch, n)``) and a seed.

    `key` is the canonical JSON of what determines the run besides width and seed (chosen by its
    kind, see :meth:`~lossatlas.experiments.ExperimentKind.run_key`): only it enters `run_id`, so
    adding seeds or widths to a sweep, or changing its report settings, leaves finished runs
    finished.
    """

    spec: SweepSpec
    width: int | tuple
    seed: int
    key: str = "{}"
    teacher: str = ""  # label of the run's teacher (teacher_student), not hashed: the key holds the teacher
    teacher_index: int = 0
    format: str = "lossatlas-run/2"  # the record format of the kind (hashed: a new format recomputes runs)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_dict(self) -> dict:
        """The plain data the run id hashes (converted only here, and when a record is written)."""
        return {"format": self.format, "kind": self.spec.kind, "width": plain(self.width),
                "seed": int(self.seed), **json.loads(self.key)}

    @property
    def run_id(self) -> str:
        """Stable hash of everything that determines the run (16 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def group(self) -> str:
        """Runs of one group share shapes and their landscape but for the start (vmap-batchable)."""
        if self.teacher and self.teacher_index:
            return json.dumps([self.teacher_index, plain(self.width)])
        return json.dumps(plain(self.width))

    @property
    def width_str(self) -> str:
        """The width as stored in records: ``"4"`` or ``"3x3"``."""
        return str(self.width) if isinstance(self.width, int) else "x".join(str(x) for x in self.width)


def plain(x):
    """Tuples to lists, recursively (JSON-ready)."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    return x
