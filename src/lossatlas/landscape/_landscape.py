"""The loss landscape: model + data + loss (+ L2 penalty), seen as a function of a flat vector.

``L(θ) = 1/(2N) Σ_i ||f(x_i) − y_i||² + λ Σ_l (||W_l||_F² + ||b_l||²)`` on a data set, or the
population loss ``½ E_{x~N(0,I)} ||f(x) − f_teacher(x)||²`` (closed form, two-layer bias-free
``relu``/``erf`` networks) when a teacher network is given instead of data.

Losses (``loss=``):

- ``"mse"`` (default): ``1/(2N) Σ_i ||f(x_i) − y_i||²``. In PyTorch terms this is
  ``0.5 * nn.MSELoss(reduction="sum")(f, y) / N``, i.e. ``d_out/2`` times the default
  ``nn.MSELoss()`` (which also averages over the ``d_out`` outputs).
- ``"cross_entropy"``: with ``k ≥ 2`` outputs, softmax cross-entropy with mean reduction,
  ``1/N Σ_i (logsumexp(f(x_i)) − f(x_i)·y_i)`` for one-hot rows ``y_i`` (PyTorch's
  ``nn.CrossEntropyLoss()`` with class-index targets); with one output, the logistic loss
  ``1/N Σ_i (softplus(f(x_i)) − y_i f(x_i))`` for ``y_i ∈ {0, 1}`` (``nn.BCEWithLogitsLoss()``).
  Both are computed in stable forms, ``log(1 + Σ_{j≠y} e^{f_j − f_y})`` (logsumexp, then
  ``logaddexp(0, ·)``) and ``softplus((1 − 2y) f)``, accurate to relative round-off even when
  the loss is tiny and finite for any logits. The cross-entropy is > 0 everywhere
  and has no zero-loss global minimum. If the network classifies every sample correctly
  (every margin ``f_{y_i} − max_{j≠y_i} f_j``, or ``(2y_i − 1) f`` for one output, is > 0;
  see :meth:`Landscape.margins`), then without penalty the loss decreases strictly along
  ``t·(W_L, b_L)``, ``t → ∞``, towards its infimum 0, which no finite θ attains.

Penalty: ``λ Σ_l (||W_l||_F² + ||b_l||²)`` with ``penalize="all"`` (default), or
``λ Σ_l ||W_l||_F²`` with ``penalize="weights"`` (biases free). PyTorch's ``weight_decay=WD``
(SGD, Adam: ``grad += WD·θ`` on the parameters of the group) is exactly ``λ = WD/2`` on those
parameters, since ``∇(λ||θ||²) = 2λθ``; AdamW's decoupled decay is not an L2 penalty and has
no ``λ``.

The flat order is ``W1, b1, W2, b2, …``, each matrix row-major, skipping absent biases and
frozen arrays. Frozen arrays keep the values of the template network and are not part of
``θ``: gradients, Hessians and everything built on them are over the trainable parameters.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._config import check_finite, check_float64, check_x64, from_torch
from .._errors import InputError
from ..data import Dataset
from ..models import MLP


class Landscape(eqx.Module):
    """A loss function of a flat float64 parameter vector.

    **Arguments:**

    - `model`: the network whose structure (widths, activation, bias flag) defines the
      parameter space; its values are used for frozen arrays and as a default point.
    - `data`: a :class:`~lossatlas.data.Dataset` (empirical loss), or ``None`` with `teacher`.
    - `teacher`: a two-layer bias-free network; selects the population loss over
      ``x ~ N(0, I)`` (activations ``relu`` and ``erf``, the student's must match).
    - `lam`: L2 penalty ``λ ≥ 0``; PyTorch's ``weight_decay=WD`` is ``lam = WD / 2``.
    - `freeze`: names of arrays held fixed (e.g. ``("W2",)``).
    - `loss`: ``"mse"`` or ``"cross_entropy"`` (see the module docstring); the population loss
      is ``"mse"`` only. Cross-entropy targets are one-hot rows of ``Y`` (``k ≥ 2`` outputs) or
      a 0/1 column (one output); :func:`~lossatlas.data.targets_from_labels` makes them from
      integer class labels.
    - `penalize`: ``"all"`` (weights and biases, default) or ``"weights"`` (biases unpenalised).
    """

    model: MLP
    data: Dataset | None
    teacher: MLP | None
    lam: float = eqx.field(static=True)
    freeze: tuple[str, ...] = eqx.field(static=True)
    #: ``"mse"`` or ``"cross_entropy"`` (the method :meth:`loss` evaluates it).
    loss_name: str = eqx.field(static=True)
    #: ``"all"`` or ``"weights"``: which arrays the L2 penalty covers.
    penalize: str = eqx.field(static=True)
    #: ``((name, shape), ...)`` of the trainable arrays in flat order, fixed at construction
    #: (the flat view is queried on every call of the hot paths; recomputing it from the model
    #: costs tens of microseconds).
    _layout: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)

    def __init__(
        self,
        model: MLP,
        data: Dataset | None = None,
        *,
        teacher: MLP | None = None,
        lam: float = 0.0,
        freeze=(),
        loss: str = "mse",
        penalize: str = "all",
    ):
        check_x64()
        if not isinstance(model, MLP):
            raise InputError(f"`model` must be a lossatlas MLP, got {type(model).__name__}.")
        for name, a in model.arrays().items():
            check_float64(name, a)
        lam = float(lam)
        if not np.isfinite(lam) or lam < 0:
            raise InputError(f"the L2 penalty λ must be a finite number >= 0, got {lam}.")
        if loss not in LOSSES:
            raise InputError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}.")
        if penalize not in PENALIZE:
            raise InputError(
                f"unknown penalize={penalize!r}; choose 'all' (weights and biases) or 'weights' "
                "(biases unpenalised)."
            )
        if loss != "mse" and teacher is not None:
            raise InputError(
                f"the population loss (a teacher network) is the squared loss only; for "
                f"loss={loss!r} give a finite data set (--data) with class targets."
            )
        if (data is None) == (teacher is None):
            raise InputError("give exactly one of `data` (empirical loss) or `teacher` (population loss).")
        if data is not None:
            if not isinstance(data, Dataset):
                raise InputError(f"`data` must be a lossatlas Dataset, got {type(data).__name__}.")
            if data.X.shape[1] != model.widths[0]:
                raise InputError(
                    f"the data's X has {data.X.shape[1]} columns but W1 has {model.widths[0]}: "
                    "the network's input width must equal the data's input dimension."
                )
            if data.Y.shape[1] != model.widths[-1]:
                raise InputError(
                    f"the data's Y has {data.Y.shape[1]} columns but the network has "
                    f"{model.widths[-1]} outputs."
                )
            if loss == "cross_entropy":
                check_class_targets(data.Y)
        if teacher is not None:
            check_population_pair(model, teacher)
        freeze = tuple(dict.fromkeys(freeze))
        names = model.param_names
        for f in freeze:
            if f not in names:
                raise InputError(
                    f"cannot freeze unknown array {f!r}; this network has: {', '.join(names)}."
                )
        if len(freeze) == len(names):
            raise InputError("every parameter array is frozen: nothing is left to train.")
        self.model = model
        self.data = data
        self.teacher = teacher
        self.lam = lam
        self.freeze = freeze
        self.loss_name = loss
        self.penalize = penalize
        arrays = model.arrays()
        self._layout = tuple((n, tuple(int(s) for s in arrays[n].shape)) for n in names if n not in freeze)

    # ----------------------------------------------------------------- flat view
    @property
    def trainable_names(self) -> tuple[str, ...]:
        """Names of the trainable arrays, in flat order."""
        return tuple(n for n, _ in self._layout)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the trainable arrays."""
        return dict(self._layout)

    @property
    def n_params(self) -> int:
        """Number of trainable scalar parameters ``p`` (the length of ``θ``)."""
        return sum(math.prod(s) for _, s in self._layout)

    @property
    def is_population(self) -> bool:
        """True for the population (infinite-data) loss."""
        return self.teacher is not None

    @property
    def n_samples(self) -> int | None:
        """``N`` for an empirical loss, ``None`` for a population loss."""
        return None if self.data is None else self.data.n_samples

    def ravel(self, net: MLP | None = None) -> jax.Array:
        """Flat vector ``θ`` of the trainable arrays of ``net`` (default: the model)."""
        net = self.model if net is None else net
        arrays = net.arrays()
        parts = []
        for n, shape in self.shapes.items():
            if n not in arrays or tuple(arrays[n].shape) != shape:
                raise InputError(
                    f"array {n} of the network does not match the landscape (expected shape {shape})."
                )
            parts.append(jnp.ravel(arrays[n]))
        return jnp.concatenate(parts)

    def unravel(self, theta) -> MLP:
        """The network with trainable arrays taken from ``θ`` and frozen ones from the model."""
        out, start = {}, 0
        for n, shape in self.shapes.items():
            size = int(np.prod(shape))
            out[n] = jnp.reshape(theta[start : start + size], shape)
            start += size
        return self.model.replace(**out)

    def slices(self) -> dict[str, slice]:
        """Where each trainable array sits in ``θ``."""
        out, start = {}, 0
        for n, shape in self.shapes.items():
            size = int(np.prod(shape))
            out[n] = slice(start, start + size)
            start += size
        return out

    def with_model(self, net: MLP) -> Landscape:
        """The same landscape with another template (for frozen values)."""
        return Landscape(net, self.data, teacher=self.teacher, lam=self.lam, freeze=self.freeze,
                         loss=self.loss_name, penalize=self.penalize)

    def with_data(self, data: Dataset) -> Landscape:
        """The same landscape (model, loss, penalty, frozen arrays) on other data."""
        return Landscape(self.model, data, lam=self.lam, freeze=self.freeze, loss=self.loss_name,
                         penalize=self.penalize)

    def check_theta(self, theta, name: str = "theta") -> jax.Array:
        """Validate a flat vector (float64, right length, finite) and return it as a JAX array
        (NumPy and JAX arrays and float64 PyTorch tensors are accepted)."""
        theta = from_torch(theta, name)
        check_float64(name, theta)
        if jnp.shape(theta) != (self.n_params,):
            raise InputError(
                f"`{name}` must have shape ({self.n_params},) for this landscape, got {jnp.shape(theta)}."
            )
        check_finite(name, theta)
        return jnp.asarray(theta)

    # ----------------------------------------------------------------- the loss
    def data_loss_of(self, net: MLP):
        """Unregularised loss of a network (pure JAX, traceable)."""
        if self.teacher is not None:
            from ._population import population_loss

            return population_loss(
                net.activation, net.weights[0], net.weights[1], self.teacher.weights[0],
                self.teacher.weights[1],
            )
        f = net(self.data.X)
        Y = self.data.Y
        n = self.data.X.shape[0]
        if self.loss_name == "cross_entropy":
            if f.shape[1] == 1:  # softplus(f) − y f = softplus((1 − 2y) f): no cancellation
                return jnp.sum(jnp.logaddexp(0.0, (1.0 - 2.0 * Y) * f)) / n
            # logsumexp(f) − f_y = log(1 + Σ_{j≠y} e^{f_j − f_y}): accurate also when tiny
            d = f - jnp.sum(Y * f, axis=1, keepdims=True)
            s = jax.nn.logsumexp(d, axis=1, where=Y == 0.0)
            return jnp.sum(jnp.logaddexp(0.0, s)) / n
        r = f - Y
        return jnp.sum(r * r) / (2.0 * n)

    def penalty_of(self, net: MLP):
        """``λ Σ_l (||W_l||² + ||b_l||²)`` (``penalize="all"``) or ``λ Σ_l ||W_l||²``
        (``penalize="weights"``), over all arrays (frozen ones add a constant)."""
        if self.lam == 0.0:
            return jnp.zeros((), dtype=jnp.float64)
        arrays = net.arrays()
        if self.penalize == "weights":
            arrays = {k: a for k, a in arrays.items() if k.startswith("W")}
        return self.lam * sum(jnp.sum(a * a) for a in arrays.values())

    def margins(self, theta) -> np.ndarray:
        """Per-sample classification margins at ``θ`` (cross-entropy landscapes).

        ``f_{y_i}(x_i) − max_{j≠y_i} f_j(x_i)`` for one-hot targets, ``(2y_i − 1) f(x_i)`` for
        one output. All margins > 0 means the network separates the training set: without
        penalty, the loss then decreases strictly along ``t·(W_L, b_L)`` as ``t`` grows (its
        derivative there is ``1/N Σ_i Σ_{j≠y_i} p_ij (f_ij − f_{i,y_i}) < 0``), towards the
        infimum 0 at infinity; such a point is never critical.
        """
        if self.loss_name != "cross_entropy":
            raise InputError("margins are defined for a cross-entropy landscape (loss='cross_entropy').")
        f = np.asarray(self.unravel(self.check_theta(theta))(self.data.X))
        Y = np.asarray(self.data.Y)
        if f.shape[1] == 1:
            return ((2.0 * Y - 1.0) * f)[:, 0]
        fy = np.sum(Y * f, axis=1)
        others = np.where(Y > 0.5, -np.inf, f)
        return fy - np.max(others, axis=1)

    def objective(self, theta):
        """``L(θ)`` as a traceable JAX function (no jit, no checks)."""
        net = self.unravel(theta)
        return self.data_loss_of(net) + self.penalty_of(net)

    def loss(self, theta) -> jax.Array:
        """``L(θ)`` (jitted)."""
        return _loss(self, theta)

    def grad(self, theta) -> jax.Array:
        """``∇L(θ)`` (jitted)."""
        return _grad(self, theta)

    def value_and_grad(self, theta):
        """``(L(θ), ∇L(θ))`` (jitted)."""
        return _value_and_grad(self, theta)

    def hvp(self, theta, v) -> jax.Array:
        """Hessian-vector product ``∇²L(θ) v`` by forward-over-reverse differentiation (jitted)."""
        return _hvp(self, theta, v)

    def hvp_batch(self, theta, V) -> jax.Array:
        """``∇²L(θ) V`` for the columns of ``V`` (shape ``(p, b)``), by ``vmap`` (jitted)."""
        return _hvp_batch(self, theta, V)

    def residuals(self, theta) -> jax.Array:
        """Per-sample residuals ``f(x_i) − y_i`` scaled by ``1/sqrt(N)`` (shape ``(N·d_out,)``).

        For the empirical unregularised squared loss ``L = ½ ||r||²`` exactly; used by
        Gauss-Newton style methods.
        """
        if self.data is None:
            raise InputError("residuals exist only for an empirical (finite-data) loss.")
        if self.loss_name != "mse":
            raise InputError(f"residuals exist only for the squared loss, not {self.loss_name!r}.")
        return _residuals(self, theta)


@eqx.filter_jit
def _loss(ls: Landscape, theta):
    return ls.objective(theta)


@eqx.filter_jit
def _grad(ls: Landscape, theta):
    return jax.grad(ls.objective)(theta)


@eqx.filter_jit
def _value_and_grad(ls: Landscape, theta):
    return jax.value_and_grad(ls.objective)(theta)


def _hvp_fn(ls, theta, v):
    return jax.jvp(jax.grad(ls.objective), (theta,), (v,))[1]


@eqx.filter_jit
def _hvp(ls: Landscape, theta, v):
    return _hvp_fn(ls, theta, v)


@eqx.filter_jit
def _hvp_batch(ls: Landscape, theta, V):
    return jax.vmap(lambda v: _hvp_fn(ls, theta, v), in_axes=1, out_axes=1)(V)


@eqx.filter_jit
def _residuals(ls: Landscape, theta):
    net = ls.unravel(theta)
    r = net(ls.data.X) - ls.data.Y
    return jnp.ravel(r) / jnp.sqrt(jnp.asarray(ls.data.X.shape[0], dtype=jnp.float64))


POPULATION_ACTIVATIONS = ("erf", "relu")
#: Loss names accepted by :class:`Landscape`.
LOSSES = ("mse", "cross_entropy")
#: What the L2 penalty covers: every array, or the weight matrices only.
PENALIZE = ("all", "weights")


def check_class_targets(Y) -> None:
    """Raise :class:`InputError` unless ``Y`` holds cross-entropy targets: one-hot rows
    (``k ≥ 2`` columns) or a 0/1 column (one output)."""
    if isinstance(Y, jax.core.Tracer):  # built inside a trace: checked where the data came in
        return
    Y = np.asarray(Y)
    if Y.shape[1] == 1:
        bad = np.flatnonzero((Y[:, 0] != 0.0) & (Y[:, 0] != 1.0))
        if bad.size:
            raise InputError(
                f"cross-entropy with one output is the logistic loss and needs targets 0 or 1; "
                f"row {bad[0]} of Y holds {Y[bad[0], 0]!r}. Give 0/1 targets (or integer "
                "`labels` in the data file)."
            )
        return
    binary = np.all((Y == 0.0) | (Y == 1.0), axis=1)
    bad = np.flatnonzero(~binary | (np.sum(Y, axis=1) != 1.0))
    if bad.size:
        raise InputError(
            f"cross-entropy with {Y.shape[1]} outputs needs one-hot rows of Y (one 1, the rest 0); "
            f"row {bad[0]} is {Y[bad[0]].tolist()}. Store integer class `labels` (N,) in the data "
            "file instead of Y, or build Y with lossatlas.data.targets_from_labels."
        )


def check_population_pair(student: MLP, teacher: MLP) -> None:
    """Raise :class:`InputError` unless the population loss has a closed form for this pair."""
    for who, net in (("student", student), ("teacher", teacher)):
        if not isinstance(net, MLP):
            raise InputError(f"the {who} must be a lossatlas MLP.")
        if net.depth != 2 or net.has_bias:
            raise InputError(
                f"the population loss is implemented for two-layer bias-free networks; the "
                f"{who} has {net.depth} layers{' and biases' if net.has_bias else ''}. "
                "Use a finite data set (--data) for other architectures."
            )
        if net.activation not in POPULATION_ACTIVATIONS:
            raise InputError(
                f"the population loss has a closed form only for activations "
                f"{', '.join(POPULATION_ACTIVATIONS)}; the {who} uses {net.activation!r}. "
                "Use a finite data set (--data) instead."
            )
        check_network_finite(net)
    if student.activation != teacher.activation:
        raise InputError(
            f"student activation {student.activation!r} differs from the teacher's "
            f"{teacher.activation!r}; the closed-form population loss needs the same one."
        )
    if student.widths[0] != teacher.widths[0] or student.widths[-1] != teacher.widths[-1]:
        raise InputError(
            f"student widths {student.widths} and teacher widths {teacher.widths} must share "
            "the input and output dimensions."
        )


def check_network_finite(net: MLP) -> None:
    """Raise :class:`InputError` if any array of ``net`` holds NaN or inf."""
    for name, a in net.arrays().items():
        check_finite(name, a)
