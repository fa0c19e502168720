"""Local recovery: does a descent started near a branch end on ``Q*`` (teacher recovered)?

For ``n`` below a branch's threshold ``N_t`` the interpolating set ``Q`` near the branch is
larger than ``Q*`` (imperfect global minima accumulate on it), so a descent started an ``ε``
away typically ends at an imperfect minimum; above ``N_t`` the branch is locally separated and
the teacher is recovered.
"""

from __future__ import annotations

import dataclasses
import enum
import functools as ft

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ._branches import Branch, Teacher
from ._geometry import forward


class RecoveryOutcome(enum.Enum):
    """How one descent ended. Values are the messages."""

    recovered = "Interpolates the samples and matches the teacher on fresh inputs (test RMSE below tolerance)."
    imperfect = "Interpolates the samples but differs from the teacher: an imperfect global minimum."
    not_converged = "Did not interpolate the samples within the step budget."


class RecoveryMethod(enum.Enum):
    """The descent used from each start."""

    levenberg = "levenberg"
    gradient_flow = "gradient_flow"


@dataclasses.dataclass(frozen=True)
class RecoveryTrials:
    """Outcomes of `trials` descents started ``ε`` away from random points of one branch."""

    branch: str
    threshold: int | None
    n: int
    eps: float
    method: RecoveryMethod
    outcomes: tuple[RecoveryOutcome, ...]
    train_rmse: np.ndarray
    test_rmse: np.ndarray

    @property
    def probability(self) -> float:
        """Fraction of trials that recovered the teacher."""
        return sum(o is RecoveryOutcome.recovered for o in self.outcomes) / len(self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        """Number of trials per outcome."""
        return {o.name: sum(x is o for x in self.outcomes) for o in RecoveryOutcome}

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {"branch": self.branch, "threshold": self.threshold, "n": self.n, "eps": self.eps,
                "method": self.method.value, "probability": self.probability, "counts": self.counts}


@ft.lru_cache(maxsize=32)
def _make_lm(m, d, activation, bias=False):
    def resid(theta, X, y):
        return forward(theta, X, m, d, activation, bias) - y

    @jax.jit
    def parts(theta, X, y):
        r = resid(theta, X, y)
        return r, jax.jacfwd(resid)(theta, X, y)

    return parts


def levenberg(theta0, X, y, m: int, d: int, activation: str, *, max_steps: int = 400,
              rtol_residual: float = 1e-13, mu0: float = 1e-3, bias: bool = False) -> np.ndarray:
    """Levenberg's method with plain ``μI`` damping on the residuals ``f(θ, X) − y``.

    Marquardt's ``μ diag(JᵀJ)`` scaling is avoided on purpose: near dead neurons (``a_k ≈ 0``)
    it takes huge steps in ``w_k``. `bias` selects the student with biases in both layers.
    """
    parts = _make_lm(m, d, activation, bool(bias))
    X, y = jnp.asarray(X), jnp.asarray(y)
    theta = np.asarray(theta0, dtype=np.float64)
    r, J = (np.asarray(v) for v in parts(jnp.asarray(theta), X, y))
    loss, mu = float(r @ r), mu0
    target = (rtol_residual * max(1.0, float(np.sqrt(np.mean(np.asarray(y) ** 2))))) ** 2 * len(r)
    for _ in range(max_steps):
        if loss <= target:
            break
        g, A = J.T @ r, J.T @ J
        for _inner in range(30):
            try:
                step = np.linalg.solve(A + mu * np.eye(A.shape[0]), -g)
            except np.linalg.LinAlgError:  # μ below round-off of a singular JᵀJ: damp more
                mu *= 4.0
                continue
            cand = theta + step
            rc, Jc = (np.asarray(v) for v in parts(jnp.asarray(cand), X, y))
            lc = float(rc @ rc)
            if np.isfinite(lc) and lc < loss:
                theta, r, J, loss = cand, rc, Jc, lc
                mu = max(mu / 3.0, 1e-15)
                break
            mu *= 4.0
        else:
            break
    return theta


def local_recovery(branch: Branch, teacher: Teacher, n: int, *, eps: float = 0.03, trials: int = 20,
                   seed: int = 0, method: RecoveryMethod = RecoveryMethod.levenberg, n_test: int = 400,
                   train_tol: float = 1e-10, test_tol: float = 1e-6, t1: float = 1e7) -> RecoveryTrials:
    """Monte-Carlo local recovery at sample size `n`.

    Each trial draws ``n`` Gaussian inputs labelled by the teacher, a random point of `branch`
    and a start ``ε·u`` away from it (``u`` uniform on the sphere), runs the descent, and
    classifies the end point: train RMSE ≤ `train_tol` and test RMSE (on `n_test` fresh inputs)
    ≤ `test_tol` is *recovered*; train RMSE ≤ `train_tol` otherwise is *imperfect*.

    Raises:
        InputError: for bad sizes or tolerances.
    """
    if n < 1 or trials < 1 or not eps > 0:
        raise InputError(f"need n >= 1, trials >= 1 and eps > 0, got n={n}, trials={trials}, eps={eps}.")
    method = RecoveryMethod(method)
    m, d, act, bias = branch.m, branch.d, teacher.activation, branch.bias
    rng = np.random.default_rng(seed)
    X_test = rng.standard_normal((n_test, d))
    y_test = teacher(X_test)
    outcomes, tr, te = [], [], []
    for _ in range(trials):
        X = rng.standard_normal((n, d))
        y = teacher(X)
        base = branch.random_point(teacher, seed=int(rng.integers(2**31)))
        u = rng.standard_normal(base.shape)
        theta0 = base + eps * u / np.linalg.norm(u)
        if method is RecoveryMethod.levenberg:
            theta = levenberg(theta0, X, y, m, d, act, bias=bias)
        else:
            theta = _flow(theta0, X, y, m, d, act, t1, bias)
        train = float(np.sqrt(np.mean((np.asarray(forward(jnp.asarray(theta), jnp.asarray(X), m, d, act, bias))
                                       - y) ** 2)))
        test = float(np.sqrt(np.mean((np.asarray(forward(jnp.asarray(theta), jnp.asarray(X_test), m, d, act, bias))
                                      - y_test) ** 2)))
        if train <= train_tol and test <= test_tol:
            outcomes.append(RecoveryOutcome.recovered)
        elif train <= train_tol:
            outcomes.append(RecoveryOutcome.imperfect)
        else:
            outcomes.append(RecoveryOutcome.not_converged)
        tr.append(train)
        te.append(test)
    return RecoveryTrials(branch.label, branch.threshold, n, float(eps), method, tuple(outcomes),
                          np.asarray(tr), np.asarray(te))


def _flow(theta0, X, y, m, d, act, t1, bias=False):
    from ..data import Dataset
    from ..dynamics import gradient_flow
    from ..landscape import Landscape
    from ._geometry import student_network

    ls = Landscape(student_network(theta0, m, d, act, bias), Dataset(jnp.asarray(X), jnp.asarray(y)[:, None]))
    return np.asarray(gradient_flow(ls, jnp.asarray(theta0), t1=t1, solver="bdf", steady_tol=1e-14,
                                    n_save=20).theta)
