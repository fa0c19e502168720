"""One call that describes a point of a landscape: loss, gradient and Hessian spectrum."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._errors import InputError
from ..landscape import Landscape
from ._dense import raw_hessian
from ._lanczos import lanczos_extreme
from ._spectrum import SpectrumSummary, dense_spectrum

#: Largest parameter count for which `analyze_point` uses the dense Hessian by default.
DENSE_LIMIT = 3000


@dataclasses.dataclass(frozen=True)
class HessianAnalysis:
    """Loss, gradient norms and Hessian spectrum at one point."""

    n_params: int
    loss: float
    grad_norm_inf: float
    grad_norm_2: float
    spectrum: SpectrumSummary
    hessian: np.ndarray | None = None

    def to_record(self) -> dict:
        """JSON-ready dict (the ``lossatlas.analysis/1`` document body).

        ``hessian.lambda_min`` and ``hessian.lambda_max`` are the extreme eigenvalues (for
        Lanczos, the extreme Ritz values: ``λ_min ≤ lambda_min`` and ``λ_max ≥ lambda_max``
        always, equal to within the residuals once converged). A Lanczos spectrum that is not
        the whole spectrum reports ``index_lower_bound`` and ``nullity_lower_bound`` instead of
        ``index`` and ``nullity``.
        """
        hess = self.spectrum.to_record()
        lam = self.spectrum.eigenvalues
        hess["lambda_min"] = float(lam[0]) if lam.size else None
        hess["lambda_max"] = float(lam[-1]) if lam.size else None
        return {
            "n_params": self.n_params,
            "loss": self.loss,
            "grad_norm_inf": self.grad_norm_inf,
            "grad_norm_2": self.grad_norm_2,
            "hessian": hess,
        }


def analyze_point(
    ls: Landscape, theta, *, method: str = "auto", top_k: int = 5, keep_hessian: bool = False,
    vectors: bool = False,
) -> HessianAnalysis:
    """Loss, ``||∇L||_∞``, ``||∇L||₂`` and the Hessian spectrum with index and nullity.

    ``method="auto"`` uses the dense Hessian (all eigenvalues) up to :data:`DENSE_LIMIT`
    parameters and Lanczos (the `top_k` largest and `top_k` smallest) beyond.
    """
    theta = ls.check_theta(theta)
    if method not in ("auto", "dense", "lanczos"):
        raise InputError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}.")
    loss, g = ls.value_and_grad(theta)
    g = np.asarray(g)
    gn2 = float(np.linalg.norm(g))
    use_dense = method == "dense" or (method == "auto" and ls.n_params <= DENSE_LIMIT)
    H = None
    if use_dense:
        Hraw = raw_hessian(ls, theta)
        asym = float(np.linalg.norm(Hraw - Hraw.T, 2))
        H = 0.5 * (Hraw + Hraw.T)
        spec = dense_spectrum(H, hessian_error=asym, vectors=vectors)
    else:
        spec = lanczos_extreme(ls, theta, k=top_k, which="both")
    return HessianAnalysis(
        n_params=ls.n_params,
        loss=float(loss),
        grad_norm_inf=float(np.max(np.abs(g))) if g.size else 0.0,
        grad_norm_2=gn2,
        spectrum=spec,
        hessian=H if keep_hessian else None,
    )
