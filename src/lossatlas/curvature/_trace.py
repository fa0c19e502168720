"""Stochastic trace (Hutchinson, Hutch++) and spectral density (stochastic Lanczos quadrature).

References: Hutchinson (1990); Meyer, Musco, Musco, Woodruff, "Hutch++: optimal stochastic
trace estimation" (SOSA 2021); Ubaru, Chen, Saad, "Fast estimation of tr(f(A)) via
stochastic Lanczos quadrature" (SIMAX 2017).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..landscape import Landscape


@dataclasses.dataclass(frozen=True)
class TraceEstimate:
    """A trace estimate with its standard error and the number of HVPs used.

    `stderr` is the standard error of the stochastic part (zero when the low-rank part
    captured the whole matrix, in which case the estimate is exact up to round-off).
    """

    value: float
    stderr: float
    matvecs: int
    method: str


def _rademacher(key, p, m):
    return jax.random.rademacher(key, (p, m), dtype=jnp.float64)


def hutchinson_trace(ls: Landscape, theta, *, probes: int = 100, key=None) -> TraceEstimate:
    """Hutchinson's estimator ``(1/m) Σ zᵀHz`` with Rademacher ``z``."""
    theta = ls.check_theta(theta)
    if probes < 2:
        raise InputError("Hutchinson needs at least 2 probes to report a standard error.")
    key = jax.random.PRNGKey(0) if key is None else key
    Z = _rademacher(key, ls.n_params, probes)
    HZ = np.asarray(ls.hvp_batch(theta, Z))
    samples = np.sum(np.asarray(Z) * HZ, axis=0)
    return TraceEstimate(float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(probes)),
                         probes, "hutchinson")


def hutchpp_trace(ls: Landscape, theta, *, matvecs: int = 99, key=None) -> TraceEstimate:
    """Hutch++: exact trace of a sketched top subspace plus Hutchinson on the rest.

    Uses ``matvecs`` HVPs split in three equal parts (sketch ``S``, projection ``Q``, and
    Hutchinson probes on ``(I − QQᵀ) H (I − QQᵀ)``). When the sketch spans the whole space
    (``matvecs/3 ≥ p``) the answer is exact and `stderr` is 0.
    """
    theta = ls.check_theta(theta)
    p = ls.n_params
    m = max(3, int(matvecs)) // 3
    key = jax.random.PRNGKey(0) if key is None else key
    k1, k2 = jax.random.split(key)
    S = _rademacher(k1, p, min(m, p))
    Q, _ = np.linalg.qr(np.asarray(ls.hvp_batch(theta, S)))
    HQ = np.asarray(ls.hvp_batch(theta, jnp.asarray(Q)))
    low = float(np.trace(Q.T @ HQ))
    used = 2 * Q.shape[1]
    if Q.shape[1] >= p:
        return TraceEstimate(low, 0.0, used, "hutch++")
    G = np.asarray(_rademacher(k2, p, m))
    G = G - Q @ (Q.T @ G)
    HG = np.asarray(ls.hvp_batch(theta, jnp.asarray(G)))
    HG = HG - Q @ (Q.T @ HG)
    samples = np.sum(G * HG, axis=0)
    used += m
    stderr = float(samples.std(ddof=1) / np.sqrt(m)) if m > 1 else float("inf")
    return TraceEstimate(low + float(samples.mean()), stderr, used, "hutch++")


@dataclasses.dataclass(frozen=True)
class SpectralDensity:
    """Stochastic Lanczos quadrature: Ritz nodes and weights, and a broadened density on a grid."""

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    matvecs: int


def lanczos_tridiagonal(matvec, v0, steps: int):
    """``steps`` Lanczos steps with full reorthogonalisation; returns (alpha, beta)."""
    p = v0.shape[0]
    steps = min(steps, p)
    Q = np.zeros((p, steps))
    alpha, beta = np.zeros(steps), np.zeros(max(steps - 1, 0))
    q = v0 / np.linalg.norm(v0)
    for j in range(steps):
        Q[:, j] = q
        w = matvec(q)
        alpha[j] = q @ w
        w = w - Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        w = w - Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        if j < steps - 1:
            b = np.linalg.norm(w)
            if b < 1e-14 * max(1.0, abs(alpha[j])):
                return alpha[: j + 1], beta[:j]
            beta[j] = b
            q = w / b
    return alpha, beta


def slq_density(
    ls: Landscape, theta, *, probes: int = 8, steps: int = 60, grid_points: int = 400,
    sigma: float | None = None, key=None,
) -> SpectralDensity:
    """Spectral density of ``∇²L(θ)`` by stochastic Lanczos quadrature.

    Each probe gives a Gauss quadrature (Ritz values ``θ_j``, weights ``τ_j²``) of the
    spectral measure ``(1/p) Σ δ(λ − λ_i)``; the density is their average broadened by a
    Gaussian of width `sigma` (default: 1% of the spectral range).
    """
    theta = ls.check_theta(theta)
    p = ls.n_params
    key = jax.random.PRNGKey(0) if key is None else key
    Z = np.asarray(_rademacher(key, p, probes))
    count = [0]

    def mv(v):
        count[0] += 1
        return np.asarray(ls.hvp(theta, jnp.asarray(v)))

    nodes, weights = [], []
    for i in range(probes):
        a, b = lanczos_tridiagonal(mv, Z[:, i], steps)
        T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
        ev, U = np.linalg.eigh(T)
        nodes.append(ev)
        weights.append(U[0, :] ** 2 / probes)
    nodes = np.concatenate(nodes)
    weights = np.concatenate(weights)
    lo, hi = float(nodes.min()), float(nodes.max())
    span = max(hi - lo, 1e-12)
    sigma = 0.01 * span if sigma is None else float(sigma)
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_points)
    dens = (weights[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2)).sum(1)
    dens /= sigma * np.sqrt(2 * np.pi)
    return SpectralDensity(nodes, weights, grid, dens, sigma, count[0])
