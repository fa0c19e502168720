"""The components ("branches") of the global-minimum set ``Q*`` of a two-layer network fitting a narrower teacher.

Without biases
--------------
Student ``f(θ, x) = Σ_{k=1..m} a_k σ(w_k·x)``, teacher ``f*(x) = Σ_{j=1..m0} a*_j σ(w*_j·x)``
(irreducible: ``a*_j ≠ 0``, ``w*_j ≠ 0``, pairwise distinct, and ``w*_i ≠ −w*_j`` for odd σ).
``Q* = {θ : f(θ, ·) ≡ f*}`` is the union of the affine closures ``A_κ`` of configurations κ that
put every student neuron into exactly one of

1. a teacher block ``B_j`` (one per teacher neuron, non-empty): ``w_k = s_k w*_j``,
   ``Σ_{k∈B_j} s_k a_k = a*_j`` (``|B_j| ≥ 2`` is a split teacher neuron);
2. a null block ``N``: ``w_k = s_k v`` for a free ``v``, ``Σ_{k∈N} s_k a_k = 0`` (a singleton is a
   dead output weight ``a_k = 0``);
3. (odd σ with ``σ(0) = 0`` only) the zero-input set ``Z``: ``w_k = 0``, ``a_k`` free.

Signs ``s_k = ±1`` occur only for odd σ (``s_k = +1`` otherwise; the first neuron of a null
block has ``s = +1`` since ``v ↦ −v`` is a relabelling). With ``q`` null blocks, ``s1`` of them
singletons, and ``z = |Z|``:

- ``dim A_κ = (m − m0) + q(d − 1)``, ``codim A_κ = m d + m0 − q(d − 1) ≤ m(d+1) − (m − m0)``;
- model rank ``r_κ = m0(d+1) + s1 + (q − s1)(d+1) + d·[z ≥ 1]``;
- Morse–Bott at generic points ⇔ ``r_κ = codim`` ⇔ no split teacher neuron, null blocks of
  at most two neurons, ``z ≤ 1``;
- sample-size threshold ``N_t = codim A_κ`` (= ``r_κ`` on Morse–Bott branches).

Flat parameters follow the library order for a bias-free two-layer MLP: ``θ = (vec W1, a)``
with ``W1`` of shape ``(m, d)`` row-major (neuron ``k``'s weights at ``θ[k d:(k+1) d]``) and
the output weights ``a = W2[0]`` at ``θ[m d:]``; ``M = m(d+1)``.

With biases (``bias=True``)
---------------------------
A lossatlas network with biases has them in *every* layer (files hold ``b1`` and ``b2``, or
neither), so the student is ``f(θ, x) = Σ_k a_k σ(w_k·x + b_k) + c`` with flat order
``θ = (vec W1, b1, a, c)`` and ``M = m(d+2) + 1``; the teacher is
``f*(x) = Σ_j a*_j σ(w*_j·x + b*_j) + c*`` with ``w*_j ≠ 0`` (a neuron with ``w* = 0`` is a
constant, part of ``c*``) and augmented weights ``w̃*_j = (w*_j, b*_j)`` pairwise distinct (and
``w̃*_i ≠ −w̃*_j`` for odd σ).

*Augmentation.* With ``x̃ = (x, 1)`` and ``w̃_k = (w_k, b_k)`` every neuron is ``σ(w̃_k·x̃)``, so
teacher and null blocks are the blocks above with ``d → d + 1`` (shared augmented weights,
``ṽ = (v, β)`` free for null blocks). What augmentation misses is that ``x̃`` only ranges over the
hyperplane ``x̃_{d+1} = 1``: a neuron with ``w_k = 0`` is the *constant* ``σ(b_k)``, and constants
cancel each other and the output bias. Assume (as for the bias-free lemma) that the constant 1
and the neurons ``σ(w·x + b)`` with ``w ≠ 0`` and pairwise distinct (up to sign for odd σ) ``(w, b)``
are linearly independent (Sussmann 1992 for tanh; checked numerically here by fitting from
random starts). Grouping neurons then shows that ``Q*`` is the union, over configurations κ of
teacher blocks, null blocks and a *constant set* ``C`` (any supported σ, ``|C| ≤ m − m0``), of

    S_κ = {θ : the block equations hold for the neurons outside C,  w_k = 0 for k ∈ C,
               g_κ(θ) := c + Σ_{k∈C} a_k σ(b_k) − c* = 0}.

- ``C = ∅``: ``g_κ = c − c*`` is linear and ``S_κ`` is an affine subspace, as without biases.
- ``C ≠ ∅``: ``S_κ`` is the graph ``c = c* − Σ_{k∈C} a_k σ(b_k)`` over an affine space. Since
  ``∂g_κ/∂c = 1`` it is a smooth connected manifold everywhere, but **curved** (``∂²g/∂a_k∂b_k =
  σ'(b_k) ≠ 0``): its affine hull (the linear equations alone) has dimension ``dim + 1``, and the
  midpoint of two of its points is in general not in ``Q*``. Such components are flagged
  ``affine = False``; they have no affine closure, base point and directions only as "a point of
  the component, and the tangent space at a given point".
- For odd σ the bias-free zero-input set is the part ``b_k = 0`` of ``S_κ``; no separate ``Z``.

With ``z = |C|``: ``dim S_κ = (m − m0) + q d + z``, ``codim = M − dim = m(d+1) + m0 + 1 − q d − z
≤ M − (m − m0)``; model rank ``r_κ = 1 + m0(d+2) + s1 + (q − s1)(d+2) + d·[z ≥ 1]`` (the output
bias gives the constants, a teacher block or a null block of ≥ 2 neurons ``{σ, σ' x̃}``, a dead
neuron ``σ``, constant neurons the linear functions ``a_k σ'(b_k) x``); ``codim − r_κ =
(d+1)[(T − m0) + Σ_N (|N| − 2)₊] + d (z − [z ≥ 1])``, so Morse–Bott ⇔ no split teacher neuron,
null blocks of at most two neurons and ``z ≤ 1``. The rank argument for ``N_t = codim`` on
Morse–Bott components needs only a smooth manifold, so it covers curved components; the
second-order analysis behind ``N_t = codim`` on non-Morse–Bott components was done for affine
ones only, so curved non-Morse–Bott components get ``threshold = None`` with a reason.

*Intersections.* On the affine hull ``L_κ`` of ``S_κ`` the function is ``f = f* + g_κ(θ)`` (a
constant shift), so on ``L_κ ∩ L_κ'`` both constraints agree. Hence a curved component meets an
affine one (whose equations include ``c = c*``) in the *affine* set ``L_κ ∩ L_κ'``, and two curved
components meet in ``{θ ∈ L_κ ∩ L_κ' : g_κ(θ) = 0}``, of dimension ``dim(L_κ ∩ L_κ') − 1`` (``c`` is
free there), affine only if ``g_κ`` is affine on ``L_κ ∩ L_κ'`` (decided numerically).

Every formula here is checked in the tests: brute-force enumeration, dense Hessians of an
independently written loss at random points of each component, function equality with the
teacher on random inputs, and the non-affinity of curved components.

References:
    L. Zhang, Y. Zhang, T. Luo, "Geometry and Local Recovery of Global Minima of Two-layer
    Neural Networks at Overparameterization", arXiv:2309.00508 (formulas here re-derived and
    checked numerically; see the package tests).
    H. J. Sussmann, "Uniqueness of the weights for minimal feedforward nets with a given
    input-output map", Neural Networks 5 (1992) 589–593.
"""

from __future__ import annotations

import dataclasses
import functools as ft
import itertools as it
import math
from collections.abc import Iterator

import jax
import numpy as np

from .._config import check_finite, check_float64, check_x64
from .._errors import InputError
from ._activation import ActivationKind, activation_kind, require_support


# ----------------------------------------------------------------------------- teacher
def _scalar64(name: str, x) -> float:
    """A finite float64 scalar (Python numbers accepted; float32 refused)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        check_float64(name, x)
        if np.ndim(x) != 0:
            raise InputError(f"`{name}` must be a scalar, got shape {np.shape(x)}.")
    value = float(np.asarray(x))
    if not math.isfinite(value):
        raise InputError(f"`{name}` is {value}; lossatlas needs finite input.")
    return value


@dataclasses.dataclass(frozen=True)
class Teacher:
    """Irreducible teacher ``f*(x) = Σ_j a_j σ(w_j·x + b_j) + c``.

    `a` has shape ``(m0,)`` and `W` ``(m0, d)``; `b` (``(m0,)``) and `c` are the hidden and
    output biases of a biased teacher, ``b=None`` (and ``c = 0``) for a bias-free one.
    Irreducible means ``a_j ≠ 0``, ``w_j ≠ 0`` and pairwise distinct augmented weights
    ``(w_j, b_j)``, also up to sign for odd σ.
    """

    a: np.ndarray
    W: np.ndarray
    activation: str
    b: np.ndarray | None = None
    c: float = 0.0

    def __post_init__(self):
        check_float64("teacher a", self.a)
        check_float64("teacher W", self.W)
        check_finite("teacher a", self.a)
        check_finite("teacher W", self.W)
        a, W = np.asarray(self.a), np.asarray(self.W)
        if a.ndim != 1 or W.ndim != 2 or W.shape[0] != a.shape[0] or a.shape[0] < 1:
            raise InputError(f"teacher needs a of shape (m0,) and W of shape (m0, d); got {a.shape}, {W.shape}.")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "W", W)
        if self.b is not None:
            check_float64("teacher b", self.b)
            check_finite("teacher b", self.b)
            b = np.asarray(self.b)
            if b.shape != a.shape:
                raise InputError(f"teacher biases b must have shape {a.shape}, got {b.shape}.")
            object.__setattr__(self, "b", b)
        c = _scalar64("teacher c", self.c)
        if self.b is None and c != 0.0:
            raise InputError("a teacher output bias c needs hidden biases b too (lossatlas networks have biases "
                             "in every layer or in none): pass b=np.zeros(m0).")
        object.__setattr__(self, "c", c)
        odd = activation_kind(self.activation) is ActivationKind.odd_zero
        Wt = self.augmented()
        scale = max(1.0, float(np.max(np.abs(Wt))))
        tol = 1e-8 * scale
        if np.any(np.abs(a) <= 1e-12 * max(1.0, float(np.max(np.abs(a))))):
            raise InputError("teacher output weights must be nonzero (a zero one makes the teacher reducible).")
        if np.any(np.linalg.norm(W, axis=1) <= tol):
            raise InputError("teacher input weights must be nonzero vectors (w* = 0 is a constant neuron"
                             + (": fold a_j sigma(b_j) into c)." if self.has_bias else ")."))
        for i, j in it.combinations(range(a.shape[0]), 2):
            if np.linalg.norm(Wt[i] - Wt[j]) <= tol or (odd and np.linalg.norm(Wt[i] + Wt[j]) <= tol):
                how = "equal" if np.linalg.norm(Wt[i] - Wt[j]) <= tol else "opposite"
                what = "(input weight, bias) pairs" if self.has_bias else "input weights"
                raise InputError(f"teacher neurons {i + 1} and {j + 1} have {how} {what}: merge them "
                                 "(the teacher must be irreducible).")

    @property
    def m0(self) -> int:
        """Teacher width."""
        return int(self.a.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.W.shape[1])

    @property
    def has_bias(self) -> bool:
        """Whether the teacher carries biases ``b`` and ``c``."""
        return self.b is not None

    def augmented(self) -> np.ndarray:
        """Augmented input weights ``w̃_j = (w_j, b_j)``, shape ``(m0, d+1)`` (``b = 0`` if bias-free).

        For a bias-free teacher this is ``W`` itself, shape ``(m0, d)``.
        """
        if self.b is None:
            return self.W
        return np.concatenate([self.W, self.b[:, None]], axis=1)

    def __call__(self, X) -> np.ndarray:
        """``f*(X)`` of shape ``(n,)``."""
        from ..models import get_activation

        Z = np.asarray(X) @ self.W.T
        if self.b is not None:
            Z = Z + self.b
        return np.asarray(get_activation(self.activation)(Z)) @ self.a + self.c

    def to_record(self) -> dict:
        """JSON-ready dict."""
        out = {"a": self.a.tolist(), "W": self.W.tolist(), "activation": self.activation}
        if self.b is not None:
            out.update(b=self.b.tolist(), c=self.c)
        return out


def random_teacher(m0: int, d: int, activation: str, *, seed: int = 0, bias: bool = False) -> Teacher:
    """A random irreducible teacher: ``a*_j = ±(0.5 + U[0,1])``, ``w*_j ~ N(0, I_d)`` rescaled to norm in [0.8, 1.2].

    With ``bias=True`` also ``b*_j ~ N(0, 0.5²)`` and ``c* ~ N(0, 0.5²)``.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        a = rng.choice([-1.0, 1.0], m0) * (0.5 + rng.random(m0))
        W = rng.standard_normal((m0, d))
        W = W / np.linalg.norm(W, axis=1, keepdims=True) * (0.8 + 0.4 * rng.random((m0, 1)))
        extra = {}
        if bias:
            extra = {"b": 0.5 * rng.standard_normal(m0), "c": float(0.5 * rng.standard_normal())}
        try:
            return Teacher(a, W, activation, **extra)
        except InputError:
            continue
    raise InputError(f"could not draw an irreducible teacher with m0={m0}, d={d}; use d >= 2 or m0 <= 2.")


# ----------------------------------------------------------------------------- layout
def n_params(m: int, d: int, *, bias: bool = False) -> int:
    """Parameter count of the two-layer student: ``m(d+1)``, or ``m(d+2) + 1`` with biases in both layers."""
    return m * (d + 2) + 1 if bias else m * (d + 1)


def split_theta(theta, m: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``θ ↦ (W1 (m, d), a (m,))`` in the library's flat order (bias-free network)."""
    theta = np.asarray(theta)
    return theta[: m * d].reshape(m, d), theta[m * d : m * d + m]


def join_theta(W, a) -> np.ndarray:
    """``(W1, a) ↦ θ``; inverse of :func:`split_theta`."""
    return np.concatenate([np.asarray(W, dtype=np.float64).ravel(), np.asarray(a, dtype=np.float64).ravel()])


def split_theta_bias(theta, m: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``θ ↦ (W1 (m, d), b1 (m,), a (m,), c)`` for a network with biases (flat order ``W1, b1, W2, b2``)."""
    theta = np.asarray(theta)
    md = m * d
    return theta[:md].reshape(m, d), theta[md : md + m], theta[md + m : md + 2 * m], float(theta[md + 2 * m])


def join_theta_bias(W, b, a, c) -> np.ndarray:
    """``(W1, b1, a, c) ↦ θ``; inverse of :func:`split_theta_bias`."""
    return np.concatenate([np.asarray(W, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel(),
                           np.asarray(a, dtype=np.float64).ravel(), np.asarray([c], dtype=np.float64).ravel()])


@ft.lru_cache(maxsize=16)
def _sigma_derivatives(activation: str):
    """Compiled ``b ↦ (σ(b), σ'(b), σ''(b))`` for a vector ``b``."""
    from ..models import get_activation

    s = get_activation(activation)
    d1 = jax.vmap(jax.grad(s))
    d2 = jax.vmap(jax.grad(jax.grad(s)))
    return jax.jit(lambda b: (s(b), d1(b), d2(b)))


def _sigmas(activation: str, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    check_x64()
    if b.size == 0:
        return b, b, b
    return tuple(np.asarray(v) for v in _sigma_derivatives(activation)(np.asarray(b, dtype=np.float64)))


def _null_space(A: np.ndarray, M: int) -> np.ndarray:
    """Orthonormal basis of ``{x : A x = 0}`` for ``A`` of full row rank."""
    if A.shape[0] == 0:
        return np.eye(M)
    _, _, Vt = np.linalg.svd(A, full_matrices=True)
    return Vt[A.shape[0]:].T.copy()


# ----------------------------------------------------------------------------- branches
@dataclasses.dataclass(frozen=True)
class Branch:
    """One component of ``Q*``: a configuration κ of the student neurons (0-based indices).

    `teacher_blocks[j]` lists the neurons copying teacher neuron ``j`` with signs
    `teacher_signs[j]`; `null_blocks`/`null_signs` the null blocks; `zero_input` the set ``Z``
    (bias-free odd σ); `signed` marks the odd class (labels then show the signs). With
    `bias` the student has biases in both layers and `constant` is the set ``C`` of constant
    neurons (``w_k = 0``; ``c + Σ_{k∈C} a_k σ(b_k) = c*``): a non-empty ``C`` makes the component
    curved (`affine` is False).
    """

    m: int
    m0: int
    d: int
    teacher_blocks: tuple[tuple[int, ...], ...]
    teacher_signs: tuple[tuple[int, ...], ...]
    null_blocks: tuple[tuple[int, ...], ...]
    null_signs: tuple[tuple[int, ...], ...]
    zero_input: tuple[int, ...] = ()
    signed: bool = False
    bias: bool = False
    constant: tuple[int, ...] = ()

    # -------------------------------------------------------------- counts
    @property
    def n_params(self) -> int:
        """``M = m(d+1)``, or ``m(d+2) + 1`` with biases."""
        return n_params(self.m, self.d, bias=self.bias)

    @property
    def q(self) -> int:
        """Number of null blocks."""
        return len(self.null_blocks)

    @property
    def affine(self) -> bool:
        """Whether the component is an affine subspace (False iff it has constant neurons)."""
        return not self.constant

    @property
    def dim(self) -> int:
        """``(m − m0) + q(d − 1)``; with biases ``(m − m0) + q d + |C|``."""
        if self.bias:
            return (self.m - self.m0) + self.q * self.d + len(self.constant)
        return (self.m - self.m0) + self.q * (self.d - 1)

    @property
    def hull_dim(self) -> int:
        """Dimension of the affine hull: `dim`, or ``dim + 1`` for a curved component."""
        return self.dim + (0 if self.affine else 1)

    @property
    def codim(self) -> int:
        """``codim = M − dim``."""
        return self.n_params - self.dim

    @property
    def model_rank(self) -> int:
        """Model rank at a generic point.

        ``m0(d+1) + s1 + (q − s1)(d+1) + d·[z ≥ 1]``; with biases
        ``1 + m0(d+2) + s1 + (q − s1)(d+2) + d·[|C| ≥ 1]``.
        """
        s1 = sum(len(b) == 1 for b in self.null_blocks)
        if self.bias:
            return (1 + self.m0 * (self.d + 2) + s1 + (self.q - s1) * (self.d + 2)
                    + self.d * (len(self.constant) >= 1))
        return (self.m0 * (self.d + 1) + s1 + (self.q - s1) * (self.d + 1)
                + self.d * (len(self.zero_input) >= 1))

    @property
    def morse_bott(self) -> bool:
        """Morse–Bott at generic points (with ``n ≥ codim`` generic samples): ``r_κ = codim``."""
        return self.model_rank == self.codim

    @property
    def threshold(self) -> int | None:
        """Sample-size threshold ``N_t = codim``; ``None`` for a curved non-Morse–Bott component.

        Never above ``M``, and below it when ``m > m0``. See `threshold_reason` for ``None``.
        """
        return self.codim if (self.affine or self.morse_bott) else None

    @property
    def threshold_reason(self) -> str | None:
        """Why `threshold` is ``None`` (``None`` when it is given)."""
        if self.threshold is not None:
            return None
        return ("curved component that is not Morse-Bott: N_t = codim rests on a second-order analysis done "
                "for affine components only; the first-order threshold (model rank) is a lower bound")

    @property
    def first_order_threshold(self) -> int:
        """``r_κ``: samples needed for the tangent features to reach their full rank."""
        return self.model_rank

    @property
    def split(self) -> bool:
        """True if some teacher neuron is copied by two or more student neurons."""
        return any(len(b) >= 2 for b in self.teacher_blocks)

    @property
    def type_key(self) -> tuple:
        """``(sorted teacher-block sizes, sorted null-block sizes, |Z| or |C|)``: the branch up to symmetry."""
        return (tuple(sorted(len(b) for b in self.teacher_blocks)),
                tuple(sorted(len(b) for b in self.null_blocks)), len(self.zero_input) + len(self.constant))

    @property
    def label(self) -> str:
        """Readable form with 1-based neurons, e.g. ``T1{1,2} N{3}``, ``T1{+1,-2} Z{3}`` or ``T1{1} C{2}``."""
        signed = self.signed

        def fmt(block, signs):
            return ",".join((("+" if s > 0 else "-") if signed else "") + str(k + 1)
                            for k, s in zip(block, signs, strict=True))

        parts = [f"T{j + 1}{{{fmt(b, s)}}}" for j, (b, s) in enumerate(zip(self.teacher_blocks,
                                                                           self.teacher_signs, strict=True))]
        parts += [f"N{{{fmt(b, s)}}}" for b, s in zip(self.null_blocks, self.null_signs, strict=True)]
        if self.zero_input:
            parts.append("Z{" + ",".join(str(k + 1) for k in self.zero_input) + "}")
        if self.constant:
            parts.append("C{" + ",".join(str(k + 1) for k in self.constant) + "}")
        return " ".join(parts)

    @property
    def constraint_text(self) -> str | None:
        """The curved equation of a component with constant neurons, e.g. ``c + a2 sigma(b2) = c*``."""
        if self.affine:
            return None
        return "c + " + " + ".join(f"a{k + 1} sigma(b{k + 1})" for k in self.constant) + " = c*"

    def to_record(self) -> dict:
        """JSON-ready dict (1-based neuron indices)."""
        return {
            "label": self.label,
            "teacher_blocks": [[k + 1 for k in b] for b in self.teacher_blocks],
            "teacher_signs": [list(s) for s in self.teacher_signs],
            "null_blocks": [[k + 1 for k in b] for b in self.null_blocks],
            "null_signs": [list(s) for s in self.null_signs],
            "zero_input": [k + 1 for k in self.zero_input],
            "dim": self.dim, "codim": self.codim, "model_rank": self.model_rank,
            "morse_bott": self.morse_bott, "split": self.split, "threshold": self.threshold,
            "first_order_threshold": self.first_order_threshold,
            "bias": self.bias, "n_params": self.n_params, "affine": self.affine,
            "constant_neurons": [k + 1 for k in self.constant], "hull_dim": self.hull_dim,
            "constraint": self.constraint_text, "threshold_reason": self.threshold_reason,
        }

    # -------------------------------------------------------------- layout
    def _w_index(self, k: int) -> list[int]:
        """Flat indices of neuron ``k``'s augmented input weights ``(w_k[, b_k])``."""
        m, d = self.m, self.d
        return [k * d + i for i in range(d)] + ([m * d + k] if self.bias else [])

    def _a_index(self, k: int) -> int:
        return self.m * self.d + (self.m if self.bias else 0) + k

    def _b_index(self, k: int) -> int:
        return self.m * self.d + k

    @property
    def _c_index(self) -> int:
        return self.m * self.d + 2 * self.m

    # -------------------------------------------------------------- linear equations
    def _check_theta(self, theta) -> np.ndarray:
        check_float64("theta", theta)
        check_finite("theta", theta)
        theta = np.asarray(theta)
        if theta.shape != (self.n_params,):
            raise InputError(f"theta must have shape ({self.n_params},) for this branch (m={self.m}, d={self.d}"
                             f"{', with biases' if self.bias else ''}), got {theta.shape}.")
        return theta

    def _check_teacher(self, teacher: Teacher) -> None:
        if teacher.m0 != self.m0 or teacher.d != self.d:
            raise InputError(f"teacher has m0={teacher.m0}, d={teacher.d} but the branch needs "
                             f"m0={self.m0}, d={self.d}.")
        if teacher.has_bias and not self.bias:
            raise InputError("the teacher has biases but the branch is of a bias-free student: enumerate the "
                             "branches with bias=True.")

    def linear_equations(self, teacher: Teacher) -> tuple[np.ndarray, np.ndarray]:
        """All linear equations ``(A, b)`` of the component; ``A`` has full row rank.

        For an affine component they cut out the component itself (see :meth:`equations`); for a
        curved one its affine hull, of dimension ``dim + 1``, inside which the component is the
        zero set of :meth:`constraint`.
        """
        self._check_teacher(teacher)
        M = self.n_params
        Wt = teacher.augmented() if self.bias else teacher.W
        rows, rhs = [], []

        def row(*entries):
            r = np.zeros(M)
            for idx, v in entries:
                r[idx] += v
            return r

        for j, (block, signs) in enumerate(zip(self.teacher_blocks, self.teacher_signs, strict=True)):
            for k, s in zip(block, signs, strict=True):
                for t, idx in enumerate(self._w_index(k)):
                    rows.append(row((idx, 1.0)))
                    rhs.append(s * Wt[j, t])
            rows.append(row(*((self._a_index(k), s) for k, s in zip(block, signs, strict=True))))
            rhs.append(teacher.a[j])
        for block, signs in zip(self.null_blocks, self.null_signs, strict=True):
            k0 = block[0]
            for k, s in zip(block[1:], signs[1:], strict=True):
                for idx, idx0 in zip(self._w_index(k), self._w_index(k0), strict=True):
                    rows.append(row((idx, 1.0), (idx0, -s)))
                    rhs.append(0.0)
            rows.append(row(*((self._a_index(k), s) for k, s in zip(block, signs, strict=True))))
            rhs.append(0.0)
        for k in (*self.zero_input, *self.constant):
            for i in range(self.d):
                rows.append(row((k * self.d + i, 1.0)))
                rhs.append(0.0)
        if self.bias and self.affine:
            rows.append(row((self._c_index, 1.0)))
            rhs.append(teacher.c)
        return np.array(rows).reshape(-1, M), np.array(rhs, dtype=np.float64)

    def equations(self, teacher: Teacher) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with closure ``A_κ = {θ : A θ = b}``; ``A`` has full row rank ``codim``.

        Raises:
            InputError: for a curved component (constant neurons), which has no affine closure:
                use :meth:`linear_equations` (its affine hull) and :meth:`constraint`.
        """
        if not self.affine:
            raise InputError(f"component {self.label} is curved ({self.constraint_text}): it is not an affine "
                             "subspace; use linear_equations() for its affine hull and constraint() for the "
                             "curved equation.")
        return self.linear_equations(teacher)

    def _matrix(self) -> np.ndarray:
        return self.linear_equations(_unit_teacher(self.m0, self.d, self.bias))[0]

    # -------------------------------------------------------------- the curved equation
    def _require_bias(self, what: str) -> None:
        if not self.bias:
            raise InputError(f"{what} exists only for students with biases (bias=True).")

    def constraint(self, theta, teacher: Teacher) -> float:
        """``g(θ) = c + Σ_{k∈C} a_k σ(b_k) − c*``: zero on the component (given its linear equations).

        On the affine hull ``f(θ, ·) − f* ≡ g(θ)``. For an affine biased component ``g = c − c*``.

        Raises:
            InputError: for a bias-free branch.
        """
        self._require_bias("constraint()")
        self._check_teacher(teacher)
        theta = self._check_theta(theta)
        C = list(self.constant)
        s, _, _ = _sigmas(teacher.activation, theta[[self._b_index(k) for k in C]])
        a = theta[[self._a_index(k) for k in C]]
        return float(theta[self._c_index] + a @ s - teacher.c)

    def constraint_grad(self, theta, teacher: Teacher) -> np.ndarray:
        """``∇g(θ)``: 1 at ``c``, ``σ(b_k)`` at ``a_k`` and ``a_k σ'(b_k)`` at ``b_k`` for ``k ∈ C``.

        Raises:
            InputError: for a bias-free branch.
        """
        self._require_bias("constraint_grad()")
        theta = self._check_theta(theta)
        C = list(self.constant)
        ib, ia = [self._b_index(k) for k in C], [self._a_index(k) for k in C]
        s, s1, _ = _sigmas(teacher.activation, theta[ib])
        g = np.zeros(self.n_params)
        g[self._c_index] = 1.0
        g[ia] = s
        g[ib] = theta[ia] * s1
        return g

    def _constraint_hessian(self, theta, teacher: Teacher) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        C = list(self.constant)
        ib, ia = [self._b_index(k) for k in C], [self._a_index(k) for k in C]
        _, s1, s2 = _sigmas(teacher.activation, theta[ib])
        H = np.zeros((self.n_params, self.n_params))
        H[ia, ib] = s1
        H[ib, ia] = s1
        H[ib, ib] = theta[ia] * s2
        return H

    def _solve_c(self, theta, teacher: Teacher) -> np.ndarray:
        """Move ``c`` so that the constraint holds (``c`` is free in the affine hull)."""
        theta = np.array(theta, dtype=np.float64)
        theta[self._c_index] -= self.constraint(theta, teacher)
        return theta

    # -------------------------------------------------------------- geometry
    def tangent_basis(self, theta=None, teacher: Teacher | None = None) -> np.ndarray:
        """Orthonormal basis ``(M, dim)`` of the tangent space.

        For an affine component this is its direction space ``{θ : A θ = 0}`` (`theta` is not
        needed). A curved component's tangent space depends on the point: pass `theta` (a
        point of the component) and `teacher` (for σ); it is ``{δ : A δ = 0, ∇g(θ)·δ = 0}``.

        Raises:
            InputError: for a curved component without `theta` and `teacher`.
        """
        A = self._matrix()
        if self.affine:
            return _null_space(A, self.n_params)
        if theta is None or teacher is None:
            raise InputError(f"component {self.label} is curved: its tangent space depends on the point; pass "
                             "theta (a point of the component) and teacher.")
        return _null_space(np.vstack([A, self.constraint_grad(theta, teacher)]), self.n_params)

    def base_point(self, teacher: Teacher) -> np.ndarray:
        """The point of ``A_κ`` of least norm, ``A⁺ b``.

        For a curved component: the least-norm point of its affine hull with ``c`` solved from
        the constraint (a point of the component, not its least-norm point).
        """
        A, b = self.linear_equations(teacher)
        p = np.linalg.lstsq(A, b, rcond=None)[0]
        return p if self.affine else self._solve_c(p, teacher)

    def project(self, theta, teacher: Teacher, *, max_iter: int = 50) -> np.ndarray:
        """Orthogonal projection of ``θ`` onto the component (its closure).

        Affine components: exact (least squares). Curved components: the hull projection with
        ``c`` solved from the constraint, refined by Newton's method on the KKT system of
        ``min ½|p − θ|²`` s.t. the linear equations and ``g(p) = 0``; the result always lies on
        the component, and is the nearest point when ``θ`` is close to it (Newton converges to
        a local nearest point; the feasible start is kept if Newton does worse).
        """
        theta = self._check_theta(theta)
        A, b = self.linear_equations(teacher)
        p = theta - np.linalg.lstsq(A, A @ theta - b, rcond=None)[0]
        if self.affine:
            return p
        p0 = self._solve_c(p, teacher)
        best = p0
        M, r = self.n_params, A.shape[0]
        p = p0.copy()
        G = self.constraint_grad(p, teacher)
        mult = np.linalg.lstsq(np.vstack([A, G]).T, theta - p, rcond=None)[0]
        lam, mu = mult[:r], mult[r]
        tol = 1e-14 * max(1.0, float(np.linalg.norm(theta)))
        for _ in range(max_iter):
            G = self.constraint_grad(p, teacher)
            F = np.concatenate([p - theta + A.T @ lam + mu * G, A @ p - b, [self.constraint(p, teacher)]])
            if not np.all(np.isfinite(F)) or np.linalg.norm(F) <= tol:
                break
            K = np.zeros((M + r + 1, M + r + 1))
            K[:M, :M] = np.eye(M) + mu * self._constraint_hessian(p, teacher)
            K[:M, M:M + r] = A.T
            K[:M, -1] = G
            K[M:M + r, :M] = A
            K[-1, :M] = G
            try:
                step = np.linalg.solve(K, -F)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)):
                break
            p, lam, mu = p + step[:M], lam + step[M:M + r], mu + step[-1]
        if np.all(np.isfinite(p)):
            cand = self._solve_c(p - np.linalg.lstsq(A, A @ p - b, rcond=None)[0], teacher)
            if np.linalg.norm(cand - theta) < np.linalg.norm(best - theta):
                best = cand
        return best

    def residual(self, theta, teacher: Teacher) -> float:
        """``‖θ − proj(θ)‖₂``: distance of ``θ`` to the component."""
        return float(np.linalg.norm(np.asarray(theta) - self.project(theta, teacher)))

    def random_point(self, teacher: Teacher, *, seed: int = 0, scale: float = 1.0) -> np.ndarray:
        """A generic point of the component: ``base + scale · T c`` with ``c ~ N(0, I)``.

        For a curved component ``T`` spans the directions of the affine hull and ``c`` is then
        solved from the constraint. Null-block weights, output weights and constant-neuron
        biases are generic, so the point lies on no other component (with probability one).
        """
        rng = np.random.default_rng(seed)
        if self.affine:
            T = self.tangent_basis()
            return self.base_point(teacher) + scale * (T @ rng.standard_normal(T.shape[1]))
        A, b = self.linear_equations(teacher)
        T = _null_space(A, self.n_params)
        p = np.linalg.lstsq(A, b, rcond=None)[0] + scale * (T @ rng.standard_normal(T.shape[1]))
        return self._solve_c(p, teacher)


def _unit_teacher(m0: int, d: int, bias: bool = False) -> Teacher:
    # Any teacher gives the same direction space; this one is never shown to users.
    W = np.tile(np.arange(1, m0 + 1, dtype=np.float64)[:, None], (1, d))
    return Teacher(np.ones(m0), W, "sigmoid4_plus_softplus", b=np.zeros(m0) if bias else None)


# ----------------------------------------------------------------------------- enumeration
def _partitions(items: tuple[int, ...]) -> Iterator[list[list[int]]]:
    """Set partitions of ``items`` (restricted growth), blocks ordered by first element."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield part[:i] + [[first, *part[i]]] + part[i + 1 :]


def _check_sizes(m: int, m0: int, d: int) -> None:
    for name, v in (("m", m), ("m0", m0), ("d", d)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}.")
    if m < m0:
        raise InputError(f"the student width m={m} is below the teacher width m0={m0}: Q* is empty. "
                         "Use m >= m0.")
    if m > 8:
        raise InputError(f"m={m} is too large to enumerate every branch (their number grows like the "
                         "Bell numbers); use m <= 8, or count_branches for the number alone.")


def enumerate_branches(m: int, m0: int, d: int, activation: str = "tanh", *, bias: bool = False) -> tuple[Branch, ...]:
    """Every component of ``Q*`` for a width-``m`` student and width-``m0`` teacher in dimension ``d``.

    For odd σ with ``σ(0) = 0`` (tanh, erf) the sign patterns and zero-input sets are
    included; for the generic class (``sigmoid4_plus_softplus``) the count is
    ``Σ_p S(m, p) p!/(p − m0)!``. With ``bias=True`` (biases in both layers) every supported
    class also gets the constant-neuron sets ``C`` (``|C| ≤ m − m0``), whose components are
    curved (``affine`` False); for odd σ they replace the zero-input sets.

    Raises:
        InputError: for bad sizes, or an activation whose ``Q*`` is not the union of these
            components (see :func:`activation_support`).
    """
    _check_sizes(m, m0, d)
    require_support(activation, m, m0, bias=bias)
    signed = activation_kind(activation) is ActivationKind.odd_zero
    out = []
    neurons = tuple(range(m))
    zero_sets = (it.chain.from_iterable(it.combinations(neurons, z) for z in range(m - m0 + 1))
                 if signed or bias else [()])
    for S in zero_sets:
        Z, C = ((), tuple(S)) if bias else (tuple(S), ())
        rest = tuple(k for k in neurons if k not in S)
        for part in _partitions(rest):
            if len(part) < m0:
                continue
            for chosen in it.permutations(range(len(part)), m0):
                tblocks = tuple(tuple(part[i]) for i in chosen)
                nblocks = tuple(tuple(part[i]) for i in range(len(part)) if i not in chosen)
                if not signed:
                    out.append(Branch(m, m0, d, tblocks, tuple((1,) * len(b) for b in tblocks),
                                      nblocks, tuple((1,) * len(b) for b in nblocks), Z, False, bias, C))
                    continue
                tchoices = [list(it.product((1, -1), repeat=len(b))) for b in tblocks]
                nchoices = [[(1, *s) for s in it.product((1, -1), repeat=len(b) - 1)] for b in nblocks]
                for ts in it.product(*tchoices):
                    for ns in it.product(*nchoices):
                        out.append(Branch(m, m0, d, tblocks, tuple(ts), nblocks, tuple(ns), Z, True, bias, C))
    return tuple(out)


def count_branches(m: int, m0: int, activation: str = "tanh", *, bias: bool = False) -> int:
    """The number of components without enumerating them.

    Generic class: ``Σ_p S(m, p) p!/(p − m0)!``; with biases, summed over constant sets:
    ``Σ_z C(m, z) Σ_p S(m − z, p) p!/(p − m0)!``. Odd class (with or without biases, the
    constant sets taking the place of the zero-input sets): sum over ``Z`` and partitions of
    the rest, each weighted by ``2^{Σ|B_j|} 2^{Σ(|N| − 1)}`` sign patterns.
    """
    if m < m0 or m0 < 1:
        raise InputError(f"need 1 <= m0 <= m, got m={m}, m0={m0}.")
    require_support(activation, m, m0, bias=bias)
    signed = activation_kind(activation) is ActivationKind.odd_zero
    if not signed:
        zs = range(m - m0 + 1) if bias else (0,)
        return sum(math.comb(m, z) * _stirling2(m - z, p) * math.perm(p, m0)
                   for z in zs for p in range(m0, m - z + 1))
    # Odd class: choose |Z| = z, split the remaining k = m − z neurons into T teacher-block
    # neurons and the rest into null blocks. Sign weight: 2^T for teacher blocks, 2^{(k−T) − q}
    # for q null blocks. Count surjections onto m0 labelled teacher blocks via S(T, m0) m0!.
    total = 0
    for z in range(m - m0 + 1):
        k = m - z
        for T in range(m0, k + 1):
            rest = k - T
            ways_t = math.comb(k, T) * _stirling2(T, m0) * math.factorial(m0) * 2**T
            ways_n = sum(_stirling2(rest, q) * 2 ** (rest - q) for q in range(rest + 1))
            total += math.comb(m, z) * ways_t * ways_n
    return total


def _stirling2(n: int, k: int) -> int:
    if n == k:
        return 1
    if k == 0 or k > n:
        return 0
    return sum((-1) ** j * math.comb(k, j) * (k - j) ** n for j in range(k + 1)) // math.factorial(k)


# ----------------------------------------------------------------------------- intersections
@dataclasses.dataclass(frozen=True)
class BranchIntersection:
    """``S_κ ∩ S_κ'``: empty, or a set of dimension `dim` through `point`.

    `affine` says whether the intersection is an affine subspace. It always is when one of the
    two components is affine; for two curved components it is ``{θ ∈ L : g(θ) = 0}`` with ``L``
    the intersection of their affine hulls, affine only when ``g`` is affine on ``L`` (decided
    from the Hessian of ``g`` along ``L`` at random points).
    """

    first: str
    second: str
    empty: bool
    dim: int | None
    point: np.ndarray | None
    affine: bool = True

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {"first": self.first, "second": self.second, "empty": self.empty, "dim": self.dim,
                "point": None if self.point is None else self.point.tolist(), "affine": self.affine}


def intersect(b1: Branch, b2: Branch, teacher: Teacher, *, rtol: float = 1e-10) -> BranchIntersection:
    """The intersection of two components (stacked linear equations, least squares; see the module docstring).

    Raises:
        InputError: for branches of different set-ups.
    """
    if (b1.m, b1.m0, b1.d, b1.bias) != (b2.m, b2.m0, b2.d, b2.bias):
        raise InputError("the two branches belong to different set-ups (m, m0, d, bias): nothing to intersect.")
    A1, c1 = b1.linear_equations(teacher)
    A2, c2 = b2.linear_equations(teacher)
    A, c = np.vstack([A1, A2]), np.concatenate([c1, c2])
    x, *_ = np.linalg.lstsq(A, c, rcond=None)
    scale = max(1.0, float(np.max(np.abs(c))))
    if np.linalg.norm(A @ x - c) > rtol * scale * np.sqrt(len(c)):
        return BranchIntersection(b1.label, b2.label, True, None, None)
    s = np.linalg.svd(A, compute_uv=False)
    rank = int(np.sum(s > rtol * s[0]))
    dim = A.shape[1] - rank
    if b1.affine or b2.affine:
        # On the hull of a curved component f − f* ≡ g; the affine one forces f = f*, hence g = 0.
        return BranchIntersection(b1.label, b2.label, False, dim, x)
    point = b1._solve_c(x, teacher)
    return BranchIntersection(b1.label, b2.label, False, dim - 1, point,
                              _affine_on_hull(b1, teacher, A, x, rank))


def _affine_on_hull(branch: Branch, teacher: Teacher, A: np.ndarray, x: np.ndarray, rank: int,
                    *, n_points: int = 3, rtol: float = 1e-10) -> bool:
    """Whether ``g`` is affine on ``{x + T y}`` (``T`` = null space of ``A``): its Hessian along it vanishes."""
    _, _, Vt = np.linalg.svd(A, full_matrices=True)
    T = Vt[rank:].T
    rng = np.random.default_rng(0)
    for _ in range(n_points):
        p = x + T @ rng.standard_normal(T.shape[1])
        H = branch._constraint_hessian(p, teacher)
        if np.max(np.abs(T.T @ H @ T), initial=0.0) > rtol * max(1.0, float(np.max(np.abs(H)))):
            return False
    return True


def branches_containing(theta, branches, teacher: Teacher, *, tol: float = 1e-8) -> tuple[Branch, ...]:
    """The branches whose closure contains ``θ`` (distance ≤ `tol`); two or more ⇒ an intersection point."""
    return tuple(b for b in branches if b.residual(theta, teacher) <= tol)


def identify_branch(theta, m: int, d: int, activation: str, *, tol: float = 1e-3,
                    bias: bool = False) -> tuple[Branch, Teacher]:
    """Read off the component of ``Q*`` that ``θ`` lies on (or next to), and the teacher it represents.

    Neurons whose (augmented, with `bias`) weights agree within `tol` (up to sign for odd σ)
    form a cluster; a cluster whose signed output weights sum to more than `tol` copies a
    teacher neuron (its weight and that sum), otherwise it is a null block. Neurons with
    ``|w| ≤ tol`` form ``Z`` (odd σ, bias-free) or, with `bias`, the constant set ``C``, whose
    constants ``a_k σ(b_k)`` go into the teacher's ``c*``. `tol` must exceed the distance of
    ``θ`` to its branch (algebraically converging flows near split neurons keep a spread
    ``~t^{-1/2}``).

    Raises:
        InputError: if the clusters do not describe an irreducible teacher, or the activation
            is unsupported.
    """
    check_float64("theta", theta)
    check_finite("theta", theta)
    theta = np.asarray(theta)
    M = n_params(m, d, bias=bias)
    if theta.shape != (M,):
        raise InputError(f"theta must have shape ({M},) for m={m}, d={d}{' with biases' if bias else ''}, "
                         f"got {theta.shape}.")
    signed = activation_kind(activation) is ActivationKind.odd_zero
    if bias:
        W, bvec, a, c = split_theta_bias(theta, m, d)
        Wt = np.concatenate([W, bvec[:, None]], axis=1)
    else:
        W, a = split_theta(theta, m, d)
        Wt = W
    S = tuple(k for k in range(m) if (signed or bias) and np.linalg.norm(W[k]) <= tol)
    left = [k for k in range(m) if k not in S]
    clusters = []
    while left:
        k0 = left.pop(0)
        members, signs = [k0], [1]
        for k in list(left):
            if np.linalg.norm(Wt[k] - Wt[k0]) <= tol:
                members.append(k)
                signs.append(1)
                left.remove(k)
            elif signed and np.linalg.norm(Wt[k] + Wt[k0]) <= tol:
                members.append(k)
                signs.append(-1)
                left.remove(k)
        clusters.append((tuple(members), tuple(signs)))
    tb, ts, nb, ns, a_star, w_star = [], [], [], [], [], []
    for members, signs in clusters:
        total = float(sum(s * a[k] for k, s in zip(members, signs, strict=True)))
        if abs(total) > tol:
            tb.append(members)
            ts.append(signs)
            a_star.append(total)
            # a-weighted mean: near a split neuron the mean offset c is slaved (O(|e|²)) while the
            # spread e = w1 − w2 lies in ker ∇²R, so this estimate of w* is second-order accurate.
            w_star.append(sum(s * a[k] * s * Wt[k] for k, s in zip(members, signs, strict=True)) / total)
        else:
            nb.append(members)
            ns.append(signs)
    if not tb:
        raise InputError("theta represents a constant function: no neuron cluster with nonzero input weights "
                         "has a nonzero output weight.")
    w_star = np.array(w_star)
    if bias:
        s, _, _ = _sigmas(activation, bvec[list(S)])
        c_star = c + float(a[list(S)] @ s)
        teacher = Teacher(np.array(a_star), w_star[:, :d].copy(), activation, b=w_star[:, d].copy(), c=c_star)
    else:
        teacher = Teacher(np.array(a_star), w_star, activation)
    require_support(activation, m, len(tb), bias=bias)
    Z, C = ((), S) if bias else (S, ())
    return Branch(m, len(tb), d, tuple(tb), tuple(ts), tuple(nb), tuple(ns), Z, signed, bias, C), teacher
