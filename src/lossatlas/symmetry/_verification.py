"""Numerical checks of the symmetry-induced critical points.

- :func:`check_subspace_critical`: the gradient (and loss) at random points of an affine
  subspace, e.g. the subspace of a critical point embedded into a wider network, which should
  consist of critical points only.
- :func:`fukumizu_amari_B` and :func:`fukumizu_amari_test`: the Fukumizu-Amari test for a
  split neuron. Splitting neuron ``i`` of hidden layer ``l`` of a critical point ``θ_r`` into two
  copies with outgoing weights ``γ c`` and ``(1 − γ) c`` gives a line of critical points. Moving
  the copies' incoming weights (and biases) apart as ``δw_1 = (1 − γ) u``, ``δw_2 = −γ u`` keeps
  the function fixed to first order, and the exact second variation is

      vᵀ H v = γ (1 − γ) uᵀ B u,   B = Σ_n (g_n · c) σ''(z_{n,i}) h̃_n h̃_nᵀ,

  where ``g_n = ∂L/∂z_{l+1}`` at sample ``n`` (including the ``1/N`` of the loss), ``z_{n,i}``
  the neuron's pre-activation and ``h̃_n = [h_{l−1}(x_n), 1]`` its input (the 1 only with
  biases). For a two-layer network with scalar output, ``c = a_i`` and ``g_n = (f(x_n) − y_n)/N``
  give the matrix ``B = E[ℓ' a σ''(w·x) x xᵀ]`` of Fukumizu & Amari.

  When the split neuron has a single outgoing weight (two-layer networks with scalar output),
  the Hessian of the wide network at the split point is congruent to
  ``H_r ⊕ 0 ⊕ γ(1 − γ) B`` (coordinates: the narrow parameters, the flat direction along the
  line, and ``u``): mixed second derivatives between ``u`` and every other direction are
  multiples of ``∂L_r/∂w_i`` and vanish. By Sylvester's law of inertia the wide Hessian has
  ``index(H_r) + index(γ(1−γ)B)`` negative and ``nullity(H_r) + 1 + nullity(γ(1−γ)B)`` zero
  eigenvalues. Hence B indefinite: every point with ``γ ∉ {0, 1}`` is a strict saddle; B
  positive definite and ``θ_r`` a strict local minimum: the segment ``0 < γ < 1`` consists of
  (non-strict) minima and ``γ < 0``, ``γ > 1`` are saddles; B negative definite: the reverse.
  With several outgoing weights the ``u`` directions also couple to the splits of ``c``
  (Petzka & Sminchisescu 2021), and only the saddle prediction (a negative ``vᵀHv``) remains
  certain.

References:
    K. Fukumizu, S. Amari, "Local minima and plateaus in hierarchical structures of multilayer
    perceptrons", Neural Networks 13:317-327, 2000.

    H. Petzka, C. Sminchisescu, "Non-attracting regions of local minima in deep and wide neural
    networks", JMLR 22(143), 2021.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..curvature import dense_spectrum, eigenvalue_tolerance, raw_hessian
from ..landscape import Landscape
from ..models import MLP, get_activation
from ._common import as_float64, check_layer, check_neuron, ravel_network
from ._expansion import split_neuron
from ._subspace import AffineSubspace


def _check_landscape(ls, what: str) -> Landscape:
    if not isinstance(ls, Landscape):
        raise InputError(f"`{what}` must be a lossatlas Landscape, got {type(ls).__name__}.")
    if ls.freeze:
        raise InputError(
            f"`{what}` freezes {', '.join(ls.freeze)}; symmetry checks need every array "
            "trainable (build the Landscape without `freeze`)."
        )
    return ls


# ---------------------------------------------------------------------------------------------
# Critical subspaces
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SubspaceCheck:
    """Loss and gradient at random points of an affine subspace.

    **Fields:** `points` ``(n, p)``, `loss` ``(n,)``, `grad_norm_inf` ``(n,)`` (``||∇L||_∞`` at
    each point), `dim` of the subspace.
    """

    points: np.ndarray
    loss: np.ndarray
    grad_norm_inf: np.ndarray
    dim: int

    @property
    def max_grad_norm_inf(self) -> float:
        """Largest ``||∇L||_∞`` over the points."""
        return float(np.max(self.grad_norm_inf))

    @property
    def loss_spread(self) -> float:
        """``max L − min L`` over the points (0 when the subspace keeps the function)."""
        return float(np.max(self.loss) - np.min(self.loss))

    def to_record(self) -> dict:
        """JSON-ready summary."""
        return {
            "dim": self.dim,
            "n_points": int(self.points.shape[0]),
            "max_grad_norm_inf": self.max_grad_norm_inf,
            "loss_min": float(np.min(self.loss)),
            "loss_max": float(np.max(self.loss)),
            "loss_spread": self.loss_spread,
        }


def check_subspace_critical(ls: Landscape, subspace: AffineSubspace, *, key, n_points: int = 8,
                            scale: float = 1.0, around=None) -> SubspaceCheck:
    """Evaluate ``L`` and ``||∇L||_∞`` at random points of `subspace`.

    The points are ``c₀ + basis @ c`` with ``c ~ N(0, scale² I)`` and ``c₀`` the base point
    (or the projection of `around`). For the subspace of a critical point of a narrower network
    embedded by duplication (or of a zero-loss minimum, also with zero-type neurons), every
    point is critical: the gradient stays at round-off level.

    **Arguments:** `ls` (the wide landscape, no frozen arrays), `subspace`, `key` (JAX PRNG
    key), `n_points`, `scale`, `around` (optional flat point of the subspace).

    **Returns:** a :class:`SubspaceCheck`.
    """
    ls = _check_landscape(ls, "ls")
    if not isinstance(subspace, AffineSubspace):
        raise InputError(f"`subspace` must be an AffineSubspace, got {type(subspace).__name__}.")
    if subspace.n_params != ls.n_params:
        raise InputError(
            f"the subspace lives in {subspace.n_params} parameters but the landscape has "
            f"{ls.n_params}: build the landscape on the wide network."
        )
    if not np.isfinite(scale) or scale < 0:
        raise InputError(f"`scale` must be a finite number >= 0, got {scale}.")
    pts = subspace.random_points(key, n_points, scale=scale, around=around)
    losses, grads = [], []
    for x in pts:
        L, g = ls.value_and_grad(jnp.asarray(x))
        losses.append(float(L))
        grads.append(float(jnp.max(jnp.abs(g))))
    return SubspaceCheck(points=pts, loss=np.asarray(losses), grad_norm_inf=np.asarray(grads),
                         dim=subspace.dim)


# ---------------------------------------------------------------------------------------------
# Fukumizu-Amari
# ---------------------------------------------------------------------------------------------


def _check_fa_landscape(ls: Landscape) -> Landscape:
    ls = _check_landscape(ls, "ls")
    if ls.data is None:
        raise InputError(
            "the Fukumizu-Amari matrix B is computed on a data set; this landscape uses the "
            "population loss. Sample a data set (teacher_student) instead."
        )
    if ls.lam != 0.0:
        raise InputError(
            f"the Fukumizu-Amari test is for the unregularised loss; this landscape has λ = "
            f"{ls.lam}. Split points of an L2-regularised loss are not critical in general."
        )
    return ls


def fukumizu_amari_B(ls: Landscape, theta, neuron: int, *, layer: int = 1) -> np.ndarray:
    """The Fukumizu-Amari matrix ``B`` of hidden neuron `neuron` of layer `layer` at ``θ``.

    ``B = Σ_n (g_n · c) σ''(z_{n,i}) h̃_n h̃_nᵀ`` (module docstring): the second variation of
    the loss along a split of this neuron is ``γ(1 − γ) uᵀ B u``.

    **Returns:** a symmetric ``(n_{l−1} + bias) × (n_{l−1} + bias)`` float64 array.
    """
    ls = _check_fa_landscape(ls)
    theta = ls.check_theta(theta)
    net = ls.unravel(theta)
    layer = check_layer(net, layer)
    neuron = check_neuron(net, layer, neuron)
    return np.asarray(_fa_matrix(net, ls.data.X, ls.data.Y, layer, neuron))


def _fa_matrix(net: MLP, X, Y, layer: int, neuron: int):
    sigma = get_activation(net.activation)
    d2sigma = jax.vmap(jax.grad(jax.grad(sigma)))
    zs, hs = net.layer_outputs(X)
    L = net.depth
    N = X.shape[0]

    def tail(z_next):
        f = z_next  # pre-activation of layer l+1 (the output if l = L-1)
        for k in range(layer + 1, L):  # W_{k+1} for the layers above
            f = sigma(f) @ net.weights[k].T
            if net.biases is not None:
                f = f + net.biases[k]
        r = f - Y
        return jnp.sum(r * r) / (2.0 * N)

    G = jax.grad(tail)(zs[layer])  # (N, n_{l+1})
    c = net.weights[layer][:, neuron]
    q = (G @ c) * d2sigma(zs[layer - 1][:, neuron])
    h = hs[layer - 1]
    if net.biases is not None:
        h = jnp.concatenate([h, jnp.ones((N, 1), dtype=h.dtype)], axis=1)
    B = (h * q[:, None]).T @ h
    return 0.5 * (B + B.T)


def split_direction(narrow: MLP, neuron: int, gamma: float, u, *, layer: int = 1) -> np.ndarray:
    """The flat direction ``v`` of :func:`split_neuron` ``(γ, 1 − γ)`` that moves the copies apart.

    In the network ``split_neuron(narrow, neuron, (γ, 1 − γ), layer=layer)`` the first copy (at
    position `neuron`) moves by ``(1 − γ) u`` and the second (last neuron of the layer) by
    ``−γ u``, where ``u`` covers the incoming weights and, with biases, the bias (last entry).
    """
    wide = split_neuron(narrow, neuron, (float(gamma), 1.0 - float(gamma)), layer=layer)
    n_in = wide.widths[layer - 1] + (1 if wide.has_bias else 0)
    u = as_float64("u", u)
    if u.shape != (n_in,):
        raise InputError(f"`u` must have {n_in} entries (incoming weights + bias), got {u.shape}.")
    zero = wide.replace(**{k: jnp.zeros_like(v) for k, v in wide.arrays().items()})
    w = np.zeros(np.asarray(wide.weights[layer - 1]).shape)
    last = w.shape[0] - 1
    n_w = wide.widths[layer - 1]
    w[neuron] = (1.0 - gamma) * u[:n_w]
    w[last] = -gamma * u[:n_w]
    arrays = {f"W{layer}": jnp.asarray(w)}
    if wide.has_bias:
        b = np.zeros(w.shape[0])
        b[neuron] = (1.0 - gamma) * u[-1]
        b[last] = -gamma * u[-1]
        arrays[f"b{layer}"] = jnp.asarray(b)
    return ravel_network(zero.replace(**arrays))


def _definiteness(lam: np.ndarray, tol: float) -> str:
    if np.all(lam > tol):
        return "positive_definite"
    if np.all(lam < -tol):
        return "negative_definite"
    if np.any(lam > tol) and np.any(lam < -tol):
        return "indefinite"
    if np.all(lam >= -tol) and np.any(lam > tol):
        return "positive_semidefinite"
    if np.all(lam <= tol) and np.any(lam < -tol):
        return "negative_semidefinite"
    return "zero"


@dataclasses.dataclass(frozen=True)
class SplitPrediction:
    """Prediction and measurement for the split point with ratio ``γ``.

    **Fields:**

    - `gamma`: the split ratio (copies get ``γ c`` and ``(1 − γ) c``).
    - `label`: predicted type: ``"saddle"`` (a negative Hessian eigenvalue), ``"minimum"`` (a
      non-strict local minimum: PSD Hessian with a flat line), ``"degenerate"`` (``γ ∈ {0,
      1}``) or ``"undetermined"``.
    - `predicted_index`, `predicted_nullity`: from Sylvester's law (exact inertia), or ``None``
      when the split neuron has several outgoing weights.
    - `rayleigh_bound`: ``γ(1−γ) λ_B / ((1−γ)² + γ²)``, an upper bound on the wide Hessian's
      smallest eigenvalue (``λ_B`` = smallest eigenvalue of ``γ(1−γ)B`` divided by ``γ(1−γ)``).
    - `index`, `nullity`, `min_eigenvalue`, `tolerance`, `grad_norm_inf`: measured on the
      dense Hessian of the wide network (``None`` when not computed).
    """

    gamma: float
    label: str
    predicted_index: int | None
    predicted_nullity: int | None
    rayleigh_bound: float
    index: int | None = None
    nullity: int | None = None
    min_eigenvalue: float | None = None
    tolerance: float | None = None
    grad_norm_inf: float | None = None

    @property
    def agrees(self) -> bool | None:
        """Whether the measured spectrum matches the prediction (``None`` if not measured)."""
        if self.index is None:
            return None
        ok = self.min_eigenvalue <= self.rayleigh_bound + self.tolerance
        if self.predicted_index is not None:
            ok = ok and (self.index, self.nullity) == (self.predicted_index,
                                                       self.predicted_nullity)
        if self.label == "saddle":
            ok = ok and self.index > 0
        if self.label == "minimum":
            ok = ok and self.index == 0
        return bool(ok)

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {
            "gamma": self.gamma,
            "label": self.label,
            "predicted_index": self.predicted_index,
            "predicted_nullity": self.predicted_nullity,
            "rayleigh_bound": self.rayleigh_bound,
            "index": self.index,
            "nullity": self.nullity,
            "min_eigenvalue": self.min_eigenvalue,
            "tolerance": self.tolerance,
            "grad_norm_inf": self.grad_norm_inf,
            "agrees": self.agrees,
        }


@dataclasses.dataclass(frozen=True)
class FukumizuAmariTest:
    """The Fukumizu-Amari test for one neuron of a critical point.

    **Fields:** `B` and its ascending `B_eigenvalues`, `B_tolerance` (zero threshold),
    `B_definiteness` (``"positive_definite"``, ``"negative_definite"``, ``"indefinite"``, …),
    `narrow_index`, `narrow_nullity` and `narrow_grad_norm_inf` of the narrow Hessian and
    gradient, `exact_inertia` (single outgoing weight: index and nullity are predicted exactly),
    and one :class:`SplitPrediction` per ratio in `splits`.
    """

    B: np.ndarray
    B_eigenvalues: np.ndarray
    B_tolerance: float
    B_definiteness: str
    narrow_index: int
    narrow_nullity: int
    narrow_grad_norm_inf: float
    exact_inertia: bool
    splits: tuple[SplitPrediction, ...]

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {
            "B_eigenvalues": self.B_eigenvalues.tolist(),
            "B_tolerance": self.B_tolerance,
            "B_definiteness": self.B_definiteness,
            "narrow_index": self.narrow_index,
            "narrow_nullity": self.narrow_nullity,
            "narrow_grad_norm_inf": self.narrow_grad_norm_inf,
            "exact_inertia": self.exact_inertia,
            "splits": [s.to_record() for s in self.splits],
        }


def fukumizu_amari_test(ls: Landscape, theta, neuron: int, gammas: Sequence[float], *,
                        layer: int = 1, measure: bool = True) -> FukumizuAmariTest:
    """Predict the type of the split points ``θ_γ`` from ``B`` and (optionally) measure it.

    **Arguments:**

    - `ls`: the narrow landscape (empirical, unregularised, nothing frozen).
    - `theta`: a critical point of `ls` (polish it first, e.g. with ``SaddleNewton``).
    - `neuron`, `layer`: the neuron to split.
    - `gammas`: split ratios to examine.
    - `measure`: also build each split network's dense Hessian and count its inertia.

    **Returns:** a :class:`FukumizuAmariTest`.
    """
    ls = _check_fa_landscape(ls)
    theta = ls.check_theta(theta)
    net = ls.unravel(theta)
    layer = check_layer(net, layer)
    neuron = check_neuron(net, layer, neuron)
    gammas = [float(g) for g in gammas]
    if not gammas or not all(np.isfinite(gammas)):
        raise InputError("give at least one finite split ratio γ.")
    B = np.asarray(_fa_matrix(net, ls.data.X, ls.data.Y, layer, neuron))
    lamB = np.linalg.eigvalsh(B)
    tolB = eigenvalue_tolerance(float(np.max(np.abs(lamB))), B.shape[0])
    g = np.asarray(ls.grad(theta))
    Hr = dense_spectrum(raw_hessian(ls, theta), grad_norm=float(np.linalg.norm(g)))
    exact = net.widths[layer + 1] == 1
    preds = []
    for gam in gammas:
        c = gam * (1.0 - gam)
        scaled = c * lamB
        neg = int(np.sum(scaled < -abs(c) * tolB))
        null = int(np.sum(np.abs(scaled) <= abs(c) * tolB)) if c != 0 else B.shape[0]
        if c == 0:
            label = "degenerate"
        elif Hr.index > 0 or neg > 0:
            label = "saddle"
        elif exact and Hr.index == 0 and Hr.nullity == 0 and null == 0:
            label = "minimum"
        else:
            label = "undetermined"
        lam_star = lamB[0] if c > 0 else lamB[-1]
        bound = c * lam_star / ((1.0 - gam) ** 2 + gam**2)
        pi = Hr.index + neg if exact else None
        pn = Hr.nullity + 1 + null if exact else None
        kw = {}
        if measure:
            wide = split_neuron(net, neuron, (gam, 1.0 - gam), layer=layer)
            wls = Landscape(wide, ls.data)
            wt = wls.ravel()
            wg = np.asarray(wls.grad(wt))
            spec = dense_spectrum(raw_hessian(wls, wt), grad_norm=float(np.linalg.norm(wg)))
            kw = dict(index=spec.index, nullity=spec.nullity,
                      min_eigenvalue=float(spec.eigenvalues[0]), tolerance=spec.tolerance,
                      grad_norm_inf=float(np.max(np.abs(wg))))
        preds.append(SplitPrediction(gamma=gam, label=label, predicted_index=pi,
                                     predicted_nullity=pn, rayleigh_bound=float(bound), **kw))
    return FukumizuAmariTest(
        B=B,
        B_eigenvalues=lamB,
        B_tolerance=tolB,
        B_definiteness=_definiteness(lamB, tolB),
        narrow_index=Hr.index,
        narrow_nullity=Hr.nullity,
        narrow_grad_norm_inf=float(np.max(np.abs(g))),
        exact_inertia=exact,
        splits=tuple(preds),
    )
