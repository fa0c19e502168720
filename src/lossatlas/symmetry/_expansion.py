"""Expansion: wide networks that compute a narrow network's function.

Three operations carry a width-``r`` network to width ``m`` without changing its function
(Fukumizu & Amari 2000; Şimşek et al. 2021):

- **splitting** a neuron into copies that share its incoming weights and whose outgoing
  weights ``γ_c · c`` sum to the original ``c`` (``Σ γ_c = 1``, any real ``γ_c``);
- adding **zero-type** neurons: zero outgoing weights, arbitrary incoming weights;
- **permuting** the neurons (any order of the copies and zero-type neurons).

:func:`embed` performs all three at once along a :class:`~lossatlas.symmetry.LabelMap` (any
depth); :func:`split_neuron` and :func:`add_zero_neurons` are the one-step versions. In a
deep network a copy in hidden layer ``l`` feeds the next layer through the copies of the layer
below: ``W_{l+1}[j, j'] = s_j s_{j'} γ_{j'} N_{l+1}[i, k]`` for ``j'`` a copy of narrow neuron
``k`` (``s`` the signs of sign-flipped copies, odd activations only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from ..models import MLP
from ._common import (
    as_float64,
    check_layer,
    check_network,
    check_neuron,
    layer_arrays,
    offsets,
    ravel_network,
    standard_normal,
    with_layer,
)
from ._subspace import ZERO, AffineSubspace, LabelMap, _helmert, check_label_map, expansion_subspace

#: |Σ γ − 1| allowed for split ratios given as decimals (e.g. 0.1 + 0.2 + 0.7).
_GAMMA_SUM_TOL = 1e-12


def _check_gammas(gammas, what: str) -> np.ndarray:
    g = as_float64(what, gammas)
    if g.ndim != 1 or g.size < 1:
        raise InputError(f"{what} must be a non-empty list of numbers, got {gammas!r}.")
    if not np.all(np.isfinite(g)):
        raise InputError(f"{what} must be finite numbers, got {g.tolist()}.")
    if abs(float(np.sum(g)) - 1.0) > _GAMMA_SUM_TOL * max(1.0, float(np.sum(np.abs(g)))):
        raise InputError(
            f"{what} {g.tolist()} sum to {float(np.sum(g))!r}, not 1: the copies' outgoing "
            "weights must add up to the original neuron's (e.g. 0.3,0.7)."
        )
    return g


def split_neuron(net: MLP, neuron: int, gammas: Sequence[float] = (0.5, 0.5), *,
                 layer: int = 1) -> MLP:
    """Split one hidden neuron into ``len(gammas)`` copies; the function is unchanged.

    Copy ``c`` gets the neuron's incoming weights and bias and the outgoing column ``γ_c · c``.
    The first copy stays at position ``neuron``; the others are appended at the end of the
    layer, in order. With two copies and ratio ``γ`` this is the Fukumizu-Amari line
    ``(w, w; γ a, (1 − γ) a)``.

    **Arguments:**

    - `net`: the network (any depth).
    - `neuron`: index of the neuron in hidden layer `layer` (from 0).
    - `gammas`: split ratios, summing to 1 (any real numbers, negative allowed).
    - `layer`: hidden layer ``1..L-1`` (layer ``l`` is the output of ``W_l``).

    **Returns:** the wider :class:`~lossatlas.models.MLP`.
    """
    check_network(net)
    layer = check_layer(net, layer)
    neuron = check_neuron(net, layer, neuron)
    g = _check_gammas(gammas, "split ratios")
    w_in, b, w_out = layer_arrays(net, layer)
    col = w_out[:, neuron].copy()
    extra = len(g) - 1
    w_in = np.concatenate([w_in, np.repeat(w_in[neuron : neuron + 1], extra, axis=0)])
    if b is not None:
        b = np.concatenate([b, np.repeat(b[neuron : neuron + 1], extra)])
    w_out = np.concatenate([w_out, np.zeros((w_out.shape[0], extra))], axis=1)
    w_out[:, neuron] = g[0] * col
    for c in range(1, len(g)):
        w_out[:, -extra + c - 1] = g[c] * col
    return with_layer(net, layer, w_in, b, w_out)


def add_zero_neurons(net: MLP, incoming, *, layer: int = 1, bias=None) -> MLP:
    """Append zero-type neurons (zero outgoing weights) to a hidden layer.

    **Arguments:**

    - `incoming`: array ``(k, n_{l-1})``: the new neurons' incoming weights (any values).
    - `bias`: array ``(k,)`` of their biases (networks with biases only; default zeros).
    - `layer`: hidden layer ``1..L-1``.

    **Returns:** the network with ``k`` more neurons in `layer`; the function is unchanged.
    """
    check_network(net)
    layer = check_layer(net, layer)
    w_in, b, w_out = layer_arrays(net, layer)
    inc = as_float64("incoming", incoming)
    if inc.ndim != 2 or inc.shape[1] != w_in.shape[1]:
        raise InputError(
            f"`incoming` must have shape (k, {w_in.shape[1]}) for hidden layer {layer}, got "
            f"{inc.shape}."
        )
    k = inc.shape[0]
    if b is None:
        if bias is not None:
            raise InputError("this network has no biases; drop `bias`.")
    else:
        bb = np.zeros(k) if bias is None else as_float64("bias", bias)
        if bb.shape != (k,) or not np.all(np.isfinite(bb)):
            raise InputError(f"`bias` must be {k} finite numbers, got shape {bb.shape}.")
        b = np.concatenate([b, bb])
    w_in = np.concatenate([w_in, inc])
    w_out = np.concatenate([w_out, np.zeros((w_out.shape[0], k))], axis=1)
    return with_layer(net, layer, w_in, b, w_out)


@dataclasses.dataclass(frozen=True)
class Embedding:
    """A narrow network embedded into a wide one along a label map.

    **Fields:** `network` (the wide :class:`~lossatlas.models.MLP`), `narrow`, `label_map`,
    `gammas` (one array of split ratios per hidden layer, 0 for zero-type neurons).
    """

    network: MLP
    narrow: MLP
    label_map: LabelMap
    gammas: tuple[np.ndarray, ...]

    def subspace(self) -> AffineSubspace:
        """The affine subspace ``Γ`` of the label map (the embedded point lies on it)."""
        return expansion_subspace(self.narrow, self.label_map)

    def to_record(self) -> dict:
        """JSON-ready summary."""
        return {
            "narrow_widths": list(self.narrow.widths),
            "wide_widths": list(self.network.widths),
            "activation": self.network.activation,
            "label_map": self.label_map.to_record(),
            "gammas": [g.tolist() for g in self.gammas],
        }


def embed(narrow: MLP, label_map: LabelMap, *, gammas=None, key=None,
          zero_scale: float = 1.0) -> Embedding:
    """Embed ``narrow`` into the wide network described by ``label_map``.

    Copies share their narrow neuron's incoming weights (split over the copies of the layer
    below) and bias; their outgoing weights are ``γ_j`` times the narrow neuron's, with
    ``Σ_{j ∈ S_i} γ_j = 1`` per narrow neuron. Zero-type neurons and zero groups get zero
    outgoing weights and incoming weights (and biases) drawn from ``N(0, zero_scale²/n_{l-1})``
    with `key`, or zeros without a key; the members of a zero group share theirs.

    **Arguments:**

    - `narrow`: the narrow network.
    - `label_map`: a :class:`~lossatlas.symmetry.LabelMap` with ``narrow``'s hidden widths.
    - `gammas`: ``None`` (equal split, ``γ_j = 1/|S_i|``) or one sequence of ``m_l`` ratios per
      hidden layer (entries of zero-type neurons are ignored).
    - `key`: JAX PRNG key for the incoming weights of zero-type neurons (optional).
    - `zero_scale`: their scale.

    **Returns:** an :class:`Embedding`; the wide network computes ``narrow``'s function and
    lies on ``label_map``'s affine subspace.
    """
    check_network(narrow, "narrow")
    check_label_map(narrow, label_map)
    n_hidden = narrow.depth - 1
    widths = (narrow.widths[0], *label_map.wide_widths, narrow.widths[-1])
    if gammas is None:
        gam = []
        for ly in range(1, n_hidden + 1):
            g = np.zeros(widths[ly])
            for members in label_map.groups(ly):
                g[list(members)] = 1.0 / len(members)
            gam.append(g)
    else:
        gammas = list(gammas)
        if len(gammas) != n_hidden:
            raise InputError(
                f"give one list of split ratios per hidden layer ({n_hidden}), got {len(gammas)}."
            )
        gam = []
        for ly in range(1, n_hidden + 1):
            g = as_float64(f"split ratios of hidden layer {ly}", gammas[ly - 1])
            if g.shape != (widths[ly],) or not np.all(np.isfinite(g)):
                raise InputError(
                    f"split ratios of hidden layer {ly} must be {widths[ly]} finite numbers, got "
                    f"shape {g.shape}."
                )
            g = g.copy()
            for i, members in enumerate(label_map.groups(ly)):
                _check_gammas(g[list(members)], f"split ratios of narrow neuron {i} (layer {ly})")
            g[[j for j, x in enumerate(label_map.labels[ly - 1]) if x <= ZERO]] = 0.0
            gam.append(g)
    if float(zero_scale) < 0 or not np.isfinite(zero_scale):
        raise InputError(f"`zero_scale` must be a finite number >= 0, got {zero_scale}.")
    keys = list(jax.random.split(key, n_hidden)) if key is not None else [None] * n_hidden

    ws, bs = [], [] if narrow.has_bias else None
    for layer in range(1, n_hidden + 2):
        n_in, n_out = widths[layer - 1], widths[layer]
        N = np.asarray(narrow.weights[layer - 1], dtype=np.float64)
        Nb = None if bs is None else np.asarray(narrow.biases[layer - 1], dtype=np.float64)
        if layer <= n_hidden:
            labels = label_map.labels[layer - 1]
            signs = np.asarray(label_map.signs[layer - 1], dtype=np.float64)
        else:
            labels = tuple(range(1, n_out + 1))
            signs = np.ones(n_out)
        # column map: wide column j' -> (narrow k, s_j' γ_j') or nothing
        if layer == 1:
            col_of, col_w = np.arange(n_in), np.ones(n_in)
        else:
            below = label_map.labels[layer - 2]
            col_of = np.asarray([x - 1 if x > 0 else -1 for x in below])
            col_w = np.asarray(label_map.signs[layer - 2], dtype=np.float64) * gam[layer - 2]
        W = np.zeros((n_out, n_in))
        b = None if bs is None else np.zeros(n_out)
        live_cols = col_of >= 0
        for j, lab in enumerate(labels):
            if lab > 0:
                W[j, live_cols] = signs[j] * col_w[live_cols] * N[lab - 1, col_of[live_cols]]
                if b is not None:
                    b[j] = signs[j] * Nb[lab - 1]
        if layer <= n_hidden and keys[layer - 1] is not None:
            std = float(zero_scale) / np.sqrt(n_in)
            R = std * standard_normal(keys[layer - 1], (n_out, n_in + 1))
            R, Rb = R[:, :n_in], R[:, n_in]
            for j, lab in enumerate(labels):
                if lab == ZERO:
                    W[j], b_val = R[j], Rb[j]
                elif lab < 0:  # zero group: share the first member's row (signed)
                    first = labels.index(lab)
                    W[j] = signs[j] * signs[first] * R[first]
                    b_val = signs[j] * signs[first] * Rb[first]
                else:
                    continue
                if b is not None:
                    b[j] = b_val
        ws.append(W)
        if bs is not None:
            bs.append(b)
    wide = MLP(tuple(jnp.asarray(w) for w in ws),
               None if bs is None else tuple(jnp.asarray(x) for x in bs), narrow.activation)
    return Embedding(network=wide, narrow=narrow, label_map=label_map, gammas=tuple(gam))


def split_label_map(hidden_widths: Sequence[int], width: int, *, layer: int = 1,
                    splits: dict[int, int] | None = None) -> LabelMap:
    """The label map that splits neurons of one layer and fills it up with zero-type neurons.

    Hidden layer `layer` keeps its neurons ``0..r-1`` in place; neuron ``i`` gets
    ``splits[i] − 1`` extra copies appended in order of ``i``, and the remaining positions up
    to `width` are zero-type. Other layers are unchanged.
    """
    hidden_widths = tuple(int(r) for r in hidden_widths)
    if not 1 <= layer <= len(hidden_widths):
        raise InputError(
            f"hidden layer {layer} does not exist: the network has hidden layers "
            f"1..{len(hidden_widths)}."
        )
    r = hidden_widths[layer - 1]
    splits = dict(splits or {})
    for i, c in splits.items():
        if not 0 <= int(i) < r:
            raise InputError(
                f"cannot split neuron {i}: hidden layer {layer} has neurons 0..{r - 1}."
            )
        if int(c) < 1:
            raise InputError(f"neuron {i} needs at least one copy, got {c}.")
    labels = list(range(1, r + 1))
    for i in sorted(splits):
        labels += [int(i) + 1] * (int(splits[i]) - 1)
    if len(labels) > width:
        raise InputError(
            f"the splits need width {len(labels)} in hidden layer {layer} but --width is {width}; "
            "increase the width or split less."
        )
    if width < r:
        raise InputError(f"width {width} is below the network's width {r} in hidden layer {layer}.")
    labels += [ZERO] * (width - len(labels))
    all_labels = [tuple(range(1, w + 1)) for w in hidden_widths]
    all_labels[layer - 1] = tuple(labels)
    return LabelMap(tuple(all_labels), hidden_widths)


def critical_subspace(narrow: MLP, label_map: LabelMap) -> AffineSubspace:
    """The subspace of *collinear* splits: critical points whenever ``narrow`` is one.

    Every copy ``j`` of narrow neuron ``i`` in hidden layer ``l`` carries a ratio ``γ_j`` with
    ``Σ_{j∈S_i} γ_j = 1``, and its outgoing weights are ``γ_j`` times the narrow neuron's,
    spread over the copies of the layer above: ``W_{l+1}[j₂, j] = s_{j₂} s_j γ_j N_{l+1}[i₂, i]``
    for a copy ``j₂`` of ``i₂`` (``W_L[o, j] = s_j γ_j N_L[o, i]`` for outputs). Incoming
    weights are those of :func:`lossatlas.symmetry.embed` with equal ratios. The subspace has
    dimension ``Σ_l (m_l − r_l)``.

    Why it is critical: the back-propagated error of copy ``j`` is ``s_j γ_j`` times the
    narrow neuron's, so every gradient entry is a multiple of one of ``∂L_N/∂θ_N = 0``. With a
    single output and one hidden layer it equals :func:`expansion_subspace`; with several
    outgoing weights per neuron, :func:`expansion_subspace` also contains non-collinear splits,
    which keep the function but are not critical away from a zero-loss minimum. These are the
    subspaces counted by :func:`~lossatlas.symmetry.count_G`.

    Raises :class:`InputError` for label maps with zero-type neurons or zero groups (they are
    critical only at zero loss: use :func:`expansion_subspace` there).
    """
    check_network(narrow, "narrow")
    check_label_map(narrow, label_map)
    if any(x <= ZERO for lab in label_map.labels for x in lab):
        raise InputError(
            "critical_subspace takes label maps of copies only (labels >= 1): zero-type "
            "neurons and zero groups give critical points only at a zero-loss minimum, where "
            "expansion_subspace already consists of critical points."
        )
    base = ravel_network(embed(narrow, label_map).network)
    widths = (narrow.widths[0], *label_map.wide_widths, narrow.widths[-1])
    has_bias = narrow.has_bias
    offs = offsets(widths, has_bias)
    n_hidden = len(widths) - 2
    columns = []
    for ly in range(1, n_hidden + 1):
        w_start, _ = offs[ly]  # W_{l+1}
        n_in = widths[ly]
        N = np.asarray(narrow.weights[ly], dtype=np.float64)
        signs = np.asarray(label_map.signs[ly - 1], dtype=np.float64)
        if ly < n_hidden:
            rows = label_map.labels[ly]
            row_signs = np.asarray(label_map.signs[ly], dtype=np.float64)
        else:
            rows = tuple(range(1, widths[-1] + 1))
            row_signs = np.ones(widths[-1])
        for i, members in enumerate(label_map.groups(ly)):
            if len(members) < 2:
                continue
            # d θ / d γ_j: column j of W_{l+1}, entries s_{j2} s_j N[i2, i]
            pattern = np.asarray([row_signs[j2] * N[lab - 1, i] for j2, lab in enumerate(rows)])
            norm = float(np.linalg.norm(pattern))
            if norm == 0.0:
                raise InputError(
                    f"narrow neuron {i} of hidden layer {ly} has zero outgoing weights: it is "
                    "zero-type, so its splits are not a line of critical points (reduce the "
                    "narrow network first)."
                )
            h = _helmert(np.ones(len(members)))
            for q in range(h.shape[1]):
                idx, vals = [], []
                for c, j in enumerate(members):
                    idx.append(w_start + np.arange(len(rows)) * n_in + j)
                    vals.append(h[c, q] * signs[j] * pattern / norm)
                columns.append((np.concatenate(idx), np.concatenate(vals)))
    basis = np.zeros((base.size, len(columns)))
    for q, (idx, vals) in enumerate(columns):
        basis[idx, q] = vals
    return AffineSubspace(base=base, basis=basis, dim=len(columns))
