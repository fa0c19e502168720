"""Layer 4a: critical-point solvers and the classification of critical points."""

from ._classify import (
    Classification as Classification,
    Evidence as Evidence,
    Label as Label,
    classify as classify,
)
from ._floor import gradient_floor as gradient_floor
from ._limit import (
    ChannelLimit as ChannelLimit,
    derivative_pair_limit as derivative_pair_limit,
    linear_channel_limit as linear_channel_limit,
)
from ._newton import (
    AbstractCriticalPointSolver as AbstractCriticalPointSolver,
    NewtonTrustRegion as NewtonTrustRegion,
    SaddleNewton as SaddleNewton,
    find_critical_point as find_critical_point,
)
from ._newton_mr import NewtonMR as NewtonMR
from ._pattern import PatternNewton as PatternNewton
from ._results import RESULTS as RESULTS, CriticalPointSolution as CriticalPointSolution, SolverStats as SolverStats
