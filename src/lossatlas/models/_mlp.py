"""Multi-layer perceptrons: ``h_0 = x``, ``h_l = σ(W_l h_{l-1} + b_l)``, ``f = W_L h_{L-1} + b_L``."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._config import check_finite, check_float64
from .._errors import InputError
from ._activations import check_activation, get_activation


class MLP(eqx.Module):
    """A fully connected network with one activation for all hidden layers.

    **Fields:**

    - `weights`: tuple of ``W_l`` with shape ``(n_l, n_{l-1})``, ``l = 1..L``.
    - `biases`: tuple of ``b_l`` with shape ``(n_l,)``, or ``None`` for a bias-free network.
    - `activation`: one of :data:`lossatlas.models.ACTIVATIONS`.

    The network maps a batch ``X`` of shape ``(N, n_0)`` to ``(N, n_L)`` (rows are samples).
    A deep linear network is the MLP with ``activation="identity"`` and no biases.
    """

    weights: tuple
    biases: tuple | None
    activation: str = eqx.field(static=True)

    def __check_init__(self):
        check_activation(self.activation)
        if len(self.weights) < 1:
            raise InputError("an MLP needs at least one weight matrix W1.")
        for i, w in enumerate(self.weights):
            if jnp.ndim(w) != 2:
                raise InputError(f"W{i + 1} must be a matrix, got shape {jnp.shape(w)}.")
        for i in range(1, len(self.weights)):
            if self.weights[i].shape[1] != self.weights[i - 1].shape[0]:
                raise InputError(
                    f"W{i + 1} has shape {self.weights[i].shape} but W{i} has "
                    f"{self.weights[i - 1].shape[0]} rows: W{i + 1} needs "
                    f"{self.weights[i - 1].shape[0]} columns."
                )
        if self.biases is not None:
            if len(self.biases) != len(self.weights):
                raise InputError(
                    f"{len(self.weights)} weight matrices but {len(self.biases)} bias vectors: "
                    "give every layer a bias or none."
                )
            for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                if jnp.shape(b) != (w.shape[0],):
                    raise InputError(
                        f"b{i + 1} must have shape ({w.shape[0]},) to match W{i + 1}, "
                        f"got {jnp.shape(b)}."
                    )

    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.weights)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``: input width, hidden widths, output width."""
        return (int(self.weights[0].shape[1]),) + tuple(int(w.shape[0]) for w in self.weights)

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the hidden layers ``(n_1, ..., n_{L-1})``."""
        return self.widths[1:-1]

    @property
    def has_bias(self) -> bool:
        """Whether the network carries biases."""
        return self.biases is not None

    def layer_outputs(self, X):
        """Pre-activations ``Z_l`` and post-activations ``H_l`` of every layer, batch as rows.

        Returns ``(zs, hs)`` with ``hs[0] = X``; ``zs[l-1] = H_{l-1} W_lᵀ + b_l`` and
        ``hs[l] = σ(zs[l-1])`` for hidden layers; ``zs[-1]`` is the output.
        """
        sigma = get_activation(self.activation)
        h = X
        zs, hs = [], [X]
        for i, w in enumerate(self.weights):
            z = h @ w.T
            if self.biases is not None:
                z = z + self.biases[i]
            zs.append(z)
            if i < len(self.weights) - 1:
                h = sigma(z)
                hs.append(h)
        return zs, hs

    def __call__(self, X):
        """Outputs ``f(X)`` of shape ``(N, n_L)`` for inputs ``X`` of shape ``(N, n_0)``."""
        sigma = get_activation(self.activation)
        h = X
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            h = h @ w.T
            if self.biases is not None:
                h = h + self.biases[i]
            if i < last:
                h = sigma(h)
        return h

    def arrays(self) -> dict[str, jax.Array]:
        """The parameter arrays by file name, in the flat order ``W1, b1, W2, b2, ...``."""
        out = {}
        for i, w in enumerate(self.weights):
            out[f"W{i + 1}"] = w
            if self.biases is not None:
                out[f"b{i + 1}"] = self.biases[i]
        return out

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameter arrays in flat order."""
        return tuple(self.arrays())

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(np.prod(a.shape) for a in self.arrays().values()))

    def replace(self, **arrays) -> MLP:
        """A copy with some arrays replaced by name, e.g. ``net.replace(W2=w2)``."""
        ws = list(self.weights)
        bs = None if self.biases is None else list(self.biases)
        for name, value in arrays.items():
            kind, idx = _parse_name(name, self.depth, self.has_bias)
            (ws if kind == "W" else bs)[idx] = value
        return MLP(tuple(ws), None if bs is None else tuple(bs), self.activation)


def _parse_name(name: str, depth: int, has_bias: bool) -> tuple[str, int]:
    if len(name) >= 2 and name[0] in "Wb" and name[1:].isdigit():
        idx = int(name[1:]) - 1
        if 0 <= idx < depth and (name[0] == "W" or has_bias):
            return name[0], idx
    valid = [f"W{i + 1}" for i in range(depth)] + (
        [f"b{i + 1}" for i in range(depth)] if has_bias else []
    )
    raise InputError(f"unknown parameter array {name!r}; this network has: {', '.join(valid)}.")


def mlp_from_arrays(arrays: dict, activation: str) -> MLP:
    """Build an :class:`MLP` from ``{"W1": ..., "b1": ..., ...}`` (biases all or none).

    Arrays must be float64 and finite; raises :class:`InputError` otherwise.
    """
    check_activation(activation)
    depth = 0
    while f"W{depth + 1}" in arrays:
        depth += 1
    if depth == 0:
        raise InputError("no weight matrices: a network needs arrays W1, ..., WL.")
    extra = set(arrays) - {f"W{i + 1}" for i in range(depth)} - {
        f"b{i + 1}" for i in range(depth)
    }
    if extra:
        raise InputError(
            f"unexpected arrays {sorted(extra)}: weights must be numbered W1..W{depth} "
            "without gaps and biases b1..bL."
        )
    n_bias = sum(f"b{i + 1}" in arrays for i in range(depth))
    if n_bias not in (0, depth):
        raise InputError(
            f"{n_bias} of {depth} layers have biases: give every layer a bias or none."
        )
    for name, a in arrays.items():
        check_float64(name, a)
        check_finite(name, a)
    ws = tuple(jnp.asarray(arrays[f"W{i + 1}"]) for i in range(depth))
    bs = tuple(jnp.asarray(arrays[f"b{i + 1}"]) for i in range(depth)) if n_bias else None
    return MLP(ws, bs, activation)


def init_mlp(
    key, widths, activation: str, *, bias: bool = False, scale: str | float = "xavier"
) -> MLP:
    """A random MLP with the given widths ``(n_0, ..., n_L)``.

    ``scale="xavier"``: entries of ``W_l`` are N(0, 1/n_{l-1}) and biases start at zero;
    a float ``s`` gives N(0, s²) entries for weights and biases alike.
    """
    check_activation(activation)
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise InputError(f"widths must be at least two positive integers, got {widths}.")
    keys = jax.random.split(key, 2 * (len(widths) - 1))
    ws, bs = [], []
    for i in range(len(widths) - 1):
        std = (1.0 / np.sqrt(widths[i])) if scale == "xavier" else float(scale)
        shape = (widths[i + 1], widths[i])
        ws.append(std * jax.random.normal(keys[2 * i], shape, dtype=jnp.float64))
        if bias:
            bstd = 0.0 if scale == "xavier" else float(scale)
            bs.append(bstd * jax.random.normal(keys[2 * i + 1], (widths[i + 1],), jnp.float64))
    return MLP(tuple(ws), tuple(bs) if bias else None, activation)


def deep_linear(weights) -> MLP:
    """The deep linear network ``x ↦ W_H ⋯ W_1 x`` as an identity, bias-free :class:`MLP`."""
    return MLP(tuple(jnp.asarray(w) for w in weights), None, "identity")
