"""Critical points at infinity: the limit of an escape along linear-neuron channels.

When a descent method escapes along a *linear-neuron* channel (see :mod:`._escape`), neuron
``c`` of a two-layer network ``f(x) = Σ_i a_i σ(w_i·x)`` has ``w_c → 0`` and ``|a_c| → ∞`` at
fixed ``a_c w_c``; since ``σ(0) = 0``, ``a_c σ(w_c·x) = σ'(0) a_c w_c·x + O(|a_c| |w_c|³)``, the
network tends to the *limit model*

    g(x) = Σ_{i≠c} a_i σ(w_i·x) + u·x,        u = lim σ'(0) a_c w_c,

with a free linear unit ``u`` (any vector: ``a_c w_c`` reaches every direction). Along the
channel the parameters of the limit model follow its own gradient flow up to terms that vanish
at infinity, so the escaping iterates converge *in the limit model's coordinates* to a
critical point of its loss ``L_lim(w_{≠c}, a_{≠c}, u)``: a critical point at infinity of the
original landscape, with the same loss value as the infimum along the channel.

:func:`linear_channel_limit` maps the escaping point to those coordinates, solves
``∇L_lim = 0`` by Newton's method (exact dense Hessian; steps in its eigenbasis with the
pseudo-inverse, accepted while ``||∇L_lim||`` decreases, so saddles converge too) and reports
the limit point, its gradient norm, its Morse index in the limit model and the loss.

Limit losses, in closed form:

- empirical: ``L_lim = 1/(2N) Σ_n (g(x_n) − y_n)²``;
- population (``erf``, σ(z) = erf(z/√2), ``x ~ N(0, I)``): with the teacher
  ``t(x) = Σ_j v_j σ(t_j·x)``, ``L_lim = L_pop(student without c, teacher)
  + u·(Σ_{i≠c} a_i κ(w_i) w_i − Σ_j v_j κ(t_j) t_j) + ½|u|²``, where
  ``E[σ(w·x) x] = E[σ'(w·x)] w = κ(w) w`` (Stein's lemma), ``κ(w) = √(2/π) / √(1 + |w|²)``,
  and ``E[(u·x)²] = |u|²``.

Supported: two-layer, bias-free, scalar-output networks, no L2 penalty (an escape cannot happen
with one), activations with ``σ(0) = 0 ≠ σ'(0)``.

**Derivative pairs** (:func:`derivative_pair_limit`, empirical losses): two neurons with
``u_j → u_i`` and ``v_j → −v_i``, ``|v_i| → ∞`` (for odd σ also ``u_j → −u_i``, ``v_j → v_i``,
reduced to the first case by the exact sign symmetry). With ``w = (u_i + u_j)/2`` and
``δ = u_i − u_j``, ``v_i σ(u_i·x) + v_j σ(u_j·x) = c σ(w·x) + (β·x) σ'(w·x) + O(|c| |δ|²
+ |v| |δ|³)``, ``c = v_i + v_j``, ``β = (v_i − v_j) δ / 2``: the limit model has a neuron ``c σ(w·x)``
and a *gated linear unit* ``(β·x) σ'(w·x)`` sharing its input weights ``w``, with
``L_lim = 1/(2N) Σ_n (g(x_n) − y_n)²``. Smooth activations only (not ``relu``: ``σ'`` jumps).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..landscape import population_loss
from ..models import get_activation, is_smooth
from ._escape import _linear_channels_possible
from ._results import RESULTS

_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))
#: Largest network whose escapes get their limit solved automatically (dense Hessians, as in
#: the trust-region solver's default ``dense_limit``); call the limit functions directly beyond.
_AUTO_MAX_PARAMS = 3000


@dataclasses.dataclass(frozen=True)
class ChannelLimit:
    """A critical point at infinity, found in the limit model of a linear-neuron escape.

    **Fields:** `kind` (``linear_neuron`` or ``derivative_pair``), `neurons` (the escaping
    neurons ``c``), `u` (the linear unit; ``None`` for a pair), `gate` (a pair's limit:
    ``{"w", "c", "beta"}``, else ``None``), `W1`, `W2` (the
    remaining network, shapes ``(m − |c|, d)`` and ``(1, m − |c|)``), `loss` (``L_lim``),
    `grad_norm_inf` (``||∇L_lim||∞``), `result` (a :class:`RESULTS`: ``successful`` at
    `gtol`; ``max_steps_reached``; ``gradient_flat`` when no step reduces ``||∇L_lim||`` — the
    pseudo-inverse Newton step decreases it unless the gradient lies in the Hessian's near
    kernel; ``nonfinite``), `steps` (Newton steps),
    `index` (negative eigenvalues of ``∇²L_lim``), `nullity` (eigenvalues within `tolerance`),
    `tolerance`, `eigenvalue_range`, `start_grad_norm_inf` (at the escaping point's image),
    `start_loss` (``L`` at the escaping point).
    """

    neurons: tuple[int, ...]
    u: np.ndarray | None
    W1: np.ndarray
    W2: np.ndarray
    loss: float
    grad_norm_inf: float
    result: RESULTS
    steps: int
    index: int
    nullity: int
    tolerance: float
    eigenvalue_range: tuple[float, float]
    start_grad_norm_inf: float
    start_loss: float
    kind: str = "linear_neuron"
    gate: dict | None = None

    @property
    def converged(self) -> bool:
        return self.result is RESULTS.successful

    def to_record(self) -> dict:
        rec = {"kind": f"{self.kind}_limit", "neurons": list(self.neurons)}
        if self.u is not None:
            rec["u"] = self.u.tolist()
        if self.gate is not None:
            rec["gate"] = {k: np.asarray(v).tolist() for k, v in self.gate.items()}
        return rec | {
            "loss": self.loss, "grad_norm_inf": self.grad_norm_inf, "status": self.result.name,
            "converged": self.converged,
            "steps": self.steps, "index": self.index, "nullity": self.nullity, "tolerance": self.tolerance,
            "eigenvalue_range": list(self.eigenvalue_range),
            "start_grad_norm_inf": self.start_grad_norm_inf, "start_loss": self.start_loss,
        }


def _check_supported(ls, channel: str = "linear_neuron") -> float:
    net = ls.model
    if net.depth != 2 or net.biases is not None or net.widths[-1] != 1:
        raise InputError("the limit model of a linear-neuron escape is implemented for two-layer, bias-free, "
                         f"scalar-output networks; got widths {net.widths} with biases={net.biases is not None}.")
    if ls.loss_name != "mse":
        raise InputError("the limit model of an escape is derived for the squared loss; this landscape "
                         f"uses {ls.loss_name!r}.")
    if ls.lam > 0:
        raise InputError("with an L2 penalty λ > 0 no escape to infinity is possible; there is no limit model.")
    if ls.freeze:
        raise InputError("the limit model needs every array trainable; this landscape freezes "
                         f"{list(ls.freeze)}.")
    if channel == "derivative_pair":
        if not is_smooth(net.activation):
            raise InputError(f"the derivative-pair limit needs a smooth activation ({net.activation}'s σ' "
                             "jumps at 0).")
        return 0.0
    if not _linear_channels_possible(net.activation):
        raise InputError(f"activation {net.activation!r} has no linear-neuron channels (they need σ "
                         "differentiable at 0 with σ(0) = 0 ≠ σ'(0)).")
    return float(jax.grad(get_activation(net.activation))(jnp.zeros(())))


def _unpack(phi, m_rest: int, d: int):
    W1 = phi[: m_rest * d].reshape(m_rest, d)
    W2 = phi[m_rest * d : m_rest * d + m_rest].reshape(1, m_rest)
    return W1, W2, phi[m_rest * d + m_rest :]


def _limit_loss(phi, arrays, activation: str, m_rest: int, population: bool):
    """``L_lim`` at the flat limit parameters; `arrays` is the teacher ``(V1, V2)`` (population)
    or the data ``(X, Y)``. Module-level, so that its compilations are cached across calls."""
    d = arrays[0].shape[1]
    W1, W2, u = _unpack(phi, m_rest, d)
    if population:
        V1, V2 = arrays

        def kappa(A):
            return _SQRT_2_OVER_PI / jnp.sqrt(1.0 + jnp.sum(A * A, axis=1))

        base = population_loss(activation, W1, W2, V1, V2)
        cross = (W2 * kappa(W1)) @ W1 - (V2 * kappa(V1)) @ V1
        return base + jnp.sum(cross[0] * u) + 0.5 * jnp.sum(u * u)
    X, Y = arrays
    r = get_activation(activation)(X @ W1.T) @ W2.T + (X @ u)[:, None] - Y
    return jnp.sum(r * r) / (2.0 * X.shape[0])


_value_and_grad = jax.jit(jax.value_and_grad(_limit_loss), static_argnums=(2, 3, 4))
_hessian = jax.jit(jax.hessian(_limit_loss), static_argnums=(2, 3, 4))


def _arrays(ls):
    return tuple(ls.teacher.weights) if ls.is_population else (ls.data.X, ls.data.Y)


def limit_loss_fn(ls, m_rest: int):
    """``L_lim`` as a function of the flat limit parameters ``(W1 row-major, W2, u)``, and the
    function that splits them."""
    arrays, act, pop = _arrays(ls), ls.model.activation, ls.is_population
    d = int(ls.model.widths[0])
    return (lambda phi: _limit_loss(phi, arrays, act, m_rest, pop)), (lambda phi: _unpack(phi, m_rest, d))


def linear_channel_limit(ls, theta, neurons, *, gtol: float = 1e-12, max_steps: int = 100) -> ChannelLimit:
    """The critical point at infinity reached by an escape along linear-neuron channels.

    **Arguments:**

    - `ls`, `theta`: the landscape and the escaping point (e.g. a ``diverging`` solution's).
    - `neurons`: hidden neurons on linear-neuron channels (from the escape evidence).
    - `gtol`: target for ``||∇L_lim||∞``.
    - `max_steps`: Newton steps.

    Returns a :class:`ChannelLimit`; its `result` says whether the target was met.
    """
    d0 = _check_supported(ls)
    theta = np.asarray(ls.check_theta(theta))
    net = ls.unravel(jnp.asarray(theta))
    W1, W2 = (np.asarray(w) for w in net.weights)
    m = W1.shape[0]
    neurons = tuple(sorted({int(c) for c in neurons}))
    if not neurons or any(c < 0 or c >= m for c in neurons):
        raise InputError(f"`neurons` must name hidden neurons among 0..{m - 1}, got {neurons}.")
    keep = [i for i in range(m) if i not in neurons]
    u0 = d0 * sum(W2[0, c] * W1[c] for c in neurons)
    phi = np.concatenate([W1[keep].ravel(), W2[0, keep], u0])
    static = (ls.model.activation, len(keep), ls.is_population)
    arrays = _arrays(ls)

    def vg(x):
        return _value_and_grad(x, arrays, *static)

    def hess(x):
        return _hessian(x, arrays, *static)

    phi, fit = _newton_on_gradient(vg, hess, phi, gtol, max_steps)
    W1l, W2l, u = (np.asarray(x) for x in _unpack(jnp.asarray(phi), len(keep), W1.shape[1]))
    return ChannelLimit(neurons=neurons, u=u, W1=W1l, W2=W2l, start_loss=float(ls.loss(jnp.asarray(theta))),
                        **fit)


def _newton_on_gradient(vg, hess, phi, gtol: float, max_steps: int):
    """Newton's method on ``∇L = 0`` from ``phi`` (steps ``−H⁺g`` in the Hessian's eigenbasis,
    accepted while ``||∇L||`` decreases, so saddles converge too). Returns the final point and
    the :class:`ChannelLimit` fields that describe the solve."""
    L, g = (np.asarray(x) for x in vg(jnp.asarray(phi)))
    start_g = float(np.max(np.abs(g)))
    steps, radius, stalled = 0, 1.0, False
    while float(np.max(np.abs(g))) > gtol and steps < max_steps and np.all(np.isfinite(g)):
        steps += 1
        lam, V = np.linalg.eigh(np.asarray(hess(jnp.asarray(phi))))
        cut = 1e-13 * max(float(np.max(np.abs(lam))), 1e-300)
        gt = V.T @ g
        s = V @ np.where(np.abs(lam) > cut, -gt / np.where(np.abs(lam) > cut, lam, 1.0), 0.0)
        while True:  # accept while the gradient norm decreases
            step = s * min(1.0, radius / max(float(np.linalg.norm(s)), 1e-300))
            L1, g1 = (np.asarray(x) for x in vg(jnp.asarray(phi + step)))
            if np.linalg.norm(g1) < np.linalg.norm(g) or radius < 1e-12:
                break
            radius *= 0.25
        if not np.linalg.norm(g1) < np.linalg.norm(g):
            stalled = True
            break
        phi, L, g = phi + step, L1, g1
        radius = min(4.0 * radius, 1e3)
    H = np.asarray(hess(jnp.asarray(phi)))
    lam = np.linalg.eigvalsh(H) if np.all(np.isfinite(H)) else np.full(len(phi), np.nan)
    scale = max(float(np.nanmax(np.abs(lam), initial=0.0)), 1e-300)
    gmax = float(np.max(np.abs(g)))
    tol = len(lam) * float(np.finfo(np.float64).eps) * scale * 10 + gmax
    if not (np.isfinite(L) and np.all(np.isfinite(g))):
        result = RESULTS.nonfinite
    elif gmax <= gtol:
        result = RESULTS.successful
    else:
        result = RESULTS.gradient_flat if stalled else RESULTS.max_steps_reached
    return phi, {
        "loss": float(L), "grad_norm_inf": gmax, "result": result, "steps": steps,
        "index": int(np.sum(lam < -tol)), "nullity": int(np.sum(np.abs(lam) <= tol)), "tolerance": tol,
        "eigenvalue_range": (float(lam[0]), float(lam[-1])), "start_grad_norm_inf": start_g,
    }


def _gated_loss(phi, X, Y, activation: str, m_rest: int):
    """``L_lim`` of a derivative-pair limit at ``phi = (W1 rest, W2 rest, w, c, β)``."""
    d = X.shape[1]
    W1, W2, rest = _unpack(phi, m_rest, d)
    w, c, beta = rest[:d], rest[d], rest[d + 1 :]
    sigma = get_activation(activation)
    z = X @ w
    dsigma = jax.grad(lambda t: jnp.sum(sigma(t)))(z)  # σ' elementwise
    r = sigma(X @ W1.T) @ W2.T + (c * sigma(z) + (X @ beta) * dsigma)[:, None] - Y
    return jnp.sum(r * r) / (2.0 * X.shape[0])


_gated_value_and_grad = jax.jit(jax.value_and_grad(_gated_loss), static_argnums=(3, 4))
_gated_hessian = jax.jit(jax.hessian(_gated_loss), static_argnums=(3, 4))


def derivative_pair_limit(ls, theta, neurons, sign: float = 1.0, *, gtol: float = 1e-12,
                          max_steps: int = 100) -> ChannelLimit:
    """The critical point at infinity reached by an escape along a derivative-pair channel
    (empirical losses; see the module docstring for the limit model).

    **Arguments:** `ls`, `theta` (the escaping point), `neurons` (the pair ``(i, j)``), `sign`
    (``+1``: ``u_j → u_i``; ``−1``: ``u_j → −u_i``, odd activations), `gtol`, `max_steps`.
    """
    _check_supported(ls, channel="derivative_pair")
    if ls.is_population:
        raise InputError("the limit of a derivative-pair escape is implemented for empirical losses only "
                         "(the population loss of a gated unit needs Gaussian integrals not provided).")
    theta = np.asarray(ls.check_theta(theta))
    net = ls.unravel(jnp.asarray(theta))
    W1, W2 = (np.array(w) for w in net.weights)
    m = W1.shape[0]
    pair = tuple(int(c) for c in neurons)
    if len(pair) != 2 or pair[0] == pair[1] or any(c < 0 or c >= m for c in pair):
        raise InputError(f"`neurons` must be two distinct hidden neurons among 0..{m - 1}, got {pair}.")
    if sign not in (1, -1):
        raise InputError(f"`sign` must be +1 or -1, got {sign!r}.")
    i, j = pair
    if sign == -1:  # odd σ: (u, v) → (−u, −v) leaves the function unchanged
        if net.activation not in ("tanh", "erf"):
            raise InputError(f"sign −1 needs an odd activation, got {net.activation!r}.")
        W1[j], W2[0, j] = -W1[j], -W2[0, j]
    w = 0.5 * (W1[i] + W1[j])
    c = W2[0, i] + W2[0, j]
    beta = 0.5 * (W2[0, i] - W2[0, j]) * (W1[i] - W1[j])
    keep = [k for k in range(m) if k not in pair]
    phi = np.concatenate([W1[keep].ravel(), W2[0, keep], w, [c], beta])
    X, Y, act = ls.data.X, ls.data.Y, net.activation

    def vg(x):
        return _gated_value_and_grad(x, X, Y, act, len(keep))

    def hess(x):
        return _gated_hessian(x, X, Y, act, len(keep))

    phi, fit = _newton_on_gradient(vg, hess, phi, gtol, max_steps)
    d = W1.shape[1]
    W1l, W2l, rest = (np.asarray(x) for x in _unpack(jnp.asarray(phi), len(keep), d))
    gate = {"w": rest[:d], "c": float(rest[d]), "beta": rest[d + 1 :]}
    return ChannelLimit(neurons=pair, u=None, W1=W1l, W2=W2l, start_loss=float(ls.loss(jnp.asarray(theta))),
                        kind="derivative_pair", gate=gate, **fit)


def limit_of_escape(ls, theta, evidence, gtol: float) -> dict | None:
    """The limit record for a ``diverging`` solution: all channels linear neurons
    (:func:`linear_channel_limit`) or one derivative pair (:func:`derivative_pair_limit`), in the
    first layer of a supported network with at most ``_AUTO_MAX_PARAMS`` parameters (the limit
    solve uses dense Hessians); else ``None``."""
    channels = (evidence or {}).get("channels") or []
    if not channels or any(c.get("layer") != 1 for c in channels) or ls.n_params > _AUTO_MAX_PARAMS:
        return None
    kinds = {c.get("kind") for c in channels}
    try:
        if kinds == {"linear_neuron"}:
            lim = linear_channel_limit(ls, theta, [n for c in channels for n in c["neurons"]], gtol=gtol)
        elif kinds == {"derivative_pair"} and len(channels) == 1:
            ch = channels[0]
            lim = derivative_pair_limit(ls, theta, ch["neurons"], int(ch.get("sign", 1)), gtol=gtol)
        else:
            return None
    except InputError:
        return None
    return lim.to_record()
