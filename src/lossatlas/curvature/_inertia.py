"""Matrix-free bounds on the inertia (index and nullity) of a Hessian, certified by Lanczos.

Lanczos finds the extreme eigenvalues of ``H = ∇²L(θ)`` from Hessian-vector products, but it
never sees the whole spectrum unless its Krylov space is the whole parameter space. What it
certifies, and what :func:`lanczos_inertia_bounds` therefore reports, are **bounds**:

- *Index, lower bound* (Cauchy interlacing). For an orthonormal basis ``Q`` (``m`` columns) of
  the Krylov space, ``T = QᵀHQ`` has eigenvalues ``θ_1 ≤ … ≤ θ_m`` (the Ritz values) with
  ``λ_i(H) ≤ θ_i`` for ``i = 1 … m``. Every Ritz value below ``−tol`` therefore proves one
  eigenvalue of ``H`` below ``−tol``: ``index ≥ #{θ_i < −tol}``, whether or not the Ritz pairs
  have converged.
- *Nullity, lower bound* (Kahan's theorem, Parlett, *The Symmetric Eigenvalue Problem*,
  Thm 11.5.2). For orthonormal Ritz vectors ``Y`` with residual matrix ``R = HY − YΘ``, there
  are as many distinct eigenvalues of ``H`` as columns of ``Y``, each within ``||R||₂`` of its
  own Ritz value. Ritz values with ``|θ_i| + ||R||_F ≤ tol`` prove that many eigenvalues in
  ``[−tol, tol]``.
- *Upper bounds* only when the spectrum is fully resolved (the returned Ritz pairs are all
  ``p`` eigenpairs, e.g. ``2k ≥ p``): the matching above then covers every eigenvalue. Otherwise
  eigenvalues the Krylov space has not reached can hide anywhere between the extremes, and the
  upper bounds are ``None`` (unknown), never a guess.
- ``λ_min ≤ min_eig`` and ``λ_max ≥ max_eig`` hold always (interlacing); each is within its
  residual of a true eigenvalue (Weyl), and equals the extreme eigenvalue to that accuracy once
  the extreme Ritz pair has converged (the usual case: Lanczos resolves the ends first).

The tolerance ``tol`` is :func:`eigenvalue_tolerance` (``p ε ||H|| + ||∇L||₂``): the round-off
of ``T ≈ QᵀHQ`` and the distance of ``θ`` from exact criticality. It is the tolerance of the
dense classification, so the bounds bracket the dense index and nullity at the same ``tol``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._errors import InputError
from ..landscape import Landscape
from ._lanczos import lanczos_extreme
from ._spectrum import eigenvalue_tolerance


@dataclasses.dataclass(frozen=True)
class InertiaBounds:
    """Certified bounds on the index and nullity of ``∇²L(θ)`` (see the module docstring).

    **Fields:** `index_lower_bound`, `index_upper_bound` (``None`` unless the spectrum is fully
    resolved), `nullity_lower_bound`, `nullity_upper_bound` (``None`` likewise), `min_eig` and
    `max_eig` (extreme Ritz values: ``λ_min ≤ min_eig``, ``λ_max ≥ max_eig``), their absolute
    residual norms `min_eig_residual` and `max_eig_residual`, `residual_norm` (``||R||_F`` of
    all returned pairs, the Kahan matching radius), `tolerance` (the zero threshold), the
    `eigenvalues` (Ritz values, ascending) and their absolute `residuals`, `matvecs` (HVPs) and
    `complete` (whether every eigenvalue was resolved).
    """

    index_lower_bound: int
    index_upper_bound: int | None
    nullity_lower_bound: int
    nullity_upper_bound: int | None
    min_eig: float
    max_eig: float
    min_eig_residual: float
    max_eig_residual: float
    residual_norm: float
    tolerance: float
    eigenvalues: np.ndarray
    residuals: np.ndarray
    matvecs: int
    complete: bool

    @property
    def index_known(self) -> bool:
        """Whether the bounds pin the index down exactly."""
        return self.index_upper_bound is not None and self.index_upper_bound == self.index_lower_bound

    def to_record(self) -> dict:
        """JSON-ready dict (bounds named as bounds; ``None`` for an unknown upper bound)."""
        return {
            "index_lower_bound": int(self.index_lower_bound),
            "index_upper_bound": None if self.index_upper_bound is None else int(self.index_upper_bound),
            "nullity_lower_bound": int(self.nullity_lower_bound),
            "nullity_upper_bound": None if self.nullity_upper_bound is None else int(self.nullity_upper_bound),
            "min_eig": float(self.min_eig),
            "max_eig": float(self.max_eig),
            "min_eig_residual": float(self.min_eig_residual),
            "max_eig_residual": float(self.max_eig_residual),
            "residual_norm": float(self.residual_norm),
            "tolerance": float(self.tolerance),
            "eigenvalues": [float(x) for x in self.eigenvalues],
            "matvecs": int(self.matvecs),
            "complete": bool(self.complete),
        }


def lanczos_inertia_bounds(
    ls: Landscape,
    theta,
    k: int = 20,
    *,
    residual_target: float = 1e-8,
    grad_norm: float | None = None,
    seed: int = 0,
    max_matvecs: int | None = 400,
) -> InertiaBounds:
    """Bounds on the index and nullity of ``∇²L(θ)`` from the ``k`` smallest and ``k`` largest
    Lanczos pairs (:func:`lanczos_extreme`), with Hessian-vector products only.

    **Arguments:**

    - `ls`, `theta`: the landscape and the flat parameters.
    - `k`: Ritz pairs at each end. The index lower bound can reach at most `k`: take `k` above
      the index you expect to certify. ``2k ≥ p`` resolves the whole spectrum (exact counts).
    - `residual_target`: passed to :func:`lanczos_extreme`; only the nullity bound and the
      accuracy of `min_eig`/`max_eig` depend on it (the index lower bound holds at any
      convergence, by interlacing).
    - `grad_norm`: ``||∇L(θ)||₂`` in the zero tolerance (default: computed at ``θ``).
    - `seed`, `max_matvecs`: as in :func:`lanczos_extreme` (default cap 400 HVPs: the bounds
      hold at any convergence; the residuals say how far the pairs are from converged).

    Returns an :class:`InertiaBounds`.
    """
    theta = ls.check_theta(theta)
    k = int(k)
    if k < 1:
        raise InputError(f"`k` must be a positive integer, got {k}; e.g. k=20.")
    if grad_norm is None:
        grad_norm = float(np.linalg.norm(np.asarray(ls.grad(theta))))
    elif not (np.isfinite(grad_norm) and grad_norm >= 0):
        raise InputError(f"`grad_norm` must be a finite number >= 0, got {grad_norm!r}.")
    p = ls.n_params
    spec = lanczos_extreme(ls, theta, k=min(k, p), which="both", residual_target=residual_target,
                           grad_norm=0.0, seed=seed, max_matvecs=max_matvecs)
    lam = np.asarray(spec.eigenvalues, dtype=np.float64)
    scale = max(float(np.max(np.abs(lam))), 0.0) if lam.size else 0.0
    res = np.asarray(spec.residuals, dtype=np.float64) * max(scale, 1e-300)  # absolute
    tol = eigenvalue_tolerance(scale, p, grad_norm=float(grad_norm))
    R = float(np.sqrt(np.sum(res**2)))  # ||R||_F >= ||R||_2: the Kahan matching radius
    complete = bool(spec.complete) or lam.size >= p
    index_lo = int(np.sum(lam < -tol))
    nullity_lo = int(np.sum(np.abs(lam) + R <= tol))
    index_hi = nullity_hi = None
    if complete:
        index_hi = int(np.sum(lam < -tol + R))
        nullity_hi = int(np.sum(np.abs(lam) <= tol + R))
    return InertiaBounds(
        index_lower_bound=index_lo,
        index_upper_bound=index_hi,
        nullity_lower_bound=nullity_lo,
        nullity_upper_bound=nullity_hi,
        min_eig=float(lam[0]),
        max_eig=float(lam[-1]),
        min_eig_residual=float(res[0]),
        max_eig_residual=float(res[-1]),
        residual_norm=R,
        tolerance=tol,
        eigenvalues=lam,
        residuals=res,
        matvecs=int(spec.matvecs),
        complete=complete,
    )
