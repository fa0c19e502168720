"""Newton-MR: a matrix-free Newton method for critical points of any index.

Each outer step solves ``H s ≈ −g`` (``H = ∇²L(θ)``, ``g = ∇L(θ)``) by MINRES on the Hessian
operator — Hessian-vector products only, the dense Hessian is never formed — and then does
an Armijo line search on the merit function ``½||∇L||²``, whose minimisers include every
critical point: minima, saddles and maxima alike (Roosta, Liu, Xu & Mahoney, "Newton-MR:
inexact Newton method with minimum residual sub-problem solver", EURO J. Comput. Optim. 2022).

**The inner solver** (:func:`minres`) is MINRES (Paige & Saunders 1975) on a Lanczos basis kept
orthonormal by full reorthogonalisation, with the Givens-rotation recurrences of the
Paige-Saunders implementation for the residual norms ``||r_k||`` and ``||H r_k||``. The
solution is taken, when the iteration stops, as the *minimum-length* least-squares solution
of the projected problem ``min ||β₁e₁ − T̄_k y||`` (a truncated SVD of the small
``(k+1) × k`` tridiagonal ``T̄_k``), ``s = V_k y``. That is the iterate of MINRES-QLP (Choi,
Paige & Saunders, SISC 2011), which computes the same minimum-length solution by a QLP
factorisation of ``T̄_k``: on a singular, incompatible system (``g`` not in the range of
``H``, as near a degenerate critical point) it converges to the pseudo-inverse solution
``−H⁺g`` instead of growing along the kernel. Storing the basis costs ``max_inner · p``
floats (136 MB at 200 × 85 000) and buys orthogonality; the Lanczos relation
``H V_k = V_{k+1} T̄_k`` also gives ``H s`` for the line search without a further HVP.

**Non-positive curvature** is detected as in Liu & Roosta ("MINRES: from negative curvature
detection to monotonicity properties", SIOPT 2022): ``r_{k−1}ᵀ H r_{k−1} ≤ 0`` exactly when
``c_{k−1} γ_k^{(1)} ≥ 0`` in the recurrences. Newton-MR for *minimisation* would leave along
that direction; a critical point of any index is wanted here, so the step stays the MINRES
step (a descent direction of ``½||∇L||²`` whatever the curvature: ``⟨Hg, s⟩ = −||Hs||²``) and
the certificate is recorded (``stats['npc_steps']``, and at the end the smallest Ritz value of
the last solve, ``< 0`` proving index ≥ 1 by interlacing).

**Inexactness** (Eisenstat & Walker 1996, choice 2): MINRES stops when
``||r|| ≤ η ||g||`` or ``||H r|| ≤ η ||H|| ||r||`` (the least-squares optimality test of
MINRES-QLP), with the forcing term ``η_k = min(η_max, 0.9 (||g_k|| / ||g_{k−1}||)²)`` safeguarded
from falling too fast and never tighter than needed for `gtol`: the outer convergence is
superlinear while an early step stays cheap. At most `max_inner` (and at most ``p``)
iterations per solve.

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
    ``"max_iterations"``, ``"zero_rhs"``), `npc_iteration` (first iteration ``k`` at which
    ``r_{k−1}ᵀ A r_{k−1} ≤ 0`` was detected, or ``None``), `min_ritz` / `max_ritz` (extreme
    eigenvalues of ``T_k``; by interlacing ``λ_min(A) ≤ min_ritz`` and ``λ_max(A) ≥ max_ritz``).
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


def minres(
    matvec: Callable[[np.ndarray], np.ndarray],
    b,
    *,
    rtol: float = 1e-10,
    ls_rtol: float | None = None,
    max_iter: int | None = None,
    rank_tol: float | None = None,
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
    """
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
    dbar = eps_next = 0.0
    phi = beta1
    anorm = 0.0
    npc = None
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
        # apply the previous rotation to the new column of T̄, then the new rotation
        delta = cs * dbar + sn * alpha
        gbar = sn * dbar - cs * alpha  # γ_k^{(1)}
        eps_k, eps_next = eps_next, sn * beta
        dbar = -cs * beta
        if npc is None and cs * gbar >= 0.0:  # r_{k−1}ᵀ A r_{k−1} ≤ 0 (Liu & Roosta 2022)
            npc = k
        phi_prev = phi
        cs, sn, gamma = _sym_givens(gbar, beta)
        # ||A r_{k−1}|| = φ_{k−1} sqrt(γ_k² + δ̄_{k+1}²)
        ls_res = abs(phi_prev) * np.sqrt(gamma * gamma + dbar * dbar)
        phi = sn * phi
        del delta, eps_k  # the x-recurrence is replaced by the final minimum-length solve
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
    a = np.asarray(alphas)
    bt = np.asarray(betas)
    # T̄_k ((k+1) × k); at an invariant subspace its last row is dropped (β_{k+1} ≈ 0)
    Tbar = np.zeros((k + 1, k))
    Tbar[np.arange(k), np.arange(k)] = a
    Tbar[np.arange(1, k + 1), np.arange(k)] = bt
    Tbar[np.arange(k - 1), np.arange(1, k)] = bt[:-1]
    if reason == "invariant":
        Tbar[k, k - 1] = 0.0
    U, sig, Wt = np.linalg.svd(Tbar, full_matrices=False)
    cut = (n * _EPS * sig[0]) if rank_tol is None else float(rank_tol)
    keep = sig > cut
    rhs = beta1 * U[0, keep]  # Uᵀ (β₁ e₁)
    y = Wt[keep].T @ (rhs / sig[keep])
    x = V[:k].T @ y
    Ty = Tbar @ y
    rows = k + 1 if reason != "invariant" else k
    Ax = V[:rows].T @ Ty[:rows]
    res = beta1 * np.eye(k + 1, 1).ravel() - Ty
    ritz = sla.eigh_tridiagonal(a, bt[:-1], eigvals_only=True, check_finite=False) if k > 1 else a
    return MinresResult(x, Ax, k, float(np.linalg.norm(res)), float(ls_res), reason, npc,
                        float(ritz[0]), float(ritz[-1]))


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
class NewtonMR(AbstractCriticalPointSolver):
    """Matrix-free Newton-MR for critical points of any index (see the module docstring).

    Each step: MINRES on ``H s = −g`` with Hessian-vector products (minimum-length
    least-squares solution, at most ``min(p, max_inner)`` products), then an Armijo
    backtracking line search on ``½||∇L||²``. Converges superlinearly near non-degenerate
    critical points and on Morse-Bott critical manifolds (the pseudo-inverse step does not
    move along the kernel), keeps saddles, and never forms the Hessian: memory
    ``O(max_inner · p)``.

    **Fields:**

    - `gtol`: target ``||∇L||_∞`` (the measured round-off floor also ends the run).
    - `max_inner`: MINRES iteration cap per step.
    - `eta_max`: largest forcing term (relative MINRES tolerance early on).
    - `armijo`: sufficient-decrease constant of the line search on ``½||∇L||²``.
    - `backtrack`: step-length factor after a rejected trial; `max_backtracks` trials at most.
    - `flat_threshold`, `stall_window`: gradient-flat stall detection, as in
      :class:`SaddleNewton` (flatness ``||Hg|| / (||H|| ||g||)`` from one HVP).
    - `escape_window`: escape-to-infinity checks as in :class:`SaddleNewton` (0: off).
    - `max_time`: wall-clock budget in seconds, checked once per outer step (``None``: none);
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
    max_inner: int = 200
    eta_max: float = 0.5
    armijo: float = 1e-4
    backtrack: float = 0.5
    max_backtracks: int = 30
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
            raise InputError(f"`max_inner` must be a positive integer, got {self.max_inner}; e.g. 200.")
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
        npc_steps = backtracks = 0
        hnorm = None
        eta = eta_used = self.eta_max
        alpha = 1.0
        gprev = pred = None
        last = None  # the last MINRES result
        op = None  # the Hessian operator at the current θ (None: not yet built)

        def done(result, step, extra=None):
            info = {"inner_iterations": int(sum(inner)), "inner_history": list(inner),
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
            if tr.out_of_time() or (self.max_time is not None and time.perf_counter() - t0 > self.max_time):
                return done(RESULTS.time_limit_reached, step)
            if tr.stalled():
                fl = _flatness(op, g, hnorm)
                if fl < tr.flat_threshold:
                    return done(RESULTS.gradient_flat, step, {"flatness": fl})
            # forcing term (Eisenstat-Walker choice 2, safeguarded), never tighter than the target
            g2 = float(np.linalg.norm(g))
            if gprev is not None:
                if alpha < 1.0 or g2 > 0.5 * (gprev + pred):
                    # the step had to be shortened, or achieved less than half the decrease of
                    # ||∇L|| its linear model predicted: the inexact solve misrepresented the
                    # small-curvature directions; solve more accurately next time
                    eta = eta_used * 0.1
                else:
                    new_eta = 0.9 * (g2 / gprev) ** 2
                    if 0.9 * eta**2 > 0.1:
                        new_eta = max(new_eta, 0.9 * eta**2)
                    eta = min(self.eta_max, new_eta)
            eta_used = max(eta, min(self.eta_max, 0.1 * self.gtol / g2), 1e-14)
            last = minres(op, -g, rtol=eta_used, ls_rtol=eta_used * _LS_FACTOR,
                          max_iter=min(p, int(self.max_inner)), rank_tol=p * _EPS * hnorm)
            inner.append(last.iterations)
            hnorm = max(last.norm_estimate, 0.5 * hnorm)
            if last.npc_iteration is not None:
                npc_steps += 1
            s, Hs = last.x, last.Ax
            slope = float(Hs @ g)  # ⟨∇(½||g||²), s⟩ = ⟨Hg, s⟩ = ⟨g, Hs⟩ < 0 for a MINRES step
            if not slope < 0.0:
                break
            alpha = 1.0
            accepted = False
            for _ in range(int(self.max_backtracks) + 1):
                new = theta + alpha * s
                Ln, gnw = _grad(ls, new)
                if np.isfinite(Ln) and np.all(np.isfinite(gnw)):
                    if 0.5 * float(gnw @ gnw) <= 0.5 * g2 * g2 + self.armijo * alpha * slope:
                        accepted = True
                        break
                alpha *= self.backtrack
                backtracks += 1
            if not accepted:
                break
            gprev = g2
            pred = last.residual_norm  # ||g + Hs||: the linear model's prediction of ||∇L(θ + s)||
            theta, L, g = new, Ln, gnw
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


def _flatness(op: _Operator, g: np.ndarray, hnorm: float) -> float:
    """``||Hg|| / (||H|| ||g||)`` with one HVP and the Lanczos estimate of ``||H||``."""
    gn = float(np.linalg.norm(g))
    if gn == 0.0 or not hnorm:
        return 0.0
    return float(np.linalg.norm(op(g)) / (hnorm * gn))
