"""Second-order critical-point solvers: a Newton trust-region minimiser and a saddle-capable
Levenberg-Marquardt solver on ``∇L = 0``, both with the exact Hessian.

Both stop when ``||∇L||_∞ ≤ max(gtol, floor)`` where ``floor`` is the measured float64
round-off floor of the gradient at the current point (:func:`gradient_floor`), and both report
stalls in gradient-flat regions (the gradient nearly in the Hessian's kernel) as their own
status, never as convergence.
"""

from __future__ import annotations

import abc
import time

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._progress import Budget, as_budget
from ..curvature import raw_hessian
from ..landscape import Landscape
from ._escape import EscapeMonitor
from ._floor import gradient_floor
from ._limit import limit_of_escape
from ._results import RESULTS, CriticalPointSolution, SolverStats

_EPS = float(np.finfo(np.float64).eps)


class AbstractCriticalPointSolver(eqx.Module):
    """Interface: a frozen set of hyperparameters with a ``run`` method."""

    gtol: eqx.AbstractVar[float]

    @abc.abstractmethod
    def run(self, ls: Landscape, theta0: np.ndarray, max_steps: int, budget: Budget | None = None
            ) -> CriticalPointSolution:
        """Iterate from ``theta0``; return a solution (never raises on non-convergence).

        `budget` (optional) carries a wall-clock deadline, checked once per step (status
        ``time_limit_reached`` when it runs out), and a progress callback."""


class _Tracker:
    """Shared bookkeeping: convergence target with the round-off floor, flatness, stalls."""

    def __init__(self, ls, gtol, flat_threshold, stall_window, escape_window=100, budget=None):
        self.ls, self.gtol = ls, float(gtol)
        self.budget = as_budget(budget)
        self.flat_threshold, self.stall_window = flat_threshold, stall_window
        self.history: list[float] = []
        self.floor = 0.0
        self.floor_checked_at = np.inf
        self.num_hessians = 0
        self.num_hvp = 0
        self.escape = EscapeMonitor(ls, window=escape_window) if escape_window else None
        self.loss_scale = _loss_scale(ls)

    def record(self, theta, L, gnorm_inf) -> None:
        self.history.append(gnorm_inf)
        self.budget.report("newton", len(self.history) - 1, L, gnorm_inf)
        if self.escape is not None:
            self.escape.record(theta, L)

    def out_of_time(self) -> bool:
        return self.budget.expired()

    def loss_noise(self, *losses) -> float:
        """Round-off of a loss value (or of a difference of two)."""
        return 64 * _EPS * max(*(abs(v) for v in losses), self.loss_scale, 1e-300)

    def escaping(self, theta, L, final=False) -> dict | None:
        """Evidence that the iterates escape along a channel (checked periodically and at the end)."""
        if self.escape is None:
            return None
        if final:
            return self.escape.final(theta, self.loss_noise(L))
        if not self.escape.due():
            return None
        return self.escape.update(theta, self.loss_noise(L))

    def converged(self, theta, gnorm_inf, hnorm) -> RESULTS | None:
        if gnorm_inf <= self.gtol:
            return RESULTS.successful
        # Measure the floor once the gradient is small enough for it to matter.
        if gnorm_inf < 1e-6 * max(1.0, hnorm) and gnorm_inf < 0.5 * self.floor_checked_at:
            self.floor = gradient_floor(self.ls, jnp.asarray(theta), hnorm)
            self.floor_checked_at = gnorm_inf
        if gnorm_inf <= self.floor:
            return RESULTS.roundoff_floor
        return None

    def stalled(self, history=None) -> bool:
        h = self.history if history is None else history
        w = self.stall_window
        return len(h) > w and min(h[-w:]) > 0.5 * h[-w - 1]

    @staticmethod
    def flatness(g, lam, V) -> float:
        """``||H g|| / (||H|| ||g||)``: small when the gradient lies in the Hessian's kernel."""
        gn = np.linalg.norm(g)
        hn = np.max(np.abs(lam)) if lam.size else 0.0
        if gn == 0 or hn == 0:
            return 0.0
        Hg = V @ (lam * (V.T @ g))
        return float(np.linalg.norm(Hg) / (hn * gn))


def _loss_scale(ls) -> float:
    """Size of the terms that cancel in the loss value, beyond the loss itself.

    The closed-form population loss ``½(s·s − 2 s·t + t·t)`` is a difference of terms of the
    size of the teacher's output power ``½ t·t = L(θ=0)``, so its round-off is ``~ε t·t`` even
    where the loss is ~0; an empirical loss is a sum of squares (no cancellation): 0.
    """
    if not ls.is_population:
        return 0.0
    return abs(float(ls.loss(jnp.zeros(ls.n_params))))


def _eigh(ls, theta):
    H = raw_hessian(ls, jnp.asarray(theta))
    H = 0.5 * (H + H.T)
    return np.linalg.eigh(H)


def _grad(ls, theta):
    L, g = ls.value_and_grad(jnp.asarray(theta))
    return float(L), np.asarray(g)


def _finish(ls, theta, L, g, result, tracker, steps, t0, extra=None) -> CriticalPointSolution:
    extra = dict(extra or {})
    escape = extra.pop("escape", None)
    fields = {k: extra.pop(k) for k in ("rejected_steps", "flatness") if k in extra}
    limit = None
    if result is RESULTS.diverging and escape:
        # the critical point at infinity the escape tends to, where the limit model is known
        limit = limit_of_escape(ls, theta, escape, tracker.gtol)
    stats = SolverStats(
        num_steps=int(steps), num_hessians=tracker.num_hessians, num_hvp=tracker.num_hvp,
        gradient_floor=float(tracker.floor), target=max(tracker.gtol, tracker.floor),
        wall_time=time.perf_counter() - t0, history=tuple(tracker.history), escape=escape, limit=limit,
        details=extra, **fields,
    )
    return CriticalPointSolution(np.asarray(theta), float(L), float(np.max(np.abs(g))) if g.size else 0.0,
                                 result, stats)


def _trust_region_step(gt, lam, radius):
    """Exact solution of ``min gᵀs + ½ sᵀHs`` s.t. ``||s|| ≤ Δ`` in the eigenbasis (Moré-Sorensen).

    Returns the step's coordinates in the eigenbasis.
    """
    lmin = lam[0]
    scale = max(np.max(np.abs(lam)), 1e-300)
    if lmin > 1e-14 * scale:
        s = -gt / lam
        if np.linalg.norm(s) <= radius:
            return s
    lo = max(0.0, -lmin) + 1e-15 * scale

    def norm_at(mu):
        return np.linalg.norm(gt / (lam + mu))

    if norm_at(lo) <= radius:
        # Hard case: the boundary is reached only with a component along the lowest eigvector.
        s = -gt / (lam + lo)
        s[0] = 0.0 if abs(lam[0] + lo) < 1e-300 else s[0]
        extra = radius**2 - np.dot(s, s)
        if extra > 0:
            s[0] += np.sqrt(extra) * (-np.sign(gt[0]) if gt[0] != 0 else 1.0)
        return s
    hi = lo + np.linalg.norm(gt) / radius + scale
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if norm_at(mid) > radius:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return -gt / (lam + hi)


class NewtonTrustRegion(AbstractCriticalPointSolver):
    """Newton trust-region minimiser with the exact Hessian (descends to minima).

    Dense Hessian and an exact trust-region subproblem (eigendecomposition) up to
    `dense_limit` parameters; Steihaug-Toint truncated CG with Hessian-vector products beyond.
    Quadratic convergence near non-degenerate minima.

    - A rejected step leaves ``θ`` unchanged, so its Hessian and eigendecomposition are reused
      for the next trust region (radius × `shrink` of the rejected step's length); a good step
      (``ρ > 0.75``) that reaches the boundary grows the radius by `expand`. The step budget
      `max_steps` counts rejected steps too.
    - Steps are judged by the loss decrease against the model's prediction, unless the
      prediction is below the round-off of the loss values — including the cancellation in a
      closed-form population loss (see :func:`_loss_scale`) — where the gradient norm decides.
    - Every 25 steps the solver checks whether its iterates escape to infinity along a channel
      (:mod:`lossatlas.solvers._escape`, trailing window `escape_window`) and stops with
      ``RESULTS.diverging`` if so, also when the gradient has already met `gtol` there
      (``escape_window=0`` switches the check off).
    - On degenerate critical manifolds (split neurons, zero groups) the trust region converges
      only slowly; :func:`lossatlas.polish` then continues through the symmetry reduction (the
      reduced network is non-degenerate). That lives above this layer, in the pipeline.
    """

    gtol: float = 1e-12
    initial_radius: float = 1.0
    max_radius: float = 1e3
    eta: float = 0.05
    expand: float = 2.0
    shrink: float = 0.25
    dense_limit: int = 3000
    flat_threshold: float = 1e-2
    stall_window: int = 25
    escape_window: int = 100

    def __check_init__(self):
        if not 0.0 < self.eta < 0.25:
            raise InputError(f"`eta` must lie in (0, 0.25), got {self.eta}.")
        if self.gtol < 0:
            raise InputError(f"`gtol` must be >= 0, got {self.gtol}.")
        if not self.expand > 1:
            raise InputError(f"`expand` must be > 1, got {self.expand}.")
        if not 0 < self.shrink < 1:
            raise InputError(f"`shrink` must lie in (0, 1), got {self.shrink}.")
        if self.escape_window < 0 or self.escape_window % 25:
            raise InputError(f"`escape_window` must be a multiple of 25 (0: off), got {self.escape_window}.")

    def run(self, ls, theta0, max_steps, budget=None):
        t0 = time.perf_counter()
        tr = _Tracker(ls, self.gtol, self.flat_threshold, self.stall_window, self.escape_window, budget)
        theta = np.array(theta0, dtype=np.float64)
        radius = float(self.initial_radius)
        L, g = _grad(ls, theta)
        dense = ls.n_params <= self.dense_limit
        lam = V = None
        hnorm = 0.0
        rejected = 0
        fresh = False  # whether lam, V belong to the current θ
        accepted = []  # ||∇L||_∞ after each accepted step: stalls are judged on these
        for step in range(max_steps + 1):
            if not (np.isfinite(L) and np.all(np.isfinite(g))):
                return _finish(ls, theta, L, g, RESULTS.nonfinite, tr, step, t0)
            gn = float(np.max(np.abs(g)))
            tr.record(theta, L, gn)
            if not fresh:
                accepted.append(gn)
            if dense:
                if not fresh:
                    lam, V = _eigh(ls, theta)
                    tr.num_hessians += 1
                    hnorm = float(np.max(np.abs(lam)))
                    fresh = True
            elif not fresh:
                hnorm = _power_norm(ls, theta, tr)
                fresh = True
            res = tr.converged(theta, gn, hnorm)
            if res is not None:
                esc = tr.escaping(theta, L, final=True)
                if esc is not None:
                    return _finish(ls, theta, L, g, RESULTS.diverging, tr, step, t0,
                                   {"escape": esc, "rejected_steps": rejected})
                return _finish(ls, theta, L, g, res, tr, step, t0, {"rejected_steps": rejected})
            esc = tr.escaping(theta, L)
            if esc is not None:
                return _finish(ls, theta, L, g, RESULTS.diverging, tr, step, t0,
                               {"escape": esc, "rejected_steps": rejected})
            if step == max_steps:
                break
            if tr.out_of_time():
                return _finish(ls, theta, L, g, RESULTS.time_limit_reached, tr, step, t0,
                               {"rejected_steps": rejected})
            if dense:
                if tr.stalled(accepted) and tr.flatness(g, lam, V) < tr.flat_threshold:
                    return _finish(ls, theta, L, g, RESULTS.gradient_flat, tr, step, t0,
                                   {"flatness": tr.flatness(g, lam, V), "rejected_steps": rejected})
                gt = V.T @ g
                st = _trust_region_step(gt, lam, radius)
                s = V @ st
                pred = -(gt @ st + 0.5 * st @ (lam * st))
            else:
                s, pred = _steihaug(ls, theta, g, radius, tr)
            new = theta + s
            Ln, gnw = _grad(ls, new)
            actual = L - Ln
            noise = tr.loss_noise(L, Ln)
            if pred <= noise:
                # Loss differences are below the round-off of the loss values. Measure the
                # decrease by integrating the gradient along the step instead (trapezoidal
                # rule: −½(g + g_new)·s, error O(|s|³ ∇³L), no cancellation of loss values).
                actual = -0.5 * float((g + gnw) @ s)
                if pred > 0 and np.isfinite(actual):
                    rho = actual / pred
                    ok = bool(rho > self.eta)
                else:
                    ok = bool(np.linalg.norm(gnw) < np.linalg.norm(g))
                    rho = 1.0 if ok else 0.0
            else:
                rho = actual / pred
                ok = bool(rho > self.eta)
            snorm = float(np.linalg.norm(s))
            if rho < 0.25:
                radius = self.shrink * (snorm if snorm > 0 else radius)
            elif rho > 0.75 and snorm >= 0.99 * radius:
                radius = min(self.expand * radius, self.max_radius)
            if ok:
                theta, L, g = new, Ln, gnw
                fresh = False
            else:
                rejected += 1
            if radius < 1e-300:
                break
            if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > 1e12:
                return _finish(ls, theta, L, g, RESULTS.diverged, tr, step, t0)
        extra = {"rejected_steps": rejected}
        result = RESULTS.max_steps_reached
        esc = tr.escaping(theta, L, final=True)
        if esc is not None:
            extra["escape"] = esc
            result = RESULTS.diverging
        elif dense:
            if not fresh:
                lam, V = _eigh(ls, theta)
            fl = tr.flatness(g, lam, V)
            extra["flatness"] = fl
            if fl < tr.flat_threshold and tr.stalled(accepted):
                result = RESULTS.gradient_flat
        return _finish(ls, theta, L, g, result, tr, len(tr.history) - 1, t0, extra)


def _power_norm(ls, theta, tr, iters=20):
    v = np.random.default_rng(0).standard_normal(ls.n_params)
    lam = 0.0
    for _ in range(iters):
        v /= np.linalg.norm(v)
        w = np.array(ls.hvp(jnp.asarray(theta), jnp.asarray(v)))  # a writable copy: v is scaled in place
        tr.num_hvp += 1
        lam = float(np.linalg.norm(w))
        v = w
    return lam


def _steihaug(ls, theta, g, radius, tr, max_iter=None):
    """Steihaug-Toint CG for the trust-region subproblem with HVPs. Returns (s, predicted)."""
    th = jnp.asarray(theta)
    p = g.size
    max_iter = max_iter or min(p, 500)
    s = np.zeros(p)
    r = g.copy()
    d = -r
    tol = min(0.5, np.sqrt(np.linalg.norm(g))) * np.linalg.norm(g)

    def hv(v):
        tr.num_hvp += 1
        return np.asarray(ls.hvp(th, jnp.asarray(v)))

    def to_boundary(s, d):
        a, b, c = d @ d, 2 * s @ d, s @ s - radius**2
        return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)

    for _ in range(max_iter):
        Hd = hv(d)
        dHd = d @ Hd
        if dHd <= 0:
            s = s + to_boundary(s, d) * d
            break
        alpha = (r @ r) / dHd
        if np.linalg.norm(s + alpha * d) >= radius:
            s = s + to_boundary(s, d) * d
            break
        s = s + alpha * d
        r_new = r + alpha * Hd
        if np.linalg.norm(r_new) < tol:
            r = r_new
            break
        d = -r_new + (r_new @ r_new) / (r @ r) * d
        r = r_new
    Hs = hv(s)
    return s, float(-(g @ s + 0.5 * s @ Hs))


class SaddleNewton(AbstractCriticalPointSolver):
    """Converges to critical points of any index: Levenberg-Marquardt on ``∇L(θ) = 0``.

    The residual is the gradient and its Jacobian the (symmetric) Hessian, so the step is
    ``s = −(H² + μI)⁻¹ H g``, accepted when it reduces ``||∇L||₂``; ``μ`` shrinks to zero on
    success, which makes the step the Newton step ``−H⁺g`` near a non-degenerate critical
    point (quadratic convergence). Eigenvalues with ``|λ| ≤ p ε ||H||`` are treated as zero,
    so steps never leave along the kernel of a degenerate critical manifold.

    When a damped step is rejected, the undamped step ``−H⁺g`` is tried before the damping
    grows: near an ill-conditioned critical point a damped step changes the gradient's
    small-curvature components by less than the gradient's round-off, so more damping would
    only stall. If the undamped step is rejected too, a *watchdog* (Chamberlain et al. 1982)
    follows up to `watchdog` further undamped Newton steps from it and keeps them if one of
    them reaches a smaller ``||∇L||₂`` than the current point: ``||∇L||`` need not decrease
    monotonically along Newton's way into a flat critical point, and without this the solver
    would report a gradient-flat stall next to a critical point. Escapes along channels to
    infinity are detected as in :class:`NewtonTrustRegion`.
    """

    gtol: float = 1e-12
    initial_damping: float = 1e-3
    flat_threshold: float = 1e-2
    stall_window: int = 25
    escape_window: int = 100
    watchdog: int = 5

    def __check_init__(self):
        if self.gtol < 0 or self.initial_damping < 0 or self.watchdog < 0:
            raise InputError("`gtol`, `initial_damping` and `watchdog` must be >= 0.")
        if self.escape_window < 0 or self.escape_window % 25:
            raise InputError(f"`escape_window` must be a multiple of 25 (0: off), got {self.escape_window}.")

    def run(self, ls, theta0, max_steps, budget=None):
        t0 = time.perf_counter()
        tr = _Tracker(ls, self.gtol, self.flat_threshold, self.stall_window, self.escape_window, budget)
        theta = np.array(theta0, dtype=np.float64)
        L, g = _grad(ls, theta)
        mu = None
        rejected = 0
        lam = V = None
        for step in range(max_steps + 1):
            if not (np.isfinite(L) and np.all(np.isfinite(g))):
                return _finish(ls, theta, L, g, RESULTS.nonfinite, tr, step, t0)
            gn = float(np.max(np.abs(g)))
            tr.record(theta, L, gn)
            lam, V = _eigh(ls, theta)
            tr.num_hessians += 1
            hnorm = float(np.max(np.abs(lam))) if lam.size else 0.0
            res = tr.converged(theta, gn, hnorm)
            esc = tr.escaping(theta, L, final=res is not None)
            if esc is not None:
                return _finish(ls, theta, L, g, RESULTS.diverging, tr, step, t0,
                               {"escape": esc, "rejected_steps": rejected})
            if res is not None:
                return _finish(ls, theta, L, g, res, tr, step, t0, {"rejected_steps": rejected})
            if step == max_steps:
                break
            if tr.out_of_time():
                return _finish(ls, theta, L, g, RESULTS.time_limit_reached, tr, step, t0,
                               {"rejected_steps": rejected})
            if tr.stalled() and tr.flatness(g, lam, V) < tr.flat_threshold:
                return _finish(ls, theta, L, g, RESULTS.gradient_flat, tr, step, t0,
                               {"flatness": tr.flatness(g, lam, V), "rejected_steps": rejected})
            cut = ls.n_params * _EPS * hnorm
            lam_eff = np.where(np.abs(lam) > cut, lam, 0.0)
            if mu is None:
                mu = self.initial_damping * hnorm**2
            gt = V.T @ g
            gnorm2 = np.linalg.norm(g)
            accepted = False
            tried_undamped = watched = False
            trial = mu
            for _ in range(60):
                denom = lam_eff**2 + trial
                coef = np.divide(lam_eff, denom, out=np.zeros_like(lam_eff), where=denom > 0)
                s = -(V @ (coef * gt))
                new = theta + s
                Ln, gnw = _grad(ls, new)
                if np.all(np.isfinite(gnw)) and np.linalg.norm(gnw) < gnorm2:
                    theta, L, g = new, Ln, gnw
                    mu = trial / 10.0 if trial > 1e-30 * hnorm**2 else 0.0
                    accepted = True
                    break
                rejected += 1
                if trial == 0.0 and not watched:  # the undamped step failed: watchdog, once
                    watched = tried_undamped = True
                    if self.watchdog and np.all(np.isfinite(gnw)):
                        wd = _watchdog(ls, new, gnw, gnorm2, self.watchdog, tr)
                        if wd is not None:
                            theta, L, g = wd
                            mu = 0.0
                            accepted = True
                            break
                if trial > 0 and not tried_undamped:
                    tried_undamped = True
                    trial = 0.0
                    continue
                mu = max(mu * 10.0, 1e-20 * max(hnorm**2, 1e-300))
                trial = mu
                if mu > 1e20 * max(hnorm**2, 1e-300):
                    break
            if not accepted:
                break
        extra = {"rejected_steps": rejected}
        esc = tr.escaping(theta, L, final=True)
        if esc is not None:
            extra["escape"] = esc
            return _finish(ls, theta, L, g, RESULTS.diverging, tr, len(tr.history) - 1, t0, extra)
        fl = tr.flatness(g, lam, V) if lam is not None else 1.0
        extra["flatness"] = fl
        result = RESULTS.gradient_flat if fl < tr.flat_threshold else RESULTS.max_steps_reached
        return _finish(ls, theta, L, g, result, tr, len(tr.history) - 1, t0, extra)


def _pinv_newton_step(lam, V, g, n_params):
    hnorm = float(np.max(np.abs(lam))) if lam.size else 0.0
    cut = n_params * _EPS * hnorm
    safe = np.where(np.abs(lam) > cut, lam, 1.0)
    coef = np.where(np.abs(lam) > cut, 1.0 / safe, 0.0)
    return -(V @ (coef * (V.T @ g)))


def _watchdog(ls, theta, g, gref, steps, tr):
    """Up to `steps` undamped Newton steps from ``θ``; the first iterate with ``||∇L||₂ < gref``
    as ``(θ, L, g)``, or ``None``."""
    for _ in range(steps):
        lam, V = _eigh(ls, theta)
        tr.num_hessians += 1
        theta = theta + _pinv_newton_step(lam, V, g, ls.n_params)
        L, g = _grad(ls, theta)
        if not (np.isfinite(L) and np.all(np.isfinite(g))):
            return None
        if np.linalg.norm(g) < gref:
            return theta, L, g
    return None


def find_critical_point(
    ls: Landscape,
    theta0,
    solver: AbstractCriticalPointSolver | None = None,
    *,
    max_steps: int = 200,
    throw: bool = True,
    max_time: float | None = None,
    progress=None,
    budget: Budget | None = None,
) -> CriticalPointSolution:
    """Polish ``theta0`` to a critical point of ``ls`` with ``solver``.

    **Arguments:**

    - `solver`: :class:`NewtonTrustRegion` (minima; the default) or :class:`SaddleNewton`
      (critical points of any index).
    - `max_steps`: iteration budget.
    - `throw`: raise :class:`~lossatlas.SolverError` if the solver did not converge; sweeps
      pass ``False`` and read ``solution.result``.
    - `max_time`: wall-clock budget in seconds, checked once per step
      (``RESULTS.time_limit_reached``); `progress`: called with a :class:`lossatlas.Progress`
      about twice a second; `budget`: a running budget instead of these two.
    """
    theta0 = ls.check_theta(theta0, "theta0")
    solver = NewtonTrustRegion() if solver is None else solver
    if not isinstance(solver, AbstractCriticalPointSolver):
        raise InputError(f"`solver` must be a lossatlas critical-point solver, got {solver!r}.")
    if int(max_steps) < 0:
        raise InputError(f"`max_steps` must be >= 0, got {max_steps}.")
    if budget is not None and (max_time is not None or progress is not None):
        raise InputError("pass either `budget` or `max_time`/`progress`, not both.")
    budget = Budget(max_time, progress) if budget is None else budget
    sol = solver.run(ls, np.asarray(theta0), int(max_steps), budget)
    if throw:
        sol.raise_if_failed()
    return sol
