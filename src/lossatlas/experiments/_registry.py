"""The experiment kinds, registered in one place: adding a kind is one module and one line here."""

from __future__ import annotations

from .._errors import InputError
from ._kind import ExperimentKind
from ._kind_census import Census
from ._kind_deep_linear import DeepLinear
from ._kind_l2_width import L2Width
from ._kind_recovery import Recovery
from ._kind_teacher_student import TeacherStudent

KINDS: dict[str, ExperimentKind] = {k.name: k for k in (TeacherStudent(), DeepLinear(), Census(), L2Width(),
                                                        Recovery())}


def get_kind(name: str) -> ExperimentKind:
    """The registered kind called `name`."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(f"unknown experiment kind {name!r}; known: {', '.join(KINDS)}.") from None
