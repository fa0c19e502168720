"""Where a critical end point comes from: the narrowest network whose critical point it embeds.

A critical point ``θ`` of a width-``m`` network that lies on the expansion subspace of a critical
point ``θ_r`` of a width-``r`` network (Fukumizu & Amari 2000; Şimşek et al. 2021) is explained
by it: ``θ`` is critical because ``θ_r`` is, and its index is at least that of ``θ_r``.
:func:`explain` reduces an end point, polishes the reduced network as a critical point of the
narrow problem, verifies it, checks that the end point lies on the expansion subspace of the
polished narrow point, and names the narrow point by a **family key** that does not depend on the
order (or, for odd activations, the signs) of its neurons.

The kinds (:class:`ExplanationKind`, values are the JSON strings):

- ``global_minimum``: the end point is labelled a global minimum (its family is still recorded);
- ``reducible``: the end point reduces (``r < m``) to a verified narrow critical point;
- ``irreducible``: it does not reduce (``r = m``); it is its own family;
- ``unexplained``: it reduces, but no reduced network polishes to a narrow critical point whose
  expansion subspace holds the end point.

A point that is not critical gets no explanation (``kind`` is ``None``, `reason` says why), and
so does a landscape the theory does not cover (frozen arrays, an L2 penalty, no hidden layer).

References:
    K. Fukumizu, S. Amari, "Local minima and plateaus in hierarchical structures of multilayer
    perceptrons", Neural Networks 13:317-327, 2000.

    B. Şimşek et al., "Geometry of the Loss Landscape in Overparameterized Neural Networks:
    Symmetries and Invariances", ICML 2021, arXiv:2105.12221.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import time

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._progress import Budget
from ..curvature import dense_spectrum, eigenvalue_tolerance, raw_hessian
from ..landscape import Landscape
from ..models import MLP, ODD_ACTIVATIONS, activation_family, get_activation, is_smooth
from ..solvers import (
    Classification,
    Label,
    NewtonMR,
    PatternNewton,
    SaddleNewton,
    find_critical_point,
)
from ..symmetry import (
    LabelMap,
    expansion_subspace,
    reduce_network,
    split_direction,
    split_neuron,
)
from . import policy as _policy
from ._endpoint import EndPoint
from ._polish import classify, measured_floor

#: Family keys round the canonical parameters to multiples of ``2^(e − KEY_BITS)``, where
#: ``2^e`` is the largest parameter magnitude (at least 1) rounded up to a power of two: a
#: precision of ~1e-6 relative, far coarser than the ~1e-11 to which Newton-polished critical
#: points reproduce, and far finer than the merge tolerance that separates distinct neurons.
KEY_BITS = 20

#: Positively homogeneous activation families (``σ(c z) = c σ(z)`` for ``c > 0``): their keys
#: quotient the rescaling ``(w, b, a) → (c w, c b, a / c)`` by giving each neuron unit incoming norm.
_RESCALED = frozenset({"relu", "leaky_relu"})


class ExplanationKind(enum.Enum):
    """How an end point is explained. Values are the strings in files and JSON."""

    global_minimum = "global_minimum"
    reducible = "reducible"
    irreducible = "irreducible"
    unexplained = "unexplained"


@dataclasses.dataclass(frozen=True)
class ReductionAttempt:
    """One merge tolerance tried by :func:`explain`, and what came of it.

    `outcome`: ``"minimal"`` (nothing merged), ``"no_network"`` (a layer reduces to width 0 and
    no width-0 reading was tried), ``"same"`` (the same label map as a tighter tolerance),
    ``"verified"``, ``"false_merge"`` (the reduced network's loss differs from the point's by more
    than ``FALSE_MERGE_ATOL + FALSE_MERGE_RTOL·|L|``: it computes another function, the merged
    neurons were close but distinct), ``"not_critical"`` (Newton did not reach a critical point of
    the narrow problem), ``"off_subspace"`` (it did, but the end point is not on that point's
    expansion subspace) or ``"time_limit_reached"``.
    """

    tol: float
    outcome: str
    narrow_widths: tuple[int, ...] | None = None
    narrow_grad_norm_inf: float | None = None
    subspace_distance: float | None = None

    def to_record(self) -> dict:
        return {"tol": self.tol, "outcome": self.outcome,
                "narrow_widths": None if self.narrow_widths is None else list(self.narrow_widths),
                "narrow_grad_norm_inf": self.narrow_grad_norm_inf, "subspace_distance": self.subspace_distance}


@dataclasses.dataclass(frozen=True)
class SplitCurvature:
    """The Fukumizu-Amari test for one narrow neuron with two or more copies in the end point.

    Moving the copies' incoming weights (and biases) apart by ``δ_j`` with ``Σ_j γ_j δ_j = 0``
    keeps the function to first order; the second variation of the loss is
    ``Σ_j γ_j δ_jᵀ B δ_j``, with ``B`` the neuron's Fukumizu-Amari matrix (measured here by
    Hessian-vector products of the family network split in halves, so population losses are
    covered too). On the constraint set this form has the inertia of ``B ⊗ Pᵀ diag(γ) P``
    (``P`` an orthonormal basis of ``γ^⊥``): `split_index` negative and `split_nullity` zero
    directions.

    **Fields:** `layer`, `neuron` (in the family network's canonical numbering), `copies` (wide
    neuron indices), `split_ratios` ``γ_j``, `B_eigenvalues` (ascending), `B_tolerance`,
    `B_definiteness`, `split_index`, `split_nullity`.
    """

    layer: int
    neuron: int
    copies: tuple[int, ...]
    split_ratios: tuple[float, ...]
    B_eigenvalues: np.ndarray
    B_tolerance: float
    B_definiteness: str
    split_index: int
    split_nullity: int

    def to_record(self) -> dict:
        return {"layer": self.layer, "neuron": self.neuron, "copies": list(self.copies),
                "split_ratios": list(self.split_ratios), "B_eigenvalues": self.B_eigenvalues.tolist(),
                "B_tolerance": self.B_tolerance, "B_definiteness": self.B_definiteness,
                "split_index": self.split_index, "split_nullity": self.split_nullity}


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Where a critical end point comes from (see :func:`explain`).

    **The verdict:** `kind` (an :class:`ExplanationKind`, or ``None``: no explanation, `reason`
    says why) and `family_kind` (``reducible``, ``irreducible`` or ``unexplained``, also for a
    global minimum); `reason` in words.

    **The end point** (width ``m``): `wide_widths` (hidden widths), `wide_loss`,
    `wide_grad_norm_inf`, `wide_label`, `wide_index`, `wide_nullity` (its classification).

    **The family** (the narrow critical point, width ``r``): `family_key` (canonical key; ``None``
    unless the family is a verified critical point), `family_widths`, `family_network` (the
    canonical form: neurons sorted, odd activations sign-normalised, relu-type neurons of unit
    incoming norm), `family_loss`, `family_grad_norm_inf` and `family_target` (``max(gtol,
    CRITICAL_MARGIN · floor)``, the pipeline's rule), `family_critical`, `family_label`,
    `family_index`, `family_nullity`, `family_steps` (Newton steps on the narrow problem).

    **The embedding:** `merge_tol` (the reduction tolerance that gave the family), `label_map`
    (wide → family, in the family's canonical numbering, with signs), `split_ratios` (per hidden
    layer, per family neuron: the outgoing-weight shares ``γ_j`` of its copies, summing to 1),
    `subspace_dim` (dimension of the affine expansion subspace), `subspace_distance` (``max|θ −
    proj(θ)|`` onto the expansion subspace of the *polished* family point), `subspace_tol` (the
    merge threshold ``merge_tol · max(1, max|θ|)`` it is compared with), `on_subspace`,
    `on_expansion_manifold` (no zero groups: a subspace counted by ``count_T``).

    **Theory checks:** `reduced_grad_norm_inf` (narrow gradient at the reduced network before
    Newton), `projected_grad_norm_inf` (wide gradient at the projection of ``θ`` onto the
    subspace: critical because the family is), `split_curvature` (:class:`SplitCurvature` per
    split neuron), `predicted_wide_index` / `predicted_wide_nullity` (exact by Sylvester's law
    for one hidden layer, one output and copies only: family inertia plus split inertia plus one
    flat direction per extra copy; ``None`` otherwise) and, beside them, `subspace_index` /
    `subspace_nullity` measured on the dense wide Hessian at the projection of ``θ`` onto the
    subspace, where the prediction holds (``θ`` itself may lie off it by up to the merge
    threshold on a degenerate branch, where near-zero eigenvalues are lifted; `wide_index` and
    `wide_nullity` are measured at ``θ``).

    `silent_neurons`: neurons of the last hidden layer (wide numbering) whose incoming weights
    and bias vanish (within the merge threshold) while their outgoing weights do not, for an
    activation with ``σ(0) = 0``: they output 0 whatever their outgoing weights. The family is
    found from the point with their outgoing weights set to 0 (where they are zero-type); the
    end point itself lies on the *silent* subspace ``Γ'`` (their incoming weights and bias 0,
    outgoing weights free), which `subspace_dim` and `subspace_distance` describe. ``Γ'`` is not
    counted by ``count_T``: `on_expansion_manifold` is False.

    `attempts`: every merge tolerance tried; `wall_time`: seconds spent.
    """

    kind: ExplanationKind | None
    reason: str
    wide_widths: tuple[int, ...]
    wide_loss: float
    wide_grad_norm_inf: float
    wide_label: Label | None = None
    wide_index: int | None = None
    wide_nullity: int | None = None
    family_kind: ExplanationKind | None = None
    family_key: str | None = None
    family_widths: tuple[int, ...] | None = None
    family_network: MLP | None = None
    family_loss: float | None = None
    family_grad_norm_inf: float | None = None
    family_target: float | None = None
    family_critical: bool | None = None
    family_label: Label | None = None
    family_index: int | None = None
    family_nullity: int | None = None
    family_steps: int | None = None
    merge_tol: float | None = None
    label_map: LabelMap | None = None
    split_ratios: tuple[tuple[tuple[float, ...], ...], ...] | None = None
    subspace_dim: int | None = None
    subspace_distance: float | None = None
    subspace_tol: float | None = None
    on_subspace: bool | None = None
    on_expansion_manifold: bool | None = None
    reduced_grad_norm_inf: float | None = None
    projected_grad_norm_inf: float | None = None
    split_curvature: tuple[SplitCurvature, ...] = ()
    predicted_wide_index: int | None = None
    predicted_wide_nullity: int | None = None
    subspace_index: int | None = None
    subspace_nullity: int | None = None
    silent_neurons: tuple[int, ...] = ()
    attempts: tuple[ReductionAttempt, ...] = ()
    wall_time: float = 0.0

    @property
    def explained(self) -> bool:
        """Whether there is an explanation (a critical point of a supported landscape)."""
        return self.kind is not None

    @property
    def wide_width(self) -> int:
        """Hidden neurons of the end point (``m`` for one hidden layer)."""
        return int(sum(self.wide_widths))

    @property
    def family_width(self) -> int | None:
        """Hidden neurons of the family network (``r`` for one hidden layer)."""
        return None if self.family_widths is None else int(sum(self.family_widths))

    @property
    def family_theta(self) -> np.ndarray | None:
        """The canonical family network's parameters, flat (``W1, b1, W2, …``)."""
        if self.family_network is None:
            return None
        return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64))
                               for a in self.family_network.arrays().values()])

    @property
    def index_at_least_narrow(self) -> bool | None:
        """``wide_index ≥ family_index`` (what the theory predicts), when both are known."""
        if self.wide_index is None or self.family_index is None:
            return None
        return self.wide_index >= self.family_index

    @property
    def inertia_agrees(self) -> bool | None:
        """Whether the inertia measured at the projection onto the subspace matches the exact
        prediction (``None`` without a prediction)."""
        if self.predicted_wide_index is None or self.subspace_index is None:
            return None
        return (self.subspace_index, self.subspace_nullity) == (self.predicted_wide_index,
                                                                 self.predicted_wide_nullity)

    def embedding(self) -> list[dict] | None:
        """JSON-ready embedding, one entry per hidden layer (family neurons in canonical order):
        `groups` (the wide neurons copying each family neuron), `split_ratios`, `signs`,
        `zero_neurons`, `zero_groups`, `silent_neurons` (see the class docstring)."""
        if self.label_map is None:
            return None
        out = []
        records = self.label_map.to_record()
        for ly, rec in enumerate(records, start=1):
            rec = dict(rec)
            rec["split_ratios"] = [list(g) for g in self.split_ratios[ly - 1]] if self.split_ratios else None
            silent = list(self.silent_neurons) if ly == len(records) else []
            rec["zero_neurons"] = [j for j in rec["zero_neurons"] if j not in silent]
            rec["silent_neurons"] = silent
            out.append(rec)
        return out

    def summary(self) -> str:
        """One line in words."""
        if self.kind is None:
            return f"no explanation: {self.reason}"
        fam = (f"family {self.family_key} (width {self.family_width}, {self.family_label.value}, "
               f"index {self.family_index})" if self.family_key is not None
               else f"no critical family (reduced width {self.family_width})")
        return f"{self.kind.value}: {fam}; {self.reason}"

    def to_record(self) -> dict:
        """JSON-ready record (no arrays; the family's parameters are :attr:`family_theta`)."""
        return {
            "explanation": None if self.kind is None else self.kind.value,
            "explanation_reason": self.reason,
            "family_kind": None if self.family_kind is None else self.family_kind.value,
            "family_key": self.family_key,
            "family_width": self.family_width,
            "family_widths": None if self.family_widths is None else list(self.family_widths),
            "family_loss": self.family_loss,
            "family_index": self.family_index,
            "family_nullity": self.family_nullity,
            "family_grad_norm_inf": self.family_grad_norm_inf,
            "family_target": self.family_target,
            "family_critical": self.family_critical,
            "family_label": None if self.family_label is None else self.family_label.value,
            "family_steps": self.family_steps,
            "wide_width": self.wide_width,
            "wide_widths": list(self.wide_widths),
            "wide_loss": self.wide_loss,
            "wide_grad_norm_inf": self.wide_grad_norm_inf,
            "wide_label": None if self.wide_label is None else self.wide_label.value,
            "wide_index": self.wide_index,
            "wide_nullity": self.wide_nullity,
            "index_at_least_narrow": self.index_at_least_narrow,
            "predicted_wide_index": self.predicted_wide_index,
            "predicted_wide_nullity": self.predicted_wide_nullity,
            "subspace_index": self.subspace_index,
            "subspace_nullity": self.subspace_nullity,
            "inertia_agrees": self.inertia_agrees,
            "merge_tol": self.merge_tol,
            "subspace_dim": self.subspace_dim,
            "subspace_distance": self.subspace_distance,
            "subspace_tol": self.subspace_tol,
            "on_subspace": self.on_subspace,
            "on_expansion_manifold": self.on_expansion_manifold,
            "reduced_grad_norm_inf": self.reduced_grad_norm_inf,
            "projected_grad_norm_inf": self.projected_grad_norm_inf,
            "silent_neurons": list(self.silent_neurons),
            "embedding": self.embedding(),
            "split_curvature": [s.to_record() for s in self.split_curvature],
            "attempts": [a.to_record() for a in self.attempts],
            "wall_time": self.wall_time,
        }


# ---------------------------------------------------------------------------------------------
# Canonical form and family key
# ---------------------------------------------------------------------------------------------


def _np(net: MLP):
    ws = [np.array(w, dtype=np.float64) for w in net.weights]
    bs = None if net.biases is None else [np.array(b, dtype=np.float64) for b in net.biases]
    return ws, bs


def _flat(ws, bs) -> np.ndarray:
    parts = []
    for i, w in enumerate(ws):
        parts.append(np.ravel(w))
        if bs is not None:
            parts.append(bs[i])
    return np.concatenate(parts)


def _quantum(theta: np.ndarray) -> float:
    scale = max(1.0, float(np.max(np.abs(theta), initial=0.0)))
    return float(np.ldexp(1.0, int(np.ceil(np.log2(scale))) - KEY_BITS))


def _canonical(net: MLP):
    """``(canonical network, perms, signs, quantised flat parameters)`` of ``net``.

    Relu-type neurons are first rescaled to unit incoming norm (bottom-up). Then, layer by layer
    from the input, each neuron's parameters are rounded to the key's quantum; for odd
    activations its sign is chosen so that the (first) largest entry of its rounded incoming
    row (weights, bias) is positive (for the last hidden layer the outgoing column decides when
    that row rounds to 0); the neurons are sorted by their rounded incoming row followed by their
    rounded outgoing column (last hidden layer) or its sorted (absolute, for odd activations)
    entries. Decisions are made on rounded values, so networks equal to well within the quantum
    get the same order and signs. ``perms[l][c]`` is the neuron of ``net`` that becomes neuron
    ``c``, multiplied by ``signs[l][c]``.
    """
    use_signs = net.activation in ODD_ACTIVATIONS
    ws, bs = _np(net)
    n_hidden = len(ws) - 1
    if activation_family(net.activation) in _RESCALED:
        for i in range(n_hidden):
            inc = ws[i] if bs is None else np.concatenate([ws[i], bs[i][:, None]], axis=1)
            c = np.linalg.norm(inc, axis=1)
            c = np.where(c > 0, c, 1.0)
            ws[i] = ws[i] / c[:, None]
            if bs is not None:
                bs[i] = bs[i] / c
            ws[i + 1] = ws[i + 1] * c[None, :]
    q = _quantum(_flat(ws, bs))
    perms, signs = [], []
    for i in range(n_hidden):
        last = i == n_hidden - 1
        inc = ws[i] if bs is None else np.concatenate([ws[i], bs[i][:, None]], axis=1)
        qi, qo = np.rint(inc / q), np.rint(ws[i + 1].T / q)
        s = np.ones(inc.shape[0])
        if use_signs:
            for j in range(inc.shape[0]):
                row = qi[j] if np.any(qi[j]) or not last else qo[j]
                if row.size and row[int(np.argmax(np.abs(row)))] < 0:
                    s[j] = -1.0
            qi, qo = qi * s[:, None], qo * s[:, None]
        out_key = qo if last else np.sort(np.abs(qo) if use_signs else qo, axis=1)
        key = np.concatenate([qi, out_key], axis=1)
        order = np.lexsort(key.T[::-1])
        sg = s[order]
        ws[i] = ws[i][order] * sg[:, None]
        ws[i + 1] = ws[i + 1][:, order] * sg[None, :]
        if bs is not None:
            bs[i] = bs[i][order] * sg
        perms.append(order)
        signs.append(sg)
    canon = MLP(tuple(jnp.asarray(w) for w in ws), None if bs is None else tuple(jnp.asarray(b) for b in bs),
                net.activation)
    quant = np.rint(_flat(ws, bs) / q).astype(np.int64)
    return canon, tuple(perms), tuple(signs), quant


def _key(net: MLP, quant: np.ndarray) -> str:
    head = f"{net.activation}|{'x'.join(str(w) for w in net.widths)}|{int(net.has_bias)}|{KEY_BITS}|"
    digest = hashlib.sha256(head.encode() + quant.astype("<i8").tobytes()).hexdigest()[:12]
    return f"r{'x'.join(str(w) for w in net.hidden_widths)}-{digest}"


def canonical_family(net: MLP) -> tuple[str, MLP]:
    """The family key of a network and its canonical form (see :func:`family_key`).

    The canonical form is the member of the network's orbit (under permutations of hidden
    neurons, sign flips of neurons for odd activations, positive rescalings of neurons for relu
    and leaky_relu) in which, layer by layer from the input, with every parameter rounded to the
    key's quantum: relu-type neurons have unit incoming norm (weights and bias); for odd
    activations the first largest entry of each neuron's rounded incoming row is positive (the
    outgoing column decides in the last hidden layer if that row rounds to 0); and the neurons are
    in ascending lexicographic order of their rounded incoming row followed by their rounded
    outgoing column (last hidden layer) or its sorted (absolute, for odd activations) entries.
    """
    if not isinstance(net, MLP):
        raise InputError(f"`net` must be a lossatlas MLP, got {type(net).__name__}.")
    if net.depth < 2:
        raise InputError("a family key needs a hidden layer (at least W1 and W2).")
    canon, _, _, quant = _canonical(net)
    return _key(canon, quant), canon


def family_key(net: MLP) -> str:
    """The family key of a network: ``r<hidden widths>-<12 hex digits>``, equal for networks that
    differ by a permutation of hidden neurons, a sign flip of neurons (odd activations) or a
    positive rescaling of neurons (relu, leaky_relu), and for networks that agree to well within
    the key's quantum.

    The digits hash the canonical parameters (:func:`canonical_family`) rounded to multiples of
    the quantum ``2^(e − KEY_BITS)`` (``2^e``: the largest parameter magnitude, at least 1,
    rounded up to a power of two; ~1e-6 relative), with the activation, the widths and the bias
    flag. Decisions (signs, order) are taken on the rounded values, so the key is exactly
    invariant under the symmetries. Two networks closer than the quantum still get different keys
    if a parameter falls between them onto a rounding boundary, which happens with probability
    ``~ 2 δ / quantum`` per parameter for networks a distance ``δ`` apart (Newton-polished points
    of one critical point are ~1e-11 apart: ~1e-5 per parameter); compare
    :attr:`Explanation.family_theta` to merge such keys. Keys
    are meant for minimal networks: two neurons that round to the same values may be ordered
    either way, which changes the key of a deeper layer.
    """
    return canonical_family(net)[0]


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------


def _unsupported(ls: Landscape) -> str | None:
    if ls.freeze:
        return (f"the landscape freezes {', '.join(ls.freeze)}: the reduction needs every array trainable "
                "(a narrow network has no counterpart of a frozen wide array)")
    if ls.lam != 0.0:
        return (f"the landscape has an L2 penalty (λ = {ls.lam}): splitting a neuron changes the penalty, so "
                "critical points of a narrow network do not embed as critical points of a wider one")
    if ls.model.depth < 2:
        return "the network has no hidden layer: there is nothing to reduce"
    return None


def _solver(ls: Landscape, gtol: float):
    """The narrow polish: the solver :func:`polish` would use after the flow."""
    if ls.n_params > _policy.DENSE_LIMIT:
        return NewtonMR(gtol=gtol)
    if not ls.is_population and not is_smooth(ls.model.activation):
        return PatternNewton(gtol=gtol)
    return SaddleNewton(gtol=gtol)


def _gn(ls: Landscape, theta) -> tuple[float, float]:
    L, g = ls.value_and_grad(jnp.asarray(theta))
    return float(L), float(np.max(np.abs(np.asarray(g)), initial=0.0))


#: A reduction is verified only if the family's loss equals the wide point's to this absolute plus
#: relative tolerance (see `_Candidate.loss_matches`).
LOSS_MATCH_ATOL = 1e-10
LOSS_MATCH_RTOL = 1e-6
#: A reduction whose reduced network (before any polish) has a loss further than this (absolute plus
#: relative) from the point's computes another function: it merged neurons that are close but distinct
#: (outcome ``"false_merge"``). Loose on purpose: a true reduction within the merge threshold ``δ``
#: changes the loss by ``O(δ²)`` at a critical point.
FALSE_MERGE_ATOL = 1e-8
FALSE_MERGE_RTOL = 1e-3


def _false_merge(reduced_loss: float, wide_loss: float) -> bool:
    scale = max(abs(reduced_loss), abs(wide_loss))
    return not abs(reduced_loss - wide_loss) <= FALSE_MERGE_ATOL + FALSE_MERGE_RTOL * scale


@dataclasses.dataclass
class _Candidate:
    tol: float
    red: object
    narrow_ls: Landscape
    theta_r: np.ndarray
    loss: float
    grad: float
    target: float
    floor: float
    critical: bool
    steps: int
    reduced_grad: float
    reduced_loss: float = np.nan
    subspace: object = None
    distance: float = np.inf
    thr: float = 0.0
    wide_loss: float = np.nan
    silent: tuple[int, ...] = ()
    theta_s: np.ndarray | None = None  # the point with its silent neurons' outgoing weights set to 0

    @property
    def loss_matches(self) -> bool:
        """Every point of the expansion subspace computes the narrow network's function, so a wide point
        on (or next to) it has the family's loss: to :data:`LOSS_MATCH_ATOL` + :data:`LOSS_MATCH_RTOL`
        relative. This rejects a loose merge that lands on a different critical point (e.g. a zero-loss
        end point "explained" by a narrow minimum of loss 5e-5)."""
        scale = max(abs(self.loss), abs(self.wide_loss))
        return bool(abs(self.loss - self.wide_loss) <= LOSS_MATCH_ATOL + LOSS_MATCH_RTOL * scale)

    @property
    def verified(self) -> bool:
        return self.critical and self.distance <= self.thr and self.loss_matches


def _silent_neurons(net: MLP, thr: float) -> tuple[int, ...]:
    """Neurons of the last hidden layer with incoming weights and bias within ``thr`` of 0 and an
    outgoing weight above it, when ``σ(0) = 0`` (they output 0 whatever their outgoing weights)."""
    if float(get_activation(net.activation)(jnp.zeros(()))) != 0.0:
        return ()
    W = np.asarray(net.weights[-2], dtype=np.float64)
    if net.biases is not None:
        W = np.concatenate([W, np.asarray(net.biases[-2], dtype=np.float64)[:, None]], axis=1)
    quiet = np.max(np.abs(W), axis=1, initial=0.0) <= thr
    speaks = np.max(np.abs(np.asarray(net.weights[-1])), axis=0, initial=0.0) > thr
    return tuple(int(j) for j in np.flatnonzero(quiet & speaks))


def _silence(net: MLP, silent: tuple[int, ...], *, outgoing_from: MLP | None = None) -> MLP:
    """``net`` with the outgoing weights of the `silent` neurons set to 0 (``outgoing_from=None``),
    or with their incoming weights and bias set to 0 and their outgoing weights taken from
    `outgoing_from` (the projection onto the silent subspace ``Γ'``)."""
    ws, bs = _np(net)
    idx = list(silent)
    if outgoing_from is None:
        ws[-1][:, idx] = 0.0
    else:
        ws[-2][idx, :] = 0.0
        if bs is not None:
            bs[-2][idx] = 0.0
        ws[-1][:, idx] = np.asarray(outgoing_from.weights[-1], dtype=np.float64)[:, idx]
    return MLP(tuple(jnp.asarray(w) for w in ws), None if bs is None else tuple(jnp.asarray(b) for b in bs),
               net.activation)


def _silent_in(net: MLP, silent: tuple[int, ...]) -> float:
    """``max |incoming weight or bias|`` of the silent neurons (their distance from ``Γ'``)."""
    if not silent:
        return 0.0
    idx = list(silent)
    vals = [np.abs(np.asarray(net.weights[-2])[idx, :]).ravel()]
    if net.biases is not None:
        vals.append(np.abs(np.asarray(net.biases[-2])[idx]))
    return float(np.max(np.concatenate(vals), initial=0.0))


@dataclasses.dataclass
class _ZeroFamily:
    """The width-0 family: every neuron of the last hidden layer zero-type or silent, so the network
    computes its output bias (0 without biases)."""

    tol: float
    theta0: np.ndarray  # the end point with the last hidden layer's outgoing weights 0 and b_L polished
    loss: float
    grad: float  # ||∇_{b_L} L||_∞ at theta0 (0 without biases: no parameter)
    target: float
    distance: float
    thr: float
    wide_loss: float
    silent: tuple[int, ...]
    zero: tuple[int, ...]
    hess_eigs: np.ndarray
    steps: int
    reduced_loss: float = np.nan  # the loss with the outgoing weights set to 0, before b_L is polished

    @property
    def critical(self) -> bool:
        return self.grad <= self.target

    @property
    def verified(self) -> bool:
        scale = max(abs(self.loss), abs(self.wide_loss))
        return (self.critical and self.distance <= self.thr
                and abs(self.loss - self.wide_loss) <= LOSS_MATCH_ATOL + LOSS_MATCH_RTOL * scale)


def _zero_family(ls: Landscape, theta: np.ndarray, net: MLP, tol: float, gtol: float,
                 wide_loss: float) -> _ZeroFamily:
    """The width-0 reading of a point whose last hidden layer reduces to nothing: the output bias is
    polished by Newton (a few steps on ``d_out`` parameters), and the point's distance from the set
    where every neuron of the last hidden layer is zero-type (outgoing weights 0) or silent
    (incoming weights and bias 0, σ(0) = 0) is measured neuron by neuron."""
    import jax

    thr = tol * max(1.0, float(np.max(np.abs(theta))))
    ws, bs = _np(net)
    A = ws[-1]  # (d_out, m)
    W = ws[-2] if bs is None else np.concatenate([ws[-2], bs[-2][:, None]], axis=1)
    out_mag = np.max(np.abs(A), axis=0, initial=0.0)
    in_mag = np.max(np.abs(W), axis=1, initial=0.0)
    can_silence = float(get_activation(net.activation)(jnp.zeros(()))) == 0.0
    silent = tuple(int(j) for j in np.flatnonzero(can_silence & (in_mag < out_mag)))
    zero = tuple(int(j) for j in range(A.shape[1]) if j not in silent)
    dist_neurons = float(np.max(np.where(np.isin(np.arange(A.shape[1]), silent), in_mag, out_mag), initial=0.0))
    ws0 = [w.copy() for w in ws]
    ws0[-1][:] = 0.0
    bs0 = None if bs is None else [b.copy() for b in bs]
    base = _flat(ws0, bs0)
    reduced_loss = float(ls.loss(jnp.asarray(base)))
    if bs0 is None:
        return _ZeroFamily(tol, base, reduced_loss, 0.0, gtol, dist_neurons, thr, wide_loss, silent, zero,
                           np.zeros(0), 0, reduced_loss)
    n_out = bs0[-1].size
    start = base.size - n_out  # b_L is the last block of θ

    def f(b):
        return ls.loss(jnp.asarray(base).at[start:].set(b))

    g_fn, h_fn = jax.jit(jax.grad(f)), jax.jit(jax.hessian(f))
    b = jnp.asarray(bs0[-1])
    steps = 0
    while steps < 20:
        g = np.asarray(g_fn(b))
        if np.max(np.abs(g), initial=0.0) <= 1e-15 * max(1.0, float(np.max(np.abs(np.asarray(b))))):
            break
        steps += 1
        b = b - jnp.asarray(np.linalg.lstsq(np.asarray(h_fn(b)), g, rcond=None)[0])
    theta0 = np.asarray(jnp.asarray(base).at[start:].set(b), dtype=np.float64)
    loss, grad = _gn(ls, theta0)
    gvec = np.asarray(g_fn(b))
    floor = measured_floor(ls, theta0)
    eigs = np.linalg.eigvalsh(np.asarray(h_fn(b)))
    dist = max(dist_neurons, float(np.max(np.abs(np.asarray(b) - bs[-1]), initial=0.0)))
    return _ZeroFamily(tol, theta0, loss, float(np.max(np.abs(gvec), initial=0.0)),
                       max(gtol, _policy.CRITICAL_MARGIN * floor), dist, thr, wide_loss, silent, zero,
                       eigs, steps, reduced_loss)


def _zero_explanation(ls, z: _ZeroFamily, net: MLP, is_global: bool, global_min_value, common, wide_widths,
                      wide_loss, wide_gn, t_start) -> Explanation:
    scale = float(np.max(np.abs(z.hess_eigs), initial=0.0))
    tol = eigenvalue_tolerance(scale, max(1, z.hess_eigs.size), grad_norm=z.grad)
    index = int(np.sum(z.hess_eigs < -tol))
    nullity = int(np.sum(np.abs(z.hess_eigs) <= tol))
    at_global = global_min_value is not None and abs(z.loss - float(global_min_value)) <= (
        LOSS_MATCH_ATOL + LOSS_MATCH_RTOL * max(1.0, abs(z.loss)))
    label = (Label.global_minimum if at_global else Label.minimum if index == 0 and nullity == 0
             else Label.strict_saddle if index > 0 else Label.degenerate_minimum)
    b = z.theta0[z.theta0.size - z.hess_eigs.size:] if z.hess_eigs.size else np.zeros(0)
    q = _quantum(np.abs(b)) if b.size else 1.0
    head = f"{net.activation}|0|{int(net.has_bias)}|{KEY_BITS}|"
    digest = hashlib.sha256(head.encode() + np.rint(b / q).astype("<i8").tobytes()).hexdigest()[:12]
    n_hidden = len(net.hidden_widths)
    d_out = int(np.asarray(net.weights[-1]).shape[0])
    n_in = int(np.asarray(net.weights[-2]).shape[1]) + (net.biases is not None)
    dim = (len(z.zero) * n_in + len(z.silent) * d_out) if n_hidden == 1 else None
    reason = (f"every neuron of the last hidden layer is zero-type or silent at merge tolerance {z.tol:g}: the "
              f"family is the width-0 network (the output bias alone"
              + (f", polished: ||∇L_0||_∞ = {z.grad:.3g} ≤ {z.target:.3g}" if z.hess_eigs.size else ", no parameter")
              + f"), and the point lies {z.distance:.3g} from its subspace")
    if is_global:
        reason = "labelled a global minimum; " + reason
    return Explanation(
        ExplanationKind.global_minimum if is_global else ExplanationKind.reducible, reason, wide_widths, wide_loss,
        wide_gn, family_kind=ExplanationKind.reducible, family_key=f"r{'x'.join(['0'] * n_hidden)}-{digest}",
        family_widths=(0,) * n_hidden, family_network=None, family_label=label, family_index=index,
        family_nullity=nullity, family_loss=z.loss, family_grad_norm_inf=z.grad, family_target=z.target,
        family_critical=True, family_steps=z.steps, merge_tol=z.tol, subspace_dim=dim,
        subspace_distance=z.distance, subspace_tol=z.thr, on_subspace=True, on_expansion_manifold=not z.silent,
        reduced_grad_norm_inf=z.grad, projected_grad_norm_inf=_gn(ls, z.theta0)[1], silent_neurons=z.silent,
        wall_time=time.perf_counter() - t_start, **common)


def _try(ls, theta, red, tol, gtol, budget, wide_loss, silent=(), theta_s=None) -> _Candidate:
    """Polish the reduction `red` (of the point `theta_s`: `theta` with its `silent` neurons'
    outgoing weights set to 0) and measure the distance of `theta` from the family's subspace."""
    theta_s = theta if theta_s is None else theta_s
    narrow_ls = ls.with_model(red.narrow)
    theta0 = narrow_ls.ravel()
    L0, g0 = _gn(narrow_ls, theta0)
    sol = find_critical_point(narrow_ls, theta0, _solver(narrow_ls, gtol), max_steps=_policy.NARROW_NEWTON_STEPS,
                              throw=False, budget=budget)
    theta_r = np.asarray(sol.theta, dtype=np.float64)
    thr = tol * max(1.0, float(np.max(np.abs(theta))))
    if not np.all(np.isfinite(theta_r)):
        return _Candidate(tol, red, narrow_ls, theta_r, np.nan, np.inf, gtol, 0.0, False, int(sol.stats.num_steps),
                          g0, L0, thr=thr, wide_loss=wide_loss, theta_s=theta_s)
    loss, gn = _gn(narrow_ls, theta_r)
    floor = measured_floor(narrow_ls, theta_r)
    target = max(float(gtol), _policy.CRITICAL_MARGIN * floor)
    cand = _Candidate(tol, red, narrow_ls, theta_r, loss, gn, target, floor, gn <= target, int(sol.stats.num_steps),
                      g0, L0, thr=thr, wide_loss=wide_loss, theta_s=theta_s)
    cand.subspace = expansion_subspace(narrow_ls.unravel(jnp.asarray(theta_r)), red.label_map)
    # Γ' of the silent neurons: Γ with their incoming rows fixed at 0 and their outgoing columns free
    cand.distance = max(cand.subspace.distance(np.asarray(theta_s)), _silent_in(ls.unravel(jnp.asarray(theta)), silent))
    return cand


def _canonical_label_map(label_map: LabelMap, perms, signs) -> LabelMap:
    labels, sgns = [], []
    for ly, (lab, sg) in enumerate(zip(label_map.labels, label_map.signs, strict=True)):
        inv = np.argsort(perms[ly])
        new_lab, new_sg = [], []
        for x, s in zip(lab, sg, strict=True):
            if x >= 1:
                c = int(inv[x - 1])
                new_lab.append(c + 1)
                new_sg.append(int(s * signs[ly][c]))
            else:
                new_lab.append(int(x))
                new_sg.append(int(s))
        labels.append(tuple(new_lab))
        sgns.append(tuple(new_sg))
    return LabelMap(tuple(labels), label_map.narrow_widths, tuple(sgns))


def _split_ratios(wide: MLP, label_map: LabelMap):
    """Per hidden layer and family neuron, the shares ``γ_j`` of its copies' outgoing weights.

    The outgoing weights of a copy ``j`` (signed by ``s_j``) are read as one vector: its column of
    ``W_L`` for the last hidden layer, else its column of ``W_{l+1}`` summed (with signs) over
    the copies of each neuron of layer ``l + 1``. ``γ_j`` is that vector's component along the
    group's total, so the shares of a group sum to 1; for one output they are ``s_j a_j / Σ s_k a_k``.
    """
    ws, _ = _np(wide)
    n_hidden = len(ws) - 1
    out = []
    for ly in range(1, n_hidden + 1):
        col = ws[ly]  # W_{l+1}: columns are the neurons of layer l
        sg = np.asarray(label_map.signs[ly - 1], dtype=np.float64)
        if ly < n_hidden:  # aggregate the rows over the copy groups of layer l + 1
            nsg = np.asarray(label_map.signs[ly], dtype=np.float64)
            col = np.stack([np.sum(nsg[list(g), None] * col[list(g)], axis=0) for g in label_map.groups(ly + 1)])
        layer = []
        for group in label_map.groups(ly):
            vecs = col[:, list(group)].T * sg[list(group), None]
            total = np.sum(vecs, axis=0)
            nrm = float(total @ total)
            layer.append(tuple(float(v @ total / nrm) if nrm > 0 else float("nan") for v in vecs))
        out.append(tuple(layer))
    return tuple(out)


def _definiteness(lam: np.ndarray, tol: float) -> str:
    pos, neg = bool(np.any(lam > tol)), bool(np.any(lam < -tol))
    if pos and neg:
        return "indefinite"
    if pos:
        return "positive_definite" if np.all(lam > tol) else "positive_semidefinite"
    if neg:
        return "negative_definite" if np.all(lam < -tol) else "negative_semidefinite"
    return "zero"


def _gamma_form(gam: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``diag(γ)`` restricted to ``γ^⊥`` (orthonormal basis)."""
    _, _, Vt = np.linalg.svd(gam[None, :])
    P = Vt[1:].T
    return np.linalg.eigvalsh(P.T @ (gam[:, None] * P))


def _split_curvature(ls: Landscape, family: MLP, label_map: LabelMap, ratios) -> tuple[SplitCurvature, ...]:
    out = []
    for ly in range(1, family.depth):
        for c, group in enumerate(label_map.groups(ly)):
            if len(group) < 2:
                continue
            split = split_neuron(family, c, (0.5, 0.5), layer=ly)
            sls = ls.with_model(split)
            theta_s = sls.ravel()
            n = family.widths[ly - 1] + int(family.has_bias)
            V = np.stack([split_direction(family, c, 0.5, np.eye(n)[a], layer=ly) for a in range(n)])
            HV = np.asarray(sls.hvp_batch(theta_s, jnp.asarray(V.T)))
            M = V @ HV
            B = 4.0 * 0.5 * (M + M.T)  # v^T H v = γ(1 − γ) u^T B u with γ = 1/2
            lam = np.linalg.eigvalsh(B)
            _, g = sls.value_and_grad(theta_s)
            # B is read off the Hessian: its round-off is that of the Hessian (||H||₂ ≥ ||HV||₂/||V||₂),
            # times 4; near a zero-loss minimum B itself vanishes and only that round-off is left.
            h_scale = float(np.linalg.norm(HV, 2) / max(np.linalg.norm(V, 2), 1e-300))
            tol = eigenvalue_tolerance(max(float(np.max(np.abs(lam), initial=0.0)), 4.0 * h_scale), sls.n_params,
                                       grad_norm=4.0 * float(np.linalg.norm(np.asarray(g))))
            gam = np.asarray(ratios[ly - 1][c], dtype=np.float64)
            mu = _gamma_form(gam)
            mu_tol = 1e-9 * max(1.0, float(np.max(np.abs(gam))))
            lp, lz, ln = lam > tol, np.abs(lam) <= tol, lam < -tol
            mp, mz, mn = mu > mu_tol, np.abs(mu) <= mu_tol, mu < -mu_tol
            neg = int(np.sum(lp) * np.sum(mn) + np.sum(ln) * np.sum(mp))
            zero = int(np.sum(lz) * mu.size + (lam.size - np.sum(lz)) * np.sum(mz))
            out.append(SplitCurvature(ly, c, tuple(int(j) for j in group), tuple(float(x) for x in gam), lam,
                                      float(tol), _definiteness(lam, tol), neg, zero))
    return tuple(out)


def explain(
    ls: Landscape,
    theta,
    *,
    end: EndPoint | None = None,
    global_min_value: float | None = None,
    gtol: float | None = None,
    budget: Budget | float | None = None,
    classification: Classification | None = None,
) -> Explanation:
    """Explain a critical end point by the narrowest network it comes from.

    **Steps** (constants from :mod:`lossatlas.pipeline.policy`):

    1. **Critical?** The end point's classification is taken from `end` (or `classification`),
       else made with :func:`lossatlas.classify` (criticality threshold
       ``CRITICAL_MARGIN · max(gtol, floor)``). A point labelled ``not_critical`` gets no
       explanation (``kind is None``); so does a landscape with frozen arrays or an L2 penalty.
    2. **Reduce and polish.** For each merge tolerance of ``PROJECTION_TOLS``, tightest first:
       :func:`lossatlas.symmetry.reduce_network`; if it reduces, Newton on the reduced network
       as a critical point of the narrow problem (``NARROW_NEWTON_STEPS`` steps, the solver
       :func:`polish` would use), then verify: ``||∇L_r||_∞ ≤ max(gtol, CRITICAL_MARGIN ·
       floor_r)`` at the polished narrow point, and the end point within the merge threshold
       ``tol · max(1, max|θ|)`` of its expansion subspace, with the family's loss equal to the
       end point's (to ``LOSS_MATCH_ATOL + LOSS_MATCH_RTOL · |L|``). The narrowest verified
       reduction (every tolerance is tried; ties go to the tightest) is the family
       (``reducible``). If none verifies: ``irreducible`` (the end point is its own family) if
       the tightest tolerance does not reduce the point or every reduction is a false merge (its
       reduced network has another loss: close but distinct neurons merged), else
       ``unexplained``. A last hidden layer that reduces to nothing is read as the width-0
       network (the output bias alone), and silent neurons (zero incoming weights, σ(0) = 0) as
       removable (see :class:`Explanation`).
    3. **Name it.** The family network is put in canonical form and keyed (:func:`family_key`),
       and classified (with `global_min_value`) for its label, index and nullity.
    4. **Record** the embedding (copies with split ratios, zero-type neurons and zero groups,
       subspace dimension and distance) and the theory checks (gradient at the projection,
       index inequality, Fukumizu-Amari split curvature, exact inertia prediction).

    ``kind`` is ``global_minimum`` whenever the end point is labelled one; `family_kind` keeps
    the reducible / irreducible / unexplained verdict.

    **Arguments:** `ls`, `theta` (the end point), `end` (its :class:`EndPoint`, whose `gtol`,
    floor and classification are used), `global_min_value` (the landscape's, when known),
    `gtol` (default: ``end.gtol``, else ``policy.GTOL``), `budget` (a running
    :class:`lossatlas.Budget` or seconds; looser tolerances are not tried once it has run out),
    `classification` (the end point's, if already made; e.g. by ``lossatlas classify``).

    Not covered: frozen arrays and L2 penalties (no explanation, with the reason); a layer that
    reduces to width 0 (no explanation). Neurons of the last hidden layer with zero incoming
    weights (σ(0) = 0) are found here (`silent_neurons`); the reduction does not see relu
    rescalings, silent neurons of lower layers or linear dependencies between features (see
    :func:`lossatlas.symmetry.reduce_network`), so such points come out irreducible.
    """
    t_start = time.perf_counter()
    if not isinstance(ls, Landscape):
        raise InputError(f"`ls` must be a lossatlas Landscape, got {type(ls).__name__}.")
    theta = np.asarray(ls.check_theta(theta), dtype=np.float64)
    if end is not None:
        if not isinstance(end, EndPoint):
            raise InputError(f"`end` must be a lossatlas EndPoint, got {type(end).__name__}.")
        if not np.array_equal(np.asarray(end.theta), theta):
            raise InputError("`end` must be the end point at `theta` (call explain(ls, end.theta, end=end)).")
    if classification is not None and not isinstance(classification, Classification):
        raise InputError(f"`classification` must be a lossatlas Classification, got {type(classification).__name__}.")
    if gtol is None:
        gtol = end.gtol if end is not None else _policy.GTOL
    gtol = float(gtol)
    if not (gtol >= 0 and np.isfinite(gtol)):
        raise InputError(f"`gtol` must be a finite number >= 0, got {gtol}.")
    if budget is not None and not isinstance(budget, Budget):
        budget = Budget(budget)
    wide_widths = tuple(ls.model.hidden_widths)
    wide_loss, wide_gn = _gn(ls, theta)

    def none(reason, **kw) -> Explanation:
        return Explanation(None, reason, wide_widths, wide_loss, wide_gn,
                           wall_time=time.perf_counter() - t_start, **kw)

    why = _unsupported(ls)
    if why is not None:
        return none(why)
    cls = classification
    if cls is None and end is not None:
        cls = end.classification
    floor = None if end is None else float(end.gradient_floor)
    if cls is None:  # the pipeline's rule: critical when ||∇L||_∞ ≤ CRITICAL_MARGIN · max(gtol, floor)
        if floor is None:
            floor = measured_floor(ls, theta)
        cls = classify(ls, theta, global_min_value=global_min_value,
                       grad_tol=_policy.critical_tolerance(gtol, floor))
    wide = {"wide_label": cls.label, "wide_index": int(cls.index), "wide_nullity": int(cls.nullity)}
    if cls.label is Label.not_critical:
        return none(f"the point is not critical, and only critical points are explained ({cls.reason})", **wide)
    net = ls.unravel(jnp.asarray(theta))

    # 2. reduce, polish, verify: tightest tolerance first
    attempts: list[ReductionAttempt] = []
    seen: set = set()
    chosen: _Candidate | None = None
    best_failed: _Candidate | None = None
    primary = None  # what the tightest tolerance did: "minimal", "reduces" or "no_network"
    out_of_time = False
    zero_fam: _ZeroFamily | None = None  # the width-0 family, once verified
    for k, tol in enumerate(_policy.PROJECTION_TOLS):
        if budget is not None and budget.expired():
            out_of_time = True
            attempts.append(ReductionAttempt(float(tol), "time_limit_reached"))
            break
        silent = _silent_neurons(net, float(tol) * max(1.0, float(np.max(np.abs(theta)))))
        net_s = _silence(net, silent) if silent else net
        try:
            red = reduce_network(net_s, tol=tol)
        except InputError:
            primary = primary or "no_network"
            z = _zero_family(ls, theta, net, float(tol), gtol, wide_loss) if zero_fam is None else None
            if z is not None and z.verified:
                zero_fam = z
            attempts.append(ReductionAttempt(float(tol), "no_network" if z is None else
                                             ("verified" if z.verified else
                                              "false_merge" if _false_merge(z.reduced_loss, z.wide_loss) else
                                              "off_subspace" if z.critical else "not_critical"),
                                             (0,) * len(net.hidden_widths), None if z is None else z.grad,
                                             None if z is None else z.distance))
            continue
        widths = tuple(red.narrow.hidden_widths)
        if k == 0:
            primary = "minimal" if red.is_minimal else "reduces"
        if red.is_minimal:
            attempts.append(ReductionAttempt(float(tol), "minimal", widths))
            continue
        sig = (red.label_map.labels, red.label_map.signs, silent)
        if sig in seen:
            attempts.append(ReductionAttempt(float(tol), "same", widths))
            continue
        seen.add(sig)
        cand = _try(ls, theta, red, float(tol), gtol, budget, wide_loss, silent,
                    np.asarray(ls.ravel(net_s), dtype=np.float64) if silent else None)
        cand.silent = silent
        outcome = ("verified" if cand.verified else "false_merge" if _false_merge(cand.reduced_loss, cand.wide_loss)
                   else "off_subspace" if cand.critical else "not_critical")
        attempts.append(ReductionAttempt(float(tol), outcome, widths, cand.grad,
                                         None if not np.isfinite(cand.distance) else cand.distance))
        if cand.verified:
            # the narrowest verified reduction explains the point: a tight tolerance may merge only
            # some copies of a neuron, a looser one the rest (every tolerance is tried)
            if chosen is None or sum(cand.red.narrow.hidden_widths) < sum(chosen.red.narrow.hidden_widths):
                chosen = cand
            continue
        if best_failed is None or cand.grad < best_failed.grad:
            best_failed = cand
    is_global = cls.label is Label.global_minimum
    common = dict(attempts=tuple(attempts), **wide)
    if zero_fam is not None:  # width 0: the narrowest there is
        return _zero_explanation(ls, zero_fam, net, is_global, global_min_value, common, wide_widths, wide_loss,
                                 wide_gn, t_start)

    # A reduction whose reduced network computes another function than the point (its loss differs) is
    # a false merge of neurons that are close but distinct (e.g. at a large max|θ|, where the relative
    # merge threshold is loose). If every reduction tried is a false merge, the point does not reduce:
    # it is its own family. `unexplained` stays for true reductions (same function) whose narrow
    # network is not critical or whose family's subspace does not hold the point.
    false_merges = (chosen is None and primary in ("reduces", "no_network") and not out_of_time
                    and any(a.outcome == "false_merge" for a in attempts)
                    and not any(a.outcome in ("not_critical", "off_subspace") for a in attempts))
    if chosen is None and primary == "reduces" and not false_merges:  # reduces, but to no verified critical point
        fam = best_failed
        kind = ExplanationKind.global_minimum if is_global else ExplanationKind.unexplained
        reason = ("the point reduces, but no reduced network polishes to a critical point of the narrow problem "
                  "whose expansion subspace holds the point: see `attempts`")
        if out_of_time:
            reason += " (the time budget ran out before every tolerance was tried)"
        return Explanation(
            kind, reason, wide_widths, wide_loss, wide_gn, family_kind=ExplanationKind.unexplained,
            family_widths=tuple(fam.red.narrow.hidden_widths), family_loss=fam.loss, family_grad_norm_inf=fam.grad,
            family_target=fam.target, family_critical=fam.critical, family_steps=fam.steps, merge_tol=fam.tol,
            subspace_dim=None if fam.subspace is None else fam.subspace.dim,
            subspace_distance=None if not np.isfinite(fam.distance) else fam.distance, subspace_tol=fam.thr,
            on_subspace=bool(fam.distance <= fam.thr), on_expansion_manifold=fam.red.on_expansion_manifold,
            reduced_grad_norm_inf=fam.reduced_grad, wall_time=time.perf_counter() - t_start, **common)
    if chosen is None and primary == "no_network" and not false_merges:
        return none("a hidden layer reduces to width 0 (every neuron zero-type): the function is that of a "
                    "network without that layer, which lossatlas cannot represent as an MLP", **common)
    if chosen is None and out_of_time and primary is None:
        return none("the time budget ran out before the point was reduced", **common)

    if chosen is not None:  # reducible
        family_kind = ExplanationKind.reducible
        narrow_ls, theta_r, red = chosen.narrow_ls, chosen.theta_r, chosen.red
        fam_net = narrow_ls.unravel(jnp.asarray(theta_r))
        fam_cls = classify(narrow_ls, theta_r, global_min_value=global_min_value,
                           grad_tol=_policy.critical_tolerance(gtol, chosen.floor))
        label_map, sub, dist, thr = red.label_map, chosen.subspace, chosen.distance, chosen.thr
        silent = chosen.silent
        if silent:  # onto Γ': the projection of the silenced point, with the silent neurons' incoming
            # weights 0 and their outgoing weights those of θ
            proj_net = _silence(ls.unravel(jnp.asarray(sub.project(chosen.theta_s))),
                                silent, outgoing_from=net)
            proj = np.asarray(ls.ravel(proj_net), dtype=np.float64)
            n_in = int(np.asarray(net.weights[-2]).shape[1]) + (net.biases is not None)
            silent_dim = sub.dim + len(silent) * (int(np.asarray(net.weights[-1]).shape[0]) - n_in)
        else:
            proj = sub.project(theta)
        _, proj_gn = _gn(ls, proj)
        fam_vals = dict(family_loss=chosen.loss, family_grad_norm_inf=chosen.grad, family_target=chosen.target,
                        family_critical=True, family_steps=chosen.steps, merge_tol=chosen.tol,
                        reduced_grad_norm_inf=chosen.reduced_grad,
                        on_expansion_manifold=red.on_expansion_manifold and not silent)
        reason = (f"reduces to width {sum(red.narrow.hidden_widths)} at merge tolerance {chosen.tol:g}"
                  + (f" ({len(silent)} silent neuron(s): zero incoming weights, σ(0) = 0)" if silent else "")
                  + f"; the polished narrow point is critical (||∇L_r||_∞ = {chosen.grad:.3g} ≤ {chosen.target:.3g}) "
                  f"and the point lies {dist:.3g} from its " + ("silent subspace" if silent else "expansion subspace"))
    else:  # irreducible: its own family
        family_kind = ExplanationKind.irreducible
        silent = ()
        fam_net, fam_cls = net, cls
        label_map = LabelMap.identity(net.hidden_widths)
        sub = expansion_subspace(net, label_map)
        dist, proj_gn = sub.distance(theta), wide_gn
        thr = float(_policy.PROJECTION_TOLS[0]) * max(1.0, float(np.max(np.abs(theta))))
        if floor is None:
            floor = measured_floor(ls, theta)
        fam_vals = dict(family_loss=wide_loss, family_grad_norm_inf=wide_gn,
                        family_target=max(gtol, _policy.CRITICAL_MARGIN * floor), family_critical=True,
                        family_steps=0, merge_tol=float(_policy.PROJECTION_TOLS[0]), reduced_grad_norm_inf=wide_gn,
                        on_expansion_manifold=True)
        tried = ", ".join(f"{t:g}" for t in _policy.PROJECTION_TOLS)
        reason = f"does not reduce at merge tolerances {tried} (or no reduction verifies): its own family"
        if false_merges:
            merged = ", ".join(f"{a.tol:g}" for a in attempts if a.outcome == "false_merge")
            reason = (f"the merges at tolerance(s) {merged} give networks of another loss (neurons close but "
                      "distinct merged), and no reduction verifies: its own family")
    if is_global:
        reason = "labelled a global minimum; " + reason
    canon, perms, signs, quant = _canonical(fam_net)
    cmap = _canonical_label_map(label_map, perms, signs)
    ratios = _split_ratios(net, cmap)
    curv, pred_index, pred_null, sub_inertia = (), None, None, (None, None)
    if is_smooth(net.activation) and fam_cls.label is not Label.not_critical:
        curv = _split_curvature(ls, canon, cmap, ratios)
        copies_only = all(x >= 1 for lab in cmap.labels for x in lab)
        if family_kind is ExplanationKind.reducible and net.depth == 2 and net.widths[-1] == 1 and copies_only:
            pred_index = int(fam_cls.index) + sum(s.split_index for s in curv)
            pred_null = int(fam_cls.nullity) + (sum(net.hidden_widths) - sum(canon.hidden_widths)) \
                + sum(s.split_nullity for s in curv)
            if ls.n_params <= _policy.DENSE_LIMIT:
                proj = sub.project(theta)
                g = np.asarray(ls.grad(jnp.asarray(proj)))
                spec = dense_spectrum(raw_hessian(ls, jnp.asarray(proj)), grad_norm=float(np.linalg.norm(g)))
                sub_inertia = (int(spec.index), int(spec.nullity))
    kind = ExplanationKind.global_minimum if is_global else family_kind
    return Explanation(
        kind, reason, wide_widths, wide_loss, wide_gn, family_kind=family_kind, family_key=_key(canon, quant),
        family_widths=tuple(canon.hidden_widths), family_network=canon, family_label=fam_cls.label,
        family_index=int(fam_cls.index), family_nullity=int(fam_cls.nullity), label_map=cmap, split_ratios=ratios,
        subspace_dim=silent_dim if silent else sub.dim, subspace_distance=float(dist), subspace_tol=float(thr),
        on_subspace=bool(dist <= thr), projected_grad_norm_inf=proj_gn, split_curvature=curv,
        predicted_wide_index=pred_index, predicted_wide_nullity=pred_null, subspace_index=sub_inertia[0],
        subspace_nullity=sub_inertia[1], silent_neurons=tuple(silent), wall_time=time.perf_counter() - t_start,
        **fam_vals, **common)
