"""Newton-MR: a matrix-free Newton method for critical points of any index.

Each outer step solves ``H s ≈ −g`` (``H = ∇²L(θ)``, ``g = ∇L(θ)``) by MINRES on the Hessian
operator — Hessian-vector products only, the dense Hessian is never formed (Roosta, Liu, Xu &
Mahoney, "Newton-MR: inexact Newton method with minimum residual sub-problem solver", EURO J.
Comput. Optim. 2022). **The step** is chosen in this order:

1. the full MINRES step ``s``, when it decreases ``½||∇L||²`` by at least a quarter of what its
   linear model predicts (``||Hs||²``): the Newton region of a critical point, minimum, saddle
   or maximum alike — whatever the step does to the loss;
2. otherwise (`descent`, the default) a step of Newton-MR for nonconvex *minimisation* (Liu &
   Roosta, "A Newton-MR algorithm with complexity guarantees for nonconvex smooth unconstrained
   optimization", 2022): along the direction of non-positive curvature MINRES met (the residual
   ``r_{k−1}`` with ``r_{k−1}ᵀ H r_{k−1} ≤ 0`` and ``⟨g, r_{k−1}⟩ = −||r_{k−1}||² < 0``) with a
   forward/backward tracking line search on the loss, or, without one, along ``s`` itself (a
   descent direction of the loss until non-positive curvature is met) with Armijo backtracking
   on the loss. Once such a step was taken the run is minimising: the next inner solves stop at
   the first non-positive curvature (cheap directions far from a critical point), the
   following ones are loose (forcing term `eta_max`) until a Newton step is accepted again;
3. otherwise (or without `descent`) Roosta et al.'s Armijo backtracking on ``½||∇L||²``
   along ``s`` (``⟨Hg, s⟩ = −||Hs||² < 0`` whatever the curvature).

Far from any critical point the line search on ``½||∇L||²`` alone can stall for hundreds of
steps (measured at 85 002 parameters from an Adam start: ``||∇L||_∞`` 2.2e-4 → 1.8e-4 in eight
steps of 1000 inner iterations; the gradient-flat regions of Frye et al., 2021), and it is drawn
to saddles as much as to minima; the descent steps make the run a minimiser there, while a start
in the Newton region of a saddle still converges to that saddle. ``stats['step_kinds']`` says
which step each one was (``"newton"``, ``"descent"``, ``"npc"``, ``"merit"``).

**The inner solver** (:func:`minres`) is MINRES (Paige & Saunders 1975) on a Lanczos basis kept
orthonormal by full reorthogonalisation, with the Givens-rotation recurrences of the
Paige-Saunders implementation for the residual norms ``||r_k||`` and ``||H r_k||``. The
solution is taken, when the iteration stops, as the *minimum-length* least-squares solution
of the projected problem ``min ||β₁e₁ − T̄_k y||`` (a truncated SVD of the small
``(k+1) × k`` tridiagonal ``T̄_k``), ``s = V_k y``. That is the iterate of MINRES-QLP (Choi,
Paige & Saunders, SISC 2011), which computes the same minimum-length solution by a QLP
factorisation of ``T̄_k``: on a singular, incompatible system (``g`` not in the range of
``H``, as near a degenerate critical point) it converges to the pseudo-inverse solution
``−H⁺g`` instead of growing along the kernel. Storing the basis costs up to ``max_inner · p``
floats (only the rows used are touched: 240 MB for 350 iterations at 85 000 parameters; rows
beyond ``_BASIS_MAX_BYTES`` are never allowed) and buys orthogonality; the Lanczos relation
``H V_k = V_{k+1} T̄_k`` also gives ``H s`` for the line search without a further HVP.

**Non-positive curvature** is detected as in Liu & Roosta ("MINRES: from negative curvature
detection to monotonicity properties", SIOPT 2022): ``r_{k−1}ᵀ H r_{k−1} ≤ 0`` exactly when
``c_{k−1} γ_k^{(1)} ≥ 0`` in the recurrences; ``r_{k−1} = V_k (β₁e₁ − T̄_{k−1} y_{k−1})`` is
formed from the stored basis when a descent step may need it. Solves in the Newton region go on
through it (a saddle's Newton step needs the whole Krylov space) and the certificate is recorded
(``stats['npc_steps']``, and at the end the smallest Ritz value of the last solve, ``< 0``
proving index ≥ 1 by interlacing).

**Inexactness** (Eisenstat & Walker 1996, choice 2): MINRES stops when
``||r|| ≤ η ||g||`` or ``||H r|| ≤ 1e-8 η ||H|| ||r||`` (the least-squares optimality test of
MINRES-QLP), with the forcing term ``η_k = min(η_max, 0.9 (||g_k|| / ||g_{k−1}||)²)`` safeguarded
from falling too fast and never tighter than needed for `gtol`: the outer convergence is
superlinear while an early step stays cheap. At most `max_inner` (and at most ``p``, and at
most what ``_BASIS_MAX_BYTES`` holds) iterations per solve. The cap matters on large,
ill-conditioned nets: at 85 002 parameters (digits, λ = 0, from an Adam start; benchmarks/
results/newton_mr.json part c) inner solves took up to 939 iterations (the
last four long ones 314–642), and the run reached ``||∇L||_∞ = 3.4e-11`` in 31 steps (5029 HVPs, 507 s on one core).

**Stops:** ``||∇L||_∞ ≤ max(gtol, round-off floor)`` (the floor is measured by
:func:`gradient_floor` from a Lanczos estimate of ``||H||``: no dense Hessian), the step budget
(``RESULTS.max_steps_reached``) or the time budget (``RESULTS.time_limit_reached``), NaN/inf,
escapes to infinity (as in the dense solvers), and stalls with the gradient nearly in the Hessian's kernel
(``||Hg|| / (||H|| ||g||) < flat_threshold``, one HVP): ``RESULTS.gradient_flat``.

At a converged point the inertia is certified matrix-free by
:func:`lossatlas.curvature.lanczos_inertia_bounds` (``stats['inertia']``; index and nullity
as *bounds*), unless ``inertia_k = 0``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla

from .._errors import InputError
from .._progress import Budget
from ..curvature import hvp_operator, lanczos_inertia_bounds
from ..landscape import Landscape
from ._newton import AbstractCriticalPointSolver, _finish, _Tracker
from ._results import RESULTS, CriticalPointSolution

_EPS = float(np.finfo(np.float64).eps)
#: ``β_{k+1} ≤ _BREAKDOWN · ||T||``: the Krylov space is invariant (exact termination).
_BREAKDOWN = 1e-14
#: Memory for the MINRES basis (``rows · p`` float64): caps the inner iterations of very large nets.
_BASIS_MAX_BYTES = 2**30
#: The least-squares stopping test of the inner solves is ``||H r|| ≤ η · _LS_FACTOR · ||H|| ||r||``:
#: a residual left only in directions of curvature below ``~1e-8 ||H||`` (√ε) counts as in the
#: kernel. With ``η`` alone (0.5 early on) the test passes as soon as the residual lies in the
#: small-curvature directions of an ill-conditioned Hessian, which are the very directions a
#: Newton step must resolve (measured on a 1210-parameter digits net: 2 inner iterations per
#: step and no progress).
_LS_FACTOR = 1e-8


# ----------------------------------------------------------------------------- MINRES
@dataclasses.dataclass(frozen=True)
class MinresResult:
    """Outcome of :func:`minres` on ``A x ≈ b``.

    **Fields:** `x` (minimum-length least-squares solution over the Krylov space), `Ax`
    (``A x`` from the Lanczos relation, no extra product), `iterations` (= matrix-vector
    products), `residual_norm` (``||b − A x||₂``), `ls_residual_norm` (``||A(b − A x)||₂``,
    recurrence estimate), `reason` (``"residual"``, ``"least_squares"``, ``"invariant"``,
    ``"max_iterations"``, ``"zero_rhs"``, ``"npc"``: stopped at non-positive curvature,
    ``"time_limit"``: stopped by `expired`),
    `npc_iteration` (first iteration ``k`` at which ``r_{k−1}ᵀ A r_{k−1} ≤ 0`` was detected,
    or ``None``), `min_ritz` / `max_ritz` (extreme
    eigenvalues of ``T_k``; by interlacing ``λ_min(A) ≤ min_ritz`` and ``λ_max(A) ≥ max_ritz``),
    `npc_direction` (the residual ``r_{k−1}`` at that detection when asked for, else ``None``:
    ``r_{k−1}ᵀ A r_{k−1} ≤ 0`` and ``⟨r_{k−1}, b⟩ = ||r_{k−1}||²``, so for ``b = −∇L`` a
    direction of descent and non-positive curvature, Liu & Roosta 2022) and `npc_curvature`
    (its Rayleigh quotient ``rᵀAr / rᵀr``, from the projected matrix).
    """

    x: np.ndarray
    Ax: np.ndarray
    iterations: int
    residual_norm: float
    ls_residual_norm: float
    reason: str
    npc_iteration: int | None
    min_ritz: float
    max_ritz: float
    npc_direction: np.ndarray | None = None
    npc_curvature: float | None = None

    @property
    def norm_estimate(self) -> float:
        """``max(|min_ritz|, |max_ritz|) ≤ ||A||₂``."""
        return max(abs(self.min_ritz), abs(self.max_ritz))


def _sym_givens(a: float, b: float) -> tuple[float, float, float]:
    """``(c, s, r)`` with ``[c s; s −c] [a; b] = [r; 0]``, ``r ≥ 0`` (SymOrtho, Choi et al.)."""
    if b == 0.0:
        return (1.0 if a == 0.0 else float(np.sign(a))), 0.0, abs(a)
    if a == 0.0:
        return 0.0, float(np.sign(b)), abs(b)
    if abs(b) > abs(a):
        t = a / b
        s = float(np.sign(b)) / np.sqrt(1.0 + t * t)
        return s * t, s, b / s
    t = b / a
    c = float(np.sign(a)) / np.sqrt(1.0 + t * t)
    return c, c * t, a / c


def _tbar(alphas, betas, k: int, invariant: bool = False) -> np.ndarray:
    """``T̄_k`` (``(k+1) × k``) from the first ``k`` Lanczos coefficients; at an invariant
    subspace its last row is zero (``β_{k+1} ≈ 0``)."""
    a, bt = np.asarray(alphas[:k]), np.asarray(betas[:k])
    T = np.zeros((k + 1, k))
    T[np.arange(k), np.arange(k)] = a
    T[np.arange(1, k + 1), np.arange(k)] = bt
    T[np.arange(k - 1), np.arange(1, k)] = bt[:-1]
    if invariant and k:
        T[k, k - 1] = 0.0
    return T


def _min_length(Tbar: np.ndarray, beta1: float, rank_tol: float | None, n: int) -> np.ndarray:
    """Minimum-length solution ``y`` of ``min ||β₁e₁ − T̄ y||`` (truncated SVD: singular values
    at or below `rank_tol`, default ``n ε ||T̄||``, count as zero)."""
    if Tbar.shape[1] == 0:
        return np.zeros(0)
    U, sig, Wt = np.linalg.svd(Tbar, full_matrices=False)
    cut = (n * _EPS * sig[0]) if rank_tol is None else float(rank_tol)
    keep = sig > cut
    return Wt[keep].T @ (beta1 * U[0, keep] / sig[keep])


def minres(
    matvec: Callable[[np.ndarray], np.ndarray],
    b,
    *,
    rtol: float = 1e-10,
    ls_rtol: float | None = None,
    max_iter: int | None = None,
    rank_tol: float | None = None,
    npc: str = "continue",
    expired: Callable[[], bool] | None = None,
) -> MinresResult:
    """MINRES with a reorthogonalised Lanczos basis and a minimum-length final solve.

    Solves ``min ||b − A x||₂`` for symmetric (possibly indefinite, possibly singular) ``A``
    given as ``matvec``, returning the minimum-length solution over the Krylov space
    ``K_k(A, b)`` (the MINRES-QLP iterate). At exact termination (the Krylov space invariant)
    that is ``A⁺b`` for any ``b``, compatible or not.

    **Arguments:**

    - `matvec`: ``v ↦ A v`` on float64 vectors of length ``n``.
    - `b`: the right-hand side.
    - `rtol`: stop when ``||r_k|| ≤ rtol ||b||`` (compatible systems).
    - `ls_rtol`: stop when ``||A r_k|| ≤ ls_rtol ||A|| ||r_k||`` (least squares: ``r_k`` nearly
      in the kernel, the MINRES-QLP test with the Lanczos estimate of ``||A||``; default
      `rtol`). On an ill-conditioned but nonsingular system a loose value stops the iteration
      before the small-curvature directions are resolved: keep it small.
    - `max_iter`: iteration cap (default and at most ``n``).
    - `rank_tol`: singular values of ``T̄_k`` at or below it are treated as zero in the final
      solve (default ``n ε ||T̄_k||``, the round-off of the projected operator).
    - `npc`: what to do at the first detection of non-positive curvature
      (``r_{k−1}ᵀ A r_{k−1} ≤ 0``): ``"continue"`` (only record the iteration), ``"record"``
      (also return ``r_{k−1}`` as `npc_direction` and go on), ``"stop"`` (return at once with
      ``x = x_{k−1}``, ``r_{k−1}`` as `npc_direction` and reason ``"npc"``: the Newton-MR
      minimisation step of Liu & Roosta 2022).
    - `expired`: called after every iteration; ``True`` ends the solve with the iterate so far
      and reason ``"time_limit"`` (a wall-clock deadline; ``None``: none).
    """
    if npc not in ("continue", "record", "stop"):
        raise InputError(f"`npc` must be 'continue', 'record' or 'stop', got {npc!r}.")
    b = np.asarray(b, dtype=np.float64)
    ls_rtol = rtol if ls_rtol is None else float(ls_rtol)
    n = b.size
    max_iter = n if max_iter is None else max(1, min(int(max_iter), n))
    beta1 = float(np.linalg.norm(b))
    if beta1 == 0.0:
        z = np.zeros(n)
        return MinresResult(z, z.copy(), 0, 0.0, 0.0, "zero_rhs", None, 0.0, 0.0)
    V = np.empty((max_iter + 1, n))
    V[0] = b / beta1
    alphas, betas = [], []  # T̄_k: diagonal alphas, sub/super-diagonal betas (β_2 … β_{k+1})
    # Paige-Saunders recurrences (variable names as in Choi-Paige-Saunders' MINRES-QLP paper)
    cs, sn = -1.0, 0.0
    dbar = 0.0
    phi = beta1
    anorm = 0.0
    npc_at = None
    npc_dir = npc_curv = None
    ls_res = np.inf
    reason = "max_iterations"
    k = 0
    beta_prev = 0.0
    while k < max_iter:
        w = np.asarray(matvec(V[k]), dtype=np.float64)
        alpha = float(V[k] @ w)
        w = w - alpha * V[k] - (beta_prev * V[k - 1] if k > 0 else 0.0)
        # full reorthogonalisation, repeated when it cancelled most of w (DGKS, "twice is enough")
        for _ in range(2):
            nw = np.linalg.norm(w)
            w = w - V[: k + 1].T @ (V[: k + 1] @ w)
            if np.linalg.norm(w) > 0.7071 * nw:
                break
        beta = float(np.linalg.norm(w))
        k += 1
        alphas.append(alpha)
        betas.append(beta)
        anorm = max(anorm, np.sqrt(alpha * alpha + beta * beta + beta_prev * beta_prev))
        # the previous rotation applied to the new column of T̄ gives γ_k^{(1)}; then the new rotation
        gbar = sn * dbar - cs * alpha  # γ_k^{(1)}
        dbar = -cs * beta
        if npc_at is None and cs * gbar >= 0.0:  # r_{k−1}ᵀ A r_{k−1} ≤ 0 (Liu & Roosta 2022)
            npc_at = k
            if npc != "continue":
                npc_dir, npc_curv, y = _npc_residual(V, alphas, betas, k, beta1, rank_tol, n)
                if npc == "stop":
                    T = _tbar(alphas, betas, k - 1)
                    x = V[: k - 1].T @ y
                    Ax = V[:k].T @ (T @ y) if k > 1 else np.zeros(n)
                    ritz = _ritz(alphas, betas, k)
                    return MinresResult(x, Ax, k, float(np.linalg.norm(npc_dir)), float(ls_res), "npc", npc_at,
                                        float(ritz[0]), float(ritz[-1]), npc_dir, npc_curv)
        phi_prev = phi
        cs, sn, gamma = _sym_givens(gbar, beta)
        # ||A r_{k−1}|| = φ_{k−1} sqrt(γ_k² + δ̄_{k+1}²)
        ls_res = abs(phi_prev) * np.sqrt(gamma * gamma + dbar * dbar)
        phi = sn * phi
        invariant = beta <= _BREAKDOWN * max(anorm, 1e-300)
        if invariant:
            reason = "invariant"
            break
        V[k] = w / beta
        beta_prev = beta
        if abs(phi) <= rtol * beta1:
            reason = "residual"
            break
        if ls_res <= ls_rtol * anorm * abs(phi_prev):
            reason = "least_squares"
            break
        if expired is not None and expired():
            reason = "time_limit"
            break
    # the x-recurrence is replaced by the minimum-length solve of the projected problem
    Tbar = _tbar(alphas, betas, k, invariant=reason == "invariant")
    y = _min_length(Tbar, beta1, rank_tol, n)
    x = V[:k].T @ y
    Ty = Tbar @ y
    rows = k + 1 if reason != "invariant" else k
    Ax = V[:rows].T @ Ty[:rows]
    res = beta1 * np.eye(k + 1, 1).ravel() - Ty
    ritz = _ritz(alphas, betas, k)
    return MinresResult(x, Ax, k, float(np.linalg.norm(res)), float(ls_res), reason, npc_at,
                        float(ritz[0]), float(ritz[-1]), npc_dir, npc_curv)


def _ritz(alphas, betas, k: int) -> np.ndarray:
    a = np.asarray(alphas[:k])
    if k == 1:
        return a
    return sla.eigh_tridiagonal(a, np.asarray(betas[: k - 1]), eigvals_only=True, check_finite=False)


def _npc_residual(V, alphas, betas, k: int, beta1: float, rank_tol, n: int):
    """``r_{k−1} = b − A x_{k−1} = V_k (β₁e₁ − T̄_{k−1} y_{k−1})`` at the detection in iteration
    ``k``, its Rayleigh quotient ``cᵀ T_k c / cᵀc`` (``V_kᵀ A V_k = T_k``, exact for an orthonormal
    basis), and ``y_{k−1}``."""
    Tm = _tbar(alphas, betas, k - 1)
    y = _min_length(Tm, beta1, rank_tol, n)
    c = beta1 * np.eye(k, 1).ravel() - (Tm @ y if k > 1 else 0.0)
    Tk = np.diag(np.asarray(alphas[:k]))
    if k > 1:
        off = np.asarray(betas[: k - 1])
        Tk += np.diag(off, 1) + np.diag(off, -1)
    curv = float(c @ Tk @ c) / float(c @ c)
    return V[:k].T @ c, curv, y


# ----------------------------------------------------------------------------- HVPs
@jax.jit
def _apply(hv, v):
    return hv(v)


class _Operator:
    """The Hessian at one point as a numpy matvec (the linearisation made once per point)."""

    def __init__(self, ls: Landscape, theta: np.ndarray, tracker: _Tracker):
        self.hv = hvp_operator(ls, theta)
        self.tracker = tracker

    def __call__(self, v: np.ndarray) -> np.ndarray:
        self.tracker.num_hvp += 1
        return np.asarray(_apply(self.hv, jnp.asarray(v)))


def _norm_estimate(op: _Operator, p: int, steps: int = 12) -> float:
    """``||H||₂`` from a few Lanczos steps on a fixed random start (a lower bound, usually within
    a few per cent: the extremes converge first)."""
    b = np.random.default_rng(0).standard_normal(p)
    out = minres(op, b, rtol=0.0, max_iter=min(steps, p))
    return out.norm_estimate


def _grad(ls, theta):
    L, g = ls.value_and_grad(jnp.asarray(theta))
    return float(L), np.asarray(g)


# ----------------------------------------------------------------------------- the solver
#: A full Newton step is taken (whatever it does to the loss) when it decreases ``½||∇L||²`` by
#: at least this fraction of the decrease its linear model predicts, ``||H s||²`` (exact solve:
#: ``||∇L||`` shrinks by at least ``1/√2``). That holds in the Newton region of a critical point
#: of any index; elsewhere the step is a descent step on the loss.
_NEWTON_ACCEPT = 0.25
#: Forward tracking along a direction of non-positive curvature doubles the step at most this
#: many times (``2^40`` times the first trial).
_MAX_EXPANSIONS = 40


class NewtonMR(AbstractCriticalPointSolver):
    """Matrix-free Newton-MR for critical points of any index (see the module docstring).

    Each step: MINRES on ``H s = −g`` with Hessian-vector products (minimum-length
    least-squares solution, at most ``min(p, max_inner)`` products). The full step is taken when
    it contracts ``||∇L||`` as a Newton step should (``½||∇L||²`` falls by at least a quarter of
    the linear model's prediction): the Newton region of a critical point, minimum or saddle.
    Elsewhere, with `descent` (default), the step is one of Newton-MR for nonconvex
    *minimisation* (Liu & Roosta 2022): MINRES stops at the first direction of non-positive
    curvature it meets and the step follows it with a forward/backward tracking line search on
    the loss, or, without one, the MINRES step with an Armijo backtracking search on the loss;
    while in such a descent phase the inner solves stop early (forcing term `eta_max`). Without
    `descent`, every step is Roosta et al.'s Armijo backtracking on ``½||∇L||²``, which keeps to
    a critical point of any index but can stall far from one (gradient-flat regions, Frye et al.
    2021). Converges superlinearly near non-degenerate critical points and on Morse-Bott
    critical manifolds (the pseudo-inverse step does not move along the kernel) and never forms
    the Hessian: memory ``O(max_inner · p)``.

    **Fields:**

    - `gtol`: target ``||∇L||_∞`` (the measured round-off floor also ends the run).
    - `max_inner`: MINRES iteration cap per step (besides ``p`` and the basis memory cap
      ``_BASIS_MAX_BYTES``: 1000 rows up to ~134 000 parameters).
    - `eta_max`: largest forcing term (relative MINRES tolerance early on).
    - `armijo`: sufficient-decrease constant of the line searches (on the loss, or on
      ``½||∇L||²`` without `descent`).
    - `backtrack`: step-length factor after a rejected trial; `max_backtracks` trials at most.
    - `descent`: take descent steps on the loss where the full Newton step does not contract
      ``||∇L||`` (see above); ``False``: Armijo on ``½||∇L||²`` throughout.
    - `flat_threshold`, `stall_window`: gradient-flat stall detection, as in
      :class:`SaddleNewton` (flatness ``||Hg|| / (||H|| ||g||)`` from one HVP), checked while
      Newton steps are being taken.
    - `escape_window`: escape-to-infinity checks as in :class:`SaddleNewton` (0: off).
    - `max_time`: wall-clock budget in seconds, checked at every outer step and every MINRES
      iteration (``None``: none; a solve cut short is not used);
      exceeded, the run ends with ``RESULTS.time_limit_reached``. A `budget` passed to
      :meth:`run` (deadline and throttled progress reports, as for the other solvers) applies
      as well; the earlier deadline wins.
    - `progress`: ``callback(step, loss, grad_norm_inf)`` called once per outer step (e.g. a
      progress bar; the library never prints).
    - `inertia_k`: at a converged point, certify index and nullity bounds with
      :func:`lanczos_inertia_bounds` using this many Ritz pairs at each end
      (``stats['inertia']``; 0: skip).
    """

    gtol: float = 1e-12
    max_inner: int = 1000
    eta_max: float = 0.5
    armijo: float = 1e-4
    backtrack: float = 0.5
    max_backtracks: int = 30
    descent: bool = True
    flat_threshold: float = 1e-2
    stall_window: int = 25
    escape_window: int = 100
    max_time: float | None = None
    progress: Callable[[int, float, float], object] | None = eqx.field(default=None, static=True)
    inertia_k: int = 10

    def __check_init__(self):
        if not self.gtol >= 0:
            raise InputError(f"`gtol` must be >= 0, got {self.gtol}; e.g. gtol=1e-12.")
        if int(self.max_inner) < 1:
            raise InputError(f"`max_inner` must be a positive integer, got {self.max_inner}; e.g. 1000.")
        if not 0.0 < self.eta_max < 1.0:
            raise InputError(f"`eta_max` must lie in (0, 1), got {self.eta_max}; e.g. 0.5.")
        if not 0.0 < self.armijo < 0.5:
            raise InputError(f"`armijo` must lie in (0, 0.5), got {self.armijo}; e.g. 1e-4.")
        if not 0.0 < self.backtrack < 1.0:
            raise InputError(f"`backtrack` must lie in (0, 1), got {self.backtrack}; e.g. 0.5.")
        if int(self.max_backtracks) < 0:
            raise InputError(f"`max_backtracks` must be >= 0, got {self.max_backtracks}.")
        if self.escape_window < 0 or self.escape_window % 25:
            raise InputError(f"`escape_window` must be a multiple of 25 (0: off), got {self.escape_window}.")
        if self.max_time is not None and not (np.isfinite(self.max_time) and self.max_time > 0):
            raise InputError(f"`max_time` must be a positive number of seconds or None, got {self.max_time}.")
        if self.progress is not None and not callable(self.progress):
            raise InputError("`progress` must be callable as progress(step, loss, grad_norm_inf), or None.")
        if int(self.inertia_k) < 0:
            raise InputError(f"`inertia_k` must be >= 0 (0: no inertia certificate), got {self.inertia_k}.")

    def run(self, ls: Landscape, theta0, max_steps: int, budget: Budget | None = None) -> CriticalPointSolution:
        t0 = time.perf_counter()
        tr = _Tracker(ls, self.gtol, self.flat_threshold, self.stall_window, self.escape_window, budget)
        theta = np.array(theta0, dtype=np.float64)
        p = theta.size
        L, g = _grad(ls, theta)
        inner: list[int] = []
        kinds: list[str] = []  # per step: "newton", "descent" (MINRES step, Armijo on L), "npc", "merit"
        npc_steps = backtracks = 0
        hnorm = None
        eta = eta_used = self.eta_max
        gprev = pred = None
        descending = False  # the last step was a descent step, not a Newton step
        minimising = False  # a descent step was taken: from then on MINRES stops at negative curvature
        last = None  # the last MINRES result
        op = None  # the Hessian operator at the current θ (None: not yet built)

        def done(result, step, extra=None):
            info = {"inner_iterations": int(sum(inner)), "inner_history": list(inner), "step_kinds": list(kinds),
                    "npc_steps": npc_steps, "backtracks": backtracks,
                    "hessian_norm_estimate": float(hnorm or 0.0)}
            if last is not None:
                info["min_ritz_value"] = last.min_ritz
            if extra:
                info.update(extra)
            if result.is_successful() and self.inertia_k > 0 and p > 0:
                ib = lanczos_inertia_bounds(ls, theta, k=self.inertia_k, grad_norm=float(np.linalg.norm(g)))
                tr.num_hvp += ib.matvecs
                info["inertia"] = ib.to_record()
            return _finish(ls, theta, L, g, result, tr, step, t0, info)

        def expired():
            return tr.out_of_time() or (self.max_time is not None and time.perf_counter() - t0 > self.max_time)

        def loss_at(x):
            v = float(ls.loss(jnp.asarray(x)))
            return v if np.isfinite(v) else np.inf

        for step in range(max_steps + 1):
            if not (np.isfinite(L) and np.all(np.isfinite(g))):
                return done(RESULTS.nonfinite, step)
            gn = float(np.max(np.abs(g))) if p else 0.0
            tr.record(theta, L, gn)
            if self.progress is not None:
                self.progress(step, L, gn)
            if op is None:
                op = _Operator(ls, theta, tr)
            if hnorm is None:
                hnorm = _norm_estimate(op, p) if p else 0.0
            res = tr.converged(theta, gn, hnorm)
            esc = tr.escaping(theta, L, final=res is not None)
            if esc is not None:
                return done(RESULTS.diverging, step, {"escape": esc})
            if res is not None:
                return done(res, step)
            if step == max_steps:
                break
            if expired():
                return done(RESULTS.time_limit_reached, step)
            if not descending and tr.stalled():
                fl = _flatness(op, g, hnorm)
                if fl < tr.flat_threshold:
                    return done(RESULTS.gradient_flat, step, {"flatness": fl})
            # forcing term (Eisenstat-Walker choice 2, safeguarded), never tighter than the target
            g2 = float(np.linalg.norm(g))
            if descending:
                eta = self.eta_max  # far from a critical point: cheap, inexact directions
            elif gprev is not None:
                if g2 > 0.5 * (gprev + pred):
                    # the step achieved less than half the decrease of ||∇L|| its linear model
                    # predicted: the inexact solve misrepresented the small-curvature
                    # directions; solve more accurately next time
                    eta = eta_used * 0.1
                else:
                    new_eta = 0.9 * (g2 / gprev) ** 2
                    if 0.9 * eta**2 > 0.1:
                        new_eta = max(new_eta, 0.9 * eta**2)
                    eta = min(self.eta_max, new_eta)
            eta_used = max(eta, min(self.eta_max, 0.1 * self.gtol / g2), 1e-14)
            mode = ("stop" if minimising else "record") if self.descent else "continue"
            last = minres(op, -g, rtol=eta_used, ls_rtol=eta_used * _LS_FACTOR,
                          max_iter=min(p, int(self.max_inner), _basis_rows(p)), rank_tol=p * _EPS * hnorm,
                          npc=mode, expired=expired)
            inner.append(last.iterations)
            if last.reason == "time_limit":  # a large net's solve is cut at the deadline: no step
                return done(RESULTS.time_limit_reached, step)
            hnorm = max(last.norm_estimate, 0.5 * hnorm)
            if last.npc_iteration is not None:
                npc_steps += 1
            s, Hs = last.x, last.Ax
            new = None
            if last.reason != "npc":
                # 1. the full Newton step, taken if it contracts ||∇L|| (any index)
                Ln, gnw = _grad(ls, theta + s)
                slope = float(Hs @ g)  # ⟨∇(½||g||²), s⟩ = ⟨g, Hs⟩ = −||Hs||² for a MINRES step
                if (slope < 0.0 and np.isfinite(Ln) and np.all(np.isfinite(gnw))
                        and 0.5 * float(gnw @ gnw) <= 0.5 * g2 * g2 + _NEWTON_ACCEPT * slope):
                    new, kind = (theta + s, Ln, gnw), "newton"
            if new is None and self.descent:
                # 2. a descent step on the loss (Newton-MR for minimisation, Liu & Roosta 2022)
                if last.npc_direction is not None:
                    d, kind = last.npc_direction, "npc"
                    alpha, nb = _forward_backward(loss_at, theta, d, L, float(g @ d), self.armijo,
                                                  self.backtrack, int(self.max_backtracks))
                else:
                    d, kind = s, "descent"
                    first = Ln if np.isfinite(Ln) else None
                    alpha, nb = _backtrack(loss_at, theta, d, L, float(g @ d), self.armijo, self.backtrack,
                                           int(self.max_backtracks), first)
                backtracks += nb
                if alpha is not None:
                    x = theta + alpha * d
                    if alpha == 1.0 and kind == "descent":
                        new = (x, Ln, gnw)
                    else:
                        new = (x, *_grad(ls, x))
            if new is None and last.reason != "npc":
                # 3. Roosta et al.'s Armijo backtracking on ½||∇L||² along the MINRES step
                slope = float(Hs @ g)
                if slope < 0.0:
                    alpha, kind = 1.0, "merit"
                    for _ in range(int(self.max_backtracks) + 1):
                        trial = (theta + alpha * s, *_grad(ls, theta + alpha * s))
                        gt = trial[2]
                        if (np.isfinite(trial[1]) and np.all(np.isfinite(gt))
                                and 0.5 * float(gt @ gt) <= 0.5 * g2 * g2 + self.armijo * alpha * slope):
                            new = trial
                            break
                        alpha *= self.backtrack
                        backtracks += 1
            if new is None:
                break
            kinds.append(kind)
            descending = kind in ("descent", "npc")
            minimising = minimising or descending
            gprev = g2
            pred = last.residual_norm  # ||g + Hs||: the linear model's prediction of ||∇L(θ + s)||
            theta, L, g = new
            op = None
            if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > 1e12:
                return done(RESULTS.diverged, step + 1)
        # the budget ran out, or no step along the MINRES direction reduced ||∇L||
        steps = len(tr.history) - 1
        esc = tr.escaping(theta, L, final=True)
        if esc is not None:
            return done(RESULTS.diverging, steps, {"escape": esc})
        if op is None:
            op = _Operator(ls, theta, tr)
        fl = _flatness(op, g, hnorm)
        result = RESULTS.gradient_flat if fl < tr.flat_threshold else RESULTS.max_steps_reached
        return done(result, steps, {"flatness": fl, "line_search_failed": steps < max_steps})


def _backtrack(loss_at, theta, d, L, slope, armijo, factor, max_trials, first=None):
    """Armijo backtracking on the loss from ``α = 1`` (``first``: the loss at ``α = 1`` if known).
    Returns ``(α, rejected trials)``; ``α = None`` when no trial decreased the loss enough."""
    if not slope < 0.0:
        return None, 0
    alpha = 1.0
    for i in range(max_trials + 1):
        Lt = first if (i == 0 and first is not None) else loss_at(theta + alpha * d)
        if Lt <= L + armijo * alpha * slope:
            return alpha, i
        alpha *= factor
    return None, max_trials + 1


def _forward_backward(loss_at, theta, d, L, slope, armijo, factor, max_trials):
    """Forward/backward tracking on the loss along a direction of non-positive curvature (Liu &
    Roosta 2022): from ``α = 1``, enlarge by ``1/factor`` while the Armijo condition keeps
    holding (the curvature along ``d`` does not stop the decrease; third-order terms do), else
    shrink as in :func:`_backtrack`."""
    if not slope < 0.0:
        return None, 0
    if loss_at(theta + d) <= L + armijo * slope:
        alpha = 1.0
        for _ in range(_MAX_EXPANSIONS):
            a = alpha / factor
            if not loss_at(theta + a * d) <= L + armijo * a * slope:
                break
            alpha = a
        return alpha, 0
    alpha, nb = _backtrack(loss_at, theta, d, L, slope, armijo, factor, max_trials - 1,
                           first=np.inf)
    return alpha, nb


def _basis_rows(p: int) -> int:
    """Inner iterations whose basis fits ``_BASIS_MAX_BYTES`` (at least 50)."""
    return max(50, _BASIS_MAX_BYTES // (8 * max(p, 1)) - 1)


def _flatness(op: _Operator, g: np.ndarray, hnorm: float) -> float:
    """``||Hg|| / (||H|| ||g||)`` with one HVP and the Lanczos estimate of ``||H||``."""
    gn = float(np.linalg.norm(g))
    if gn == 0.0 or not hnorm:
        return 0.0
    return float(np.linalg.norm(op(g)) / (hnorm * gn))
