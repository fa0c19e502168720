"""Iterates that escape to infinity along a channel of the loss landscape.

Two-layer (and deeper) networks have *channels to infinity*: paths on which the loss keeps
decreasing while some parameters grow without bound, so that a descent method follows them
forever and no finite critical point is reached. Two kinds are recognised (per hidden layer,
incoming weights ``u_i`` — with the bias — and outgoing weights ``v_i`` of neuron ``i``):

- **derivative pair**: two neurons with ``u_j → s u_i`` and ``v_j → −s v_i``, ``|v_i| → ∞``
  (``s = −1`` allowed for odd activations). Their sum
  ``v_i σ(u_i·x) − v_i σ(u_j·x) ≈ v_i ((u_i − u_j)·x) σ'(u_i·x)`` tends to a *derivative
  neuron* (a gated linear unit) that no finite network of this width computes exactly.
- **linear neuron**: for activations with ``σ(0) = 0 ≠ σ'(0)`` (``erf``, ``tanh``, ``gelu``), a
  neuron with ``u_i → 0`` and ``|v_i| → ∞`` at fixed ``v_i u_i``, i.e. a linear unit
  ``σ'(0) v_i u_i·x``.

Evidence of an escape, checked on a trailing window of solver iterations (all must hold):
the parameter norm grew by a visible amount, (almost) monotonically, and is still growing at
the end of the window; the loss decreased over the window; and the current point has a
channel whose neurons carry at least half of the growth of ``||θ||²`` over the window. The
evidence must persist over several consecutive checks on the same channel neurons, because a
trajectory can pass along a channel for a while and come back to a finite critical point.
"""

from __future__ import annotations

import functools

import numpy as np

from ..models import get_activation, is_smooth

#: Neurons whose incoming weights differ by at most this fraction of their norm are a pair.
PAIR_CLOSENESS = 0.1
#: Outgoing weights of a pair cancel if ``|v_i + s v_j| ≤ PAIR_CANCELLATION · max|v|``.
PAIR_CANCELLATION = 0.5
#: A neuron is (nearly) linear if ``|u_i| ≤ LINEAR_SMALLNESS · |v_i|``.
LINEAR_SMALLNESS = 0.05


@functools.cache
def _linear_channels_possible(activation: str) -> bool:
    if activation == "identity":  # rescaling is an exact symmetry there, not a channel
        return False
    if not is_smooth(activation):  # piecewise linear: kinked at 0 (leaky_relu:1 is the identity)
        return False
    import jax
    import jax.numpy as jnp

    f = get_activation(activation)
    s0 = float(f(jnp.zeros(())))
    d0 = float(jax.grad(f)(jnp.zeros(())))
    # differentiable at 0 (the one-sided slopes agree): not relu, whose small neurons are an
    # exact rescaling, not a channel
    h = 1e-4
    kink = abs(float(f(jnp.asarray(h))) / h - float(f(jnp.asarray(-h))) / -h)
    return abs(s0) < 1e-12 and abs(d0) > 1e-3 and kink < 1e-2 * abs(d0)


def _layer_index_maps(ls):
    """Per hidden layer ``l``: θ-indices of the incoming rows and outgoing columns of each neuron."""
    net = ls.model
    slices = ls.slices()
    out = []
    for layer in range(1, net.depth):
        width = int(net.weights[layer - 1].shape[0])
        n_in = int(net.weights[layer - 1].shape[1])
        n_out = int(net.weights[layer].shape[0])
        idx = []
        for i in range(width):
            ids = []
            w_in, b_in, w_out = f"W{layer}", f"b{layer}", f"W{layer + 1}"
            if w_in in slices:
                ids.extend(slices[w_in].start + i * n_in + np.arange(n_in))
            if b_in in slices:
                ids.append(slices[b_in].start + i)
            if w_out in slices:
                ids.extend(slices[w_out].start + np.arange(n_out) * width + i)
            idx.append(np.asarray(ids, dtype=int))
        out.append(idx)
    return out


def channel_signatures(ls, theta) -> list[dict]:
    """Channels to infinity visible at ``θ``: derivative pairs and linear neurons (see module doc).

    Returns a list of records ``{"kind", "layer", "neurons", "out_norms", "in_norms",
    "closeness"/"cancellation" (pairs), "indices"}``, largest outgoing weights first; empty if
    none. Only the geometry at ``θ`` is checked here, not whether the point is moving.
    """
    import jax.numpy as jnp

    net = ls.unravel(jnp.asarray(theta))
    ws = [np.asarray(w) for w in net.weights]
    bs = None if net.biases is None else [np.asarray(b) for b in net.biases]
    odd = net.activation in ("identity", "tanh", "erf")
    linear_ok = _linear_channels_possible(net.activation)
    index_maps = _layer_index_maps(ls)
    found = []
    for layer in range(1, net.depth):
        U = ws[layer - 1]
        if bs is not None:
            U = np.concatenate([U, bs[layer - 1][:, None]], axis=1)
        V = ws[layer].T  # row i: outgoing weights of neuron i
        nu = np.linalg.norm(U, axis=1)
        nv = np.linalg.norm(V, axis=1)
        idx = index_maps[layer - 1]
        signs = (1.0, -1.0) if odd else (1.0,)
        for s in signs:
            du = np.sqrt(np.maximum(nu[:, None] ** 2 + nu[None, :] ** 2 - 2 * s * (U @ U.T), 0.0))
            dv = np.sqrt(np.maximum(nv[:, None] ** 2 + nv[None, :] ** 2 + 2 * s * (V @ V.T), 0.0))
            nu_max = np.maximum(nu[:, None], nu[None, :])
            nv_max = np.maximum(nv[:, None], nv[None, :])
            with np.errstate(divide="ignore", invalid="ignore"):
                close = du / nu_max
                cancel = dv / nv_max
            ok = (close <= PAIR_CLOSENESS) & (cancel <= PAIR_CANCELLATION) & (nv_max > 0)
            ok = np.triu(ok, 1)
            for i, j in zip(*np.nonzero(ok), strict=True):
                found.append({
                    "kind": "derivative_pair", "layer": layer, "neurons": [int(i), int(j)], "sign": s,
                    "out_norms": [float(nv[i]), float(nv[j])], "in_norms": [float(nu[i]), float(nu[j])],
                    "closeness": float(close[i, j]), "cancellation": float(cancel[i, j]),
                    "indices": np.concatenate([idx[i], idx[j]]),
                })
        if linear_ok:
            for i in np.flatnonzero((nv > 0) & (nu <= LINEAR_SMALLNESS * nv)):
                found.append({
                    "kind": "linear_neuron", "layer": layer, "neurons": [int(i)],
                    "out_norms": [float(nv[i])], "in_norms": [float(nu[i])], "indices": idx[i],
                })
    found.sort(key=lambda c: -max(c["out_norms"]))
    return found


class EscapeMonitor:
    """Watches a solver's iterates for an escape to infinity along a channel.

    `record` is called once per iteration. Every `every` iterations (`due`), `update` checks the
    trailing window of `window` iterations; an escape is declared once `persistence`
    consecutive checks pass on overlapping channel neurons. `final` does one last check at the
    end of a run (it counts as a check, so it completes a streak of `persistence − 1`).
    """

    def __init__(self, ls, *, window: int = 100, every: int = 25, persistence: int = 4,
                 min_growth: float = 0.01, min_monotone: float = 0.9, min_late_share: float = 0.1,
                 min_channel_share: float = 0.5):
        if window % every:
            raise ValueError("window must be a multiple of every")
        self.ls = ls
        self.window, self.every, self.persistence = int(window), int(every), int(persistence)
        self.min_growth, self.min_monotone = min_growth, min_monotone
        self.min_late_share, self.min_channel_share = min_late_share, min_channel_share
        self.norms: list[float] = []
        self.losses: list[float] = []
        self.checkpoints: dict[int, np.ndarray] = {}
        self.streak = 0
        self._neurons: set = set()
        self._last_checked = -1

    def record(self, theta, loss) -> None:
        k = len(self.norms)
        self.norms.append(float(np.linalg.norm(theta)))
        self.losses.append(float(loss))
        if k % self.every == 0:
            self.checkpoints[k] = np.array(theta, dtype=np.float64)
            for old in [j for j in self.checkpoints if j < k - self.window - self.every]:
                del self.checkpoints[old]

    def due(self) -> bool:
        k = len(self.norms) - 1
        return k >= self.window and k % self.every == 0

    def update(self, theta, loss_noise: float = 0.0) -> dict | None:
        """One periodic check; the evidence once `persistence` checks in a row passed."""
        k = len(self.norms) - 1
        if k == self._last_checked:
            return None
        self._last_checked = k
        ev = self.evidence(theta, loss_noise)
        if ev is None:
            self.streak, self._neurons = 0, set()
            return None
        neurons = {(c["layer"], n) for c in ev["channels"] for n in c["neurons"]}
        self.streak = self.streak + 1 if (self.streak == 0 or neurons & self._neurons) else 1
        self._neurons = neurons
        ev["consecutive_checks"] = self.streak
        return ev if self.streak >= self.persistence else None

    def final(self, theta, loss_noise: float = 0.0) -> dict | None:
        """The check at the end of a run (also when it is not on the periodic grid)."""
        k = len(self.norms) - 1
        if k == self._last_checked:
            return None if self.streak < self.persistence else self._last_evidence(theta, loss_noise)
        return self.update(theta, loss_noise)

    def _last_evidence(self, theta, loss_noise):
        ev = self.evidence(theta, loss_noise)
        if ev is not None:
            ev["consecutive_checks"] = self.streak
        return ev

    def evidence(self, theta, loss_noise: float = 0.0) -> dict | None:
        """Evidence of an escape over the trailing window ending at ``θ`` (one check), or ``None``."""
        k = len(self.norms) - 1
        starts = [j for j in self.checkpoints if j <= k - self.window]
        if not starts:
            return None
        a = max(starts)
        n = np.asarray(self.norms[a : k + 1])
        L = np.asarray(self.losses[a : k + 1])
        growth = n[-1] / n[0] - 1.0 if n[0] > 0 else np.inf
        if not growth >= self.min_growth:
            return None
        dn = np.diff(n)
        moved = dn != 0
        monotone = float(np.mean(dn[moved] > 0)) if np.any(moved) else 0.0
        quarter = (k - a) // 4
        late_share = (n[-1] - n[-1 - quarter]) / (n[-1] - n[0])
        loss_drop = float(L[0] - L[-1])
        if monotone < self.min_monotone or late_share < self.min_late_share or not loss_drop > loss_noise:
            return None
        theta = np.asarray(theta, dtype=np.float64)
        channels = channel_signatures(self.ls, theta)
        if not channels:
            return None
        start = self.checkpoints[a]
        total = float(theta @ theta - start @ start)
        ids = np.unique(np.concatenate([c["indices"] for c in channels]))
        share = float(theta[ids] @ theta[ids] - start[ids] @ start[ids]) / total
        if share < self.min_channel_share:
            return None
        return {
            "window": [int(a), int(k)],
            "norm_start": float(n[0]), "norm_end": float(n[-1]), "relative_growth": float(growth),
            "monotone_fraction": monotone, "late_share": float(late_share),
            "loss_start": float(L[0]), "loss_end": float(L[-1]), "loss_drop": loss_drop,
            "channel_share": share,
            "channels": [{k2: v for k2, v in c.items() if k2 != "indices"} for c in channels],
        }
