"""Layer 6: the end-point pipeline — one policy for polishing, verifying and classifying a point.

:func:`polish` is the one verb every entry point uses for an end point (``lossatlas find``,
``lossatlas classify``, every atlas kind, the census); the constants it decides with live in
:mod:`lossatlas.pipeline.policy`. :func:`explain` says where a critical end point comes from: the
critical point of the narrowest network it embeds, named by a canonical family key.
"""

from . import policy as policy
from ._endpoint import Attempt as Attempt, EndPoint as EndPoint, Producer as Producer, Timings as Timings
from ._explain import (
    Explanation as Explanation,
    ExplanationKind as ExplanationKind,
    ReductionAttempt as ReductionAttempt,
    SplitCurvature as SplitCurvature,
    canonical_family as canonical_family,
    explain as explain,
    family_key as family_key,
)
from ._polish import classify as classify, measured_floor as measured_floor, polish as polish
from ._reduction import Projection as Projection, polish_through_reduction as polish_through_reduction

__all__ = ["Attempt", "EndPoint", "Explanation", "ExplanationKind", "Producer", "Projection", "ReductionAttempt",
           "SplitCurvature", "Timings", "canonical_family", "classify", "explain", "family_key", "measured_floor",
           "policy", "polish", "polish_through_reduction"]
