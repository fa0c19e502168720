"""Per-branch geometry on ``n`` samples: tangent features, model rank, Hessian rank, Morse–Bott test.

On ``Q*`` all residuals vanish, so the Hessian of ``R(θ) = (1/2n) Σ_i (f(θ, x_i) − y_i)²`` is
exactly its Gauss–Newton part ``∇²R = JᵀJ/n`` with ``J_{i,·} = ∂_θ f(θ, x_i)``; hence
``rank ∇²R = rank J = min(n, r_κ)`` at a generic point for generic samples. The branch is
Morse–Bott there iff ``rank ∇²R = codim A_κ``.

Every function takes ``bias`` (default False): with ``bias=True`` the student has biases in
both layers, ``f(θ, x) = σ(x W1ᵀ + b1)·a + c`` with flat order ``(vec W1, b1, a, c)``. Morse–Bott
is defined for curved components (smooth manifolds) too; their tangent space is taken at the
point tested.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._config import check_finite, check_float64, check_x64
from .._errors import InputError
from ..models import get_activation
from ._branches import Branch, Teacher, n_params, split_theta, split_theta_bias


def forward(theta, X, m: int, d: int, activation: str, bias: bool = False):
    """``f(θ, X) = σ(X W1ᵀ) a`` (or ``σ(X W1ᵀ + b1) a + c`` with `bias`), shape ``(n,)`` (pure JAX, traceable)."""
    md = m * d
    W = jnp.reshape(theta[:md], (m, d))
    if not bias:
        return get_activation(activation)(X @ W.T) @ theta[md : md + m]
    b, a, c = theta[md : md + m], theta[md + m : md + 2 * m], theta[md + 2 * m]
    return get_activation(activation)(X @ W.T + b) @ a + c


def tangent_features(theta, X, m: int, d: int, activation: str, bias: bool = False) -> np.ndarray:
    """``J = ∂_θ f(θ, X)`` of shape ``(n, M)`` in the library's flat order (``M`` from :func:`n_params`)."""
    check_x64()
    theta = jnp.asarray(theta, dtype=jnp.float64)
    X = jnp.asarray(X, dtype=jnp.float64)
    return np.asarray(jax.jacfwd(forward)(theta, X, m, d, activation, bias))


def numerical_rank(s, rtol: float) -> tuple[int, float, float]:
    """Rank of singular values (or nonnegative eigenvalues) ``s`` at ``rtol · max(s)``.

    Returns ``(rank, smallest kept, largest dropped)`` (``nan`` where there is none).
    """
    s = np.sort(np.abs(np.asarray(s, dtype=np.float64)))[::-1]
    if s.size == 0 or s[0] == 0.0:
        return 0, float("nan"), float(s[0]) if s.size else float("nan")
    keep = s > rtol * s[0]
    r = int(np.sum(keep))
    return r, float(s[r - 1]) if r else float("nan"), float(s[r]) if r < s.size else float("nan")


def model_rank(theta, m: int, d: int, activation: str, *, n_probe: int | None = None, seed: int = 0,
               rtol: float = 1e-8, bias: bool = False) -> int:
    """``dim span{∂_θp f(θ, ·)}``, measured as the rank of ``J`` on random Gaussian probe inputs."""
    M = n_params(m, d, bias=bias)
    n_probe = n_probe or max(600, 4 * M)
    X = np.random.default_rng(seed).standard_normal((n_probe, d))
    s = np.linalg.svd(tangent_features(theta, X, m, d, activation, bias), compute_uv=False)
    return numerical_rank(s, rtol)[0]


def gauss_newton(theta, X, m: int, d: int, activation: str, bias: bool = False) -> np.ndarray:
    """``JᵀJ/n``: the exact Hessian of the empirical loss at points of ``Q*``."""
    J = tangent_features(theta, X, m, d, activation, bias)
    return J.T @ J / J.shape[0]


@dataclasses.dataclass(frozen=True)
class HessianRank:
    """Rank of a PSD Hessian with the evidence: `tolerance`, `smallest_kept`, `largest_dropped`."""

    rank: int
    nullity: int
    tolerance: float
    smallest_kept: float
    largest_dropped: float
    eigenvalues: np.ndarray

    @property
    def smallest_positive(self) -> float:
        """``λ⁺_min``: the smallest eigenvalue above the tolerance."""
        return self.smallest_kept

    def to_record(self) -> dict:
        """JSON-ready dict (without the eigenvalues)."""
        return {"rank": self.rank, "nullity": self.nullity, "tolerance": self.tolerance,
                "smallest_kept": self.smallest_kept, "largest_dropped": self.largest_dropped}


def hessian_rank(H, *, rtol: float = 1e-10) -> HessianRank:
    """Rank of a symmetric PSD matrix: eigenvalues above ``rtol · λ_max``.

    On ``Q*`` the zero eigenvalues are round-off (``~1e-17 λ_max``) while the kept ones have
    been seen as small as ``1e-11`` absolute, so the gap is reported, not assumed.
    """
    H = np.asarray(H, dtype=np.float64)
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    lmax = float(np.max(np.abs(lam))) if lam.size else 0.0
    tol = rtol * lmax
    keep = lam > tol
    r = int(np.sum(keep))
    kept, dropped = lam[keep], lam[~keep]
    return HessianRank(r, int(lam.size - r), tol, float(kept.min()) if kept.size else float("nan"),
                       float(np.max(np.abs(dropped))) if dropped.size else float("nan"), lam)


@dataclasses.dataclass(frozen=True)
class MorseBottTest:
    """The Morse–Bott test at one point of a branch with ``n`` samples.

    `morse_bott` is the measurement (``rank H == codim``); `predicted` the closed-form answer
    (``branch.morse_bott and n ≥ codim``); `predicted_rank` is ``min(n, r_κ)``.
    """

    branch: str
    n: int
    dim: int
    codim: int
    model_rank: int
    predicted_rank: int
    hessian: HessianRank
    loss: float
    grad_norm_inf: float
    tangent_residual: float
    gauss_newton_error: float
    morse_bott: bool
    predicted: bool

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {"branch": self.branch, "n": self.n, "dim": self.dim, "codim": self.codim,
                "model_rank": self.model_rank, "predicted_rank": self.predicted_rank,
                "hessian": self.hessian.to_record(), "loss": self.loss,
                "grad_norm_inf": self.grad_norm_inf, "tangent_residual": self.tangent_residual,
                "gauss_newton_error": self.gauss_newton_error, "morse_bott": self.morse_bott,
                "predicted": self.predicted}


def student_network(theta, m: int, d: int, activation: str, bias: bool = False):
    """The two-layer :class:`~lossatlas.models.MLP` with flat parameters ``θ`` (biases in both layers if `bias`)."""
    from ..models import MLP

    if bias:
        W, b, a, c = split_theta_bias(theta, m, d)
        return MLP((jnp.asarray(W), jnp.asarray(a)[None, :]), (jnp.asarray(b), jnp.asarray([c])), activation)
    W, a = split_theta(theta, m, d)
    return MLP((jnp.asarray(W), jnp.asarray(a)[None, :]), None, activation)


def _landscape(theta, X, y, m, d, activation, bias=False):
    from ..data import Dataset
    from ..landscape import Landscape

    net = student_network(theta, m, d, activation, bias)
    return Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(y)[:, None]))


def check_inputs(X, d: int) -> np.ndarray:
    """Validate sample inputs: float64, finite, shape ``(n, d)``.

    Raises:
        InputError: otherwise.
    """
    check_float64("X", X)
    check_finite("X", X)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 1:
        raise InputError(f"X must have shape (n, {d}) with n >= 1, got {X.shape}.")
    return X


def morse_bott_test(branch: Branch, teacher: Teacher, X, *, theta=None, seed: int = 0,
                    rtol: float = 1e-10) -> MorseBottTest:
    """Measure ``rank ∇²R`` at a point of `branch` (default: a random generic one) on inputs `X`.

    The Hessian is the library's dense autodiff Hessian of the landscape (not ``JᵀJ/n``); its
    distance to ``JᵀJ/n`` is reported as `gauss_newton_error`, and ``‖H T‖`` over the branch's
    tangent space (at ``θ`` for a curved component) as `tangent_residual`.

    Raises:
        InputError: for float32 / non-finite inputs or mismatched shapes.
    """
    from ..curvature import dense_hessian

    X = check_inputs(X, branch.d)
    m, d, act, bias = branch.m, branch.d, teacher.activation, branch.bias
    theta = branch.random_point(teacher, seed=seed) if theta is None else theta
    check_float64("theta", theta)
    check_finite("theta", theta)
    theta = np.asarray(theta)
    if theta.shape != (branch.n_params,):
        raise InputError(f"theta must have shape ({branch.n_params},) for this branch, got {theta.shape}.")
    y = teacher(X)
    ls = _landscape(theta, X, y, m, d, act, bias)
    th = jnp.asarray(theta)
    H = dense_hessian(ls, th)
    hr = hessian_rank(H, rtol=rtol)
    GN = gauss_newton(theta, X, m, d, act, bias)
    T = branch.tangent_basis(theta, teacher)
    scale = max(float(np.max(np.abs(H))), 1e-300)
    n = X.shape[0]
    return MorseBottTest(
        branch=branch.label, n=n, dim=branch.dim, codim=branch.codim, model_rank=branch.model_rank,
        predicted_rank=min(n, branch.model_rank), hessian=hr, loss=float(ls.loss(th)),
        grad_norm_inf=float(jnp.max(jnp.abs(ls.grad(th)))),
        tangent_residual=float(np.linalg.norm(H @ T)) / scale if T.size else 0.0,
        gauss_newton_error=float(np.max(np.abs(H - GN))) / scale,
        morse_bott=hr.rank == branch.codim, predicted=branch.morse_bott and n >= branch.codim)


@dataclasses.dataclass(frozen=True)
class ThresholdProfile:
    """How the rank of ``∇²R`` at a generic branch point grows with the sample size.

    `ranks[i]` is the rank with the first `ns[i]` samples. `measured_model_rank` is the plateau
    (``r_κ``); `mb_sample_size` the first ``n`` with ``rank = codim`` (``None`` for non-MB
    branches). `threshold` is ``N_t = codim`` (``None`` for a curved non-Morse–Bott component,
    see :attr:`Branch.threshold_reason`) and `bound` is the parameter count ``M``: ``m(d+1)``,
    or ``m(d+2) + 1`` with biases.
    """

    branch: str
    ns: tuple[int, ...]
    ranks: tuple[int, ...]
    measured_model_rank: int
    predicted_model_rank: int
    mb_sample_size: int | None
    threshold: int | None
    bound: int

    @property
    def within_bound(self) -> bool:
        """``N_t ≤ M`` (when defined) and, when measured, the MB sample size too."""
        return ((self.threshold is None or self.threshold <= self.bound)
                and (self.mb_sample_size is None or self.mb_sample_size <= self.bound))

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {"branch": self.branch, "ns": list(self.ns), "ranks": list(self.ranks),
                "measured_model_rank": self.measured_model_rank,
                "predicted_model_rank": self.predicted_model_rank,
                "mb_sample_size": self.mb_sample_size, "threshold": self.threshold,
                "bound": self.bound, "within_bound": self.within_bound}


def threshold_profile(branch: Branch, teacher: Teacher, *, n_max: int | None = None, seed: int = 0,
                      rtol: float = 1e-10) -> ThresholdProfile:
    """Ranks of ``∇²R = JᵀJ/n`` at a random point of `branch` for ``n = 1 … n_max`` Gaussian samples.

    ``n_max`` defaults to ``M + 2``: past the largest possible rank.
    """
    M = branch.n_params
    n_max = n_max or M + 2
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n_max, branch.d))
    theta = branch.random_point(teacher, seed=seed)
    J = tangent_features(theta, X, branch.m, branch.d, teacher.activation, branch.bias)
    ns, ranks = tuple(range(1, n_max + 1)), []
    for n in ns:
        Jn = J[:n]
        ranks.append(hessian_rank(Jn.T @ Jn / n, rtol=rtol).rank)
    mb = next((n for n, r in zip(ns, ranks, strict=True) if r == branch.codim), None)
    return ThresholdProfile(branch.label, ns, tuple(ranks), max(ranks), branch.model_rank, mb,
                            branch.threshold, M)
