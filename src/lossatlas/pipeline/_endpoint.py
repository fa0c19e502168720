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
    """Seconds spent in each stage of :func:`lossatlas.polish`."""

    flow: float = 0.0
    adam: float = 0.0
    newton: float = 0.0
    symmetry: float = 0.0
    classify: float = 0.0
    total: float = 0.0

    def to_record(self) -> dict:
        return dataclasses.asdict(self)


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
    #: where the end point comes from (:func:`lossatlas.pipeline.explain`); ``None`` if not asked for
    explanation: Explanation | None = None  # noqa: F821 - never evaluated: _explain imports this module

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
        if self.explanation is not None:
            rec["explanation"] = self.explanation.to_record()
        return rec
