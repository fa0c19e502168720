"""Closed-form population loss of two-layer bias-free networks under Gaussian input.

For ``f(x) = W2 σ(W1 x)`` with ``W1`` of shape ``(m, d)``, ``W2`` of shape ``(k, m)`` and
``x ~ N(0, I_d)``, the population loss against a teacher ``V2 σ(V1 x)`` is

    L = ½ E_x ||f(x) − f_teacher(x)||²
      = ½ [ tr(W2 K(W1,W1) W2ᵀ) − 2 tr(W2 K(W1,V1) V2ᵀ) + tr(V2 K(V1,V1) V2ᵀ) ],

with the Gaussian kernel ``K(A, B)_ij = E_x[σ(a_i·x) σ(b_j·x)]``. ``K`` depends on ``a`` and
``b`` only through ``p = |a|²``, ``q = |b|²`` and ``c = a·b`` (the law of ``(a·x, b·x)`` is
the centred Gaussian with that covariance), and has a closed form for two activations:

``erf`` (σ(u) = erf(u/√2) = 2Φ(u) − 1)
    ``K = (2/π) arcsin( c / sqrt((1+p)(1+q)) )``.
    Derivation: 2Φ(u) − 1 = P(g ≤ u) − P(g ≥ u) for an independent g ~ N(0,1), so
    E[σ(u)σ(v)] = E[sign(u − g) sign(v − h)] with independent g, h ~ N(0,1), and for a
    centred Gaussian pair with correlation ρ, E[sign·sign] = (2/π) arcsin ρ (Sheppard).
    Here ρ = cov(u−g, v−h)/sqrt(var var) = c / sqrt((1+p)(1+q)). Check: a = b with |a| = 1
    gives (2/π) arcsin(1/2) = 1/3 = E[U²] for U = 2Φ(z) − 1 uniform on [−1, 1].
    (Williams' erf-kernel constant "2" disappears because of the ``/√2`` in σ.)

``relu`` (σ(u) = max(u, 0))
    The degree-1 arc-cosine kernel (Cho & Saul 2009):
    ``K = |a||b| / (2π) · (sin θ + (π − θ) cos θ)``, θ = ∠(a, b).
    Check: a = b gives |a|²/2 = E[relu(z)²] for z ~ N(0, |a|²); a = −b gives 0.

Singular points of the relu kernel, and how they are handled
------------------------------------------------------------
Write ``K = R · J(t) / (2π)`` with ``R = |a||b|``, ``t = cos θ = c/R`` and
``J(t) = sqrt(1 − t²) + (π − arccos t) t``. Then ``J'(t) = π − arccos t`` and
``J''(t) = 1/sqrt(1 − t²)``, so the naive derivatives of ``sqrt`` and ``arccos`` blow up at
``a ∥ b`` (|t| = 1) although ``K`` is C² there (``J(θ) = π − πθ²/2 + θ³/3 + …``):

* ``J`` and ``J'`` are :func:`jax.custom_jvp` functions whose rules are ``J' · ṫ`` and
  ``J'' · ṫ``; the infinite ``J''`` at |t| = 1 is replaced by 0. This is exact, because
  ``t`` is extremal at ``a ∥ b`` (ṫ = 0), so the true contribution ``J'' ṫ ṫ'`` is
  ``O(sin θ) → 0``. Gradients and Hessians are finite and correct at ``a = b`` (the point a
  Newton solver reaches when a student neuron equals a teacher neuron) and at ``a = −b``.
  ``t`` is clipped to [−1, 1] inside ``J``, ``J'`` and ``J''`` only (no clipped gradient).
* A zero row (``|a| = 0``) gives ``K = 0`` exactly. ``K`` is not differentiable there (it is
  positively homogeneous of degree 1 in ``a``, not linear); the norms use a double-``where``
  safe square root, so value, gradient and Hessian are finite, and every derivative with
  respect to a zero row is 0, the convention ``relu'(0) = 0`` of JAX (a dead neuron).

Third and higher derivatives of the relu kernel at ``a ∥ b`` are genuinely undefined.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._errors import InputError

#: Activations with a closed-form Gaussian kernel.
SUPPORTED_ACTIVATIONS = ("erf", "relu")

_TWO_PI = 2.0 * 3.141592653589793


def _check_activation(activation) -> str:
    if not isinstance(activation, str) or activation not in SUPPORTED_ACTIVATIONS:
        raise InputError(
            f"no closed-form Gaussian population loss for activation {activation!r}: "
            f"supported activations are {', '.join(repr(a) for a in SUPPORTED_ACTIVATIONS)}. "
            "Other activations need a finite data set (an empirical loss, e.g. --data)."
        )
    return activation


def _check_matrix(name: str, x, ndim: int = 2):
    x = jnp.asarray(x)
    if x.ndim != ndim:
        raise InputError(f"`{name}` must be a {ndim}-D array, got shape {tuple(x.shape)}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise InputError(f"`{name}` must be a floating-point array, got dtype {x.dtype}.")
    return x


def _safe_sqrt(x):
    """``sqrt(x)`` for x ≥ 0 with value and all derivatives 0 (not inf/NaN) at x = 0."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


# ----------------------------------------------------------------------------------------
# J(t) = sqrt(1 - t²) + (π − arccos t) t with hand-written derivatives that stay finite at
# |t| = 1. J'(t) = π − arccos t, J''(t) = 1/sqrt(1 − t²) (set to 0 where 1 − t² = 0).


def _one_minus_t2(t):
    tc = jnp.clip(t, -1.0, 1.0)
    return tc, (1.0 - tc) * (1.0 + tc)  # factored: accurate near |t| = 1


def _acos_j2(t):
    """``J''(t) = 1/sqrt(1 − t²)``, replaced by 0 at |t| ≥ 1 (where it multiplies ṫ = 0)."""
    _, s2 = _one_minus_t2(t)
    pos = s2 > 0
    return jnp.where(pos, 1.0 / jnp.sqrt(jnp.where(pos, s2, 1.0)), 0.0)


@jax.custom_jvp
def _acos_j1(t):
    """``J'(t) = π − arccos(t)`` (t clipped to [−1, 1])."""
    tc, _ = _one_minus_t2(t)
    return jnp.pi - jnp.arccos(tc)


@_acos_j1.defjvp
def _acos_j1_jvp(primals, tangents):
    (t,), (t_dot,) = primals, tangents
    return _acos_j1(t), _acos_j2(t) * t_dot


@jax.custom_jvp
def _acos_j0(t):
    """``J(t) = sin θ + (π − θ) cos θ`` at ``cos θ = t`` (t clipped to [−1, 1])."""
    tc, s2 = _one_minus_t2(t)
    return jnp.sqrt(s2) + (jnp.pi - jnp.arccos(tc)) * tc


@_acos_j0.defjvp
def _acos_j0_jvp(primals, tangents):
    (t,), (t_dot,) = primals, tangents
    return _acos_j0(t), _acos_j1(t) * t_dot


# ----------------------------------------------------------------------------------------


def _erf_kernel(A, B):
    p = jnp.sum(A * A, axis=1)
    q = jnp.sum(B * B, axis=1)
    c = A @ B.T
    den = jnp.sqrt((1.0 + p)[:, None] * (1.0 + q)[None, :])
    return (2.0 / jnp.pi) * jnp.arcsin(c / den)


def _relu_kernel(A, B):
    na = _safe_sqrt(jnp.sum(A * A, axis=1))
    nb = _safe_sqrt(jnp.sum(B * B, axis=1))
    r = na[:, None] * nb[None, :]
    c = A @ B.T
    pos = r > 0
    t = jnp.where(pos, c / jnp.where(pos, r, 1.0), 0.0)
    return r * _acos_j0(t) / _TWO_PI


def gaussian_kernel(activation: str, A, B) -> jax.Array:
    """``K_ij = E_{x~N(0,I)}[σ(a_i·x) σ(b_j·x)]`` in closed form.

    **Arguments:**

    - `activation`: ``"erf"`` (σ(u) = erf(u/√2)) or ``"relu"``; static under ``jit``.
    - `A`: shape ``(m, d)``, rows ``a_i``.
    - `B`: shape ``(n, d)``, rows ``b_j``.

    **Returns:** the ``(m, n)`` kernel matrix. Pure JAX: jit-able and differentiable; for
    ``relu``, gradients and Hessians are finite and correct at ``a_i ∥ b_j`` and finite
    (zero) at zero rows, see the module docstring.
    """
    activation = _check_activation(activation)
    A = _check_matrix("A", A)
    B = _check_matrix("B", B)
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"`A` and `B` must have the same number of columns (input dimension d), got "
            f"shapes {tuple(A.shape)} and {tuple(B.shape)}."
        )
    if activation == "erf":
        return _erf_kernel(A, B)
    return _relu_kernel(A, B)


def population_loss(activation: str, W1, W2, V1, V2) -> jax.Array:
    """``½ E_{x~N(0,I)} ||W2 σ(W1 x) − V2 σ(V1 x)||²`` in closed form.

    **Arguments:**

    - `activation`: ``"erf"`` or ``"relu"`` (shared by student and teacher); static under
      ``jit``.
    - `W1`, `W2`: student weights, shapes ``(m, d)`` and ``(k, m)``.
    - `V1`, `V2`: teacher weights, shapes ``(n, d)`` and ``(k, n)``.

    **Returns:** the scalar
    ``½ [tr(W2 K(W1,W1) W2ᵀ) − 2 tr(W2 K(W1,V1) V2ᵀ) + tr(V2 K(V1,V1) V2ᵀ)]``. It is exactly
    0 when the student's arrays equal the teacher's; near 0 it may be a few ulps negative
    (cancellation), which is not clamped so that the function stays smooth.
    """
    activation = _check_activation(activation)
    W1, W2 = _check_matrix("W1", W1), _check_matrix("W2", W2)
    V1, V2 = _check_matrix("V1", V1), _check_matrix("V2", V2)
    if W2.shape[1] != W1.shape[0]:
        raise InputError(f"W2 {tuple(W2.shape)} must have W1's {W1.shape[0]} rows as columns.")
    if V2.shape[1] != V1.shape[0]:
        raise InputError(f"V2 {tuple(V2.shape)} must have V1's {V1.shape[0]} rows as columns.")
    if W1.shape[1] != V1.shape[1]:
        raise InputError(
            f"student W1 {tuple(W1.shape)} and teacher V1 {tuple(V1.shape)} must have the same "
            "input dimension (number of columns)."
        )
    if W2.shape[0] != V2.shape[0]:
        raise InputError(
            f"student W2 {tuple(W2.shape)} and teacher V2 {tuple(V2.shape)} must have the same "
            "number of outputs (rows)."
        )
    kernel = _erf_kernel if activation == "erf" else _relu_kernel
    ss = jnp.sum((W2 @ kernel(W1, W1)) * W2)
    st = jnp.sum((W2 @ kernel(W1, V1)) * V2)
    tt = jnp.sum((V2 @ kernel(V1, V1)) * V2)
    return 0.5 * (ss - 2.0 * st + tt)
