"""Critical points of networks with piecewise-linear activations (``relu``, ``leaky_relu:SLOPE``,
``abs``): a descent to a smooth critical point of an activation-pattern region or to a
Clarke-stationary point on kinks, certified exactly.

**Regions and kinks.** The *pattern* of ``θ`` is ``D = σ'(z)`` for every pre-activation ``z`` of
every hidden layer on every sample (relu: 0/1, leaky_relu: slope/1, abs: ±1; at ``z = 0`` the
activation's documented convention). Since ``σ(z) = σ'(z)·z``, the loss with the pattern
*frozen*, ``L_D(θ)``, is smooth and equals ``L`` on the region of ``D``; its gradient and Hessian
there are the autodiff ones. A pair ``a = (layer, sample, neuron)`` with ``z_a = 0`` adds nothing
to the forward pass whatever its derivative ``d_a``; in backpropagation ``d_a`` multiplies the
error ``δ_a = ∂L/∂h_a`` of its neuron, so ``∂∇_θ L_D/∂d_a = δ_a ∇_θ z_a`` exactly, and across the
kink the loss changes like ``c_a max(0, ±z_a)`` with ``c_a = δ_a (d₊ − d₋)`` (``d₊``/``d₋`` the
derivatives for ``z > 0``/``z < 0``): the kink is *convex* (it can hold a minimum) when
``c_a > 0``.

**Why not Newton per region alone.** With hundreds of samples the regions are tiny (a step of
1e-3 crosses several kinks on diabetes with a 10→8→1 net): Newton on one region's quadratic
crawls, and the limit is usually *on* kinks — at a vertex of some 10–40 kink hyperplanes, like
the solution of a linear program — where the gradient never vanishes.

**The iteration** (a descent method: it goes to minima, smooth or on kinks), in three phases,
every step judged by the true loss (ratio of actual to predicted decrease):

1. *Kink-rounded trust region.* The model of a step of length ``r`` is the quadratic model of
   the loss with every kink rounded off over ``smoothing · r`` (``softplus``, per sample
   scaled by ``||∇z||``), so it carries the curvature of the kinks the step may cross. This
   descends as fast as a smooth problem. When the trust region collapses (a rejected step with
   ``r`` below `collapse_radius`), the iterate sits next to its limit's kinks:
2. *The exact local model.* ``min_s gᵀs + ½ sᵀ(H + μ)s + Σ_a c_a max(0, −σ_a (z_a + ∇z_a·s))``
   over the `max_kinks` nearest convex kinks within reach (``H`` the region Hessian, ``σ_a`` the
   side of ``z_a``, Levenberg-Marquardt ``μ``): the piecewise-quadratic model is exact to first
   order in every kink, so steps may land on kinks and slide along them. Its dual is a bounded
   least-squares problem in the kinks' multipliers (exactly: ``l₀ = Bᵀθ₀`` completes the square),
   solved by BVLS; the step then lands exactly on the kinks whose multiplier lies inside its
   interval.
3. *Newton on the kink manifold.* Once the model steps converge, Newton steps on
   ``{z_A = 0}`` for the pairs ``A`` at the kink (null-space method, with the gradient and
   Hessian at the Clarke element's derivatives, whose restriction to the tangent space is the
   manifold's Hessian): quadratic convergence to round-off.

All compiled functions have static shapes (index sets are padded to a few bucket sizes), so
nothing recompiles as the kink sets change. A start whose gradient is already small
(``≤ newton_handoff``) first gets saddle-capable Levenberg-Marquardt steps in its region, so a
point polished elsewhere is kept, not descended from.

**Stops.** ``RESULTS.successful``/``roundoff_floor`` when ``||∇L||_∞`` meets the target at a
point where no pre-activation is within ``kink_tol`` of 0 (``details['region_hessian'] = True``:
the autodiff Hessian there is the region's); ``RESULTS.kink`` when the exact Clarke measure over
the pairs at the kink meets it (``details['clarke']``, ``details['kink_certified']``). The
round-off floor is measured with the pattern (and the kink derivatives) frozen, so the data
reorderings that probe the summation round-off cannot flip a kink pair's side.

**Clarke stationarity** (:func:`clarke_measure`). At a point whose pairs ``K`` have
``|z| ≤ kink_tol · max(1, max|z|)``, the one-sided gradients are ``∇_θ L(θ; d)`` with ``d_a`` at the
ends of its interval (relu ``[0, 1]``, leaky_relu ``[slope, 1]``, abs ``[−1, 1]``). The gradient is
*jointly affine* in the derivatives of the kink pairs of one sample **when they lie in the same
layer** (always so for one hidden layer), and samples enter as a sum: the convex hull of the
one-sided gradients is the affine image ``{g₀ + Σ_a (d_a − d⁰_a) δ_a ∇z_a}`` of the box, and its
minimal 2-norm element is a bounded least-squares problem, solved exactly (BVLS). If one sample
has kink pairs in two layers, the gradient is multi-affine, the hull is larger than the image of
the box, and the measure is not computed (``clarke_stationarity: None``, ``clarke_exact: False``)
rather than approximated silently.

Only empirical (finite-data) landscapes; any loss and penalty of :class:`Landscape`.
"""

from __future__ import annotations

import contextlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import lsq_linear

from .._errors import InputError
from ..data import Dataset
from ..landscape import Landscape
from ..models import activation_family, leaky_relu_slope
from ._newton import RESULTS, AbstractCriticalPointSolver, _finish, _Tracker, _trust_region_step

try:  # optional (it comes with scikit-learn): BLAS on one thread for the small dense algebra
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

_EPS = float(np.finfo(np.float64).eps)
#: Up to this many parameters the eigendecompositions and least-squares solves run BLAS on one
#: thread (measured on a loaded two-core machine: a 97 × 97 eigh takes 3 ms on one OpenBLAS
#: thread and 65–200 ms on two that wait for each other; threads cannot help at this size).
_ONE_THREAD_BELOW = 600
#: Padded sizes of kink index sets (static shapes: one compilation per bucket, not per size).
_BUCKETS = (8, 32, 128, 512, 2048)


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
        #: the derivative for z < 0, and d(z > 0) − d(z < 0): a kink is convex when δ · jump > 0
        self.d_minus = -1.0 if fam == "abs" else self.slope
        self.jump = 2.0 if fam == "abs" else 1.0 - self.slope

    def deriv(self, z):
        """``σ'(z)`` with the activation's convention at 0 (NumPy or JAX arrays)."""
        xp = jnp if isinstance(z, jax.Array) else np
        if self.family == "abs":
            return xp.sign(z)
        return xp.where(z > 0, 1.0, self.slope)


def _check_landscape(ls: Landscape) -> _Act:
    if not isinstance(ls, Landscape):
        raise InputError(f"`ls` must be a lossatlas Landscape, got {type(ls).__name__}.")
    if ls.data is None:
        raise InputError("PatternNewton works on empirical losses (a data set), not population losses.")
    if ls.model.depth < 2:
        raise InputError("PatternNewton needs at least one hidden layer (a network with W2).")
    return _Act(ls.model.activation)


def _shapes(ls):
    return [(ls.data.n_samples, int(w.shape[0])) for w in ls.model.weights[:-1]]


# ----------------------------------------------------------------------------- frozen loss
class _FrozenNet:
    """The network with its activation pattern frozen: ``h_l = D_l ⊙ z_l + E_l`` (traceable).

    ``E`` (optional) is an additive probe on the hidden outputs: ``∂L/∂E_l = δ_l``, the
    backpropagated errors of every (sample, neuron) pair in one backward pass."""

    def __init__(self, net, D, E=None):
        self.net, self.D, self.E = net, D, E

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
                if self.E is not None:
                    h = h + self.E[i]
        return h

    def arrays(self):
        return self.net.arrays()


def _frozen_objective(ls, theta, D, E=None):
    net = ls.unravel(theta)
    return ls.data_loss_of(_FrozenNet(net, D, E)) + ls.penalty_of(net)


def _patterns(ls, theta, masks, dvals):
    """Pre-activations, the pattern of ``θ`` (pairs in `masks` take `dvals`) and, per hidden
    layer, ``sqrt(||h_in||² + 1)`` per sample: the length of ``∇z`` in its neuron's incoming
    weights and bias (traceable)."""
    act = _Act(ls.model.activation)
    net = ls.unravel(theta)
    h = ls.data.X
    zs, Ds, norms = [], [], []
    one = 1.0 if net.biases is not None else 0.0
    for i, w in enumerate(net.weights[:-1]):
        norms.append(jnp.sqrt(jnp.sum(h * h, axis=1) + one))
        z = h @ w.T
        if net.biases is not None:
            z = z + net.biases[i]
        D = jax.lax.stop_gradient(jnp.where(masks[i], dvals[i], act.deriv(z)))
        zs.append(z)
        Ds.append(D)
        h = D * z
    return tuple(zs), tuple(Ds), tuple(norms)


@eqx.filter_jit
def _state(ls, theta, masks, dvals):
    """Loss, gradient, pre-activations, backpropagated errors ``δ``, pattern and ``||∇z||``."""
    zs, D, norms = _patterns(ls, theta, masks, dvals)
    E = tuple(jnp.zeros_like(z) for z in zs)
    L, (g, dE) = jax.value_and_grad(_frozen_objective, argnums=(1, 3))(ls, theta, D, E)
    return L, g, zs, dE, D, norms


@eqx.filter_jit
def _frozen_grad(ls, theta, D):
    return jax.grad(_frozen_objective, argnums=1)(ls, theta, D)


@eqx.filter_jit
def _frozen_hessian(ls, theta, D):
    return jax.hessian(_frozen_objective, argnums=1)(ls, theta, D)


def _z_one(ls, theta, x, Drow, layer, neuron):
    """Pre-activation of (`layer`, `neuron`) of one sample with its pattern row frozen."""
    net = ls.unravel(theta)
    h = x
    val = jnp.zeros((), dtype=jnp.float64)
    for i, w in enumerate(net.weights[:-1]):
        z = w @ h
        if net.biases is not None:
            z = z + net.biases[i]
        val = jnp.where(layer == i, z[jnp.clip(neuron, 0, z.shape[0] - 1)], val)
        h = Drow[i] * z
    return val


@eqx.filter_jit
def _rows(ls, theta, D, layer, sample, neuron):
    """``z_A`` and the rows ``∇_θ z_a`` (padded entries: ``layer = -1``, zero rows)."""
    X = ls.data.X[sample]
    Drows = tuple(Dl[sample] for Dl in D)
    fn = jax.vmap(jax.value_and_grad(_z_one, argnums=1), in_axes=(None, None, 0, 0, 0, 0))
    z, G = fn(ls, theta, X, Drows, layer, neuron)
    valid = layer >= 0
    return jnp.where(valid, z, 0.0), jnp.where(valid[:, None], G, 0.0)


def _padded(pairs):
    """Index arrays of `pairs` padded to the next bucket size (padding: layer −1)."""
    k = len(pairs)
    size = next((b for b in _BUCKETS if b >= k), k)
    arr = np.zeros((3, size), dtype=np.int64)
    arr[0, :] = -1
    if k:
        arr[:, :k] = np.asarray(pairs, dtype=np.int64).T
    return jnp.asarray(arr[0]), jnp.asarray(arr[1]), jnp.asarray(arr[2])


def _kink_rows(ls, theta, D, pairs):
    z, G = _rows(ls, jnp.asarray(theta), D, *_padded(pairs))
    return np.asarray(z)[: len(pairs)], np.asarray(G)[: len(pairs)]


def _masks(shapes, pairs, dvals):
    masks = [np.zeros(s, dtype=bool) for s in shapes]
    vals = [np.zeros(s) for s in shapes]
    for (li, s, n), d in zip(pairs, dvals, strict=True):
        masks[li][s, n] = True
        vals[li][s, n] = d
    return tuple(jnp.asarray(m) for m in masks), tuple(jnp.asarray(v) for v in vals)


class _Eval:
    """One evaluation at ``θ`` with the autodiff pattern: loss, (one-sided) gradient,
    pre-activations, backpropagated errors ``δ``, pattern and ``||∇z||``."""

    def __init__(self, ls, theta, shapes=None):
        self.theta = np.asarray(theta, dtype=np.float64)
        m, v = _masks(_shapes(ls) if shapes is None else shapes, [], [])
        L, g, zs, dE, D, norms = _state(ls, jnp.asarray(self.theta), m, v)
        self.L, self.g = float(L), np.asarray(g)
        self.zs = [np.asarray(z) for z in zs]
        self.delta = [np.asarray(d) for d in dE]
        self.norms = [np.maximum(np.asarray(n), 1e-300) for n in norms]
        self.D = D
        absz = np.concatenate([np.abs(z).ravel() for z in self.zs])
        self.zmin, self.zmax = float(absz.min()), float(absz.max())

    def ok(self):
        return bool(np.isfinite(self.L) and np.all(np.isfinite(self.g)))


# ----------------------------------------------------------------------------- Clarke measure
def _kink_pairs(zs, tol):
    """``(layer, sample, neuron)`` triples of the pairs with ``|z| ≤ tol``."""
    out = []
    for li, z in enumerate(zs):
        s, n = np.nonzero(np.abs(z) <= tol)
        out += [(li, int(a), int(b)) for a, b in zip(s, n, strict=True)]
    return out


def _bvls(J, g, lo, hi):
    """``min ||g + J x||₂`` over the box ``lo ≤ x ≤ hi`` (exact; bounded-variable least squares)."""
    if J.shape[1] == 0:
        return np.zeros(0), g
    lo = np.minimum(lo, hi)
    res = lsq_linear(J, -g, bounds=(lo, np.maximum(hi, lo + 1e-300)), method="bvls", tol=1e-15)
    x = np.clip(res.x, lo, hi)
    return x, g + J @ x


def _kink_jacobian(ls, ev, pairs):
    """``∂∇_θ L/∂d_A = [δ_a ∇_θ z_a]`` (columns), at the evaluation `ev`."""
    _, G = _kink_rows(ls, ev.theta, ev.D, pairs)
    delta = np.array([ev.delta[a][b, c] for a, b, c in pairs])
    return (G * delta[:, None]).T


def _clarke_over(ls, act, ev, pairs):
    """The minimal-norm element of the hull of the one-sided gradients over `pairs` and its
    derivative choices."""
    d0 = np.array([float(act.deriv(ev.zs[a][b, c])) for a, b, c in pairs])
    x, v = _bvls(_kink_jacobian(ls, ev, pairs), ev.g, act.lo - d0, act.hi - d0)
    return v, d0 + x


def clarke_measure(ls: Landscape, theta, kink_tol: float = 1e-8, max_pairs: int = 2048) -> dict:
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
    ev = _Eval(ls, np.asarray(theta, dtype=np.float64))
    tol = kink_tol * max(1.0, ev.zmax)
    pairs = _kink_pairs(ev.zs, tol)
    out = {"min_abs_preactivation": ev.zmin, "preactivation_scale": ev.zmax, "kink_tol": tol,
           "kink_pairs": [[a + 1, b, c] for a, b, c in pairs], "clarke_norm": "2"}
    if not pairs:
        out.update(clarke_stationarity=float(np.linalg.norm(ev.g)),
                   clarke_stationarity_inf=float(np.max(np.abs(ev.g))), clarke_exact=True,
                   kink_derivatives=[], clarke_note="no kink pairs: the gradient is unique")
        return out
    layers_of: dict[int, set] = {}
    for a, b, _ in pairs:
        layers_of.setdefault(b, set()).add(a)
    mixed = sorted(s for s, lay in layers_of.items() if len(lay) > 1)
    if mixed or len(pairs) > max_pairs:
        why = (f"samples {mixed[:10]} have kink pairs in more than one layer: the gradient is "
               "multi-affine in their derivatives and the hull is not the image of the box"
               if mixed else f"{len(pairs)} kink pairs exceed max_pairs={max_pairs}")
        out.update(clarke_stationarity=None, clarke_stationarity_inf=None, clarke_exact=False,
                   kink_derivatives=None, clarke_note=f"not computed: {why}")
        return out
    v, d = _clarke_over(ls, act, ev, pairs)
    out.update(clarke_stationarity=float(np.linalg.norm(v)), clarke_stationarity_inf=float(np.max(np.abs(v))),
               clarke_exact=True, kink_derivatives=[float(t) for t in d],
               clarke_note="exact: the gradient is affine in the kink derivatives (each sample's kink "
                           "pairs lie in one layer); minimal 2-norm over the box by bounded least squares")
    return out


def _frozen_floor(ls, theta, D, hnorm, repeats=3):
    """The float64 round-off floor of ``||∇L_D||_∞`` (as :func:`gradient_floor`, with the
    pattern ``D`` frozen, so that reordering the data cannot flip a kink pair's side)."""
    g = np.asarray(_frozen_grad(ls, jnp.asarray(theta), D))
    rep = _EPS * hnorm * float(np.max(np.abs(theta)))
    evals = 4.0 * _EPS * float(np.max(np.abs(g)))
    rng = np.random.default_rng(1234)
    X, Y = np.asarray(ls.data.X), np.asarray(ls.data.Y)
    for _ in range(repeats):
        perm = rng.permutation(ls.data.n_samples)
        other = ls.with_data(Dataset(X[perm], Y[perm]))
        Dp = tuple(jnp.asarray(np.asarray(Dl)[perm]) for Dl in D)
        evals = max(evals, float(np.max(np.abs(np.asarray(_frozen_grad(other, jnp.asarray(theta), Dp)) - g))))
    return float(rep + evals)


# ----------------------------------------------------------------------------- phase 1: rounded kinks
class _SmoothNet:
    """The network with every kink rounded off (traceable): ``σ(z) = d₋ z + jump · relu(z)``
    becomes ``d₋ z + jump · w softplus(z / w)`` with ``w = width · ||∇z||`` per sample, so that
    `width` is a length in parameter space (``width = 0``: the activation itself)."""

    def __init__(self, net, act, width):
        self.net, self.act, self.width = net, act, width

    def __call__(self, X):
        net, act = self.net, self.act
        h = X
        last = len(net.weights) - 1
        one = 1.0 if net.biases is not None else 0.0
        for i, w in enumerate(net.weights):
            hin = h
            h = h @ w.T
            if net.biases is not None:
                h = h + net.biases[i]
            if i < last:
                wd = jax.lax.stop_gradient(self.width * jnp.sqrt(jnp.sum(hin * hin, axis=1, keepdims=True) + one))
                rounded = wd > 1e-300
                wd = jnp.where(rounded, wd, 1.0)  # the branch not taken stays finite (no NaN gradients)
                h = jnp.where(rounded, act.d_minus * h + act.jump * wd * jax.nn.softplus(h / wd),
                              jax.lax.stop_gradient(act.deriv(h)) * h)
        return h

    def arrays(self):
        return self.net.arrays()


def _smooth_objective(ls, theta, width):
    net = ls.unravel(theta)
    return ls.data_loss_of(_SmoothNet(net, _Act(ls.model.activation), width)) + ls.penalty_of(net)


@eqx.filter_jit
def _smooth_model(ls, theta, width):
    """Gradient and Hessian of the loss with its kinks rounded off over `width`."""
    g = jax.grad(_smooth_objective, argnums=1)(ls, theta, width)
    H = jax.hessian(_smooth_objective, argnums=1)(ls, theta, width)
    return g, H


def _tr_step(g, H, radius):
    """Trust-region step of the model ``gᵀs + ½ sᵀHs`` (eigenbasis, Moré-Sorensen); numerically
    null directions of ``H`` (symmetries, dead neurons) carry no step. Returns ``(s, predicted
    decrease, at_boundary, ||H||)``."""
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    hnorm = float(np.max(np.abs(lam))) if lam.size else 0.0
    keep = np.abs(lam) > max(lam.size, 1) * _EPS * hnorm
    gt = V.T @ g
    st = np.zeros_like(gt)
    if keep.any() and radius > 0:
        st[keep] = _trust_region_step(gt[keep], lam[keep], radius)
    pred = -float(gt @ st + 0.5 * st @ (lam * st))
    return V @ st, pred, bool(np.linalg.norm(st) >= 0.99 * radius), hnorm


# ----------------------------------------------------------------------------- phase 2: exact kinks
def _kink_model_step(ls, act, ev, H, near, mu):
    """Minimise ``gᵀs + ½ sᵀ(H + shift + μ)s + Σ_a c_a max(0, −σ_a (z_a + ∇z_a·s))`` over the
    convex kinks ``a`` in `near` (``c_a = δ_a·jump > 0``, ``σ_a`` the side of ``z_a``; ``shift``
    makes ``H`` positive definite). Returns ``(s, predicted decrease of the unshifted model, ||H||)``.

    The dual, over multipliers ``0 ≤ y ≤ c``, is ``min ½ (g + By)ᵀP⁻¹(g + By) − l₀ᵀy`` with
    ``P = H + shift + μ``, ``B = [−σ_a ∇z_a]`` and ``l₀ = −σ∘z``. Writing ``l₀ = Bᵀθ₀`` (exact for
    first-layer pairs, whose ``z`` is linear in ``θ``; least squares otherwise) completes the
    square: ``min ½ ||P^{-1/2}By − (P^{1/2}θ₀ − P^{-1/2}g)||²``, a bounded least-squares problem
    (BVLS; a tiny ridge picks the minimal-norm multipliers where kinks of one neuron are
    linearly dependent — multipliers along the null space of ``B`` do not move ``s``).
    """
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    hnorm = float(np.max(np.abs(lam))) if lam.size else 0.0
    keep = np.abs(lam) > max(lam.size, 1) * _EPS * hnorm
    shift = max(0.0, -float(lam[0])) * (1.0 + 1e-8) + 1e-12 * hnorm
    # numerically null directions (symmetries, dead neurons) are made stiff rather than removed:
    # their round-off-sized gradient then moves nothing, and the dual stays exact
    pdiag = np.where(keep, lam + shift + mu, max(hnorm, 1e-300) + mu)
    inv = 1.0 / pdiag
    gt = V.T @ ev.g

    def model(st, Bt=None, l0=None, c=None):
        val = float(gt @ st + 0.5 * st @ (lam * st))
        return val if Bt is None else val + float(c @ np.maximum(l0 + Bt.T @ st, 0.0))

    if not near:
        st = -inv * gt
        return V @ st, -model(st), hnorm
    zA, G = _kink_rows(ls, ev.theta, ev.D, near)
    delta = np.array([ev.delta[a][b, d] for a, b, d in near])
    c = delta * act.jump
    # a pair exactly at 0 counts as on the z < 0 side; where the activation's convention there
    # is not that side's derivative (abs: σ'(0) = 0), the model's gradient is moved to it
    side = np.where(zA > 0, 1.0, -1.0)
    at0 = zA == 0
    if at0.any():
        gt = gt + V.T @ (G.T @ (np.where(at0, act.d_minus - act.deriv(zA), 0.0) * delta))
    Bt = V.T @ (-(side[:, None] * G)).T
    l0 = -side * zA
    th0 = np.linalg.lstsq(Bt.T, l0, rcond=None)[0]
    K = len(near)
    Kmat = np.sqrt(inv)[:, None] * Bt
    target = np.sqrt(pdiag) * th0 - np.sqrt(inv) * gt
    ridge = 1e-7 * max(float(np.max(np.linalg.norm(Kmat, axis=0))), 1e-300)
    y = lsq_linear(np.vstack([Kmat, ridge * np.eye(K)]), np.concatenate([target, np.zeros(K)]),
                   bounds=(np.zeros(K), np.maximum(c, 1e-300)), method="bvls", tol=1e-14).x
    y = np.clip(y, 0.0, c)
    st = -inv * (gt + Bt @ y)
    # land exactly on the kinks whose multiplier lies inside its interval (the ridge and the
    # solver's tolerance leave the primal ~1e-12 off them otherwise)
    inside = (y > 1e-9 * c) & (y < (1.0 - 1e-9) * c)
    if inside.any():
        Ga = G[inside] @ V
        landed = st - np.linalg.lstsq(Ga, zA[inside] + Ga @ st, rcond=None)[0]
        if model(landed, Bt, l0, c) <= 0.5 * model(st, Bt, l0, c):
            st = landed
    return V @ st, -model(st, Bt, l0, c), hnorm


# ----------------------------------------------------------------------------- phase 3: the manifold
def _kkt_step(H, g, G, zA):
    """Newton step on the kink manifold ``{z_A = 0}`` by the null-space method: the minimal-norm
    step onto the linearised manifold, then the Newton step of the reduced problem in its
    tangent space. Numerically null curvature directions carry no step."""
    U, S, Vt = np.linalg.svd(G, full_matrices=True)
    r = int(np.sum(S > max(G.shape) * _EPS * (S[0] if S.size else 0.0)))
    sp = -Vt[:r].T @ ((U[:, :r].T @ zA) / S[:r])
    Z = Vt[r:].T
    if not Z.shape[1]:
        return sp
    Hs = 0.5 * (H + H.T)
    lam, W = np.linalg.eigh(Z.T @ Hs @ Z)
    hn = float(np.max(np.abs(np.linalg.eigvalsh(Hs)))) if H.size else 0.0
    keep = np.abs(lam) > 1e3 * H.shape[0] * _EPS * max(hn, 1e-300)
    rg = W[:, keep].T @ (Z.T @ (g + Hs @ sp))
    return sp - Z @ (W[:, keep] @ (rg / lam[keep]))


# ----------------------------------------------------------------------------- the solver
class PatternNewton(AbstractCriticalPointSolver):
    """Critical points of piecewise-linear networks (relu, leaky_relu, abs): a descent to a smooth
    critical point of an activation-pattern region or to a Clarke-stationary point on kinks (see
    the module docstring for the three phases).

    Stops with ``RESULTS.successful``/``roundoff_floor`` at a smooth critical point of its region
    (``details['region_hessian'] = True``), with ``RESULTS.kink`` at a Clarke-stationary point on
    kinks (``details['clarke']``: the exact measure over every pair within `kink_tol`;
    ``details['kink_certified']``: whether it meets ``10·max(gtol, floor)``), ``RESULTS.diverging``
    when the iterates escape along a channel (relu nets can build a step function from two
    neurons with equal input and cancelling output weights), or with the usual budget statuses.
    Every result carries ``details['min_abs_preactivation']``.

    **Budgets.** `max_steps` bounds the Newton-type steps (phases 2 and 3, and the hand-off of a
    near-critical start), rejected ones included; the descent of phase 1, which takes the place
    of a gradient flow, has its own `descent_steps` (``max_steps = 0`` evaluates the start only).
    ``stats.num_steps`` counts all of them.

    - `smoothing`: phase 1 rounds the kinks off over ``smoothing · r`` for a step of length ``r``.
    - `collapse_radius`: phase 2 starts when a step is rejected with the radius below
      ``collapse_radius · max(1, ||θ||_∞)``.
    - `max_kinks`: the nearest convex kinks (within ten last step lengths) in the phase-2 model.
    - `newton_switch`: phase 3 is tried once the Clarke measure is below this.
    - `kink_tol`: relative size ``|z| ≤ kink_tol · max(1, max|z|)`` of a pre-activation counted
      as at the kink (stationarity measure, kink status).
    - `newton_handoff`, `handoff_steps`: a start with ``||∇L||_∞ ≤ newton_handoff`` first gets up
      to `handoff_steps` saddle-capable Levenberg-Marquardt steps on ``∇L_D = 0`` in its region.
    """

    gtol: float = 1e-10
    initial_radius: float = 1.0
    max_radius: float = 1e3
    eta: float = 0.05
    smoothing: float = 0.1
    collapse_radius: float = 1e-4
    max_kinks: int = 64
    newton_switch: float = 1e-4
    kink_tol: float = 1e-8
    newton_handoff: float = 1e-6
    handoff_steps: int = 20
    descent_steps: int = 2000
    escape_window: int = 100

    def __check_init__(self):
        if self.gtol < 0 or not self.kink_tol > 0 or not self.initial_radius > 0:
            raise InputError("`gtol` must be >= 0, `kink_tol` and `initial_radius` > 0.")
        if not 0.0 < self.eta < 0.25:
            raise InputError(f"`eta` must lie in (0, 0.25), got {self.eta}.")
        if self.smoothing < 0 or not self.collapse_radius > 0 or self.max_kinks < 1:
            raise InputError("`smoothing` must be >= 0, `collapse_radius` > 0 and `max_kinks` >= 1.")
        if self.handoff_steps < 0 or self.descent_steps < 0:
            raise InputError("`handoff_steps` and `descent_steps` must be >= 0.")
        if self.escape_window < 0 or self.escape_window % 25:
            raise InputError(f"`escape_window` must be a multiple of 25 (0: off), got {self.escape_window}.")

    def run(self, ls, theta0, max_steps, budget=None):
        act = _check_landscape(ls)
        one = threadpool_limits is not None and ls.n_params < _ONE_THREAD_BELOW
        with threadpool_limits(1, user_api="blas") if one else contextlib.nullcontext():
            return self._run(ls, act, theta0, max_steps, budget)

    def _run(self, ls, act, theta0, max_steps, budget):
        t0 = time.perf_counter()
        tr = _Tracker(ls, self.gtol, 0.0, 25, self.escape_window, budget)
        shapes = _shapes(ls)
        info = {"activation": act.name, "region_changes": 0, "rejected_steps": 0, "handoff_steps": 0,
                "kink_model_steps": 0, "kink_newton_steps": 0}
        step = newton = 0  # all steps; the Newton-type ones (phases 2, 3 and the hand-off)
        ev = _Eval(ls, theta0, shapes)
        if ev.ok() and float(np.max(np.abs(ev.g))) <= self.newton_handoff:
            ev, step = self._handoff(ls, shapes, ev, tr, max_steps, info)
            newton = step
        radius = float(self.initial_radius)
        hnorm, floor_at = 0.0, np.inf
        kinked, mu, reach = False, 0.0, 0.0  # phase 2 and its damping and reach
        newton_ok, last_step = False, 0.0  # phase 3 is tried after an accepted step
        while True:
            if not ev.ok():
                return self._done(ls, ev, RESULTS.nonfinite, tr, step, t0, info)
            theta = ev.theta
            scale = max(1.0, ev.zmax)
            at = _kink_pairs(ev.zs, self.kink_tol * scale)[: _BUCKETS[-1]]
            if at:  # stationarity on kinks: the Clarke measure over the pairs at them
                v, dstar = _clarke_over(ls, act, ev, at)
            else:
                v, dstar = ev.g, np.zeros(0)
            stat = float(np.max(np.abs(v)))
            tr.record(theta, ev.L, stat)
            if hnorm > 0 and self.gtol < stat < 1e-6 * max(1.0, hnorm) and stat < 0.5 * floor_at:
                D = self._pattern_with(ls, shapes, theta, at, dstar) if at else ev.D
                tr.floor = _frozen_floor(ls, theta, D, hnorm)
                floor_at = stat
            if stat <= max(self.gtol, tr.floor):
                esc = tr.escaping(theta, ev.L, final=True)
                if esc is not None:
                    info["escape"] = esc
                    return self._done(ls, ev, RESULTS.diverging, tr, step, t0, info)
                if at:
                    return self._done(ls, ev, RESULTS.kink, tr, step, t0, info)
                res = RESULTS.successful if stat <= self.gtol else RESULTS.roundoff_floor
                return self._done(ls, ev, res, tr, step, t0, info)
            esc = tr.escaping(theta, ev.L)
            if esc is not None:
                info["escape"] = esc
                return self._done(ls, ev, RESULTS.diverging, tr, step, t0, info)
            if max_steps <= 0 or newton >= max_steps or (not kinked and step - newton >= self.descent_steps):
                return self._done(ls, ev, RESULTS.max_steps_reached, tr, step, t0, info)
            if tr.out_of_time():
                return self._done(ls, ev, RESULTS.time_limit_reached, tr, step, t0, info)

            if at and newton_ok and stat < self.newton_switch:
                # --- phase 3: Newton on the manifold of the kinks the iterate sits on
                newton_ok = False
                D = self._pattern_with(ls, shapes, theta, at, dstar)
                H = np.asarray(_frozen_hessian(ls, jnp.asarray(theta), D))
                zA, G = _kink_rows(ls, theta, D, at)
                s = _kkt_step(H, v, G, zA)
                if np.linalg.norm(s) > 10.0 * last_step:
                    continue  # not yet where Newton converges: another phase-2 step
                tr.num_hessians += 1
                step += 1
                newton += 1
                info["kink_newton_steps"] += 1
                new = _Eval(ls, theta + s, shapes)
                if (new.ok() and self._stationarity(ls, act, new) < stat
                        and new.L <= ev.L + 1e3 * tr.loss_noise(ev.L)):
                    ev, newton_ok, last_step = new, True, float(np.linalg.norm(s))
                continue
            if not kinked:
                # --- phase 1: trust region on the true loss, the model's kinks rounded off
                gw, Hw = _smooth_model(ls, jnp.asarray(theta), jnp.asarray(self.smoothing * radius))
                s, pred, at_bound, hnorm = _tr_step(np.asarray(gw), np.asarray(Hw), radius)
            else:
                # --- phase 2: the region's quadratic model plus the convex kinks within reach
                H = np.asarray(_frozen_hessian(ls, jnp.asarray(theta), ev.D))
                s, pred, hnorm = _kink_model_step(ls, act, ev, H, self._near(act, ev, reach), mu)
                info["kink_model_steps"] += 1
                newton += 1
            tr.num_hessians += 1
            step += 1
            new = _Eval(ls, theta + s, shapes)
            if pred <= tr.loss_noise(ev.L, new.L):  # below the loss's round-off: judge by stationarity
                ok = bool(new.ok() and self._stationarity(ls, act, new) < stat)
                rho = 1.0 if ok else 0.0
            else:
                rho = (ev.L - new.L) / pred if new.ok() else -np.inf
                ok = bool(rho > self.eta)
            snorm = float(np.linalg.norm(s))
            if not kinked:
                if rho < 0.25:
                    radius = 0.25 * (snorm if snorm > 0 else radius)
                elif rho > 0.75 and at_bound:
                    radius = min(2.0 * radius, self.max_radius)
                if not ok and radius <= self.collapse_radius * max(1.0, float(np.max(np.abs(theta)))):
                    kinked, mu, reach = True, 1e-3 * max(hnorm, 1e-300), 10.0 * max(radius, snorm)
            else:
                if rho > 0.75:
                    mu = mu / 4.0 if mu > 1e-12 * max(hnorm, 1e-300) else 0.0
                elif rho < 0.25:
                    mu = max(4.0 * mu, 1e-8 * max(hnorm, 1e-300))
                if ok:
                    reach = 10.0 * snorm
            if ok:
                if not all(np.array_equal(a > 0, b > 0) for a, b in zip(ev.zs, new.zs, strict=True)):
                    info["region_changes"] += 1
                ev, newton_ok, last_step = new, kinked, snorm
                continue
            info["rejected_steps"] += 1
            if (kinked and mu > 1e20 * max(hnorm, 1e-300)) or (not kinked and radius < 1e-300):
                return self._done(ls, ev, RESULTS.max_steps_reached, tr, step, t0, info)

    # ------------------------------------------------------------------ pieces
    def _stationarity(self, ls, act, ev):
        at = _kink_pairs(ev.zs, self.kink_tol * max(1.0, ev.zmax))[: _BUCKETS[-1]]
        v = _clarke_over(ls, act, ev, at)[0] if at else ev.g
        return float(np.max(np.abs(v)))

    @staticmethod
    def _pattern_with(ls, shapes, theta, pairs, d):
        m, v = _masks(shapes, pairs, d)
        return _state(ls, jnp.asarray(theta), m, v)[4]

    def _near(self, act, ev, reach):
        """The `max_kinks` nearest convex kinks (``δ·jump > 0``) within `reach` (parameter length)."""
        cand = []
        for li, (z, nrm, dl) in enumerate(zip(ev.zs, ev.norms, ev.delta, strict=True)):
            u = np.abs(z) / nrm[:, None]
            s_, n_ = np.nonzero((u <= max(reach, 1e3 * _EPS)) & (dl * act.jump > 0))
            cand += [(float(u[a, b]), (li, int(a), int(b))) for a, b in zip(s_, n_, strict=True)]
        cand.sort()
        return [p for _, p in cand[: self.max_kinks]]

    def _handoff(self, ls, shapes, ev, tr, max_steps, info):
        """Saddle-capable Levenberg-Marquardt on ``∇L_D = 0`` in the region of a near-critical start."""
        mu, used = None, 0
        while used < min(self.handoff_steps, max_steps) and not tr.out_of_time() and ev.ok():
            if float(np.max(np.abs(ev.g))) <= self.gtol:
                break
            H = np.asarray(_frozen_hessian(ls, jnp.asarray(ev.theta), ev.D))
            lam, V = np.linalg.eigh(0.5 * (H + H.T))
            tr.num_hessians += 1
            hnorm = float(np.max(np.abs(lam)))
            lam_eff = np.where(np.abs(lam) > ls.n_params * _EPS * hnorm, lam, 0.0)
            mu = 1e-6 * hnorm**2 if mu is None else mu
            gt = V.T @ ev.g
            accepted = False
            for _ in range(8):
                denom = lam_eff**2 + mu
                coef = np.divide(lam_eff, denom, out=np.zeros_like(lam_eff), where=denom > 0)
                new = _Eval(ls, ev.theta - V @ (coef * gt), shapes)
                used += 1
                info["handoff_steps"] += 1
                if new.ok() and np.linalg.norm(new.g) < np.linalg.norm(ev.g):
                    ev, accepted, mu = new, True, mu / 10.0
                    break
                mu = max(10.0 * mu, 1e-20 * hnorm**2)
            if not accepted:
                break
        return ev, used

    def _done(self, ls, ev, result, tr, step, t0, info):
        scale = max(1.0, ev.zmax)
        extra = dict(info)
        extra.update(min_abs_preactivation=ev.zmin, preactivation_scale=ev.zmax)
        if result.is_successful():
            extra["region_hessian"] = True
            extra["region_note"] = (
                "smooth critical point inside its activation-pattern region (no pre-activation is 0): "
                "the autodiff Hessian here is the region's Hessian; classify with it")
        if result is RESULTS.kink or ev.zmin <= self.kink_tol * scale:
            c = clarke_measure(ls, ev.theta, self.kink_tol)
            extra["clarke"] = c
            extra["kink_pairs"] = c["kink_pairs"]
            extra["clarke_stationarity"] = c["clarke_stationarity"]
            extra["clarke_stationarity_inf"] = c["clarke_stationarity_inf"]
            inf = c["clarke_stationarity_inf"]
            extra["kink_certified"] = bool(inf is not None and inf <= 10 * max(self.gtol, tr.floor))
        return _finish(ls, ev.theta, ev.L, ev.g, result, tr, step, t0, extra)
