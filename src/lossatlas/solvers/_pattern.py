"""Critical points of networks with piecewise-linear activations (``relu``, ``leaky_relu:SLOPE``,
``abs``): Newton on the activation-pattern regions, and kinks reported as such.

**Regions.** The *pattern* of ``θ`` is ``D = σ'(z)`` for every pre-activation ``z`` of every
hidden layer on every sample (relu: 0/1, leaky_relu: slope/1, abs: ±1; at ``z = 0`` the
activation's documented convention). Since ``σ(z) = σ'(z)·z`` for these activations, the loss
with the pattern *frozen*, ``L_D(θ)`` (every ``σ`` replaced by multiplication with ``D``), is
a smooth function (for mse a polynomial in each layer's weights) that equals ``L`` on the
region of ``D``. Its gradient and Hessian at ``θ`` are the region's: with no pre-activation
exactly 0 they coincide with the autodiff gradient and Hessian of the landscape.

**Region step.** Levenberg-Marquardt on ``∇L_D = 0`` (as :class:`SaddleNewton`: ``s =
−(H² + μI)⁻¹Hg`` in the eigenbasis of the region Hessian, saddle-capable, ``μ → 0`` on
success), judged on the merit ``||∇L||₂`` of the *true* landscape at the trial point. A trial
step that changes the pattern and does not reduce the merit is cut at the region boundary:
the largest ``t`` keeping the pattern and the smallest ``t`` changing it are located by
bisection on the pattern along the step, and the first of ``θ + t_out s`` (accept the new
region), ``θ + t_in s`` (stop at the boundary, stay in the region) that reduces the merit is
taken; otherwise the damping grows.

**Kinks.** When the iterates keep running into the same boundaries (three boundary-cut steps
in a row, or a pre-activation whose sign flips back and forth), the limit is probably on a
kink. The solver then holds the blocking pairs ``A`` (sample, neuron) at the kink and solves
the square system ``∇_θ L(θ; d_A) = 0, z_A(θ) = 0`` in ``(θ, d_A)`` by Levenberg-Marquardt,
``d_A`` being the free activation derivatives of the pairs in ``A``. Its solution with every
``d_a`` inside its interval (relu ``[0, 1]``, leaky_relu ``[slope, 1]``, abs ``[−1, 1]``) is a
Clarke-stationary point on the kink (status ``RESULTS.kink``); a ``d_a`` outside releases that
pair and the region steps continue.

**Clarke stationarity** (:func:`clarke_measure`). At a point whose pairs ``K`` have
``|z| ≤ kink_tol · max(1, max|z|)``, the one-sided gradients are the region gradients
``∇_θ L(θ; d)`` with ``d_a`` at the ends of its interval. Because ``z_a = 0``, the forward pass
does not depend on ``d_a``; in backpropagation ``d_a`` multiplies the error of its own
neuron, so ``∇_θ L(θ; d)`` is *jointly affine* in the derivatives of the kink pairs of one
sample **when they lie in the same layer** (always so for one hidden layer), and samples enter
as a sum. The convex hull of the one-sided gradients is then the affine image of the box
``{g₀ + J(d − d₀)}`` and its minimal 2-norm element is a bounded least-squares problem, solved
exactly (``scipy.optimize.lsq_linear``, method ``bvls``). If one sample has kink pairs in two
layers, the gradient is multi-affine (products ``d₁ d₂``), the hull is larger than the image of
the box, and the measure is not computed (``clarke_stationarity: None``,
``clarke_exact: False``) rather than approximated silently.

Only empirical (finite-data) landscapes; any loss and penalty of :class:`Landscape`.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..landscape import Landscape
from ..models import activation_family, leaky_relu_slope
from ._newton import RESULTS, AbstractCriticalPointSolver, _finish, _Tracker

_EPS = float(np.finfo(np.float64).eps)


# ----------------------------------------------------------------------------- activations
class _Act:
    """Derivative convention and subgradient interval of a piecewise-linear activation."""

    def __init__(self, name: str):
        fam = activation_family(name)
        if fam not in ("relu", "leaky_relu", "abs"):
            raise InputError(
                f"PatternNewton needs a piecewise-linear activation (relu, leaky_relu:SLOPE, abs), "
                f"got {name!r}; use SaddleNewton or NewtonTrustRegion for smooth activations."
            )
        self.name, self.family = name, fam
        self.slope = leaky_relu_slope(name) if fam == "leaky_relu" else 0.0
        self.lo = -1.0 if fam == "abs" else min(self.slope, 1.0)
        self.hi = 1.0 if fam == "abs" else max(self.slope, 1.0)

    def deriv(self, z: np.ndarray) -> np.ndarray:
        if self.family == "abs":
            return np.sign(z)
        return np.where(z > 0, 1.0, self.slope)


def _check_landscape(ls: Landscape) -> _Act:
    if not isinstance(ls, Landscape):
        raise InputError(f"`ls` must be a lossatlas Landscape, got {type(ls).__name__}.")
    if ls.data is None:
        raise InputError("PatternNewton works on empirical losses (a data set), not population losses.")
    if ls.model.depth < 2:
        raise InputError("PatternNewton needs at least one hidden layer (a network with W2).")
    return _Act(ls.model.activation)


# ----------------------------------------------------------------------------- frozen loss
class _FrozenNet:
    """The network with its activation pattern frozen: ``h_l = D_l ⊙ z_l`` (traceable)."""

    def __init__(self, net, D):
        self.net, self.D = net, D

    def __call__(self, X):
        net = self.net
        h = X
        last = len(net.weights) - 1
        for i, w in enumerate(net.weights):
            h = h @ w.T
            if net.biases is not None:
                h = h + net.biases[i]
            if i < last:
                h = self.D[i] * h
        return h

    def arrays(self):
        return self.net.arrays()


def _frozen_objective(ls, theta, D):
    net = ls.unravel(theta)
    return ls.data_loss_of(_FrozenNet(net, D)) + ls.penalty_of(net)


@eqx.filter_jit
def _frozen_vg(ls, theta, D):
    return jax.value_and_grad(_frozen_objective, argnums=1)(ls, theta, D)


@eqx.filter_jit
def _frozen_hessian(ls, theta, D):
    return jax.hessian(_frozen_objective, argnums=1)(ls, theta, D)


@eqx.filter_jit
def _preacts(ls, theta):
    zs, _ = ls.unravel(theta).layer_outputs(ls.data.X)
    return tuple(zs[:-1])


def _scatter(D0, layer, sample, neuron, values):
    """``D0`` with the entries ``(layer, sample, neuron)`` set to `values` (traceable)."""
    out = []
    for li, Dl in enumerate(D0):
        cur = Dl[sample, jnp.clip(neuron, 0, Dl.shape[1] - 1)]
        delta = jnp.where(layer == li, values - cur, 0.0)
        out.append(Dl.at[sample, jnp.clip(neuron, 0, Dl.shape[1] - 1)].add(delta))
    return tuple(out)


def _gather(zs, layer, sample, neuron):
    vals = jnp.zeros(layer.shape, dtype=jnp.float64)
    for li, zl in enumerate(zs):
        vals = jnp.where(layer == li, zl[sample, jnp.clip(neuron, 0, zl.shape[1] - 1)], vals)
    return vals


def _grad_of_d(ls, theta, D0, layer, sample, neuron, d):
    D = _scatter(D0, layer, sample, neuron, d)
    return jax.grad(_frozen_objective, argnums=1)(ls, theta, D)


@eqx.filter_jit
def _grad_jac_d(ls, theta, D0, layer, sample, neuron, d):
    """``∇_θ L(θ; d)`` and its Jacobian with respect to the kink derivatives ``d``."""
    g = _grad_of_d(ls, theta, D0, layer, sample, neuron, d)
    J = jax.jacfwd(_grad_of_d, argnums=6)(ls, theta, D0, layer, sample, neuron, d)
    return g, J


def _kink_system(ls, x, D0, layer, sample, neuron):
    p = ls.n_params
    theta, d = x[:p], x[p:]
    g = _grad_of_d(ls, theta, D0, layer, sample, neuron, d)
    zA = _gather(_preacts_traced(ls, theta), layer, sample, neuron)
    return jnp.concatenate([g, zA])


def _preacts_traced(ls, theta):
    zs, _ = ls.unravel(theta).layer_outputs(ls.data.X)
    return zs[:-1]


@eqx.filter_jit
def _kink_F(ls, x, D0, layer, sample, neuron):
    return _kink_system(ls, x, D0, layer, sample, neuron)


@eqx.filter_jit
def _kink_FJ(ls, x, D0, layer, sample, neuron):
    F = _kink_system(ls, x, D0, layer, sample, neuron)
    J = jax.jacfwd(_kink_system, argnums=1)(ls, x, D0, layer, sample, neuron)
    return F, J


# ----------------------------------------------------------------------------- helpers
def _zs(ls, theta):
    return [np.asarray(z) for z in _preacts(ls, jnp.asarray(theta))]


def _pattern(act, zs):
    return tuple(jnp.asarray(act.deriv(z)) for z in zs)


def _true_grad(ls, act, theta):
    zs = _zs(ls, theta)
    L, g = _frozen_vg(ls, jnp.asarray(theta), _pattern(act, zs))
    return float(L), np.asarray(g), zs


def _signs(act, zs):
    return [z > 0 for z in zs] if act.family != "abs" else [np.sign(z) for z in zs]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _changed_pairs(a, b):
    out = []
    for li, (x, y) in enumerate(zip(a, b, strict=True)):
        for s, n in zip(*np.nonzero(x != y), strict=True):
            out.append((li, int(s), int(n)))
    return out


def _preact_stats(zs):
    absz = np.concatenate([np.abs(z).ravel() for z in zs])
    return float(absz.min()), float(absz.max())


def _kink_pairs(zs, tol):
    """``(layer, sample, neuron)`` index arrays of the pairs with ``|z| ≤ tol``."""
    ls_, ss, ns = [], [], []
    for li, z in enumerate(zs):
        s, n = np.nonzero(np.abs(z) <= tol)
        ls_.append(np.full(s.size, li))
        ss.append(s)
        ns.append(n)
    return np.concatenate(ls_), np.concatenate(ss), np.concatenate(ns)


def clarke_measure(ls: Landscape, theta, kink_tol: float = 1e-8, max_pairs: int = 500) -> dict:
    """Distance from 0 to the Clarke subdifferential of ``L`` at ``θ`` (see the module docstring).

    The kink pairs are those with ``|z| ≤ kink_tol · max(1, max|z|)``. Returns a JSON-ready dict:
    `min_abs_preactivation`, `kink_pairs` (``[layer, sample, neuron]`` triples, layers counted
    from 1), `clarke_stationarity` (the 2-norm of the minimal-norm element of the convex hull of
    the one-sided gradients; ``None`` when not computed exactly), `clarke_stationarity_inf`
    (the ∞-norm of that element: an upper bound on the ∞-norm distance), `clarke_exact`,
    `clarke_norm` (``"2"``), `kink_derivatives` (the minimising derivative choices) and
    `clarke_note`.
    """
    act = _check_landscape(ls)
    theta = np.asarray(theta, dtype=np.float64)
    zs = _zs(ls, theta)
    zmin, zmax = _preact_stats(zs)
    tol = kink_tol * max(1.0, zmax)
    layer, sample, neuron = _kink_pairs(zs, tol)
    D0 = _pattern(act, zs)
    out = {"min_abs_preactivation": zmin, "preactivation_scale": zmax, "kink_tol": tol,
           "kink_pairs": [[int(a) + 1, int(b), int(c)] for a, b, c in zip(layer, sample, neuron, strict=True)],
           "clarke_norm": "2"}
    if layer.size == 0:
        g = np.asarray(_frozen_vg(ls, jnp.asarray(theta), D0)[1])
        out.update(clarke_stationarity=float(np.linalg.norm(g)),
                   clarke_stationarity_inf=float(np.max(np.abs(g))), clarke_exact=True,
                   kink_derivatives=[], clarke_note="no kink pairs: the gradient is unique")
        return out
    mixed = [int(s) for s in np.unique(sample) if np.unique(layer[sample == s]).size > 1]
    if mixed or layer.size > max_pairs:
        why = (f"samples {mixed[:10]} have kink pairs in more than one layer: the gradient is "
               "multi-affine in their derivatives and the hull is not the image of the box"
               if mixed else f"{layer.size} kink pairs exceed max_pairs={max_pairs}")
        out.update(clarke_stationarity=None, clarke_stationarity_inf=None, clarke_exact=False,
                   kink_derivatives=None, clarke_note=f"not computed: {why}")
        return out
    from scipy.optimize import lsq_linear

    d0 = np.array([np.asarray(D0[a])[b, c] for a, b, c in zip(layer, sample, neuron, strict=True)])
    g0, J = _grad_jac_d(ls, jnp.asarray(theta), D0, jnp.asarray(layer), jnp.asarray(sample),
                        jnp.asarray(neuron), jnp.asarray(d0))
    g0, J = np.asarray(g0), np.asarray(J)
    res = lsq_linear(J, -g0, bounds=(act.lo - d0, act.hi - d0), method="bvls", tol=1e-14)
    v = g0 + J @ res.x
    out.update(clarke_stationarity=float(np.linalg.norm(v)), clarke_stationarity_inf=float(np.max(np.abs(v))),
               clarke_exact=True, kink_derivatives=[float(x) for x in d0 + res.x],
               clarke_note="exact: the gradient is affine in the kink derivatives (each sample's kink "
                           "pairs lie in one layer); minimal 2-norm over the box by bounded least squares")
    return out


# ----------------------------------------------------------------------------- the solver
class PatternNewton(AbstractCriticalPointSolver):
    """Critical points of piecewise-linear networks: region Newton/LM plus kink detection.

    See the module docstring. Stops with ``RESULTS.successful``/``roundoff_floor`` at a smooth
    critical point of its region (``details['region_hessian'] = True``: the Hessian there is
    the region's, which the autodiff Hessian equals since no pre-activation is 0), with
    ``RESULTS.kink`` at a Clarke-stationary point on a kink (diagnostics in ``details``, the
    Clarke measure in ``details['clarke']``), or with the usual budget statuses. Every result
    carries ``details['min_abs_preactivation']``.

    - `kink_tol`: relative size ``|z| ≤ kink_tol · max(1, max|z|)`` of a pre-activation counted
      as at the kink (for the Clarke measure and the kink status).
    - `boundary_window`: boundary-cut steps in a row (or sign flips of one pair) that trigger
      the kink solve.
    - `kink_steps`: iterations of one kink solve (it also stops when ``||F||`` stalls).
    - `kink_failures`: kink solves that do not converge before the solver stops with
      ``RESULTS.kink`` at the boundary point the iterates keep returning to (then the Clarke
      measure tells whether that point is Clarke-stationary; ``details['kink_solve']`` says so).
    """

    gtol: float = 1e-10
    initial_damping: float = 1e-3
    kink_tol: float = 1e-8
    boundary_window: int = 3
    kink_steps: int = 15
    kink_failures: int = 2
    flat_threshold: float = 1e-2
    stall_window: int = 25
    escape_window: int = 100

    def __check_init__(self):
        if self.gtol < 0 or self.initial_damping < 0 or self.kink_tol <= 0:
            raise InputError("`gtol` and `initial_damping` must be >= 0 and `kink_tol` > 0.")
        if self.boundary_window < 1 or self.kink_steps < 1:
            raise InputError("`boundary_window` and `kink_steps` must be >= 1.")
        if self.escape_window < 0 or self.escape_window % 25:
            raise InputError(f"`escape_window` must be a multiple of 25 (0: off), got {self.escape_window}.")

    # ------------------------------------------------------------------ main loop
    def run(self, ls, theta0, max_steps, budget=None):
        act = _check_landscape(ls)
        t0 = time.perf_counter()
        tr = _Tracker(ls, self.gtol, self.flat_threshold, self.stall_window, self.escape_window, budget)
        theta = np.array(theta0, dtype=np.float64)
        info = {"activation": act.name, "boundary_steps": 0, "region_changes": 0, "kink_solves": 0,
                "released_pairs": 0, "rejected_steps": 0}
        mu = None
        boundary_run = 0
        flips: list[list] = []  # pairs whose sign changed, per accepted step
        blocking: set = set()
        banned_until = -1
        step = 0
        L, g, zs = _true_grad(ls, act, theta)
        while True:
            if not (np.isfinite(L) and np.all(np.isfinite(g))):
                return self._done(ls, act, theta, L, g, zs, RESULTS.nonfinite, tr, step, t0, info)
            gn = float(np.max(np.abs(g)))
            tr.record(theta, L, gn)
            D = _pattern(act, zs)
            H = np.asarray(_frozen_hessian(ls, jnp.asarray(theta), D))
            lam, V = np.linalg.eigh(0.5 * (H + H.T))
            tr.num_hessians += 1
            hnorm = float(np.max(np.abs(lam)))
            res = tr.converged(theta, gn, hnorm)
            esc = tr.escaping(theta, L, final=res is not None)
            if esc is not None:
                info["escape"] = esc
                return self._done(ls, act, theta, L, g, zs, RESULTS.diverging, tr, step, t0, info)
            if res is not None:
                return self._done(ls, act, theta, L, g, zs, res, tr, step, t0, info)
            if step >= max_steps:
                return self._done(ls, act, theta, L, g, zs, RESULTS.max_steps_reached, tr, step, t0, info)
            if tr.out_of_time():
                return self._done(ls, act, theta, L, g, zs, RESULTS.time_limit_reached, tr, step, t0, info)

            # --- the limit looks like a kink: solve on it
            recent = [p for f in flips[-4 * self.boundary_window:] for p in f]
            flipping = {p for p in set(recent) if recent.count(p) >= self.boundary_window + 1}
            if step > banned_until and (boundary_run >= self.boundary_window or flipping):
                zmax = _preact_stats(zs)[1]
                cand = sorted(p for p in (blocking | flipping)
                              if abs(zs[p[0]][p[1], p[2]]) <= 1e-2 * max(1.0, zmax))
                if cand:
                    info["kink_solves"] += 1
                    out = self._kink_solve(ls, act, theta, cand, tr, max_steps - step, info)
                    step += out["steps"]
                    if out["status"] == "kink":
                        theta = out["theta"]
                        L, g, zs = _true_grad(ls, act, theta)
                        return self._done(ls, act, theta, L, g, zs, RESULTS.kink, tr, step, t0, info,
                                          kink=out)
                    if out["status"] == "time":
                        return self._done(ls, act, theta, L, g, zs, RESULTS.time_limit_reached, tr,
                                          step, t0, info)
                    # the kink solve did not converge: keep the boundary point it started from
                    info["kink_solve_failures"] = info.get("kink_solve_failures", 0) + 1
                    if info["kink_solve_failures"] >= self.kink_failures:
                        # repeated boundary hits that no smooth or kink Newton step resolves: the
                        # limit is on a kink; say so with the Clarke measure at this point
                        info["kink_solve"] = "not converged: the Clarke measure is that of the last iterate"
                        return self._done(ls, act, theta, L, g, zs, RESULTS.kink, tr, step, t0, info)
                    banned_until = step + 2 * self.boundary_window
                    boundary_run, flips, blocking, mu = 0, [], set(), None
                    continue
                banned_until = step + self.boundary_window
            # --- a region step (LM on ∇L_D = 0), cut at the region boundary when needed
            cut = ls.n_params * _EPS * hnorm
            lam_eff = np.where(np.abs(lam) > cut, lam, 0.0)
            if mu is None:
                mu = self.initial_damping * hnorm**2
            gt = V.T @ g
            merit0 = float(np.linalg.norm(g))
            signs0 = _signs(act, zs)
            trial, tried_undamped, accepted = mu, False, None
            for _ in range(60):
                denom = lam_eff**2 + trial
                coef = np.divide(lam_eff, denom, out=np.zeros_like(lam_eff), where=denom > 0)
                s = -(V @ (coef * gt))
                new = theta + s
                Ln, gnw, zn = _true_grad(ls, act, new)
                if np.all(np.isfinite(gnw)) and np.linalg.norm(gnw) < merit0:
                    accepted = (new, Ln, gnw, zn, False, ())
                    break
                if not _same(signs0, _signs(act, zn)):
                    cut_step = self._boundary(ls, act, theta, s, signs0, merit0)
                    if cut_step is not None:
                        accepted = cut_step
                        break
                info["rejected_steps"] += 1
                if trial > 0 and not tried_undamped:
                    tried_undamped, trial = True, 0.0
                    continue
                mu = max(mu * 10.0, 1e-20 * max(hnorm**2, 1e-300))
                trial = mu
                if mu > 1e20 * max(hnorm**2, 1e-300):
                    break
            if accepted is None:
                # no step reduces ||∇L||: the kink solve is the last resort, else stop
                if step <= banned_until and boundary_run == 0:
                    return self._done(ls, act, theta, L, g, zs, RESULTS.max_steps_reached, tr, step,
                                      t0, info)
                boundary_run = self.boundary_window
                banned_until = -1
                zmin, zmax = _preact_stats(zs)
                near = _kink_pairs(zs, max(1e-6 * max(1.0, zmax), 10 * zmin))
                blocking |= {(int(a), int(b), int(c)) for a, b, c in zip(*near, strict=True)}
                step += 1
                continue
            new, Ln, gnw, zn, at_boundary, blockers = accepted
            mu = trial / 10.0 if trial > 1e-30 * hnorm**2 else 0.0
            changed = _changed_pairs(signs0, _signs(act, zn))
            if changed:
                info["region_changes"] += 1
            flips.append(changed)
            if at_boundary:
                info["boundary_steps"] += 1
                boundary_run += 1
                blocking |= set(blockers)
            else:
                boundary_run = 0
                blocking = set()
            theta, L, g, zs = new, Ln, gnw, zn
            step += 1
            if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > 1e12:
                return self._done(ls, act, theta, L, g, zs, RESULTS.diverged, tr, step, t0, info)

    def _boundary(self, ls, act, theta, s, signs0, merit0):
        """Cut the step ``s`` at the first change of the pattern; the accepted tuple or None."""
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _same(signs0, _signs(act, _zs(ls, theta + mid * s))):
                lo = mid
            else:
                hi = mid
            if hi - lo <= 4 * _EPS * hi:
                break
        blockers = tuple(_changed_pairs(signs0, _signs(act, _zs(ls, theta + hi * s))))
        for t in (hi, lo):
            if t <= 0:
                continue
            new = theta + t * s
            Ln, gnw, zn = _true_grad(ls, act, new)
            if np.all(np.isfinite(gnw)) and np.linalg.norm(gnw) < merit0:
                return (new, Ln, gnw, zn, True, blockers)
        return None

    # ------------------------------------------------------------------ on the kink
    def _kink_solve(self, ls, act, theta, pairs, tr, steps_left, info):
        """LM on ``(∇_θ L(θ; d_A), z_A(θ)) = 0``; releases pairs whose ``d`` leaves its interval."""
        p = ls.n_params
        pairs = list(pairs)
        used = 0
        while pairs:
            layer = jnp.asarray([a for a, _, _ in pairs])
            sample = jnp.asarray([b for _, b, _ in pairs])
            neuron = jnp.asarray([c for _, _, c in pairs])
            zs = _zs(ls, theta)
            D0 = _pattern(act, zs)
            _, J = _grad_jac_d(ls, jnp.asarray(theta), D0, layer, sample, neuron,
                               jnp.asarray([float(np.asarray(D0[a])[b, c]) for a, b, c in pairs]))
            # start d at the least-squares choice for the current gradient
            g0 = np.asarray(_frozen_vg(ls, jnp.asarray(theta), D0)[1])
            d0 = np.array([float(np.asarray(D0[a])[b, c]) for a, b, c in pairs])
            d = d0 + np.linalg.lstsq(np.asarray(J), -g0, rcond=None)[0]
            x = np.concatenate([theta, d])
            mu = None
            ok = False
            norms: list[float] = []
            for _ in range(self.kink_steps):
                if used >= steps_left:
                    return {"status": "steps", "theta": theta, "steps": used}
                if tr.out_of_time():
                    return {"status": "time", "theta": theta, "steps": used}
                D0 = _pattern(act, _zs(ls, x[:p]))
                F, JF = _kink_F_and_J(ls, x, D0, layer, sample, neuron)
                gk = F[:p]
                tr.record(x[:p], float(_frozen_vg(ls, jnp.asarray(x[:p]), D0)[0]), float(np.max(np.abs(gk))))
                tr.num_hessians += 1
                used += 1
                zmax = _preact_stats(_zs(ls, x[:p]))[1]
                if (np.max(np.abs(gk)) <= max(self.gtol, tr.floor)
                        and np.max(np.abs(F[p:])) <= 1e3 * _EPS * max(1.0, zmax)):
                    ok = True
                    break
                norms.append(float(np.linalg.norm(F)))
                if len(norms) > 4 and norms[-1] > 0.5 * norms[-5]:
                    break  # no Newton-like progress: boundaries of other pairs interfere
                U, sv, Wt = np.linalg.svd(JF)
                Ft = U.T @ F
                smax = sv[0] if sv.size else 0.0
                sv_eff = np.where(sv > JF.shape[0] * _EPS * smax, sv, 0.0)
                if mu is None:
                    mu = self.initial_damping * smax**2
                n0 = float(np.linalg.norm(F))
                trial, tried, accepted = mu, False, False
                for _ in range(12):
                    coef = np.divide(sv_eff, sv_eff**2 + trial, out=np.zeros_like(sv_eff),
                                     where=(sv_eff**2 + trial) > 0)
                    xn = x - Wt.T @ (coef * Ft[: sv.size])
                    Dn = _pattern(act, _zs(ls, xn[:p]))
                    Fn = np.asarray(_kink_F(ls, jnp.asarray(xn), Dn, layer, sample, neuron))
                    if np.all(np.isfinite(Fn)) and np.linalg.norm(Fn) < n0:
                        x, accepted = xn, True
                        mu = trial / 10.0 if trial > 1e-30 * smax**2 else 0.0
                        break
                    if trial > 0 and not tried:
                        tried, trial = True, 0.0
                        continue
                    mu = max(mu * 10.0, 1e-20 * max(smax**2, 1e-300))
                    trial = mu
                if not accepted:
                    break
            theta = x[:p]
            d = x[p:]
            if not ok:
                return {"status": "failed", "theta": theta, "steps": used}
            slack = 1e-8 * (act.hi - act.lo)
            bad = [i for i, v in enumerate(d) if v < act.lo - slack or v > act.hi + slack]
            if not bad:
                return {"status": "kink", "theta": theta, "steps": used, "pairs": pairs,
                        "derivatives": [float(v) for v in d]}
            info["released_pairs"] += len(bad)
            pairs = [q for i, q in enumerate(pairs) if i not in bad]
        return {"status": "released", "theta": theta, "steps": used}

    # ------------------------------------------------------------------ the end
    def _done(self, ls, act, theta, L, g, zs, result, tr, step, t0, info, kink=None):
        zmin, zmax = _preact_stats(zs)
        extra = dict(info)
        extra.update(min_abs_preactivation=zmin, preactivation_scale=zmax)
        if result.is_successful():
            extra["region_hessian"] = True
            extra["region_note"] = (
                "smooth critical point inside its activation-pattern region (no pre-activation is 0): "
                "the autodiff Hessian here is the region's Hessian; classify with it")
        if result is RESULTS.kink or (not result.is_successful() and zmin <= self.kink_tol * max(1.0, zmax)):
            c = clarke_measure(ls, theta, self.kink_tol)
            if kink is not None:
                c["kink_solve_pairs"] = [[a + 1, b, n] for a, b, n in kink["pairs"]]
                c["kink_solve_derivatives"] = kink["derivatives"]
            extra["clarke"] = c
            extra["kink_pairs"] = c["kink_pairs"]
            extra["clarke_stationarity"] = c["clarke_stationarity"]
        return _finish(ls, theta, L, g, result, tr, step, t0, extra)


def _kink_F_and_J(ls, x, D0, layer, sample, neuron):
    F, J = _kink_FJ(ls, jnp.asarray(x), D0, layer, sample, neuron)
    return np.asarray(F), np.asarray(J)
