"""Matrix-free extreme eigenpairs by implicitly restarted Lanczos (ARPACK via SciPy).

The operator is the jitted Hessian-vector product; the dense Hessian is never formed.
Every returned pair carries its measured residual ``||Hv − λv||₂`` relative to the spectral
scale, so accuracy is certified, not assumed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from .._errors import InputError
from ..landscape import Landscape
from ._spectrum import SpectrumMethod, SpectrumSummary, eigenvalue_tolerance, summarize


class _CountingHVP:
    def __init__(self, ls: Landscape, theta):
        self.ls, self.theta, self.count = ls, theta, 0

    def __call__(self, v):
        import jax.numpy as jnp

        self.count += 1
        return np.asarray(self.ls.hvp(self.theta, jnp.asarray(np.ravel(v), dtype=jnp.float64)))


def lanczos_extreme(
    ls: Landscape,
    theta,
    k: int = 5,
    *,
    which: str = "both",
    residual_target: float = 1e-10,
    grad_norm: float = 0.0,
    seed: int = 0,
    max_restarts: int = 3,
) -> SpectrumSummary:
    """The ``k`` largest and/or ``k`` smallest (most negative) eigenpairs of ``∇²L(θ)``.

    **Arguments:**

    - `which`: ``"largest"``, ``"smallest"`` or ``"both"``.
    - `residual_target`: required ``max ||Hv − λv||₂ / s`` with ``s`` the largest ``|λ|``
      found; if ARPACK's answer misses it, the Krylov space is enlarged and the solve repeated.

    Returns a :class:`SpectrumSummary` with ``method = lanczos`` and ``complete = False``
    (unless the ``2k`` pairs cover the whole spectrum), its `residuals` and `matvecs` count.
    """
    theta = ls.check_theta(theta)
    p = ls.n_params
    if which not in ("largest", "smallest", "both"):
        raise InputError(f"`which` must be 'largest', 'smallest' or 'both', got {which!r}.")
    k = int(k)
    if k < 1:
        raise InputError(f"k must be a positive integer, got {k}.")
    op_fn = _CountingHVP(ls, theta)
    if p <= 2 * k + 2:
        # Too small for ARPACK: the dense matrix is cheap and exact.
        from ._dense import dense_hessian

        H = dense_hessian(ls, theta)
        lam, V = np.linalg.eigh(H)
        sel = _select(np.arange(p), k, which)
        lam, V = lam[sel], V[:, sel]
        res = np.linalg.norm(H @ V - V * lam, axis=0) / max(np.max(np.abs(lam)), 1e-300)
        tol = eigenvalue_tolerance(float(np.max(np.abs(lam))), p, grad_norm=grad_norm)
        return summarize(lam, tol, SpectrumMethod.lanczos, complete=len(sel) == p,
                         eigenvectors=V, residuals=res, matvecs=p)
    op = spla.LinearOperator((p, p), matvec=op_fn, dtype=np.float64)
    rng = np.random.default_rng(seed)
    modes = {"largest": ["LA"], "smallest": ["SA"], "both": ["LA", "SA"]}[which]
    lams, vecs = [], []
    for mode in modes:
        ncv = min(p, max(2 * k + 1, 20))
        for _attempt in range(max_restarts + 1):
            v0 = rng.standard_normal(p)
            lam, V = spla.eigsh(op, k=k, which=mode, tol=0.0, ncv=ncv, v0=v0, maxiter=50 * p)
            HV = np.stack([op_fn(V[:, j]) for j in range(V.shape[1])], axis=1)
            scale = max(float(np.max(np.abs(lam))), 1e-300)
            res = np.linalg.norm(HV - V * lam, axis=0) / scale
            if np.max(res) <= residual_target or ncv >= p:
                break
            ncv = min(p, 2 * ncv)
        lams.append(lam)
        vecs.append(V)
    lam = np.concatenate(lams)
    V = np.concatenate(vecs, axis=1)
    # Deduplicate if the two ends overlap (small p).
    lam, idx = np.unique(np.round(lam, 14), return_index=True)
    lam = np.concatenate(lams)[idx]
    V = V[:, idx]
    HV = np.stack([op_fn(V[:, j]) for j in range(V.shape[1])], axis=1)
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    res = np.linalg.norm(HV - V * lam, axis=0) / scale
    tol = eigenvalue_tolerance(scale, p, hessian_error=float(np.max(res)) * scale,
                               grad_norm=grad_norm)
    return summarize(lam, tol, SpectrumMethod.lanczos, complete=len(lam) >= p, eigenvectors=V,
                     residuals=res, matvecs=op_fn.count)


def _select(idx, k, which):
    if which == "largest":
        return idx[-k:]
    if which == "smallest":
        return idx[:k]
    return np.unique(np.concatenate([idx[:k], idx[-k:]]))
