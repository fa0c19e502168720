"""Gradient flow near ``Q*``: exponential rate ``2λ⁺_min`` on Morse–Bott branches, algebraic otherwise.

Near a Morse–Bott branch the loss satisfies a local Polyak–Łojasiewicz inequality, and the flow
``θ' = −∇R(θ)`` converges to a point ``θ∞`` with ``R(θ(t)) ~ e^{−2 λ⁺_min t}``, ``λ⁺_min`` the
smallest positive eigenvalue of ``∇²R(θ∞)``. Where Morse–Bott fails (split teacher neurons),
``R`` is quartic in the spread ``e = w1 − w2``, so ``R ~ t^{−2}`` and ``|e| ~ t^{−1/2}``; the
displacement from the branch then lies ever more in ``ker ∇²R``: its fraction in the range,
``|P_range δ| / |δ|``, decays like ``|δ| ~ t^{−1/2}``.

Networks with biases (in both layers) are accepted. If the flow ends on a curved component
(constant neurons, see :mod:`lossatlas.recovery._branches`) that is not Morse–Bott, no law is
predicted (`expected_kind` is ``None`` and `expected_reason` says why): the quartic-loss
argument above was made for split neurons on affine branches only.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..dynamics import ConvergenceKind, ConvergenceLaw, FlowSolution, fit_convergence_law, gradient_flow
from ._branches import Branch, Teacher, identify_branch
from ._geometry import HessianRank, gauss_newton, hessian_rank


@dataclasses.dataclass(frozen=True)
class RateAnalysis:
    """A gradient flow near ``Q*`` and its convergence law against the predictions.

    - `law`: the fitted law of the loss (exponential rate or algebraic exponent).
    - `hessian`: rank of ``∇²R`` at the end point; `predicted_rate` ``= 2 λ⁺_min`` there.
    - `branch`/`teacher`: the branch identified at the end point (``None`` if none);
      `morse_bott` the measured test ``rank ∇²R == codim`` there; `expected_kind` the law the
      theory predicts (exponential iff Morse–Bott).
    - `kernel_ts`, `kernel_fraction`: ``|P_range δ(t)| / |δ(t)|`` with ``δ`` the displacement
      from the branch closure and ``P_range`` the projector on the range of ``∇²R(θ_end)``;
      `kernel_exponent` its fitted algebraic decay exponent.
    - `expected_reason`: why `expected_kind` is ``None`` (no branch, or a curved non-Morse–Bott
      component); ``None`` otherwise.
    """

    flow: FlowSolution
    law: ConvergenceLaw
    hessian: HessianRank
    predicted_rate: float
    branch: Branch | None
    teacher: Teacher | None
    morse_bott: bool | None
    expected_kind: ConvergenceKind | None
    kernel_ts: np.ndarray
    kernel_fraction: np.ndarray
    kernel_exponent: float
    expected_reason: str | None = None

    @property
    def rate_relative_error(self) -> float:
        """``|rate − 2λ⁺_min| / 2λ⁺_min`` (meaningful for an exponential law)."""
        if not self.predicted_rate > 0:
            return float("nan")
        return abs(self.law.rate - self.predicted_rate) / self.predicted_rate

    @property
    def agrees(self) -> bool | None:
        """Whether the fitted law has the predicted kind (``None`` without a branch)."""
        return None if self.expected_kind is None else self.law.kind is self.expected_kind

    def to_record(self) -> dict:
        """JSON-ready dict (trajectory summarised)."""
        return {
            "flow": self.flow.to_record(),
            "initial_loss": float(self.flow.losses[0]),
            "law": self.law.to_record(),
            "hessian": self.hessian.to_record(),
            "lambda_min_positive": self.hessian.smallest_positive,
            "predicted_rate": self.predicted_rate,
            "rate_relative_error": self.rate_relative_error,
            "branch": None if self.branch is None else self.branch.to_record(),
            "teacher": None if self.teacher is None else self.teacher.to_record(),
            "morse_bott": self.morse_bott,
            "expected_kind": None if self.expected_kind is None else self.expected_kind.value,
            "expected_reason": self.expected_reason,
            "agrees": self.agrees,
            "kernel_fraction_last": float(self.kernel_fraction[-1]) if self.kernel_fraction.size else None,
            "kernel_fraction_time": float(self.kernel_ts[-1]) if self.kernel_ts.size else None,
            "kernel_exponent": self.kernel_exponent,
        }


def _check_two_layer(net) -> tuple[int, int, bool]:
    if net.depth != 2 or net.widths[-1] != 1:
        raise InputError(
            "recovery works on two-layer networks with one output (W1 of shape (m, d), W2 of shape (1, m), "
            f"optionally biases b1 (m,) and b2 (1,)); got widths {net.widths}.")
    return net.widths[1], net.widths[0], net.has_bias


def fit_window(ts, losses, *, floor: float = 1e-27, drop: float = 1e-3):
    """The asymptotic part of a loss curve: after it fell below ``drop · R(0)``, above `floor`."""
    ts, losses = np.asarray(ts), np.asarray(losses)
    sel = (ts > 0) & (losses <= drop * losses[0]) & (losses >= floor)
    return ts[sel], losses[sel]


def flow_rate(net, data, *, t1: float = 1e8, cluster_tol: float = 1e-2, rtol: float = 1e-10,
              atol: float = 1e-14, n_save: int = 240) -> RateAnalysis:
    """Run the gradient flow from `net` on `data` and compare its convergence law with the theory.

    The flow uses SciPy's BDF with the exact Hessian as Jacobian and stops at a steady state
    (``‖∇R‖_∞ ≤ 1e-15``) or at `t1`. The branch at the end point is read off with
    :func:`identify_branch` (tolerance `cluster_tol`).

    Raises:
        InputError: for networks that are not two-layer with one output, or bad data.
    """
    from ..curvature import dense_hessian
    from ..landscape import Landscape

    m, d, bias = _check_two_layer(net)
    ls = Landscape(net, data)
    theta0 = ls.ravel()
    flow = gradient_flow(ls, theta0, t1=t1, solver="bdf", rtol=rtol, atol=atol, steady_tol=1e-15,
                         n_save=n_save, max_steps=200_000)
    tw, lw = fit_window(flow.ts, flow.losses)
    law = fit_convergence_law(tw, lw, tail=0.5)
    if law.kind is ConvergenceKind.algebraic:
        # An algebraic tail approaches its exponent slowly (R ~ t^-2 is reached only after
        # decades); refit on the last fifth of the log-time window.
        late = fit_convergence_law(tw, lw, tail=0.2)
        if late.kind is not ConvergenceKind.exponential and np.isfinite(late.exponent):
            law = dataclasses.replace(late, kind=ConvergenceKind.algebraic)
    theta_end = np.asarray(flow.theta)
    try:
        branch, teacher = identify_branch(theta_end, m, d, net.activation, tol=cluster_tol, bias=bias)
    except InputError:
        branch = teacher = None
    empty = np.zeros(0)
    if branch is None:
        hr = hessian_rank(dense_hessian(ls, jnp.asarray(theta_end)))
        return RateAnalysis(flow, law, hr, 2.0 * hr.smallest_positive, None, None, None, None, empty, empty,
                            float("nan"), "the end point is on no component of Q* (within cluster_tol)")
    # θ∞ is approximated by the projection of the end point onto the branch closure of the
    # teacher read off at the end point; there the Hessian is the Gauss–Newton matrix JᵀJ/n
    # (exact on Q*, and insensitive to the O(R) error of the estimated teacher).
    theta_inf = branch.project(theta_end, teacher)
    hr = hessian_rank(gauss_newton(theta_inf, np.asarray(data.X), m, d, net.activation, bias))
    mb = hr.rank == branch.codim
    kts, kf = kernel_fraction(flow.ts, flow.thetas, branch, teacher, ls, theta_inf=theta_inf)
    kexp = float("nan")
    if kf.size >= 4:
        kexp = fit_convergence_law(kts, kf, tail=0.5).exponent
    expected, reason = ConvergenceKind.exponential if mb else ConvergenceKind.algebraic, None
    if not mb and not branch.affine:
        expected, reason = None, ("curved component that is not Morse-Bott: the algebraic law R ~ t^-2 was "
                                  "derived for split neurons on affine branches only")
    return RateAnalysis(flow, law, hr, 2.0 * hr.smallest_positive, branch, teacher, mb, expected, kts, kf, kexp,
                        reason)


def kernel_fraction(ts, thetas, branch: Branch, teacher: Teacher, ls, *, theta_inf=None,
                    min_displacement: float = 1e-9):
    """``|P_range δ(t)| / |δ(t)|``, ``δ = θ(t) − proj_{A_κ} θ(t)``, ``P_range`` on the range of ``∇²R(θ∞) = JᵀJ/n``.

    ``θ∞`` defaults to the projection of the last point onto the branch closure. Only times with
    ``|δ| ≥ min_displacement`` (below that, round-off dominates) and ``t ≤ t_end/10`` (the branch
    is estimated from the end point) are kept.
    """
    thetas = np.asarray(thetas)
    theta_inf = branch.project(thetas[-1], teacher) if theta_inf is None else theta_inf
    H = gauss_newton(theta_inf, np.asarray(ls.data.X), branch.m, branch.d, teacher.activation, branch.bias)
    lam, V = np.linalg.eigh(H)
    U = V[:, lam > 1e-10 * np.max(np.abs(lam))]
    out_t, out_f = [], []
    t_end = float(np.max(ts))
    for t, th in zip(ts, thetas, strict=True):
        if t > 0.1 * t_end:  # θ∞ is estimated from the end point: keep the fraction honest
            break
        delta = th - branch.project(th, teacher)
        nd = np.linalg.norm(delta)
        if t > 0 and nd >= min_displacement:
            out_t.append(t)
            out_f.append(np.linalg.norm(U.T @ delta) / nd)
    return np.asarray(out_t), np.asarray(out_f)
