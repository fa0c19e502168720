"""Status enumeration and solution objects of the critical-point solvers."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from .._errors import SolverError


class RESULTS(enum.Enum):
    """Why a solver stopped. Each value is the message shown to users."""

    successful = "Converged: the gradient norm reached the target."
    roundoff_floor = (
        "Converged to the float64 round-off floor of this problem: the gradient cannot be "
        "made smaller in float64 (the floor is reported in `stats.gradient_floor`)."
    )
    max_steps_reached = (
        "The step budget ran out before the gradient norm reached the target. Increase "
        "`max_steps`, or start closer to a critical point (e.g. run a gradient flow first)."
    )
    gradient_flat = (
        "Stalled in a gradient-flat region: the gradient is (nearly) in the Hessian's kernel, "
        "so Newton steps cannot reduce it (Frye et al. 2021). This is not a critical point; "
        "see `stats.flatness`."
    )
    time_limit_reached = (
        "The time budget ran out before the gradient norm reached the target. Allow more time "
        "(`max_time`, `--time-limit`), or start closer to a critical point."
    )
    nonfinite = "The loss or gradient became NaN/inf; check the data scale and the start."
    diverged = "The iterates diverged (parameter norm exploded); the loss may be unbounded below here."
    diverging = (
        "The iterates escape to infinity along a channel of the landscape: the parameter norm "
        "keeps growing while the loss keeps decreasing, carried by neurons that form a channel "
        "(two neurons with nearly equal input weights and large, nearly cancelling output "
        "weights, or a neuron whose input weights vanish while its output weight grows). There "
        "is no finite critical point along this path (its limit is a critical point at "
        "infinity), so this is not convergence even where the gradient is already small; see "
        "`stats.escape` for the evidence and, for two-layer networks, `stats.limit` for that "
        "critical point at infinity, solved in the limit model (linear neurons; derivative pairs "
        "on empirical losses)."
    )

    kink = (
        "The limit lies on a kink, not at a smooth critical point: some pre-activations are 0 "
        "there (the activation is not differentiable), so the gradient does not vanish. See "
        "`stats.details['clarke']` for the samples and neurons at the kink and the Clarke "
        "stationarity measure (distance from 0 to the convex hull of the one-sided gradients; "
        "≈ 0 means a Clarke-stationary kink point)."
    )

    def is_successful(self) -> bool:
        """True for `successful` and `roundoff_floor`."""
        return self in (RESULTS.successful, RESULTS.roundoff_floor)


@dataclasses.dataclass(frozen=True)
class SolverStats:
    """What a critical-point solver counted and measured.

    **Fields:** `num_steps` (iterations), `num_hessians` (dense Hessians built), `num_hvp`
    (Hessian-vector products), `gradient_floor` (the measured float64 round-off floor of
    ``||∇L||_∞``, 0 until measured), `target` (``max(gtol, floor)``), `wall_time` (seconds),
    `history` (``||∇L||_∞`` per step), `rejected_steps`, `flatness` (``||Hg||/(||H|| ||g||)``
    at the end, when computed), `escape` (the evidence of an escape to infinity, a JSON-ready
    record), `limit` (the record of the critical point at infinity of that escape, see
    :class:`~lossatlas.solvers.ChannelLimit`), and `details`: solver-specific diagnostics
    (JSON-ready, for reports; library code never reads them by key).
    """

    num_steps: int
    num_hessians: int = 0
    num_hvp: int = 0
    gradient_floor: float = 0.0
    target: float = 0.0
    wall_time: float = 0.0
    history: tuple[float, ...] = ()
    rejected_steps: int = 0
    flatness: float | None = None
    escape: dict | None = None
    limit: dict | None = None
    details: dict = dataclasses.field(default_factory=dict)

    def to_record(self) -> dict:
        """JSON-ready dict without the history (the limit as its own record)."""
        rec = {k: getattr(self, k) for k in ("num_steps", "num_hessians", "num_hvp", "gradient_floor",
                                              "target", "wall_time", "rejected_steps")}
        if self.flatness is not None:
            rec["flatness"] = self.flatness
        if self.escape is not None:
            rec["escape"] = self.escape
        if self.limit is not None:
            rec["limit"] = self.limit
        rec.update(self.details)
        return rec


@dataclasses.dataclass(frozen=True)
class CriticalPointSolution:
    """What a critical-point solver returns.

    **Fields:** `theta` (final flat parameters), `loss`, `grad_norm_inf`, `result` (a
    :class:`RESULTS`), `stats` (a :class:`SolverStats`).
    """

    theta: np.ndarray
    loss: float
    grad_norm_inf: float
    result: RESULTS
    stats: SolverStats

    @property
    def success(self) -> bool:
        """Whether the solver converged (target or round-off floor)."""
        return self.result.is_successful()

    def raise_if_failed(self) -> CriticalPointSolution:
        """Raise :class:`~lossatlas.SolverError` with the status message unless successful."""
        if not self.success:
            raise SolverError(self.result.value)
        return self

    def to_record(self) -> dict:
        """JSON-ready summary (without the parameters)."""
        return {
            "loss": float(self.loss),
            "grad_norm_inf": float(self.grad_norm_inf),
            "status": self.result.name,
            "message": self.result.value,
            **self.stats.to_record(),
        }
