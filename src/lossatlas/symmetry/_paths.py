"""Paths of constant loss between permuted copies of a network, through one extra neuron.

At its minimal width ``r*`` a global minimum and its ``r*! − 1`` permuted copies are isolated
points. With one extra (*spare*) neuron per permuted hidden layer they are joined by straight
segments along which the network function, and hence the loss, does not change (Şimşek et al.
2021, Figure 4). A spare neuron has zero outgoing weights and incoming weights ``u``.

Moving neuron ``p`` into a free (silent) position ``q`` takes two segments:

1. the incoming weights and bias of ``q`` go linearly to those of ``p`` (``q`` is silent);
2. the outgoing weights go linearly from ``p`` to ``q``, ``(c, 0) → (0, c)``: both neurons
   now compute the same feature, so ``(1 − t) c σ(·) + t c σ(·)`` does not depend on ``t``.

Then ``p`` is the free position. A cycle ``(j_0 j_1 … j_{k−1})`` of the permutation is realised
by ``k + 1`` moves (park ``j_0`` in the free slot, shift the others along, unpark), and a final
segment returns the spare's incoming weights to ``u``: a transposition takes 7 segments. In a
deep network each permuted hidden layer has its own spare, and the layers are permuted one
after another.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..landscape import Landscape, batch_loss
from ..models import MLP
from ._common import (
    as_float64,
    check_layer,
    check_network,
    check_permutation,
    ravel_network,
)
from ._permutations import permute


@dataclasses.dataclass(frozen=True)
class ConnectingPath:
    """A piecewise-linear path between a network and its permuted copy.

    **Fields:**

    - `start`: the wide network at the start (the original with a spare neuron appended to
      every permuted hidden layer).
    - `end`: the wide network at the end, ``permute(start, …)`` with the spares kept last.
    - `waypoints`: ``(k, n_params)`` flat parameters (DESIGN.md order) of the ``k`` corners,
      from `start` to `end`; segments join consecutive waypoints.
    - `moves`: one description per segment.
    - `permutations`: the permutation of each hidden layer of the original network (``None``
      where unchanged).
    """

    start: MLP
    end: MLP
    waypoints: np.ndarray
    moves: tuple[str, ...]
    permutations: tuple[np.ndarray | None, ...]

    @property
    def n_segments(self) -> int:
        """Number of straight segments (``k − 1``)."""
        return int(self.waypoints.shape[0]) - 1

    def points(self, samples_per_segment: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Points along the path: ``(t, θ)`` with ``t ∈ [0, n_segments]`` and ``θ`` ``(n, p)``.

        Each segment is sampled at ``samples_per_segment + 1`` evenly spaced points (corners
        shared), so ``n = n_segments · samples_per_segment + 1``.
        """
        s = int(samples_per_segment)
        if s < 1:
            raise InputError(f"need at least one sample per segment, got {samples_per_segment}.")
        if self.n_segments == 0:
            return np.zeros(1), self.waypoints.copy()
        frac = np.arange(s) / s
        ts, pts = [], []
        for q in range(self.n_segments):
            a, b = self.waypoints[q], self.waypoints[q + 1]
            ts.append(q + frac)
            pts.append(a[None, :] + frac[:, None] * (b - a)[None, :])
        ts.append(np.array([float(self.n_segments)]))
        pts.append(self.waypoints[-1:])
        return np.concatenate(ts), np.concatenate(pts)

    def to_record(self) -> dict:
        """JSON-ready summary (without the waypoints)."""
        return {
            "n_segments": self.n_segments,
            "n_waypoints": int(self.waypoints.shape[0]),
            "n_params": int(self.waypoints.shape[1]),
            "wide_widths": list(self.start.widths),
            "permutations": [None if p is None else p.tolist() for p in self.permutations],
            "moves": list(self.moves),
        }


def connecting_path(net: MLP, perm, *, layer: int | None = 1,
                    spare_incoming=None) -> ConnectingPath:
    """The constant-loss path from ``net`` to its permuted copy, through one spare neuron.

    **Arguments:**

    - `net`: a network (for the theorem, a global minimum of minimal width; the path keeps
      the function of any network).
    - `perm`: a permutation of hidden layer `layer` (new neuron ``j`` is old neuron
      ``perm[j]``, as in :func:`~lossatlas.symmetry.permute`); with ``layer=None``, one entry
      per hidden layer (a permutation or ``None``).
    - `layer`: the hidden layer to permute (``1..L-1``), or ``None`` (see `perm`).
    - `spare_incoming`: incoming weights (and bias, last entry, for networks with biases) of
      the spare neuron; default zeros. With ``layer=None``, one entry per permuted layer.

    **Returns:** a :class:`ConnectingPath`; the loss is constant along every segment.
    """
    check_network(net)
    n_hidden = net.depth - 1
    if layer is None:
        perms = list(perm)
        if len(perms) != n_hidden:
            raise InputError(
                f"with layer=None give one permutation (or None) per hidden layer ({n_hidden}), "
                f"got {len(perms)}."
            )
        spares = [None] * n_hidden if spare_incoming is None else list(spare_incoming)
        if len(spares) != n_hidden:
            raise InputError(
                f"with layer=None give one spare_incoming entry (or None) per hidden layer "
                f"({n_hidden}), got {len(spares)}."
            )
    else:
        layer = check_layer(net, layer)
        perms = [None] * n_hidden
        perms[layer - 1] = perm
        spares = [None] * n_hidden
        spares[layer - 1] = spare_incoming
    perms = [None if p is None else check_permutation(p, net.widths[ly + 1],
                                                      f"permutation of hidden layer {ly + 1}")
             for ly, p in enumerate(perms)]
    has_bias = net.has_bias
    ws = [np.array(w, dtype=np.float64) for w in net.weights]
    bs = None if net.biases is None else [np.array(b, dtype=np.float64) for b in net.biases]
    # Append a spare neuron to every permuted layer.
    spare_rows = {}
    for ly in range(1, n_hidden + 1):
        if perms[ly - 1] is None:
            continue
        n_in = ws[ly - 1].shape[1]
        u = spares[ly - 1]
        u = np.zeros(n_in + has_bias) if u is None else as_float64("spare_incoming", u)
        if u.shape != (n_in + has_bias,):
            raise InputError(
                f"the spare neuron of hidden layer {ly} needs {n_in + has_bias} finite incoming "
                f"values ({n_in} weights{' + bias' if has_bias else ''}), got shape {u.shape}."
            )
        ws[ly - 1] = np.concatenate([ws[ly - 1], u[None, :n_in]])
        if has_bias:
            bs[ly - 1] = np.concatenate([bs[ly - 1], u[n_in:]])
        ws[ly] = np.concatenate([ws[ly], np.zeros((ws[ly].shape[0], 1))], axis=1)
        spare_rows[ly] = u

    def flat():
        out = []
        for i, w in enumerate(ws):
            out.append(w.ravel())
            if bs is not None:
                out.append(bs[i])
        return np.concatenate(out)

    waypoints = [flat()]
    moves: list[str] = []

    def push(desc: str):
        x = flat()
        if not np.array_equal(x, waypoints[-1]):
            waypoints.append(x)
            moves.append(desc)

    def incoming(ly, j):
        row = ws[ly - 1][j].copy()
        return np.concatenate([row, bs[ly - 1][j : j + 1]]) if bs is not None else row

    def set_incoming(ly, j, v):
        n = ws[ly - 1].shape[1]
        ws[ly - 1][j] = v[:n]
        if bs is not None:
            bs[ly - 1][j] = v[n]

    def move(ly, p, q):
        set_incoming(ly, q, incoming(ly, p))
        push(f"layer {ly}: incoming weights of silent neuron {q} -> those of neuron {p}")
        ws[ly][:, q] = ws[ly][:, p]
        ws[ly][:, p] = 0.0
        push(f"layer {ly}: outgoing weights neuron {p} -> neuron {q}")

    start = _mlp(net, ws, bs)
    for ly in range(1, n_hidden + 1):
        p = perms[ly - 1]
        if p is None:
            continue
        spare = len(p)
        free = spare
        done = np.zeros(len(p), dtype=bool)
        for j0 in range(len(p)):
            if done[j0] or p[j0] == j0:
                done[j0] = True
                continue
            parked = free
            move(ly, j0, parked)
            cur = j0
            done[j0] = True
            while p[cur] != j0:
                move(ly, p[cur], cur)
                cur = p[cur]
                done[cur] = True
            move(ly, parked, cur)
            free = parked
        set_incoming(ly, spare, spare_rows[ly])
        push(f"layer {ly}: incoming weights of the spare neuron back to their start")
    ext = [None if p is None else np.concatenate([p, [len(p)]]) for p in perms]
    end = permute(start, ext)
    W = np.stack(waypoints)
    assert np.array_equal(W[-1], ravel_network(end)), "path does not end at the permuted copy"
    return ConnectingPath(start=start, end=end, waypoints=W, moves=tuple(moves),
                          permutations=tuple(perms))


def _mlp(template: MLP, ws, bs) -> MLP:
    return MLP(tuple(jnp.asarray(w.copy()) for w in ws),
               None if bs is None else tuple(jnp.asarray(b.copy()) for b in bs),
               template.activation)


@dataclasses.dataclass(frozen=True)
class PathProfile:
    """The loss along a :class:`ConnectingPath`.

    **Fields:** `t` (position, ``q + fraction`` on segment ``q``), `loss` at each sample,
    `samples_per_segment`.
    """

    t: np.ndarray
    loss: np.ndarray
    samples_per_segment: int

    @property
    def start_loss(self) -> float:
        """Loss at the start of the path."""
        return float(self.loss[0])

    @property
    def max_loss(self) -> float:
        """Largest loss along the path."""
        return float(np.max(self.loss))

    @property
    def max_deviation(self) -> float:
        """``max |L(t) − L(0)|`` along the path."""
        return float(np.max(np.abs(self.loss - self.loss[0])))

    def to_record(self) -> dict:
        """JSON-ready summary."""
        return {
            "start_loss": self.start_loss,
            "end_loss": float(self.loss[-1]),
            "max_loss": self.max_loss,
            "min_loss": float(np.min(self.loss)),
            "max_loss_deviation": self.max_deviation,
            "samples_per_segment": self.samples_per_segment,
            "n_samples": int(self.loss.size),
        }


def path_loss_profile(ls: Landscape, path: ConnectingPath, *,
                      samples_per_segment: int = 32) -> PathProfile:
    """Evaluate the loss of `ls` along `path` at ``samples_per_segment`` points per segment.

    `ls` is a landscape on the wide network (e.g. ``Landscape(path.start, data)``).
    """
    if not isinstance(ls, Landscape):
        raise InputError(f"`ls` must be a lossatlas Landscape, got {type(ls).__name__}.")
    if not isinstance(path, ConnectingPath):
        raise InputError(f"`path` must be a ConnectingPath, got {type(path).__name__}.")
    if ls.freeze or ls.n_params != path.waypoints.shape[1]:
        raise InputError(
            f"the path has {path.waypoints.shape[1]} parameters but the landscape has "
            f"{ls.n_params} trainable ones: build it as Landscape(path.start, data) without "
            "frozen arrays."
        )
    t, pts = path.points(samples_per_segment)
    # Evaluate in chunks of a fixed size (the last one padded) so one compilation serves all.
    chunk = 256
    n = pts.shape[0]
    padded = np.concatenate([pts, np.repeat(pts[-1:], (-n) % chunk, axis=0)])
    losses = [np.asarray(batch_loss(ls, jnp.asarray(padded[i : i + chunk])))
              for i in range(0, padded.shape[0], chunk)]
    losses = [np.concatenate(losses)[:n]]
    return PathProfile(t=t, loss=np.concatenate(losses),
                       samples_per_segment=int(samples_per_segment))


def permutation_from_string(text: str, n: int | None = None) -> np.ndarray:
    """Parse ``"2,0,1"`` into a permutation array (checked against ``n`` when given)."""
    parts = [s.strip() for s in str(text).split(",") if s.strip()]
    try:
        values = [int(s) for s in parts]
    except ValueError:
        raise InputError(
            f"permutation {text!r} must be comma-separated integers such as 2,0,1."
        ) from None
    if not values:
        raise InputError("the permutation is empty; give e.g. 2,0,1.")
    return check_permutation(values, len(values) if n is None else n)
