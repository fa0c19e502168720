"""Classification of a critical point: minimum, global minimum, strict or non-strict saddle.

Second-order information decides most cases: a negative Hessian eigenvalue makes a *strict
saddle*; a positive definite Hessian a non-degenerate *minimum*. When the Hessian is
positive semidefinite with a kernel, a higher-order test along kernel directions looks for
a descent curve ``γ(t) = θ + t v + t² w`` (``v`` in the kernel, ``w = −½ H⁺ ∇_θ(vᵀHv)`` the
second-order correction that removes the quadratic interaction with the range) and
determines the order ``k`` of the decrease ``L(γ(t)) − L(θ) ≈ −c tᵏ`` from exact directional
derivatives. A certified decrease (evaluated, not extrapolated, and above round-off) makes a
*non-strict saddle*; failing that, a local search from kernel perturbations decides between
*degenerate minimum* and *non-strict saddle*; where tolerances cannot separate the cases the
answer is *undetermined*, never a guess.
"""

from __future__ import annotations

import dataclasses
import enum

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..curvature import eigenvalue_tolerance, hessian_roundoff, lanczos_extreme, raw_hessian
from ..landscape import Landscape
from ..models import get_activation

_EPS = float(np.finfo(np.float64).eps)


class Label(enum.Enum):
    """The classes of a point. Values are the strings used in files and JSON."""

    not_critical = "not_critical"
    minimum = "minimum"
    global_minimum = "global_minimum"
    strict_saddle = "strict_saddle"
    non_strict_saddle = "non_strict_saddle"
    degenerate_minimum = "degenerate_minimum"
    undetermined = "undetermined"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Why a point got its label: the tolerances used and the facts that decided.

    Always set: `reason` (in words), `grad_tol` (the criticality threshold on ``||∇L||_∞``),
    `hessian_error` (measured error of the Hessian, spectral norm), `spectral_scale` (``||H||₂``),
    `method` (``"dense"`` or ``"lanczos"``). The others are set where they apply (``None``
    otherwise): the global minimum value compared with and the gap to it, the zero-loss
    tolerance; the Rayleigh quotient of a negative-curvature direction; a descent curve's kind,
    directional derivatives, order and sampled losses; the higher-order test and local search;
    cross-entropy margins and whether the infimum lies at infinity.
    """

    reason: str = ""
    grad_tol: float = 0.0
    hessian_error: float = 0.0
    spectral_scale: float = 0.0
    method: str = "dense"
    global_min_value: float | None = None
    gap_to_global_min: float | None = None
    zero_loss_tolerance: float | None = None
    rayleigh_quotient: float | None = None
    curve: str | None = None
    directional_derivatives: list[float] | None = None
    escape_order: int | None = None
    escape_ts: list[float] | None = None
    escape_losses: list[float] | None = None
    higher_order_test: str | None = None
    local_search_loss: float | None = None
    min_margin: float | None = None
    misclassified: int | None = None
    loss_infimum: str | None = None
    infimum_at_infinity: str | None = None

    def to_record(self) -> dict:
        """JSON-ready dict of the fields that are set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Classification:
    """A label with the evidence behind it.

    `evidence` is an :class:`Evidence`; `direction` (negative-curvature or escape direction
    ``v``), `curvature_correction` (``w``) and `order` describe the certificate when there is
    one; `path` is a few points of the descent curve.

    `complete`: whether `eigenvalues` is the whole spectrum (dense Hessian). Above the dense
    limit they are Lanczos' extreme Ritz values only, and `index` and `nullity` count what was
    found: `index` is then a certified *lower bound* (Cauchy interlacing), `nullity_lower_bound`
    the certified lower bound on the nullity (Kahan's theorem: Ritz values within the zero
    tolerance by more than the residuals' norm), and no upper bound is known; the record names
    them ``index_lower_bound``/``index_upper_bound`` (``None``) and likewise for the nullity.
    """

    label: Label
    loss: float
    grad_norm_inf: float
    index: int
    nullity: int
    tolerance: float
    eigenvalues: np.ndarray
    evidence: Evidence
    direction: np.ndarray | None = None
    curvature_correction: np.ndarray | None = None
    order: int | None = None
    path: np.ndarray | None = None
    complete: bool = True
    nullity_lower_bound: int | None = None

    def __post_init__(self):
        if isinstance(self.evidence, dict):  # built up as a dict inside this module
            object.__setattr__(self, "evidence", Evidence(**self.evidence))

    @property
    def reason(self) -> str:
        """Why the label, in words."""
        return self.evidence.reason

    def to_record(self) -> dict:
        """JSON-ready dict (the ``lossatlas.classification/1`` body)."""
        if self.complete:
            counts = {"index": self.index, "nullity": self.nullity}
        else:  # Lanczos saw the extremes only: bounds, said as such (no upper bound is known)
            counts = {"index_lower_bound": self.index, "index_upper_bound": None,
                      "nullity_lower_bound": (self.nullity if self.nullity_lower_bound is None
                                              else self.nullity_lower_bound),
                      "nullity_upper_bound": None}
        return {
            "label": self.label.value,
            "loss": self.loss,
            "grad_norm_inf": self.grad_norm_inf,
            **counts,
            "tolerance": self.tolerance,
            "min_eigenvalue": float(self.eigenvalues[0]) if self.eigenvalues.size else None,
            "max_eigenvalue": float(self.eigenvalues[-1]) if self.eigenvalues.size else None,
            "order": self.order,
            "evidence": self.evidence.to_record(),
        }


@eqx.filter_jit
def _directional_derivatives(ls: Landscape, theta, Vs, Ws, kmax: int):
    """``d^k/dt^k L(θ + t v + t² w)|_{t=0}``, ``k = 1..kmax``, for each row pair ``(v, w)``.

    Nested forward mode on the scalar curve parameter; compiled once per landscape shape and
    batched over candidate directions. Returns an array of shape ``(n_candidates, kmax)``.
    """

    def one(v, w):
        def phi(t):
            return ls.objective(theta + t * v + (t * t) * w)

        fs = [phi]
        for _ in range(kmax):
            prev = fs[-1]
            fs.append(lambda t, prev=prev: jax.jvp(prev, (t,), (jnp.ones_like(t),))[1])
        t0 = jnp.zeros((), dtype=theta.dtype)
        return jnp.stack([f(t0) for f in fs[1:]])

    return jax.vmap(one)(Vs, Ws)


@eqx.filter_jit
def _cubic_fields(ls: Landscape, theta, Vs):
    """``∇_θ (vᵀ H(θ) v)`` for each row ``v`` of ``Vs`` (third derivative contracted twice)."""

    def q(th, v):
        return jnp.vdot(v, jax.jvp(jax.grad(ls.objective), (th,), (v,))[1])

    return jax.vmap(lambda v: jax.grad(q)(theta, v))(Vs)


@eqx.filter_jit
def _losses_at(ls: Landscape, thetas):
    return jax.vmap(ls.objective)(thetas)


def zero_loss_tolerance(ls: Landscape, theta=None) -> float:
    """Largest loss indistinguishable from 0 in float64.

    The a-priori part is ``½ (c ε y_rms)²`` with ``y_rms`` the root-mean-square norm of the
    targets (``√(2 L)`` at the zero-output network) and ``c = 1e4``. With `theta` and a finite
    data set, it is at least the loss a network with exactly zero residuals could show once
    computed in float64: ``½ mean_i ||e_i||²`` with ``e_i`` the running forward-error bound of the
    residuals at ``θ`` (:func:`_residual_error_bound`). That bound grows with width and depth
    (measured at 64→256→256→10 on digits: a point at the round-off floor of the gradient has loss
    3.6e-23, above the a-priori 2.4e-24)."""
    net = ls.model
    last = net.depth
    zeros = {f"W{last}": jnp.zeros_like(net.weights[-1])}
    if net.has_bias:
        zeros[f"b{last}"] = jnp.zeros_like(net.biases[-1])
    y2 = 2.0 * float(ls.data_loss_of(net.replace(**zeros)))
    prior = 0.5 * (1e4 * _EPS) ** 2 * max(y2, 1e-300)
    if theta is None or ls.data is None:
        return prior
    e = np.asarray(_residual_error_bound(ls.unravel(jnp.asarray(theta)), ls.data.X, ls.data.Y))
    return max(prior, 0.5 * float(np.mean(np.sum(e * e, axis=1))))


@eqx.filter_jit
def _residual_error_bound(net, X, Y):
    """Per-sample, per-output bound on the float64 error of the residuals ``f(x) − y`` (first order
    in ε, the standard forward error analysis of ``a = h Wᵀ + b``: ``|fl(a) − a| ≤ γ_{n+1} (|h||W|ᵀ +
    |b|)`` with ``γ_k = k ε``, carried through the layers by ``|W|`` and ``|σ'(a)|``, plus a few ε of
    relative error of each activation and of the subtraction of the targets)."""
    sigma = get_activation(net.activation)
    h, err = X, jnp.zeros_like(X)
    n_layers = len(net.weights)
    for i, w in enumerate(net.weights):
        a = h @ w.T
        mags = jnp.abs(h) @ jnp.abs(w).T
        if net.biases is not None:
            a = a + net.biases[i]
            mags = mags + jnp.abs(net.biases[i])
        err = err @ jnp.abs(w).T + (w.shape[1] + 1) * _EPS * mags
        if i < n_layers - 1:
            h, slope = jax.jvp(sigma, (a,), (jnp.ones_like(a),))
            err = jnp.abs(slope) * err + 4 * _EPS * jnp.abs(h)
        else:
            h = a
    return err + _EPS * (jnp.abs(h) + jnp.abs(Y))


def classify(
    ls: Landscape,
    theta,
    *,
    global_min_value: float | None = None,
    grad_tol: float | None = None,
    max_order: int = 6,
    n_directions: int = 24,
    local_search: bool = True,
    seed: int = 0,
    dense_limit: int = 3000,
    lanczos_k: int = 10,
    max_matvecs: int | None = 500,
    max_time: float | None = None,
) -> Classification:
    """Classify the point ``θ`` of ``ls``.

    **Arguments:**

    - `global_min_value`: the landscape's global minimum value, when known (a realisable
      teacher-student task has 0; a deep linear network's is computable): enables the
      `global_minimum` label. Without it, an unregularised squared loss at 0 (up to round-off)
      is a global minimum; a cross-entropy landscape never gets the label (its infimum 0 is
      not attained; its evidence carries the margins, and a point that separates the data
      without penalty is reported `not_critical`: the loss still decreases towards infinity).
    - `grad_tol`: criticality threshold on ``||∇L||_∞`` (default
      ``1e-8·max(1, ||H||₂)``; report it and tighten it for polished points).
    - `max_order`: highest order of the directional-derivative test (≥ 3).
    - `dense_limit`: above this many parameters the Hessian is never formed: `lanczos_k`
      extreme eigenpairs at each end by :func:`~lossatlas.curvature.lanczos_extreme`, with at
      most `max_matvecs` Hessian-vector products (``None``: until converged, which near a
      degenerate point of a large net can take thousands) and `max_time` seconds (``None``: no
      limit); unconverged pairs widen the zero tolerance by their residuals (so an unresolved
      small eigenvalue makes the label `undetermined`, never a guess). The index and nullity are
      then bounds (see :class:`Classification`), and a `minimum` rests on the smallest
      eigenvalues Lanczos found (index 0 is not certified).

    Tolerances are reported: the eigenvalue tolerance of
    :func:`~lossatlas.curvature.eigenvalue_tolerance` (round-off, measured Hessian error and
    the gradient norm) and `grad_tol`.
    """
    theta = ls.check_theta(theta)
    if max_order < 3:
        raise InputError("max_order must be at least 3.")
    loss, g = ls.value_and_grad(theta)
    loss = float(loss)
    g = np.asarray(g)
    gn_inf = float(np.max(np.abs(g)))
    gn2 = float(np.linalg.norm(g))
    p = ls.n_params
    if p <= dense_limit:
        Hraw = raw_hessian(ls, theta)
        # Measured round-off (other exact code paths), and a floor for Hessians that vanish by
        # cancellation of terms of the loss's size: ε p |L| / max(1, ||θ||_∞)² (curvature units).
        # A point that is clearly not critical (||∇L||_∞ above a given grad_tol) gets the cheap
        # bound ||H − Hᵀ|| only: its spectrum is reported, never used for its label.
        measured = (hessian_roundoff(ls, theta, Hraw) if grad_tol is None or gn_inf <= grad_tol
                    else float(np.linalg.norm(Hraw - Hraw.T, 2)))
        asym = max(measured, _EPS * p * abs(loss) / max(1.0, float(jnp.max(jnp.abs(theta)))) ** 2)
        H = 0.5 * (Hraw + Hraw.T)
        complete = True
        lam, V = np.linalg.eigh(H)
        scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    else:
        spec = lanczos_extreme(ls, theta, k=lanczos_k, which="both", max_matvecs=max_matvecs,
                               max_time=max_time)
        lam, V = spec.eigenvalues, spec.eigenvectors
        asym = float(np.max(spec.residuals)) * spec.scale
        scale = spec.scale
        H = None
        complete = bool(spec.complete)
    tol = eigenvalue_tolerance(scale, p, hessian_error=asym, grad_norm=gn2)
    grad_tol = 1e-8 * max(1.0, scale) if grad_tol is None else float(grad_tol)
    index = int(np.sum(lam < -tol))
    nullity = int(np.sum(np.abs(lam) <= tol))
    base = dict(loss=loss, grad_norm_inf=gn_inf, index=index, nullity=nullity, tolerance=tol,
                eigenvalues=lam)
    if not complete:
        # Kahan: as many eigenvalues as Ritz values within tol − ||R||_F of zero
        R = float(np.linalg.norm(np.asarray(spec.residuals))) * scale
        base.update(complete=False, nullity_lower_bound=int(np.sum(np.abs(lam) + R <= tol)))
    bounds = "" if base.get("complete", True) else (
        f" (Lanczos, {lam.size} extreme Ritz values, {spec.matvecs} Hessian-vector products: index ≥ {index}"
        f" and nullity ≥ {base['nullity_lower_bound']} are certified, no upper bound is known)")
    ev = {"grad_tol": grad_tol, "hessian_error": asym, "spectral_scale": scale,
          "method": "dense" if H is not None else "lanczos"}
    if ls.loss_name == "cross_entropy":
        ce_ev, at_infinity = _cross_entropy_evidence(ls, theta)
        ev.update(ce_ev)
        if at_infinity and gn_inf <= grad_tol:
            ev["reason"] = (f"every sample is classified correctly (min margin {ce_ev['min_margin']:.3e} > 0) "
                            "and there is no penalty: the loss decreases strictly along t·(W_L, b_L), t → ∞, "
                            f"so this is not a critical point (||∇L||_∞ = {gn_inf:.3e} is small only "
                            "because the loss is).")
            return Classification(Label.not_critical, evidence=ev, **base)
    if gn_inf > grad_tol:
        ev["reason"] = f"||∇L||_∞ = {gn_inf:.3e} exceeds grad_tol = {grad_tol:.3e}."
        return Classification(Label.not_critical, evidence=ev, **base)
    # Loss equality to a known global minimum value: round-off of the loss's sum. Without a
    # value, an unregularised squared loss is >= 0, so a loss that is zero up to the round-off
    # of its residuals is a global minimum. The cross-entropy is > 0 everywhere with no known
    # minimum value: no global minimum is claimed for it without `global_min_value`.
    loss_tol = 64 * _EPS * max(abs(loss), 1.0)
    at_global = False
    if global_min_value is not None:
        ev["global_min_value"] = float(global_min_value)
        ev["gap_to_global_min"] = loss - float(global_min_value)
        at_global = abs(loss - float(global_min_value)) <= loss_tol + 10 * gn2 * gn2 / max(scale, 1e-300)
    elif ls.lam == 0.0 and ls.loss_name == "mse":
        ztol = zero_loss_tolerance(ls, theta)
        if loss <= ztol:
            at_global = True
            ev["global_min_value"] = 0.0
            ev["zero_loss_tolerance"] = ztol
            ev["gap_to_global_min"] = loss
    # Ambiguity: an eigenvalue within a factor 10 of the tolerance band cannot be assigned.
    near = np.abs(lam)[(np.abs(lam) > tol) & (np.abs(lam) < 10 * tol)]
    if at_global and lam.size and lam[0] < -1e3 * tol:
        ev["reason"] = (f"the loss equals the global minimum value given, but the Hessian has a clearly "
                        f"negative eigenvalue {lam[0]:.3e} (tolerance {tol:.3e}): the two contradict each "
                        "other; check the global minimum value.")
        return Classification(Label.undetermined, evidence=ev, **base)
    if at_global:
        # L(θ) equals the global minimum value, so θ is a global minimiser whatever the
        # Hessian shows; a negative eigenvalue here can only be round-off.
        if bounds:
            ev["reason"] = ("the loss equals the global minimum value; "
                            + ("no extreme Ritz value is below -tol" if index == 0 else
                               f"the {index} slightly negative Ritz value(s) (min {lam[0]:.2e}) are round-off")
                            + f"{bounds}.")
        else:
            ev["reason"] = ("the loss equals the global minimum value"
                            + (f" (the Hessian is PSD with nullity {nullity})." if index == 0 else
                               f"; the {index} slightly negative eigenvalue(s) (min {lam[0]:.2e}) are round-off."))
        return Classification(Label.global_minimum, evidence=ev, **base)
    if index > 0:
        j = int(np.argmin(lam))
        v = V[:, j]
        rq = float(v @ np.asarray(ls.hvp(theta, jnp.asarray(v))))
        ev.update(reason=f"the Hessian has {'at least ' if bounds else ''}{index} eigenvalue(s) below -tol; "
                  f"the most negative is {lam[0]:.6e} (Rayleigh quotient by HVP: {rq:.6e}){bounds}.",
                  rayleigh_quotient=rq)
        if rq >= -tol or lam[0] > -10 * tol:
            ev["reason"] += " It is within a factor 10 of the round-off tolerance: not resolvable."
            return Classification(Label.undetermined, evidence=ev, **base)
        return Classification(Label.strict_saddle, evidence=ev, direction=v, order=2, **base)
    if near.size:
        ev["reason"] = (f"{near.size} eigenvalue(s) lie within a factor 10 of the zero tolerance "
                        f"{tol:.3e}; the spectrum cannot be split reliably.")
        return Classification(Label.undetermined, evidence=ev, **base)
    if nullity == 0 and bounds:
        ev["reason"] = (f"every extreme Ritz value is positive, the smallest {lam[0]:.6e} (within "
                        f"{spec.residuals[0] * scale:.1e} of an eigenvalue): a non-degenerate local minimum "
                        f"on the evidence of the extreme spectrum{bounds}; a Krylov method cannot exclude an "
                        "eigenvalue below the smallest it found, so index 0 is not certified.")
        return Classification(Label.minimum, evidence=ev, **base)
    if nullity == 0:
        ev["reason"] = "the Hessian is positive definite (non-degenerate local minimum)."
        return Classification(Label.minimum, evidence=ev, **base)
    if H is None:
        ev["reason"] = ("the Hessian is PSD with a kernel among the extreme eigenvalues found, "
                        f"but the kernel is not fully resolved without the dense Hessian{bounds}.")
        return Classification(Label.undetermined, evidence=ev, **base)
    return _higher_order(ls, theta, H, lam, V, tol, loss, ev, base, max_order, n_directions,
                         local_search, seed)


def _cross_entropy_evidence(ls: Landscape, theta) -> tuple[dict, bool]:
    """Margins of a cross-entropy point, and whether its infimum lies at infinity from here.

    With every margin > 0, no penalty and the last layer trainable, ``t ↦ L(θ with t·(W_L,
    b_L))`` decreases strictly (derivative ``1/N Σ_i Σ_{j≠y_i} p_ij (f_ij − f_{i,y_i}) < 0``)
    towards 0, the infimum of the cross-entropy, which no finite point attains.
    """
    m = ls.margins(theta)
    depth = ls.model.depth
    last = [f"W{depth}"] + ([f"b{depth}"] if ls.model.has_bias else [])
    ray = ls.lam == 0.0 and all(n in ls.trainable_names for n in last)
    separated = bool(m.size and float(np.min(m)) > 0.0)
    ev = {"min_margin": float(np.min(m)), "misclassified": int(np.sum(m <= 0.0)),
          "loss_infimum": ("cross-entropy is > 0 everywhere and has no zero-loss global minimum; "
                           "global_minimum is claimed only against a given global_min_value.")}
    if separated and ray:
        ev["infimum_at_infinity"] = ("the data are separated at this point: the loss tends to its infimum 0 "
                                     "along t·(W_L, b_L) as t → ∞ and no finite point attains it.")
    return ev, separated and ray


def _higher_order(ls, theta, H, lam, V, tol, loss, ev, base, max_order, n_directions,
                  local_search, seed):
    K = V[:, np.abs(lam) <= tol]
    rng = np.random.default_rng(seed)
    pos = lam > tol
    Vp, lp = V[:, pos], lam[pos]
    cands = [K[:, i] for i in range(min(K.shape[1], n_directions))]
    for _ in range(n_directions):
        c = rng.standard_normal(K.shape[1])
        cands.append(K @ (c / np.linalg.norm(c)))
    # Refine one direction toward a large cubic form on the kernel (power-type iteration).
    v = cands[-1]
    for _ in range(8):
        t = K.T @ np.asarray(_cubic_fields(ls, theta, jnp.asarray(v[None, :])))[0]
        if np.linalg.norm(t) < 1e-300:
            break
        v = K @ (t / np.linalg.norm(t))
    cands.append(v)
    C = np.stack(cands)
    T = np.asarray(_cubic_fields(ls, theta, jnp.asarray(C)))
    # w = −½ H⁺ ∇(vᵀHv): the parabola's correction, removing the range-space interaction.
    W = -0.5 * (((T @ Vp) / lp) @ Vp.T) if lp.size else np.zeros_like(C)
    curves = np.concatenate([C, C]), np.concatenate([np.zeros_like(C), W])
    D = np.asarray(_directional_derivatives(ls, theta, jnp.asarray(curves[0]),
                                            jnp.asarray(curves[1]), max_order))
    deriv_scale = max(float(np.max(np.abs(lam))), abs(loss), 1.0)
    best = None
    for i in range(D.shape[0]):
        k, sign_t = _first_descent_order(D[i], deriv_scale)
        if k is not None and (best is None or k < best[0]):
            name = "line" if i < C.shape[0] else "parabola"
            best = (k, sign_t * curves[0][i], sign_t * sign_t * curves[1][i], name, D[i])
    if best is not None:
        k, v, w, curve, d = best
        cert = _certify(ls, theta, v, w, loss, k)
        if cert is not None:
            ts, Ls, slope = cert
            ev.update(reason=f"the Hessian is PSD with nullity {base['nullity']} and the loss "
                      f"decreases at order {k} along an explicit {curve} "
                      f"(fitted log-log slope {slope:.2f}).", curve=curve,
                      directional_derivatives=[float(x) for x in d], escape_order=k,
                      escape_ts=[float(x) for x in ts], escape_losses=[float(x) for x in Ls])
            path = np.stack([np.asarray(theta) + t * v + t * t * w for t in ts])
            return Classification(Label.non_strict_saddle, evidence=ev, direction=v,
                                  curvature_correction=w, order=k, path=path, **base)
    ev["higher_order_test"] = (f"no certified descent along {2 * C.shape[0]} lines and parabolas "
                               f"in the kernel up to order {max_order}")
    if local_search:
        found = _local_search(ls, theta, K, loss, rng)
        if found is not None:
            ev.update(reason=("the Hessian is PSD with a kernel; no low-order descent curve was "
                              f"found, but a local search from a kernel perturbation of size "
                              f"{found[1]:.1e} reached loss {found[0]:.12g} < {loss:.12g}."),
                      local_search_loss=found[0])
            return Classification(Label.non_strict_saddle, evidence=ev, **base)
        ev["reason"] = ("the Hessian is PSD with a kernel, no descent was found up to order "
                        f"{max_order}, and local searches from kernel perturbations returned to "
                        "the same loss.")
        return Classification(Label.degenerate_minimum, evidence=ev, **base)
    ev["reason"] = "the Hessian is PSD with a kernel and no descent was found; local search disabled."
    return Classification(Label.undetermined, evidence=ev, **base)


def _first_descent_order(d, scale):
    """Lowest order k ≥ 3 with a derivative above round-off; descent if k is odd or d_k < 0.

    Returns ``(k, sign)`` with the sign of ``t`` that decreases the loss, or ``(None, 0)``.
    """
    for k in range(3, len(d) + 1):
        dk = d[k - 1]
        # AD derivatives of order k carry round-off ~ eps * scale * (growth with k)
        noise = 1e3 * _EPS * scale * (10.0 ** (k - 3))
        if abs(dk) > noise:
            if k % 2 == 1:
                return k, (-1.0 if dk > 0 else 1.0)
            if dk < 0:
                return k, 1.0
            return None, 0.0
    return None, 0.0


def _certify(ls, theta, v, w, loss, k):
    """Evaluate the loss along the curve and fit the order of the decrease."""
    ts = np.geomspace(1e-3, 0.3, 12)
    pts = np.asarray(theta)[None, :] + ts[:, None] * v[None, :] + (ts * ts)[:, None] * w[None, :]
    Ls = np.asarray(_losses_at(ls, jnp.asarray(pts)))
    drop = loss - Ls
    noise = 256 * _EPS * max(abs(loss), 1e-300)
    ok = drop > noise
    if ok.sum() < 3:
        return None
    # fit the order on the smallest t with a resolvable drop
    sel = np.where(ok)[0][:6]
    if sel.size < 3:
        return None
    slope = float(np.polyfit(np.log(ts[sel]), np.log(drop[sel]), 1)[0])
    if abs(slope - k) > 0.75:
        return None
    return ts[sel], Ls[sel], slope


def _local_search(ls, theta, K, loss, rng, tries: int = 4):
    from ._newton import NewtonTrustRegion

    solver = NewtonTrustRegion(gtol=1e-10)
    for i in range(tries):
        c = rng.standard_normal(K.shape[1])
        size = 10.0 ** (-2 - i % 2)
        start = np.asarray(theta) + size * (K @ (c / np.linalg.norm(c)))
        sol = solver.run(ls, start, 100)
        if sol.loss < loss - max(1e-10 * max(abs(loss), 1.0), 1e3 * _EPS * abs(loss)):
            return float(sol.loss), size
    return None
