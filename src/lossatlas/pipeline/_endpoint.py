"""The typed result of :func:`lossatlas.polish`: one end point, how it was reached, what it is."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from ..dynamics import FlowSolution
from ..solvers import RESULTS, Classification, Label


class Producer(enum.Enum):
    """What actually produced an end point's parameters. Values are the strings in JSON."""

    saddle_newton = "saddle_newton"
    trust_region_newton = "trust_region_newton"
    newton_mr = "newton_mr"
    pattern_newton = "pattern_newton"
    symmetry_projection = "symmetry_projection"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One solver run of the pipeline, in order: which solver, from where, how it ended."""

    producer: Producer
    result: RESULTS
    grad_norm_inf: float
    loss: float
    steps: int
    wall_time: float

    def to_record(self) -> dict:
        return {"producer": self.producer.value, "status": self.result.name, "grad_norm_inf": self.grad_norm_inf,
                "loss": self.loss, "steps": self.steps, "wall_time": self.wall_time}


@dataclasses.dataclass(frozen=True)
class Timings:
    """Seconds spent in each stage of :func:`lossatlas.polish` (`continuation`: the whole
    continuation, whose Newton runs and reductions also count in `newton` and `symmetry`)."""

    flow: float = 0.0
    adam: float = 0.0
    newton: float = 0.0
    symmetry: float = 0.0
    classify: float = 0.0
    total: float = 0.0
    continuation: float = 0.0

    def to_record(self) -> dict:
        return dataclasses.asdict(self)


class Stage(enum.Enum):
    """A stage of the continuation of :func:`lossatlas.polish` (values are the strings in JSON).

    ``longer_flow``: the gradient flow continued from where it stopped, for longer and to a
    tighter steady-state tolerance; ``newton``: the hand-off to Newton again (Levenberg-Marquardt,
    the trust region from a minimum-like start); ``reduction_newton``: Newton through the symmetry
    reduction; ``negative_curvature_step``: a step along the Hessian's most negative eigenvector
    (off a saddle's plateau), after which the flow starts again; ``trust_region``: the
    trust-region minimiser from the last flow point (its exact subproblem steps along negative
    curvature); ``infinity``: a solver certified an escape to infinity (``RESULTS.diverging``);
    ``deeper_lanczos``: above the dense limit, an ``undetermined`` point classified again with
    ``policy.DECIDE_LANCZOS_MATVECS`` Hessian-vector products (Ritz values converged further).
    """

    longer_flow = "longer_flow"
    newton = "newton"
    reduction_newton = "reduction_newton"
    negative_curvature_step = "negative_curvature_step"
    trust_region = "trust_region"
    infinity = "infinity"
    deeper_lanczos = "deeper_lanczos"


class Ending(enum.Enum):
    """How a continuation ended: at a verified critical point (with a determined label),
    certified escaping to infinity, stopped by a budget (the polish's `max_time`, the
    continuation's own time, round or flow-time caps of :mod:`lossatlas.pipeline.policy`), or
    ``failed`` (a solver or the flow broke down, or an ``undetermined`` label stayed so);
    `Continuation.limit` says which budget or failure."""

    critical = "critical"
    diverging = "diverging"
    budget = "budget"
    failed = "failed"


@dataclasses.dataclass(frozen=True)
class ContinuationStep:
    """One stage the continuation took: the `stage`, its outcome `status` (a flow status or a
    :class:`~lossatlas.RESULTS` name), ``||∇L||_∞`` and loss at its end, seconds, the flow time
    reached (flows) and stage details (e.g. the eigenvalue and length of a curvature step)."""

    stage: Stage
    status: str
    grad_norm_inf: float
    loss: float
    wall_time: float
    t: float | None = None
    details: dict = dataclasses.field(default_factory=dict)

    def to_record(self) -> dict:
        rec = {"stage": self.stage.value, "status": self.status, "grad_norm_inf": self.grad_norm_inf,
               "loss": self.loss, "wall_time": self.wall_time}
        if self.t is not None:
            rec["t"] = self.t
        return rec | self.details


@dataclasses.dataclass(frozen=True)
class Continuation:
    """What :func:`lossatlas.polish` did after a first flow-and-Newton pass that did not end at a
    critical point (or whose critical point was ``undetermined``), and how that ended.

    **Fields:** `trigger` (why it ran: the first pass's status name, or ``undetermined``),
    `steps` (every :class:`ContinuationStep`, in order), `ended` (an :class:`Ending`), `limit`
    (for ``budget``: ``max_time``, ``continuation_time``, ``rounds`` or ``flow_time``; for
    ``failed``: ``breakdown`` (the flow failed), the solver status ``diverged``, ``nonfinite`` or
    ``kink``, or ``undecidable``; else ``None``), `rounds` (flow-Newton rounds taken),
    `flow_time` (gradient-flow time reached, the first flow included; a curvature step moves the
    point, not the clock), `wall_time`, `reason` (in words), `flows` (the continued flow segments,
    each timed from its own start; not in the record).
    """

    trigger: str
    steps: tuple[ContinuationStep, ...]
    ended: Ending
    limit: str | None
    rounds: int
    flow_time: float
    wall_time: float
    reason: str
    flows: tuple[FlowSolution, ...] = ()

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The distinct stages taken, in order of first use."""
        return tuple(dict.fromkeys(s.stage for s in self.steps))

    @property
    def summary(self) -> str:
        """The flat form for tables: ``<ended>:<stage>+<stage>…`` (``budget:`` when no stage ran),
        e.g. ``critical:longer_flow+newton``, ``diverging:longer_flow+newton+infinity``."""
        return f"{self.ended.value}:" + "+".join(s.value for s in self.stages)

    def to_record(self) -> dict:
        return {"summary": self.summary, "ended": self.ended.value, "limit": self.limit, "trigger": self.trigger,
                "stages": [s.value for s in self.stages], "rounds": self.rounds, "flow_time": self.flow_time,
                "wall_time": self.wall_time, "reason": self.reason, "steps": [s.to_record() for s in self.steps]}


@dataclasses.dataclass(frozen=True)
class EndPoint:
    """A polished end point.

    **Fields:**

    - `theta`, `loss`, `grad_norm_inf`: the returned point, with its loss and gradient evaluated
      there (never carried over from an earlier iterate).
    - `result`: a :class:`~lossatlas.RESULTS` member; `converged` is ``result.is_successful()``:
      ``||∇L||_∞`` met ``max(gtol, floor)`` at `theta` (``floor``: the measured float64 round-off
      floor, `gradient_floor`; `target` is that maximum).
    - `requested`: the method asked for; `method`: the :class:`Producer` of `theta`.
    - `distance` ``||θ_end − θ0||₂``, `relative_distance` (÷ ``max(||θ0||₂, 1)``) and
      `max_weight_growth` (largest ratio of a neuron's incoming-weight norm, end over start):
      how far the polish moved the network.
    - `classification`: the :class:`~lossatlas.solvers.Classification` at `theta` (``None`` if
      not asked for); `label` its label.
    - `flow`: the gradient-flow segment (``method="flow-newton"``), `attempts`: every solver run,
      `solver_stats`: the statistics of the run that produced `theta` (or of the last solver run
      for a projection), `timings`.
    - `escape`, `limit`: the evidence of an escape to infinity and its critical point at infinity
      (``result`` is ``diverging``), as JSON-ready records.
    - `continuation`: the :class:`Continuation` (longer flow, Newton again, curvature steps, ...)
      when the first flow-and-Newton pass reached no critical point; ``None`` otherwise. The record
      carries its flat summary as ``continuation`` and the whole of it as ``continuation_detail``.
    """

    theta: np.ndarray
    loss: float
    grad_norm_inf: float
    result: RESULTS
    requested: str
    method: Producer
    gtol: float
    gradient_floor: float
    target: float
    distance: float
    relative_distance: float
    max_weight_growth: float
    classification: Classification | None
    flow: FlowSolution | None
    attempts: tuple[Attempt, ...]
    solver_stats: object
    timings: Timings
    escape: dict | None = None
    limit: dict | None = None
    #: what polish did after a first pass that reached no critical point (see :class:`Continuation`)
    continuation: Continuation | None = None
    #: where the end point comes from (:func:`lossatlas.pipeline.explain`); ``None`` if not asked for
    explanation: Explanation | None = None  # noqa: F821 - never evaluated: _explain imports this module
    #: kinked activations (relu, leaky_relu, abs) on a finite data set, whatever solver produced the
    #: point: ``min_abs_preactivation``, ``preactivation_scale`` (max |z|), ``on_kink`` (a hidden
    #: pre-activation within ``1e-8 · max(1, max|z|)`` of 0) and ``preactivation_note``; ``None``
    #: for smooth activations and population losses
    preactivation: dict | None = None

    @property
    def converged(self) -> bool:
        """Whether `theta` is a critical point to the target (or the round-off floor)."""
        return self.result.is_successful()

    @property
    def label(self) -> Label | None:
        """The classification's label (``None`` without a classification)."""
        return None if self.classification is None else self.classification.label

    @property
    def message(self) -> str:
        """What happened, in words (the status message; a projection says so)."""
        if self.method is Producer.symmetry_projection and self.converged:
            return ("Converged through the symmetry reduction: the end point was projected onto the "
                    "expansion subspace of its Newton-polished minimal network, and the gradient "
                    "there meets the target.")
        return self.result.value

    def to_record(self) -> dict:
        """JSON-ready summary (no arrays but the classification's evidence)."""
        rec = {
            "loss": self.loss, "grad_norm_inf": self.grad_norm_inf, "status": self.result.name,
            "message": self.message, "converged": self.converged, "requested_method": self.requested,
            "polish_method": self.method.value, "gtol": self.gtol, "gradient_floor": self.gradient_floor,
            "target": self.target, "distance_moved": self.distance,
            "relative_distance_moved": self.relative_distance, "max_weight_growth": self.max_weight_growth,
            "attempts": [a.to_record() for a in self.attempts], "timings": self.timings.to_record(),
        }
        if self.flow is not None:
            rec["flow"] = self.flow.to_record()
        if self.classification is not None:
            rec["classification"] = self.classification.to_record()
        if self.escape is not None:
            rec["escape"] = self.escape
        if self.limit is not None:
            rec["limit"] = self.limit
        if self.method is Producer.pattern_newton and self.solver_stats is not None:
            # kinked activations: min_abs_preactivation, the exact Clarke measure at a kink, ...
            rec["pattern_newton"] = dict(self.solver_stats.details)
        if self.preactivation is not None:
            rec.update(self.preactivation)
        if self.continuation is not None:  # flat summary for tables, and the full account
            rec["continuation"] = self.continuation.summary
            rec["continuation_detail"] = self.continuation.to_record()
        if self.explanation is not None:
            rec["explanation"] = self.explanation.to_record()
        return rec
