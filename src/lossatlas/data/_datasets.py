"""Inputs and targets: user arrays, Gaussian inputs, teacher-student data."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._config import check_finite, check_float64, from_torch
from .._errors import InputError
from ..models import MLP


class Dataset(eqx.Module):
    """Inputs ``X`` of shape ``(N, d_in)`` and targets ``Y`` of shape ``(N, d_out)``; rows are samples."""

    X: jax.Array = eqx.field(converter=lambda a: from_torch(a, "X"))
    Y: jax.Array = eqx.field(converter=lambda a: from_torch(a, "Y"))

    def __check_init__(self):
        for name in ("X", "Y"):
            a = getattr(self, name)
            check_float64(name, a)
            if jnp.ndim(a) != 2:
                raise InputError(
                    f"`{name}` must be a matrix with samples as rows, got shape {jnp.shape(a)}."
                )
        if self.X.shape[0] != self.Y.shape[0]:
            raise InputError(
                f"X has {self.X.shape[0]} samples but Y has {self.Y.shape[0]}: rows are samples."
            )
        if self.X.shape[0] < 1:
            raise InputError("the data set is empty.")

    @property
    def n_samples(self) -> int:
        """``N``."""
        return int(self.X.shape[0])

    def check(self) -> Dataset:
        """Raise :class:`InputError` if the data hold NaN or inf; return self."""
        check_finite("X", self.X)
        check_finite("Y", self.Y)
        return self


def targets_from_labels(labels, n_outputs: int | None = None) -> np.ndarray:
    """Integer class labels ``(N,)`` → float64 targets ``Y`` for a network with `n_outputs`.

    ``n_outputs ≥ 2``: one-hot rows (``Y[i, labels[i]] = 1``), labels in ``0..n_outputs−1``
    (softmax cross-entropy). ``n_outputs = 1``: ``Y = labels[:, None]`` with labels 0 or 1
    (logistic loss). ``None``: ``max(labels) + 1`` classes, at least 2.
    Raises :class:`InputError` for non-integer, non-vector or out-of-range labels.
    """
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise InputError(
            f"class labels must be an integer array, got dtype {lab.dtype}; convert them with "
            "`labels.astype(np.int64)` (class k is written k, counting from 0)."
        )
    if lab.ndim != 1 or lab.size < 1:
        raise InputError(f"class labels must be a non-empty vector (N,), got shape {lab.shape}.")
    lo, hi = int(lab.min()), int(lab.max())
    k = max(hi + 1, 2) if n_outputs is None else int(n_outputs)
    if k == 1:
        if lo < 0 or hi > 1:
            raise InputError(
                f"labels range over {lo}..{hi}, but a network with one output takes labels 0 or 1 "
                "(logistic loss); for more classes give the network one output per class."
            )
        return lab.astype(np.float64)[:, None]
    if lo < 0 or hi >= k:
        raise InputError(
            f"labels range over {lo}..{hi}, but the network has {k} outputs: labels must lie in "
            f"0..{k - 1} (one output per class, classes numbered from 0)."
        )
    Y = np.zeros((lab.size, k), dtype=np.float64)
    Y[np.arange(lab.size), lab] = 1.0
    return Y


def gaussian_inputs(key, n: int, d: int) -> jax.Array:
    """``n`` samples of ``x ~ N(0, I_d)`` as rows, float64."""
    if n < 1 or d < 1:
        raise InputError(f"need n >= 1 samples of dimension d >= 1, got n={n}, d={d}.")
    return jax.random.normal(key, (int(n), int(d)), dtype=jnp.float64)


def teacher_student(key, teacher: MLP, n: int, *, noise: float = 0.0) -> Dataset:
    """Data labelled by a planted ``teacher``: ``X ~ N(0, I)``, ``Y = teacher(X) + noise·ε``.

    ``ε`` is standard normal. With ``noise = 0`` the teacher (and every network that computes
    the same function) is a global minimum with zero loss.
    """
    if noise < 0:
        raise InputError(f"label noise must be >= 0, got {noise}.")
    kx, kn = jax.random.split(key)
    X = gaussian_inputs(kx, n, teacher.widths[0])
    Y = teacher(X)
    if noise > 0:
        Y = Y + noise * jax.random.normal(kn, Y.shape, dtype=jnp.float64)
    return Dataset(X, Y)
