"""Matrix-free extreme eigenpairs by Lanczos with full reorthogonalisation, compiled end to end.

The operator is the Hessian-vector product ``v ↦ ∇²L(θ) v`` (forward-over-reverse); the dense
Hessian is never formed. The Lanczos steps run inside one compiled loop (``lax.fori_loop``),
so no Python runs between matrix-vector products; between chunks of steps the small
tridiagonal matrix ``T_m`` is diagonalised on the host and the Ritz bounds
``|β_m s_{m,i}|`` (the exact residual norms of the Ritz pairs when the basis is orthonormal)
decide whether to continue. The Krylov space is grown and continued, never restarted, so no
work is thrown away.

Every step is orthogonalised twice against all previous Lanczos vectors (classical
Gram-Schmidt twice, "twice is enough", Kahan-Parlett), which keeps the basis orthonormal to
working precision and the Ritz bounds honest. On an exact breakdown (``β_j ≈ 0``: the Krylov
space is invariant) the iteration continues from a fresh random vector orthogonal to the
basis, so eigenvalues outside the starting vector's invariant subspace are still found.

Returned pairs are then *certified*: ``||Hy − λy||₂`` is computed from Hessian-vector
products actually evaluated, ``H y = Σ_j s_j (H q_j)`` with the stored products ``H q_j`` of
the basis vectors (linearity of the Hessian; no assumption on the recurrence or on the
orthogonality of the basis), and reported relative to the spectral scale. By the
Bauer-Fike/Weyl bound for symmetric matrices, each returned ``λ`` is within its residual norm of
a true eigenvalue (and within ``residual² / gap`` once the gap to the rest of the spectrum is
known). Storing the products doubles the memory of the Krylov basis (two ``m × p`` buffers)
and saves ``k`` HVPs per call; above ``_PRODUCTS_MAX_BYTES`` they are not stored and the
residuals are computed with one explicit HVP per returned pair instead.

The primal part of the HVP (a forward and a backward pass at ``θ``) is linearised once per
call; each step then costs only the tangent part, and the reorthogonalisation reads only the
rows filled so far.

Repeated eigenvalues: in exact arithmetic a single-vector Krylov space (ARPACK's included)
holds one vector per distinct eigenvalue, so it breaks down after as many steps as there are
distinct eigenvalues. Here the breakdown starts a new block, and the iteration goes on while
the newest block still changes the wanted values; that finds every copy when the breakdown
comes before convergence (few distinct eigenvalues, e.g. Kronecker-structured Hessians). A
repeated eigenvalue in a spectrum with many distinct ones is still found once (its copies
would appear only through round-off), as with ARPACK: use the dense path
(:func:`dense_hessian`) when multiplicities matter and the Hessian fits.
"""

from __future__ import annotations

import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla

from .._errors import InputError
from ..landscape import Landscape
from ._spectrum import SpectrumMethod, SpectrumSummary, eigenvalue_tolerance, summarize

_EPS = float(np.finfo(np.float64).eps)
#: ``β_j ≤ _BREAKDOWN · ||H||``: the basis spans an invariant subspace to this accuracy; the
#: coupling is dropped (perturbing residuals by at most this much) and a fresh vector starts a
#: new block. Residual targets below it are refused.
_BREAKDOWN = 1e-12
#: First Krylov buffer (number of Lanczos vectors); doubled while the Ritz bounds miss.
_FIRST_BUFFER = 32


#: Bytes per block of rows of the reorthogonalisation: each step reads only the blocks holding
#: Lanczos vectors so far (a dynamic trip count), so its cost grows with the step, not with the
#: buffer; blocks of at least 8 and at most 64 rows (small p: few blocks, few loop iterations).
_BLOCK_BYTES = 2**18


#: The products ``H q_j`` are stored (for residuals at no further HVP) when their buffer for
#: 512 steps fits in this many bytes; beyond, the residuals are computed with ``k`` explicit HVPs.
_PRODUCTS_MAX_BYTES = 2**28


#: Host cost of one convergence check (dispatch, synchronisation, tridiagonal eigensolve),
#: in floating-point operations of the Hessian-vector product it displaces (about 50 µs).
_CHECK_FLOPS = 2.5e6
#: Fixed cost of one Lanczos step besides its flops (dispatch-free, inside the compiled loop).
_STEP_FLOPS_FIXED = 1e6


def _step_flops(ls: Landscape) -> float:
    """Floating-point operations of one Hessian-vector product, roughly: 12 per multiply-add of
    the forward pass on the data (forward-over-reverse: the tangent forward and backward
    passes, two products per layer each), or the pairwise kernel terms of a population loss.
    Only used to space the convergence checks (never in the certification of a result)."""
    widths = ls.model.widths
    per_sample = sum(widths[i] * widths[i + 1] for i in range(len(widths) - 1))
    if ls.data is not None:
        return 12.0 * ls.data.n_samples * per_sample + _STEP_FLOPS_FIXED
    units = sum(widths[1:-1]) + (sum(ls.teacher.widths[1:-1]) if ls.teacher is not None else 0)
    return 12.0 * units * units * widths[0] + _STEP_FLOPS_FIXED


def _check_stride(ls: Landscape) -> int:
    """Lanczos steps between convergence checks once the iteration runs: about one check per
    step when a step costs far more than a check (large networks, where an unneeded step is
    expensive), more steps per check when checks dominate (small networks). Minimises
    ``checks · c + overshoot · t`` (overshoot ≈ half a stride) for a typical remaining run of
    ~16 steps: ``stride ≈ √(2 · 16 · c / t)``."""
    return int(np.clip(round(np.sqrt(32.0 * _CHECK_FLOPS / _step_flops(ls))), 1, 8))


def _block_rows(p: int) -> int:
    return int(np.clip(2 ** int(np.log2(max(_BLOCK_BYTES // (8 * p), 1))), 8, 64))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _linearize(leaves, treedef, static, theta):
    """The HVP operator ``u ↦ ∇²L(θ) u`` as a pytree (``jax.tree_util.Partial``): the
    forward-over-reverse linearisation of the gradient at ``θ``, whose primal part (one forward
    and backward pass) is computed here once per call of :func:`lanczos_extreme` instead of once
    per compiled chunk of steps."""
    ls = eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)
    return jax.linearize(jax.grad(ls.objective), theta)[1]


@functools.partial(jax.jit, donate_argnums=(1, 2, 3, 4))
def _extend(hv, Q, W, a, b, j0, j1, seed):
    """Lanczos steps ``j0 .. j1-1`` on the buffers (rows beyond the current step are zero).

    Row ``j+1`` of ``Q`` receives the next Lanczos vector, row ``j`` of ``W`` the product
    ``H q_j`` (kept for the residuals of the Ritz pairs), ``a[j]``/``b[j]`` the diagonal and
    off-diagonal of ``T``. On breakdown (``b[j]`` at round-off level) ``b[j]`` is set to zero and
    a random vector orthogonal to the basis continues the iteration. The buffers are donated:
    updated in place, not copied, on every call.
    """

    B = _block_rows(Q.shape[1])
    key = jax.random.PRNGKey(seed)

    def project(Q, w, rows):
        # Classical Gram-Schmidt by blocks of rows, over the rows filled so far only.
        def blk(i, w):
            Qb = jax.lax.dynamic_slice_in_dim(Q, i * B, B)
            return w - Qb.T @ (Qb @ w)

        return jax.lax.fori_loop(0, (rows + B - 1) // B, blk, w)

    def orth(Q, w, rows):
        # Repeated only when the first pass cancelled most of w (the DGKS test
        # ||w'|| < ||w||/√2; "twice is enough", Kahan-Parlett).
        w1 = project(Q, w, rows)
        return jax.lax.cond(jnp.linalg.norm(w1) < 0.7071 * jnp.linalg.norm(w),
                            lambda v: project(Q, v, rows), lambda v: v, w1)

    def fresh(Q, j):
        r = orth(Q, jax.random.normal(jax.random.fold_in(key, j), (Q.shape[1],), dtype=Q.dtype), j + 1)
        return orth(Q, r / jnp.linalg.norm(r), j + 1)

    def body(j, carry):
        Q, W, a, b, scale = carry
        hq = hv(Q[j])
        aj = jnp.vdot(Q[j], hq)
        scale = jnp.maximum(scale, jnp.abs(aj) + jnp.linalg.norm(hq))
        # the three-term recurrence, then one full reorthogonalisation pass (two if needed)
        b_prev = jnp.where(j > 0, b[j - 1], 0.0)
        w = orth(Q, hq - aj * Q[j] - b_prev * Q[j - 1], j + 1)
        bj = jnp.linalg.norm(w)
        broke = bj <= _BREAKDOWN * scale
        w = jax.lax.cond(broke, fresh, lambda Q, j: w, Q, j)
        nrm = jnp.linalg.norm(w)
        q = jnp.where(nrm > 0, w / jnp.where(nrm > 0, nrm, 1.0), 0.0)
        if W.shape[0]:  # static: the products are stored
            W = W.at[j].set(hq)
        return Q.at[j + 1].set(q), W, a.at[j].set(aj), b.at[j].set(jnp.where(broke, 0.0, bj)), scale

    Q, W, a, b, _ = jax.lax.fori_loop(j0, j1, body, (Q, W, a, b, jnp.zeros((), dtype=Q.dtype)))
    return Q, W, a, b


def _split(ls: Landscape):
    """``ls`` as (array leaves, treedef, static part): flattened once per call of
    :func:`lanczos_extreme` instead of once per compiled call (which ``filter_jit`` would do)."""
    dyn, static = eqx.partition(ls, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(dyn)
    return leaves, treedef, static


def hvp_operator(ls: Landscape, theta):
    """The Hessian-vector product ``u ↦ ∇²L(θ) u`` at a fixed ``θ``, linearised once (one forward
    and backward pass here; each product then costs about one more), as a jitted pytree callable
    that compiled loops can take as an argument."""
    return _linearize(*_split(ls), jnp.asarray(theta))


@jax.jit
def _ritz_pairs(Q, W, S, lam):
    """Ritz vectors ``Y = Qᵀ S`` (normalised) and their residuals ``||H y_i − λ_i y_i||₂``.

    ``H Y = Wᵀ S`` by linearity of the Hessian: the residuals come from Hessian-vector products
    actually computed (those of the basis vectors), not from the Lanczos recurrence, so they
    hold whatever the orthogonality of the basis, at no further HVP. ``S`` is zero-padded to the
    buffer's rows, so shapes (and compilations) depend only on the buffer size.
    """
    Y = Q[: W.shape[0]].T @ S
    return _residuals(Y, W.T @ S, lam)


@jax.jit
def _ritz_pairs_explicit(hv, Q, S, lam):
    """As :func:`_ritz_pairs` when the products were not stored: one HVP per Ritz vector."""
    Y = Q[: S.shape[0]].T @ S
    return _residuals(Y, jax.lax.map(hv, Y.T).T, lam)


def _residuals(Y, HY, lam):
    nrm = jnp.linalg.norm(Y, axis=0)
    return Y / nrm, jnp.linalg.norm(HY - Y * lam, axis=0) / nrm


@functools.partial(jax.jit, static_argnums=(1, 2))
def _buffers(v0, cap: int, store: bool):
    """Empty buffers for ``cap`` steps, ``v0`` the first Lanczos vector (``W`` has no rows
    unless the products are stored)."""
    p = v0.shape[0]
    Q = jnp.zeros((cap + 1, p), dtype=v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    W = jnp.zeros((cap if store else 0, p), dtype=v0.dtype)
    return Q, W, jnp.zeros(cap, dtype=v0.dtype), jnp.zeros(cap, dtype=v0.dtype)


@functools.partial(jax.jit, static_argnums=4)
def _grow(Q, W, a, b, cap: int):
    """The buffers enlarged to ``cap`` steps (contents kept)."""

    def pad(x, rows):
        return jnp.zeros((rows,) + x.shape[1:], dtype=x.dtype).at[: x.shape[0]].set(x)

    return pad(Q, cap + 1), pad(W, cap if W.shape[0] else 0), pad(a, cap), pad(b, cap)


def _wanted(n: int, k: int, which: str) -> np.ndarray:
    """Indices (into ascending Ritz values) of the wanted pairs."""
    idx = np.arange(n)
    if which == "largest":
        return idx[-k:]
    if which == "smallest":
        return idx[:k]
    return np.unique(np.concatenate([idx[:k], idx[-k:]]))


def lanczos_extreme(
    ls: Landscape,
    theta,
    k: int = 5,
    *,
    which: str = "both",
    residual_target: float = 1e-10,
    grad_norm: float = 0.0,
    seed: int = 0,
    max_matvecs: int | None = None,
    max_time: float | None = None,
) -> SpectrumSummary:
    """The ``k`` largest and/or ``k`` smallest (most negative) eigenpairs of ``∇²L(θ)``.

    **Arguments:**

    - `ls`, `theta`: the landscape and the flat parameters.
    - `k`: how many pairs at each wanted end.
    - `which`: ``"largest"``, ``"smallest"`` or ``"both"`` (one Krylov space serves both ends).
    - `residual_target`: required ``max ||Hv − λv||₂ / s``, with ``s`` the largest ``|λ|``
      found. Each returned eigenvalue is then within ``residual_target · s`` of a true one
      (Weyl's bound); the default ``1e-10`` gives eigenvalues to about ``1e-15`` relative
      accuracy when they are separated. Must lie in ``[1e-12, 1)``. Convergence is accepted
      when the Ritz bounds meet it *and* the wanted Ritz values moved by less than it since
      the previous check: a cluster of eigenvalues closer than the target can otherwise pass
      as one Ritz value, and the next eigenvalue would be returned in place of a copy. (As
      with every Krylov method, an eigenvalue the start vector is nearly orthogonal to can
      still be missed; loose targets make that likelier.)
    - `grad_norm`: ``||∇L(θ)||₂``, added to the zero tolerance (see
      :func:`eigenvalue_tolerance`).
    - `seed`: seed of the random starting vector.
    - `max_matvecs`: cap on Hessian-vector products (default: none; the iteration then stops
      at the latest when the Krylov space is the whole parameter space, where it is exact).
    - `max_time`: wall-clock budget in seconds (default: none): blocks of steps are shortened to
      what the time per step so far leaves, and once it is spent the pairs found so far are
      returned, as with `max_matvecs` (the first ``max(2n + 1, 20)`` steps, ``n`` the number of
      wanted pairs, are always taken).

    Returns a :class:`SpectrumSummary` with ``method = lanczos``, the certified relative
    `residuals`, the `matvecs` used (one per Lanczos step, plus ``k`` for the residuals when
    ``p`` is so large that the products are not stored), and
    ``complete = False`` unless the pairs cover the whole spectrum. If `max_matvecs` (or
    `max_time`) stops the iteration first, the residuals say how far the pairs are from
    converged.
    """
    t_start = time.perf_counter()
    theta = ls.check_theta(theta)
    p = ls.n_params
    if which not in ("largest", "smallest", "both"):
        raise InputError(f"`which` must be 'largest', 'smallest' or 'both', got {which!r}.")
    k = int(k)
    if k < 1:
        raise InputError(f"k must be a positive integer, got {k}.")
    if not (_BREAKDOWN <= float(residual_target) < 1.0):
        raise InputError(f"residual_target must lie in [{_BREAKDOWN:g}, 1), got {residual_target!r}; "
                         "float64 round-off makes smaller residuals unattainable.")
    if max_matvecs is not None and int(max_matvecs) < 1:
        raise InputError(f"max_matvecs must be a positive integer, got {max_matvecs!r}.")
    if max_time is not None and not (float(max_time) >= 0 and np.isfinite(float(max_time))):
        raise InputError(f"max_time must be a finite number of seconds >= 0, got {max_time!r}.")
    n_wanted = k if which != "both" else 2 * k
    if p <= n_wanted + 2:
        return _dense_small(ls, theta, k, which, grad_norm)

    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(p)
    key = np.int64(rng.integers(2**31))
    cap = _buffer_rows(min(p, max(_FIRST_BUFFER, 3 * n_wanted)), p)
    store = 8 * p * min(p, 512) <= _PRODUCTS_MAX_BYTES
    Q, W, a, b = _buffers(v0, cap, store)
    limit = p if max_matvecs is None else max(min(p, int(max_matvecs) - (0 if store else n_wanted)), 1)
    m = matvecs = 0
    prev = None  # wanted Ritz values at the previous check
    target_ritz = float(residual_target)
    history: list[tuple[int, float]] = []
    stride = _check_stride(ls)
    hv = _linearize(*_split(ls), theta)
    per = 0.0  # seconds per Lanczos step so far (compilation included: an overestimate)
    while True:
        m1 = min(limit, _first_size(n_wanted) if m == 0 else _next_size(m, history, target_ritz, stride))
        if max_time is not None and m > 0:  # a block that would end past the budget is shortened
            left = float(max_time) - (time.perf_counter() - t_start)
            m1 = min(m1, m + max(1, int(left / max(per, 1e-12))))
        if m1 > cap:  # doubling: few distinct buffer shapes, so few compilations
            cap = _buffer_rows(min(p, cap * 2 ** int(np.ceil(np.log2(m1 / cap)))), p)
            Q, W, a, b = _grow(Q, W, a, b, cap)
        Q, W, a, b = _extend(hv, Q, W, a, b, np.int64(m), np.int64(m1), key)
        matvecs += m1 - m
        m = m1
        an, bn = np.asarray(a)[:m], np.asarray(b)[:m]  # slice on the host: no per-m compiles
        lam, S = sla.eigh_tridiagonal(an, bn[:-1], check_finite=False)
        sel = _wanted(m, min(k, m), which)
        scale = max(float(np.max(np.abs(lam))), 1e-300)
        bound = np.abs(bn[-1] * S[-1, sel])
        history.append((m, float(np.log(max(np.max(bound) / scale, 1e-300)))))
        per = (time.perf_counter() - t_start) / m
        done = m >= limit or (max_time is not None and time.perf_counter() - t_start + per >= float(max_time))
        # After a breakdown the basis spans an invariant subspace: its Ritz values are exact,
        # but copies of repeated eigenvalues lie outside it. Go on while the newest block still
        # changes the wanted values (H = 0, found by the first breakdown, ends it at once).
        more = scale > 1e-300 and _newest_block_matters(lam, an, bn, k, which, residual_target * scale)
        # A cluster of eigenvalues closer than the target can be represented by one Ritz value
        # whose residual is below the target (it is within the target of each of them) while
        # the next eigenvalue down takes its place among the wanted ones. Such a Ritz value
        # splits as the space grows, so convergence is accepted only when the wanted values
        # also moved by less than the target since the previous check.
        lam_w = lam[sel]
        stable = prev is not None and prev.shape == lam_w.shape and bool(
            np.max(np.abs(lam_w - prev)) <= residual_target * scale)
        prev = lam_w
        if (np.all(bound <= target_ritz * scale) and stable and not more) or done:
            S_pad = np.zeros((cap, len(sel)))
            S_pad[:m] = S[:, sel]
            if store:
                Y, res = _ritz_pairs(Q, W, jnp.asarray(S_pad), jnp.asarray(lam_w))
            else:
                Y, res = _ritz_pairs_explicit(hv, Q, jnp.asarray(S_pad), jnp.asarray(lam_w))
                matvecs += len(sel)
            Y, res = np.asarray(Y), np.asarray(res) / scale
            if np.max(res) <= residual_target or done:
                break
            target_ritz *= 0.1  # the bounds were optimistic (loss of orthogonality); tighten
    tol = eigenvalue_tolerance(scale, p, hessian_error=float(np.max(res)) * scale, grad_norm=grad_norm)
    return summarize(lam_w, tol, SpectrumMethod.lanczos, complete=len(sel) >= p, eigenvectors=Y,
                     residuals=res, matvecs=matvecs)


def _newest_block_matters(lam_all, a, b, k: int, which: str, tol: float) -> bool:
    """Whether the Lanczos block begun after the last breakdown (``b_j = 0``) can still add
    wanted eigenvalues: always right after a breakdown, otherwise if dropping that block changes
    the wanted Ritz values (``lam_all``: those of the whole ``T``) by more than ``tol``. With no
    breakdown, nothing to check."""
    if b[-1] == 0.0:
        return True
    cuts = np.flatnonzero(b[:-1] == 0.0)
    if cuts.size == 0:
        return False
    c = int(cuts[-1]) + 1
    lam_old = sla.eigh_tridiagonal(a[:c], b[: c - 1], eigvals_only=True) if c > 1 else a[:1]
    if lam_old.size < (2 * k if which == "both" else k):
        return True
    old, new = lam_old[_wanted(lam_old.size, k, which)], lam_all[_wanted(lam_all.size, k, which)]
    return bool(np.max(np.abs(old - new)) > tol)


def _buffer_rows(n: int, p: int) -> int:
    """``n`` rounded up to whole blocks of rows of the reorthogonalisation."""
    B = _block_rows(p)
    return -(-n // B) * B


def _first_size(n_wanted: int) -> int:
    """Steps before the first convergence check: ARPACK's default Krylov dimension
    ``max(2n + 1, 20)`` (as in ``scipy.sparse.linalg.eigsh``); few problems converge in fewer,
    and each earlier check costs a host round trip."""
    return max(2 * n_wanted + 1, 20)


def _next_size(m: int, history: list[tuple[int, float]], target: float, stride: int) -> int:
    """The next Krylov size: extrapolate the geometric decay of the largest Ritz bound.

    The log bound falls at some rate per step (measured over the last four steps or more, so
    that checks one step apart do not make it noisy); jump to where that rate meets the target,
    by at most ``m/2`` steps, or ``m/4`` when steps are expensive (``stride == 1``, see
    :func:`_check_stride`: an overshoot costs more than a check). Before the decay sets in, grow
    by ``stride`` steps, at most a quarter.
    """
    if len(history) >= 2:
        m1, r1 = history[-1]
        m0, r0 = next(((a, r) for a, r in reversed(history[:-1]) if m1 - a >= 4), history[0])
        slope = (r1 - r0) / max(m1 - m0, 1)
        if slope < 0 and r1 < np.log(1e-2):
            steps = int(np.ceil((np.log(target) - r1) / slope))
            return m + int(np.clip(steps, 1, max(2, m // (4 if stride == 1 else 2))))
    return m + max(1, min(stride, max(2, m // 4)))


def _dense_small(ls, theta, k, which, grad_norm):
    """Too few parameters for a Krylov method to pay: the dense matrix is cheap and exact."""
    from ._dense import dense_hessian

    p = ls.n_params
    H = dense_hessian(ls, theta)
    lam, V = np.linalg.eigh(H)
    sel = _wanted(p, min(k, p), which)
    lam, V = lam[sel], V[:, sel]
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    res = np.linalg.norm(H @ V - V * lam, axis=0) / scale
    tol = eigenvalue_tolerance(scale, p, grad_norm=grad_norm)
    return summarize(lam, tol, SpectrumMethod.lanczos, complete=len(sel) == p,
                     eigenvectors=V, residuals=res, matvecs=p)
