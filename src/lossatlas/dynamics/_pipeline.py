"""Flow-then-polish: follow the gradient flow, then hand off to Newton near a critical point."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..landscape import Landscape
from ..solvers import RESULTS, CriticalPointSolution, NewtonTrustRegion, SaddleNewton, find_critical_point
from ._flow import FlowSolution, gradient_flow

#: A flow end point counts as minimum-like if its Hessian has no eigenvalue below
#: ``-MINIMUM_LIKE_RTOL · ||H||`` (negative curvature beyond this is a saddle's).
MINIMUM_LIKE_RTOL = 1e-6


@dataclasses.dataclass(frozen=True)
class FlowPolishSolution:
    """The flow segment and the Newton polish that followed it.

    `polisher` names the solver whose result is `polish`: the requested one, or
    ``"NewtonTrustRegion"`` when the minimiser fallback of :func:`flow_then_polish` was used;
    `attempts` holds the records of every polish tried, in order.
    """

    flow: FlowSolution
    polish: CriticalPointSolution
    wall_time: float
    polisher: str = ""
    attempts: tuple = ()

    @property
    def theta(self) -> np.ndarray:
        """The polished critical point."""
        return self.polish.theta


def _minimum_like(ls: Landscape, theta, dense_limit: int = 3000) -> bool:
    from ..curvature._dense import _raw_hessian

    if ls.n_params > dense_limit:
        return False
    H = _raw_hessian(ls, np.asarray(theta))
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    return bool(lam[0] >= -MINIMUM_LIKE_RTOL * max(np.max(np.abs(lam)), 1e-300))


def flow_then_polish(
    ls: Landscape, theta0, *, t1: float = 1e6, handoff_tol: float = 1e-6,
    solver: str = "auto", polish=None, max_newton_steps: int = 200,
    minimise_fallback: bool = True, fallback_steps: int = 1000,
) -> FlowPolishSolution:
    """Integrate the gradient flow until ``||∇L||_∞ ≤ handoff_tol`` (or ``t1``), then polish
    with a saddle-capable Newton solver (default :class:`SaddleNewton`), which converges to
    the critical point the flow was approaching — minimum or saddle — without leaving it.

    With `minimise_fallback` (default), if that polish does not converge and the flow's end
    point is minimum-like (no Hessian eigenvalue below ``−1e-6 ||H||``), the end point is
    polished again with :class:`NewtonTrustRegion` (same ``gtol``, up to `fallback_steps`
    steps). Near a flat minimum the gradient norm is not monotone along the way in, so a
    solver that must reduce ``||∇L||`` at every step (Levenberg-Marquardt) stalls there,
    whereas a trust-region minimiser, which must only reduce the loss, walks in. The
    minimiser's result replaces the first one if it converged or found that the iterates
    escape along a channel (``RESULTS.diverging``).
    """
    t0 = time.perf_counter()
    flow = gradient_flow(ls, theta0, t1=t1, solver=solver, steady_tol=handoff_tol)
    polish = SaddleNewton() if polish is None else polish
    sol = find_critical_point(ls, flow.theta, polish, max_steps=max_newton_steps, throw=False)
    name = type(polish).__name__
    attempts = [(name, sol.to_record())]
    if (minimise_fallback and not sol.success and not isinstance(polish, NewtonTrustRegion)
            and _minimum_like(ls, flow.theta)):
        alt = find_critical_point(ls, flow.theta, NewtonTrustRegion(gtol=polish.gtol),
                                  max_steps=fallback_steps, throw=False)
        attempts.append(("NewtonTrustRegion", alt.to_record()))
        if alt.success or alt.result is RESULTS.diverging:
            sol, name = alt, "NewtonTrustRegion"
    return FlowPolishSolution(flow, sol, time.perf_counter() - t0, name, tuple(attempts))
