"""Label maps and the affine subspaces of the expansion manifold they define.

A :class:`LabelMap` says, for every hidden layer, where each neuron of a wide network comes
from in a narrow one, in the convention of :func:`lossatlas.symmetry.enumerate_label_maps`:

- label ``i >= 1``: a copy of narrow neuron ``i - 1`` (duplication / splitting);
- label ``0`` (:data:`ZERO`): a zero-type neuron (zero outgoing weights, free incoming ones);
- label ``-g < 0``: a member of *zero group* ``g``: two or more neurons that compute the same
  (free) function and whose outgoing weights cancel. Zero groups are the extra pieces of the
  full zero-loss set (``count_T_zero_loss``); they are *not* part of the expansion manifold
  counted by ``count_T``.

An optional sign ``s_j = ±1`` per wide neuron makes neuron ``j`` a sign-flipped copy (odd
activations only, where ``σ(−z) = −σ(z)``).

For a narrow network ``N`` and a label map, :func:`expansion_subspace` returns the affine
subspace ``Γ`` of wide parameters that compute ``N``'s function through that pattern. The
neurons of the layer below a weight matrix fall into *column classes*: the copy groups
``S'_k`` of narrow neuron ``k`` (single input coordinates for ``W_1``), single zero-type
neurons and zero groups. With ``c_{j'}`` the signs of the layer below and ``s_j`` those of the
row:

- a copy row ``j`` of narrow neuron ``i`` (every output row ``o`` of ``W_L`` counts as the
  copy of output ``o``, with ``s = 1``) satisfies ``Σ_{j'∈S'_k} c_{j'} W[j, j'] = s_j N[i, k]``
  for every copy group, ``Σ_{j'∈C} c_{j'} W[j, j'] = 0`` for every zero-type neuron or zero
  group ``C``, and ``b[j] = s_j N_b[i]``;
- a zero-type row is free (its outgoing weights vanish);
- the rows ``j ∈ Z`` of a zero group satisfy, for every column class ``C``, that
  ``s_j Σ_{j'∈C} c_{j'} W[j, j']`` is the same for all members, and ``s_j b[j]`` likewise.

For a two-layer network this is Şimşek et al.'s ``Γ_φ``: ``w_j = w_i`` and
``Σ_{S_i} a_j = a_i`` for copies, ``a_j = 0`` with ``w_j`` free for zero-type neurons, of
dimension ``d_out (m − k_0 − r) + (d + bias) k_0``.

Every parameter enters the equations of exactly one *block* (one row class × one column
class, or one bias group), so the subspace is a product of small blocks: each block's
minimum-norm solution gives the base point (the point of ``Γ`` nearest to 0) and each block's
null space (a Helmert basis for a single ``±1`` equation, an SVD otherwise) gives orthonormal
directions.

References:
    B. Şimşek et al., "Geometry of the Loss Landscape in Overparameterized Neural Networks:
    Symmetries and Invariances", ICML 2021, arXiv:2105.12221.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .._config import check_finite, check_float64
from .._errors import InputError
from ..models import MLP, ODD_ACTIVATIONS
from ._common import check_network, offsets, standard_normal

#: The label of a zero-type neuron (zero outgoing weight, free incoming weights).
ZERO = 0


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Where every hidden neuron of a wide network comes from in a narrow network.

    **Fields:**

    - `labels`: one tuple per hidden layer; ``labels[l-1][j]`` is ``i >= 1`` if wide neuron
      ``j`` of hidden layer ``l`` copies narrow neuron ``i-1``, ``0`` if it is zero-type, and
      ``-g`` if it belongs to zero group ``g`` (at least two members). Every narrow neuron
      must be copied at least once.
    - `narrow_widths`: the narrow network's hidden widths ``(r_1, …, r_{L-1})``.
    - `signs`: ``None`` (all ``+1``) or one tuple of ``±1`` per hidden layer; ``-1`` marks a
      sign-flipped copy (or zero-group member), a symmetry for odd activations only.
    """

    labels: tuple[tuple[int, ...], ...]
    narrow_widths: tuple[int, ...]
    signs: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        try:
            labels = tuple(tuple(_as_label(x) for x in layer) for layer in self.labels)
            narrow = tuple(_as_label(r) for r in self.narrow_widths)
        except TypeError:
            raise InputError(
                "a label map needs integer labels (one tuple per hidden layer) and integer "
                "narrow widths."
            ) from None
        if len(labels) != len(narrow) or not labels:
            raise InputError(
                f"a label map needs one label tuple per hidden layer: got {len(labels)} label "
                f"tuples for {len(narrow)} narrow hidden widths."
            )
        for ly, (lab, r) in enumerate(zip(labels, narrow, strict=True), start=1):
            if r < 1:
                raise InputError(f"narrow hidden width {r} of layer {ly} must be >= 1.")
            bad = [x for x in lab if x > r]
            if bad:
                raise InputError(
                    f"labels {bad} of hidden layer {ly} are out of range: use 1..{r} for copies "
                    f"of narrow neurons 0..{r - 1}, 0 for zero-type neurons and -1, -2, … for "
                    "zero groups."
                )
            missing = sorted(set(range(1, r + 1)) - set(lab))
            if missing:
                raise InputError(
                    f"narrow neurons {[i - 1 for i in missing]} of hidden layer {ly} have no copy "
                    "in the wide network; every narrow neuron needs at least one (label i for "
                    "narrow neuron i-1)."
                )
            lonely = sorted(g for g in set(lab) if g < 0 and lab.count(g) < 2)
            if lonely:
                raise InputError(
                    f"zero groups {lonely} of hidden layer {ly} have a single member; a zero group "
                    "needs at least two neurons (use label 0 for a single zero-type neuron)."
                )
        if self.signs is None:
            signs = tuple((1,) * len(lab) for lab in labels)
        else:
            signs = tuple(tuple(int(s) for s in layer) for layer in self.signs)
            if [len(s) for s in signs] != [len(lab) for lab in labels] or any(
                s not in (-1, 1) for layer in signs for s in layer
            ):
                raise InputError("`signs` must give +1 or -1 for every wide neuron of every layer.")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "narrow_widths", narrow)
        object.__setattr__(self, "signs", signs)

    @classmethod
    def identity(cls, hidden_widths: Sequence[int]) -> LabelMap:
        """The label map of a network onto itself (every neuron copies itself)."""
        return cls(tuple(tuple(range(1, r + 1)) for r in hidden_widths), tuple(hidden_widths))

    @property
    def wide_widths(self) -> tuple[int, ...]:
        """Hidden widths ``(m_1, …, m_{L-1})`` of the wide network."""
        return tuple(len(lab) for lab in self.labels)

    @property
    def uses_signs(self) -> bool:
        """Whether any neuron is sign-flipped."""
        return any(s < 0 for layer in self.signs for s in layer)

    @property
    def has_zero_groups(self) -> bool:
        """Whether some layer has a zero group (then Γ is not in the expansion manifold)."""
        return any(x < 0 for layer in self.labels for x in layer)

    def groups(self, layer: int) -> tuple[tuple[int, ...], ...]:
        """For each narrow neuron of hidden layer ``layer``, the wide neurons copying it."""
        lab = self.labels[layer - 1]
        return tuple(
            tuple(j for j, x in enumerate(lab) if x == i)
            for i in range(1, self.narrow_widths[layer - 1] + 1)
        )

    def zero_neurons(self, layer: int) -> tuple[int, ...]:
        """The zero-type neurons (label 0) of hidden layer ``layer``."""
        return tuple(j for j, x in enumerate(self.labels[layer - 1]) if x == ZERO)

    def zero_groups(self, layer: int) -> tuple[tuple[int, ...], ...]:
        """The zero groups of hidden layer ``layer`` (labels ``-1, -2, …`` in order)."""
        lab = self.labels[layer - 1]
        ids = sorted({x for x in lab if x < 0}, reverse=True)
        return tuple(tuple(j for j, x in enumerate(lab) if x == g) for g in ids)

    def to_record(self) -> list[dict]:
        """JSON-ready description, one entry per hidden layer."""
        return [
            {
                "layer": ly,
                "narrow_width": self.narrow_widths[ly - 1],
                "wide_width": self.wide_widths[ly - 1],
                "labels": list(self.labels[ly - 1]),
                "signs": list(self.signs[ly - 1]),
                "groups": [list(g) for g in self.groups(ly)],
                "zero_neurons": list(self.zero_neurons(ly)),
                "zero_groups": [list(g) for g in self.zero_groups(ly)],
            }
            for ly in range(1, len(self.labels) + 1)
        ]


def _as_label(x) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise TypeError
    return int(x)


@dataclasses.dataclass(frozen=True, eq=False)
class AffineSubspace:
    """The affine subspace ``{base + basis @ c : c ∈ R^dim}`` of flat parameter space.

    **Fields:**

    - `base`: shape ``(p,)``, the point of the subspace nearest to the origin (so two
      descriptions of one subspace share it).
    - `basis`: shape ``(p, dim)``, orthonormal columns spanning the directions.
    - `dim`: the dimension.

    Flat vectors follow DESIGN.md's order ``W1, b1, W2, b2, …`` (row-major).
    """

    base: np.ndarray
    basis: np.ndarray
    dim: int

    def __post_init__(self):
        base = np.asarray(self.base, dtype=np.float64)
        basis = np.asarray(self.basis, dtype=np.float64)
        if base.ndim != 1 or basis.ndim != 2 or basis.shape[0] != base.shape[0]:
            raise InputError(
                f"an affine subspace needs base (p,) and basis (p, dim); got {base.shape} and "
                f"{basis.shape}."
            )
        if basis.shape[1] != int(self.dim):
            raise InputError(f"basis has {basis.shape[1]} columns but dim = {self.dim}.")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "dim", int(self.dim))

    @property
    def n_params(self) -> int:
        """Dimension ``p`` of the ambient parameter space."""
        return int(self.base.shape[0])

    def _check(self, theta, name="theta") -> np.ndarray:
        check_float64(name, theta)
        check_finite(name, theta)
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape[-1:] != (self.n_params,):
            raise InputError(
                f"`{name}` must have {self.n_params} parameters (last axis), got {theta.shape}."
            )
        return theta

    def point(self, coords) -> np.ndarray:
        """``base + basis @ coords`` (``coords`` of shape ``(dim,)`` or ``(n, dim)``)."""
        coords = np.asarray(coords, dtype=np.float64)
        if coords.shape[-1:] != (self.dim,):
            raise InputError(
                f"coordinates must have {self.dim} entries (last axis), got {coords.shape}."
            )
        return self.base + coords @ self.basis.T

    def coordinates(self, theta) -> np.ndarray:
        """``basisᵀ (θ − base)``: the coordinates of ``θ``'s orthogonal projection."""
        return (self._check(theta) - self.base) @ self.basis

    def project(self, theta) -> np.ndarray:
        """The orthogonal projection of ``θ`` onto the subspace."""
        return self.point(self.coordinates(theta))

    def distance(self, theta) -> float:
        """``max |θ − project(θ)|``: how far ``θ`` is from the subspace, entrywise."""
        theta = self._check(theta)
        return float(np.max(np.abs(theta - self.project(theta)))) if theta.size else 0.0

    def random_points(self, key, n: int, *, scale: float = 1.0, around=None) -> np.ndarray:
        """``n`` points ``c₀ + basis @ c`` with ``c ~ N(0, scale² I)``, shape ``(n, p)``.

        ``c₀`` is ``base``, or the projection of ``around`` when given (points near a
        particular member of the subspace).
        """
        if int(n) < 1:
            raise InputError(f"need n >= 1 random points, got {n}.")
        center = self.base if around is None else self.project(around)
        c = standard_normal(key, (int(n), self.dim))
        return center + (float(scale) * c) @ self.basis.T

    def same_as(self, other: AffineSubspace, *, tol: float = 1e-10) -> bool:
        """Whether two descriptions give the same subspace (same base point and span)."""
        if self.n_params != other.n_params or self.dim != other.dim:
            return False
        if np.max(np.abs(self.base - other.base), initial=0.0) > tol:
            return False
        # span(other) ⊆ span(self), and equal dimensions
        resid = other.basis - self.basis @ (self.basis.T @ other.basis)
        return bool(np.max(np.abs(resid), initial=0.0) <= tol)

    def to_record(self) -> dict:
        """JSON-ready summary (dimensions only; the arrays stay arrays)."""
        return {"dim": self.dim, "n_params": self.n_params}


# ---------------------------------------------------------------------------------------------
# Building the subspace block by block
# ---------------------------------------------------------------------------------------------


def _helmert(coeffs: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n, n-1) of the complement of a ±1 vector ``coeffs``."""
    n = coeffs.size
    out = np.zeros((n, n - 1))
    for k in range(1, n):
        out[:k, k - 1] = 1.0
        out[k, k - 1] = -float(k)
        out[:, k - 1] /= np.sqrt(k * (k + 1.0))
    return out * coeffs[:, None]


def _solve_block(A: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-norm solution and orthonormal null-space basis of ``A x = rhs``."""
    n = A.shape[1]
    if A.shape[0] == 0:
        return np.zeros(n), np.eye(n)
    if A.shape[0] == 1 and np.all(np.abs(A[0]) == 1.0):
        c = A[0]
        return c * (rhs[0] / n), _helmert(c)
    U, S, Vt = np.linalg.svd(A)
    rank = int(np.sum(S > 1e-12 * S[0])) if S.size else 0
    x = Vt[:rank].T @ ((U[:, :rank].T @ rhs) / S[:rank])
    return x, Vt[rank:].T


class _Builder:
    """Collects blocks ``(parameter indices, A, rhs)`` and assembles base and basis."""

    def __init__(self, p: int):
        self.base = np.zeros(p)
        self.columns: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, idx, A=None, rhs=None):
        idx = np.asarray(idx, dtype=np.int64)
        if A is None:
            A, rhs = np.zeros((0, idx.size)), np.zeros(0)
        x, null = _solve_block(np.asarray(A, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
        self.base[idx] = x
        self.columns.extend((idx, null[:, q]) for q in range(null.shape[1]))

    def build(self) -> AffineSubspace:
        basis = np.zeros((self.base.size, len(self.columns)))
        for q, (idx, vals) in enumerate(self.columns):
            basis[idx, q] = vals
        return AffineSubspace(base=self.base, basis=basis, dim=len(self.columns))


def _column_classes(label_map: LabelMap, layer: int, d_in: int):
    """Column classes of ``W_layer``: ``(kind, narrow index or None, members, signs)``."""
    if layer == 1:
        return [("copy", k, np.array([k]), np.ones(1)) for k in range(d_in)]
    below = layer - 1
    sg = np.asarray(label_map.signs[below - 1], dtype=np.float64)
    out = [("copy", k, np.asarray(g), sg[list(g)]) for k, g in enumerate(label_map.groups(below))]
    out += [("zero", None, np.array([j]), np.ones(1)) for j in label_map.zero_neurons(below)]
    out += [("zero", None, np.asarray(g), sg[list(g)]) for g in label_map.zero_groups(below)]
    return out


def expansion_subspace(narrow: MLP, label_map: LabelMap) -> AffineSubspace:
    """The affine subspace of wide parameters that reduce to ``narrow`` along ``label_map``.

    The wide network has ``narrow``'s input and output widths, activation and bias flag, and
    the hidden widths ``label_map.wide_widths``. See the module docstring for the equations;
    every point of the subspace computes exactly ``narrow``'s function.

    **Returns:** an :class:`AffineSubspace` (base point nearest to 0, orthonormal basis).
    """
    check_network(narrow, "narrow")
    check_label_map(narrow, label_map)
    widths = (narrow.widths[0], *label_map.wide_widths, narrow.widths[-1])
    has_bias = narrow.has_bias
    offs = offsets(widths, has_bias)
    p = sum(widths[ly] * (widths[ly - 1] + int(has_bias)) for ly in range(1, len(widths)))
    builder = _Builder(p)
    n_layers = len(widths) - 1
    for layer in range(1, n_layers + 1):
        w_start, b_start = offs[layer - 1]
        n_in = widths[layer - 1]
        w_r = np.asarray(narrow.weights[layer - 1], dtype=np.float64)
        b_r = None if not has_bias else np.asarray(narrow.biases[layer - 1], dtype=np.float64)
        classes = _column_classes(label_map, layer, narrow.widths[0])
        if layer < n_layers:
            labels = label_map.labels[layer - 1]
            signs = label_map.signs[layer - 1]
        else:
            labels = tuple(range(1, widths[-1] + 1))
            signs = (1,) * widths[-1]
        # Copy rows: one equation per column class, and a fixed bias.
        for j, (lab, s) in enumerate(zip(labels, signs, strict=True)):
            row = w_start + j * n_in
            if lab == ZERO:  # free incoming row and bias
                builder.add(list(range(row, row + n_in)) + ([b_start + j] if has_bias else []))
            elif lab > 0:
                i = lab - 1
                for kind, k, members, c in classes:
                    value = s * w_r[i, k] if kind == "copy" else 0.0
                    builder.add(row + members, c[None, :], [value])
                if has_bias:
                    builder.add([b_start + j], [[1.0]], [s * b_r[i]])
        # Zero groups: members share their (signed) pre-activation.
        if layer < n_layers:
            for group in label_map.zero_groups(layer):
                g = np.asarray(group)
                sg = np.asarray([signs[j] for j in group], dtype=np.float64)
                for _, _, members, c in classes:
                    idx = (w_start + g[:, None] * n_in + members[None, :]).ravel()
                    builder.add(idx, _equal_sums(sg, c), np.zeros(len(g) - 1))
                if has_bias:
                    builder.add(b_start + g, _equal_sums(sg, np.ones(1)), np.zeros(len(g) - 1))
    return builder.build()


def _equal_sums(row_signs: np.ndarray, col_signs: np.ndarray) -> np.ndarray:
    """Equations ``s_j Σ_c c W[j, c] − s_0 Σ_c c W[0, c] = 0`` for rows ``j = 1..n-1``."""
    n, k = row_signs.size, col_signs.size
    A = np.zeros((n - 1, n * k))
    for q in range(1, n):
        A[q - 1, q * k : (q + 1) * k] = row_signs[q] * col_signs
        A[q - 1, 0:k] = -row_signs[0] * col_signs
    return A


def subspace_dimension(label_map: LabelMap, d_in: int, d_out: int, *, bias: bool) -> int:
    """Closed-form dimension of :func:`expansion_subspace` (counted equation by equation).

    Per weight matrix, with ``C`` the column classes below (``n`` columns in ``K`` classes):
    a copy row contributes ``n − K`` (one equation per class), a zero-type row ``n + bias``, and
    a zero group ``Z`` contributes ``Σ_C (|Z||C| − |Z| + 1) + bias``. For a two-layer network
    without zero groups this is ``d_out (m − k_0 − r) + (d + bias) k_0``.
    """
    if not isinstance(label_map, LabelMap):
        raise InputError(f"`label_map` must be a LabelMap, got {type(label_map).__name__}.")
    widths = (int(d_in), *label_map.wide_widths, int(d_out))
    n_layers = len(widths) - 1
    b = int(bool(bias))
    dim = 0
    for layer in range(1, n_layers + 1):
        n = widths[layer - 1]
        if layer == 1:
            sizes = [1] * n
        else:
            lm = layer - 1
            sizes = [len(g) for g in label_map.groups(lm)] + [1] * len(
                label_map.zero_neurons(lm)
            ) + [len(g) for g in label_map.zero_groups(lm)]
        K = len(sizes)
        if layer == n_layers:
            dim += widths[-1] * (n - K)
            continue
        labels = label_map.labels[layer - 1]
        dim += sum(1 for x in labels if x > 0) * (n - K)
        dim += sum(1 for x in labels if x == ZERO) * (n + b)
        for group in label_map.zero_groups(layer):
            z = len(group)
            dim += sum(z * c - z + 1 for c in sizes) + b
    return dim


def check_label_map(narrow: MLP, label_map: LabelMap) -> None:
    """Raise :class:`InputError` unless ``label_map`` fits ``narrow`` (widths, signs)."""
    if not isinstance(label_map, LabelMap):
        raise InputError(f"`label_map` must be a LabelMap, got {type(label_map).__name__}.")
    if label_map.narrow_widths != narrow.hidden_widths:
        raise InputError(
            f"the label map is for narrow hidden widths {label_map.narrow_widths} but the "
            f"network has {narrow.hidden_widths}."
        )
    if label_map.uses_signs and narrow.activation not in ODD_ACTIVATIONS:
        raise InputError(
            f"sign-flipped neurons (sign -1) preserve the function only for odd activations "
            f"({', '.join(sorted(ODD_ACTIVATIONS))}), not {narrow.activation!r}."
        )
