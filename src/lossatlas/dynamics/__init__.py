"""Layer 4b: trajectories — gradient flow (ODE), discrete optimisers, convergence laws."""

from ._discrete import DiscreteSolution as DiscreteSolution, optimise as optimise
from ._flow import (
    FlowSolution as FlowSolution,
    FlowStatus as FlowStatus,
    gradient_flow as gradient_flow,
    gradient_flow_batch as gradient_flow_batch,
)
from ._laws import (
    ConvergenceKind as ConvergenceKind,
    ConvergenceLaw as ConvergenceLaw,
    fit_convergence_law as fit_convergence_law,
)
