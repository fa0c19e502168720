"""Activation functions, by the exact names used in files and on the command line.

Every activation is a plain JAX function, so first, second and third derivatives come from
JAX's autodiff; the smooth ones are written in numerically stable forms whose derivatives
are exact to round-off (tested against finite differences and closed forms).

Piecewise-linear activations (``relu``, ``leaky_relu``, ``abs``) have a kink at 0: the loss is
smooth inside each activation-pattern region and not differentiable across its boundary.
``leaky_relu`` takes its slope for ``x < 0`` in the name, ``leaky_relu:0.2``; plain
``leaky_relu`` means slope 0.01 (PyTorch's default). At 0, the derivatives JAX computes
are PyTorch's choices: the left derivative for ``relu`` (0) and ``leaky_relu`` (``slope``), and 0
for ``abs``; so ``leaky_relu:0`` and ``relu`` agree everywhere, derivatives included.
"""

from __future__ import annotations

import functools
import math
import re
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
    """``max(x, 0)``; the derivative at 0 is taken as 0 (as PyTorch; ``jnp.maximum`` would give ½)."""
    return jnp.where(x > 0, x, 0.0)


#: Slope of plain ``leaky_relu`` for ``x < 0`` (PyTorch's ``nn.LeakyReLU`` default).
LEAKY_RELU_DEFAULT_SLOPE = 0.01


def leaky_relu(x, slope: float = LEAKY_RELU_DEFAULT_SLOPE):
    """``x`` for ``x > 0``, ``slope · x`` otherwise (``slope ≥ 0``); the derivative at 0 is ``slope``."""
    return jnp.where(x > 0, x, slope * x)


def abs_(x):
    """``|x|``, written ``x · sign(x)`` so that the derivative at 0 is 0 (as ``torch.abs``)."""
    return x * jnp.sign(x)


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
    "leaky_relu": leaky_relu,
    "abs": abs_,
    "tanh": tanh,
    "erf": erf,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "gelu": gelu,
    "sigmoid4_plus_softplus": sigmoid4_plus_softplus,
}

#: Activations with σ(-x) = -σ(x): a neuron's sign flip leaves the function unchanged.
ODD_ACTIVATIONS = frozenset({"identity", "tanh", "erf"})
#: Positively homogeneous activations (σ(c x) = c σ(x) for c > 0) that the L2-representation
#: theory (:mod:`lossatlas.representation`) handles; ``leaky_relu`` and ``abs`` are positively
#: homogeneous too, but that package's kink handling is written for relu only.
HOMOGENEOUS_ACTIVATIONS = frozenset({"identity", "relu"})
#: Piecewise-linear activations, by family name: non-smooth at 0 (a kink), linear elsewhere.
PIECEWISE_LINEAR_ACTIVATIONS = frozenset({"relu", "leaky_relu", "abs"})
#: Activations that are C^∞ (the others have a kink). Test a name with :func:`is_smooth`,
#: which also reads parametrised names such as ``leaky_relu:0.2``.
SMOOTH_ACTIVATIONS = frozenset(ACTIVATIONS) - PIECEWISE_LINEAR_ACTIVATIONS

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _parse(name) -> tuple[str, float | None]:
    """``(family, parameter)`` of an activation name, or :class:`InputError`."""
    if not isinstance(name, str):
        raise InputError(f"an activation name must be a string, got {type(name).__name__}.")
    family, sep, arg = name.partition(":")
    if family not in ACTIVATIONS:
        raise InputError(
            f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)} "
            "(leaky_relu takes its negative slope as leaky_relu:0.2)."
        )
    if not sep:
        return family, (LEAKY_RELU_DEFAULT_SLOPE if family == "leaky_relu" else None)
    if family != "leaky_relu":
        raise InputError(
            f"activation {name!r}: only leaky_relu takes a parameter (leaky_relu:SLOPE); "
            f"write {family!r}."
        )
    if not _NUMBER.fullmatch(arg):
        raise InputError(
            f"activation {name!r}: the slope after the colon must be a plain number, e.g. "
            "leaky_relu:0.01."
        )
    slope = float(arg)
    if not math.isfinite(slope) or slope < 0:
        raise InputError(
            f"activation {name!r}: the negative slope must be a finite number >= 0, got {arg}."
        )
    return family, slope


def check_activation(name: str) -> str:
    """Return ``name`` if it is a known activation, else raise :class:`InputError`.

    Known names are the keys of :data:`ACTIVATIONS` and ``leaky_relu:SLOPE`` with a finite
    ``SLOPE ≥ 0`` written as a plain number.
    """
    _parse(name)
    return name


def activation_family(name: str) -> str:
    """The family of an activation name: ``"leaky_relu"`` for ``"leaky_relu:0.2"``, else the name."""
    return _parse(name)[0]


def leaky_relu_slope(name: str) -> float:
    """The negative slope of a ``leaky_relu`` name (0.01 for plain ``leaky_relu``)."""
    family, slope = _parse(name)
    if family != "leaky_relu":
        raise InputError(f"activation {name!r} is not a leaky_relu.")
    return float(slope)


def is_smooth(name: str) -> bool:
    """Whether the activation is C^∞ (False for the piecewise-linear ones, which have a kink)."""
    return activation_family(name) in SMOOTH_ACTIVATIONS


def get_activation(name: str) -> Callable:
    """The activation function called ``name`` (see :data:`ACTIVATIONS`, and ``leaky_relu:SLOPE``)."""
    family, slope = _parse(name)
    if family == "leaky_relu":
        return functools.partial(leaky_relu, slope=slope)
    return ACTIVATIONS[family]
