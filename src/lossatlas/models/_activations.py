"""Activation functions, by the exact names used in files and on the command line.

Every activation is a plain JAX function, so first, second and third derivatives come from
JAX's autodiff; the smooth ones are written in numerically stable forms whose derivatives
are exact to round-off (tested against finite differences and closed forms).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from .._errors import InputError

_SQRT1_2 = 0.7071067811865476


def identity(x):
    """``x``."""
    return x


def relu(x):
    """``max(x, 0)``; the derivative at 0 is taken as 0."""
    return jnp.maximum(x, 0.0)


def tanh(x):
    """``tanh(x)``."""
    return jnp.tanh(x)


def erf(x):
    """``erf(x / sqrt(2))``: odd, bounded, with E[erf(z/√2)²] = (2/π) arcsin(1/2) for z~N(0,1)."""
    return jss.erf(x * _SQRT1_2)


def sigmoid(x):
    """``1 / (1 + exp(-x))``."""
    return jax.nn.sigmoid(x)


def softplus(x):
    """``log(1 + exp(x))`` in the stable form ``logaddexp(x, 0)``."""
    return jnp.logaddexp(x, 0.0)


def gelu(x):
    """Exact GELU ``x · Φ(x) = x (1 + erf(x/√2)) / 2``."""
    return 0.5 * x * (1.0 + jss.erf(x * _SQRT1_2))


def sigmoid4_plus_softplus(x):
    """``1/(1+exp(-4x)) + log(1+exp(x))`` (MLPGradientFlow.jl's ``g``)."""
    return jax.nn.sigmoid(4.0 * x) + jnp.logaddexp(x, 0.0)


ACTIVATIONS: dict[str, Callable] = {
    "identity": identity,
    "relu": relu,
    "tanh": tanh,
    "erf": erf,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "gelu": gelu,
    "sigmoid4_plus_softplus": sigmoid4_plus_softplus,
}

#: Activations with σ(-x) = -σ(x): a neuron's sign flip leaves the function unchanged.
ODD_ACTIVATIONS = frozenset({"identity", "tanh", "erf"})
#: Positively homogeneous activations: σ(c x) = c σ(x) for c > 0.
HOMOGENEOUS_ACTIVATIONS = frozenset({"identity", "relu"})
#: Activations that are C^∞ (the others have a kink).
SMOOTH_ACTIVATIONS = frozenset(ACTIVATIONS) - {"relu"}


def check_activation(name: str) -> str:
    """Return ``name`` if it is a known activation, else raise :class:`InputError`."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise InputError(
            f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}."
        )
    return name


def get_activation(name: str) -> Callable:
    """The activation function called ``name`` (see :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[check_activation(name)]
