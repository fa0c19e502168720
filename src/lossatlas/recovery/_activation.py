"""Which activations give a global-minimum set ``Q*`` made of the affine branches enumerated here.

The enumeration of :mod:`lossatlas.recovery` rests on a linear-independence lemma for the
neurons ``σ(v·x)`` (σ analytic and non-polynomial). Whether ``f(θ, ·) = f*`` reduces to the
linear conditions of the branches depends on the parity structure of σ:

- ``generic`` (``sigmoid4_plus_softplus``): no parity and not "polynomial + parity",
  ``σ(0) ≠ 0``: neurons with distinct weights are independent, ``Q*`` is exactly the union of
  teacher blocks and null blocks.
- ``odd_zero`` (``tanh``, ``erf``): odd, ``σ(0) = 0``, ``σ'(0) ≠ 0``: in addition a neuron may
  copy ``−w*`` with a flipped output weight, and zero-input neurons (``w = 0``, ``a`` free) appear.
- ``constant_plus_odd`` (``sigmoid``: ``σ(z) + σ(−z) = 1``): constants cancel, so ``Q*`` gains
  isolated points such as ``(a, w) = (−a*, −w*; 2a*, 0)`` for ``m = 2, m0 = 1`` (dim 0 although
  ``m > m0``). Supported only for ``m = m0``.
- ``linear_plus_even`` (``softplus``, ``gelu``: ``σ(z) − σ(−z) = z``): flipped pairs add linear
  functions that cancel along *curved* sets, e.g. ``a = (a*, c, −c)``,
  ``W = (−w*, (a*/c) w*, −(a*/c) w*)`` for every ``c ≠ 0`` when ``m = 3, m0 = 1``. Affine only
  for ``m ≤ m0 + 1``, where softplus has the generic branches (gelu, with ``σ(0) = 0``, is not
  enumerated).
- ``polynomial`` (``identity``) and ``non_analytic`` (``relu``): ``Q*`` is curved
  (``Σ a_k w_k = a* w*``; positive rescalings ``(a/c, c w)``). Not supported.

With biases (``bias=True``: the library's biased network, ``f = Σ_k a_k σ(w_k·x + b_k) + c``)
the classes ``generic`` and ``odd_zero`` stay supported: with ``x̃ = (x, 1)``, ``w̃ = (w, b)`` the
blocks are those above in dimension ``d + 1``, but neurons with ``w = 0`` output constants
``σ(b)``, and the set ``c + Σ_{k∈C} a_k σ(b_k) = c*`` of such constant neurons is a *curved*
manifold. For ``m > m0`` ``Q*`` therefore has non-affine components; they are enumerated and
flagged (``affine = False``), see :mod:`lossatlas.recovery._branches`. The other classes are
refused with biases: for ``sigmoid`` a sign flip ``σ(−z) = 1 − σ(z)`` moves the output bias
(flipped copies couple to ``c``), and for ``softplus``/``gelu`` flipped pairs add affine functions
``a (w·x + b)``; neither structure is enumerated.
"""

from __future__ import annotations

import dataclasses
import enum

from .._errors import InputError
from ..models import activation_family


class ActivationKind(enum.Enum):
    """Parity class of an activation (values are short descriptions)."""

    generic = "no parity, not polynomial + parity, sigma(0) != 0"
    odd_zero = "odd with sigma(0) = 0 and sigma'(0) != 0"
    constant_plus_odd = "constant + odd: sigma(z) + sigma(-z) = const"
    linear_plus_even = "linear + even: sigma(z) - sigma(-z) = z"
    polynomial = "polynomial"
    non_analytic = "not analytic"


_KINDS = {
    "sigmoid4_plus_softplus": ActivationKind.generic,
    "tanh": ActivationKind.odd_zero,
    "erf": ActivationKind.odd_zero,
    "sigmoid": ActivationKind.constant_plus_odd,
    "softplus": ActivationKind.linear_plus_even,
    "gelu": ActivationKind.linear_plus_even,
    "identity": ActivationKind.polynomial,
    "relu": ActivationKind.non_analytic,
    "leaky_relu": ActivationKind.non_analytic,
    "abs": ActivationKind.non_analytic,
}

#: Activations for which branches can be enumerated for every ``m ≥ m0``.
SUPPORTED_ACTIVATIONS = ("tanh", "erf", "sigmoid4_plus_softplus")


@dataclasses.dataclass(frozen=True)
class ActivationSupport:
    """Whether ``Q*`` is the union of the enumerated affine branches for this set-up.

    `affine` says whether every branch closure is an affine subspace; `supported` whether the
    enumeration of :func:`~lossatlas.recovery.enumerate_branches` is complete and exact;
    `reason` explains a refusal and what to use instead.
    """

    activation: str
    kind: ActivationKind
    m: int
    m0: int
    affine: bool
    supported: bool
    reason: str

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {"activation": self.activation, "kind": self.kind.name, "m": self.m, "m0": self.m0,
                "affine": self.affine, "supported": self.supported, "reason": self.reason}


def activation_kind(name: str) -> ActivationKind:
    """The parity class of a library activation (see the module docstring)."""
    return _KINDS[activation_family(name)]


def activation_support(name: str, m: int, m0: int, *, bias: bool = False) -> ActivationSupport:
    """Decide whether the branches of ``Q*`` are affine and fully enumerated for ``σ``, ``m``, ``m0``.

    With ``bias=True`` (biases in both layers) ``supported`` means that every component of ``Q*``
    is enumerated; ``affine`` is then False as soon as ``m > m0``, because constant neurons
    (``w = 0``) give curved components, and `reason` says so.

    Raises:
        InputError: for an unknown activation name.
    """
    kind = activation_kind(name)
    hint = f"use one of {', '.join(SUPPORTED_ACTIVATIONS)}"
    extra = m - m0
    if bias:
        return _bias_support(name, kind, m, m0, hint)
    if kind in (ActivationKind.generic, ActivationKind.odd_zero):
        return ActivationSupport(name, kind, m, m0, True, True, "")
    if kind is ActivationKind.constant_plus_odd:
        if extra == 0:
            return ActivationSupport(name, kind, m, m0, True, True, "")
        return ActivationSupport(name, kind, m, m0, True, False,
                                 f"{name} satisfies sigma(z) + sigma(-z) = const, so constants cancel and "
                                 f"Q* has extra isolated points (dim 0 although m > m0), e.g. "
                                 f"(a, w) = (-a*, -w*; 2a*, 0); {hint}")
    if kind is ActivationKind.linear_plus_even:
        if name == "gelu":
            return ActivationSupport(name, kind, m, m0, extra <= 1, False,
                                     "gelu has sigma(0) = 0 without odd symmetry: its zero-input "
                                     f"neurons are not enumerated here, and for m >= m0 + 2 Q* is curved; {hint}")
        if extra <= 1:
            return ActivationSupport(name, kind, m, m0, True, True, "")
        return ActivationSupport(name, kind, m, m0, False, False,
                                 f"{name} satisfies sigma(z) - sigma(-z) = z, so for m >= m0 + 2 Q* has "
                                 f"curved branches such as a = (a*, c, -c), W = (-w*, (a*/c) w*, "
                                 f"-(a*/c) w*); {hint} (or m <= m0 + 1)")
    if kind is ActivationKind.polynomial:
        return ActivationSupport(name, kind, m, m0, False, False,
                                 f"{name} is a polynomial: Q* = {{sum_k a_k w_k = a* w*}} is curved; {hint}")
    return ActivationSupport(name, kind, m, m0, False, False,
                             f"{name} is not analytic and positively homogeneous: the rescalings "
                             f"(a/c, c w) make Q* curved; {hint}")


def _bias_support(name: str, kind: ActivationKind, m: int, m0: int, hint: str) -> ActivationSupport:
    if kind in (ActivationKind.generic, ActivationKind.odd_zero):
        if m == m0:
            return ActivationSupport(name, kind, m, m0, True, True, "")
        return ActivationSupport(name, kind, m, m0, False, True,
                                 "with biases, neurons with w = 0 output constants sigma(b); the components with "
                                 "such constant neurons C satisfy c + sum_{k in C} a_k sigma(b_k) = c*, a curved "
                                 "manifold: they are enumerated with affine = false")
    if kind is ActivationKind.constant_plus_odd:
        return ActivationSupport(name, kind, m, m0, False, False,
                                 f"with biases, {name}'s flip sigma(-z) = 1 - sigma(z) shifts the output bias, so "
                                 f"sign-flipped copies couple to c: not enumerated; {hint}, or a bias-free network")
    if kind is ActivationKind.linear_plus_even:
        return ActivationSupport(name, kind, m, m0, False, False,
                                 f"with biases, {name}'s flipped pairs add affine functions a (w.x + b) "
                                 f"(sigma(z) - sigma(-z) = z) that can cancel each other and the output bias: "
                                 f"not enumerated; {hint}, or a bias-free network")
    base = activation_support(name, m, m0)
    return dataclasses.replace(base, reason=base.reason + " (with or without biases)")


def require_support(name: str, m: int, m0: int, *, bias: bool = False) -> ActivationSupport:
    """:func:`activation_support`, raising :class:`InputError` when unsupported.

    Raises:
        InputError: if the components are not fully enumerated (curved components of a
            supported biased set-up are enumerated and flagged, not refused).
    """
    sup = activation_support(name, m, m0, bias=bias)
    if not sup.supported:
        where = ", with biases" if bias else ""
        raise InputError(f"activation {name!r} with m={m}, m0={m0}{where}: {sup.reason}.")
    return sup
