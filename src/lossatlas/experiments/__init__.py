"""Layer 8: experiment sweeps — typed specs, one module per experiment kind, the result store,
executors, resumable runs.

Each kind (``teacher_student``, ``deep_linear``, ``census``, ``l2_width``, ``recovery``)
implements :class:`ExperimentKind` in its own module and is registered once in :data:`KINDS`.
Teacher-student sweeps may hold several teachers (``[[teachers]]``, :class:`TeacherEntry`) and
write the family catalogue of their end points (``families.parquet``, ``symmetry.parquet``).
"""

from ._execute import finish_sweep as finish_sweep
from ._kind import ExperimentKind as ExperimentKind, Figure as Figure, Table as Table
from ._load import (
    default_spec as default_spec,
    load_spec as load_spec,
    spec_from_dict as spec_from_dict,
    spec_from_record as spec_from_record,
)
from ._registry import KINDS as KINDS, get_kind as get_kind
from ._spec import (
    DataSpec as DataSpec,
    ReportConfig as ReportConfig,
    RunConfig as RunConfig,
    RunSpec as RunSpec,
    StudentSpec as StudentSpec,
    SweepSpec as SweepSpec,
    TeacherEntry as TeacherEntry,
    TeacherSpec as TeacherSpec,
)
from ._store import Store as Store
from ._sweep import EXECUTORS as EXECUTORS, SweepSummary as SweepSummary, plan as plan, run_sweep as run_sweep

