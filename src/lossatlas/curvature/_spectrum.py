"""Spectra, index and nullity with explicit, derived tolerances."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

_EPS = float(np.finfo(np.float64).eps)


class SpectrumMethod(enum.Enum):
    """How a spectrum was computed."""

    dense = "dense"
    lanczos = "lanczos"


def eigenvalue_tolerance(
    scale: float, n_params: int, *, hessian_error: float = 0.0, grad_norm: float = 0.0
) -> float:
    """The threshold below which ``|λ|`` is indistinguishable from zero.

    ``tol = p · ε · ||H||₂ + δ_H + ||∇L||₂``, where

    - ``p · ε · ||H||₂`` bounds the error of a backward-stable symmetric eigensolver
      (``|λ̂ − λ| ≤ c(p) ε ||H||₂``, with ``c(p) = p`` a conservative growth factor);
    - ``δ_H`` is a measured bound on the error of the Hessian entries themselves (the
      norm of the asymmetry of the autodiff Hessian, or Lanczos residual norms);
    - ``||∇L||₂``: at a point a distance ``δ`` from a critical point, eigenvalues move by
      ``O(||∇³L|| δ)`` while the gradient is ``O(||H|| δ)``; the gradient norm is the
      measurable proxy for how far the point is from exact criticality.
    """
    return float(n_params * _EPS * max(scale, 0.0) + hessian_error + grad_norm)


@dataclasses.dataclass(frozen=True)
class SpectrumSummary:
    """Eigenvalues with their index and nullity at a stated tolerance.

    `eigenvalues` are ascending: all of them for the dense method, the extreme ones found
    for Lanczos (then `index`/`nullity` count only what was found, and `complete` is False).
    For an incomplete spectrum these counts are only bounds: `index` is a lower bound on the
    true index (Cauchy interlacing: the ``i``-th smallest Ritz value is ≥ ``λ_i``), and
    :attr:`nullity_lower_bound` the certified lower bound on the nullity; the record then
    names them ``index_lower_bound`` and ``nullity_lower_bound`` instead of ``index`` and
    ``nullity``.
    """

    eigenvalues: np.ndarray
    index: int
    nullity: int
    tolerance: float
    method: SpectrumMethod
    complete: bool
    eigenvectors: np.ndarray | None = None
    residuals: np.ndarray | None = None
    matvecs: int = 0

    @property
    def scale(self) -> float:
        """``max |λ|``."""
        return float(np.max(np.abs(self.eigenvalues))) if self.eigenvalues.size else 0.0

    @property
    def nullity_lower_bound(self) -> int:
        """Eigenvalues of ``H`` certified in ``[−tol, tol]``.

        The full count for a complete spectrum. Otherwise Kahan's theorem (Parlett, *The
        Symmetric Eigenvalue Problem*, Thm 11.5.2): orthonormal Ritz vectors ``Y`` with residual
        ``R = HY − YΘ`` match as many distinct eigenvalues, each within ``||R||₂ ≤ ||R||_F`` of
        its Ritz value; the Ritz values with ``|θ| + ||R||_F ≤ tol`` (``R`` over the near-zero
        pairs) count. Without residuals, 0.
        """
        if self.complete:
            return int(self.nullity)
        if self.residuals is None:
            return 0
        near = np.abs(self.eigenvalues) <= self.tolerance
        radius = float(np.sqrt(np.sum((np.asarray(self.residuals)[near] * self.scale) ** 2)))
        return int(np.sum(np.abs(self.eigenvalues[near]) + radius <= self.tolerance))

    def to_record(self) -> dict:
        """A JSON-ready dict (eigenvalues ascending); bounds named as bounds when incomplete."""
        counts = ({"index": int(self.index), "nullity": int(self.nullity)} if self.complete else
                  {"index_lower_bound": int(self.index), "nullity_lower_bound": self.nullity_lower_bound})
        out = {
            "eigenvalues": [float(x) for x in self.eigenvalues],
            **counts,
            "tolerance": float(self.tolerance),
            "method": self.method.value,
            "complete": bool(self.complete),
        }
        if self.residuals is not None:
            out["max_relative_residual"] = float(np.max(self.residuals)) if self.residuals.size else 0.0
            out["matvecs"] = int(self.matvecs)
        return out


def summarize(
    eigenvalues,
    tolerance: float,
    method: SpectrumMethod,
    *,
    complete: bool = True,
    eigenvectors=None,
    residuals=None,
    matvecs: int = 0,
) -> SpectrumSummary:
    """Count negative (``λ < −tol``) and null (``|λ| ≤ tol``) eigenvalues."""
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    order = np.argsort(np.asarray(eigenvalues))
    vecs = None if eigenvectors is None else np.asarray(eigenvectors)[:, order]
    res = None if residuals is None else np.asarray(residuals)[order]
    return SpectrumSummary(
        eigenvalues=lam,
        index=int(np.sum(lam < -tolerance)),
        nullity=int(np.sum(np.abs(lam) <= tolerance)),
        tolerance=float(tolerance),
        method=method,
        complete=complete,
        eigenvectors=vecs,
        residuals=res,
        matvecs=matvecs,
    )


def dense_spectrum(H, *, grad_norm: float = 0.0, hessian_error: float | None = None,
                   vectors: bool = False) -> SpectrumSummary:
    """Full eigendecomposition of a dense symmetric Hessian with index and nullity.

    ``hessian_error`` defaults to ``||H − Hᵀ||₂`` of the matrix given (zero if it was
    symmetrised already; pass the measured asymmetry then).
    """
    H = np.asarray(H, dtype=np.float64)
    if hessian_error is None:
        hessian_error = float(np.linalg.norm(H - H.T, 2)) if H.size else 0.0
    Hs = 0.5 * (H + H.T)
    if vectors:
        lam, V = np.linalg.eigh(Hs)
    else:
        lam, V = np.linalg.eigvalsh(Hs), None
    scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    tol = eigenvalue_tolerance(scale, H.shape[0], hessian_error=hessian_error, grad_norm=grad_norm)
    return summarize(lam, tol, SpectrumMethod.dense, eigenvectors=V)
