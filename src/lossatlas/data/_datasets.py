"""Inputs and targets: user arrays, Gaussian inputs, teacher-student data."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._config import check_finite, check_float64
from .._errors import InputError
from ..models import MLP


class Dataset(eqx.Module):
    """Inputs ``X`` of shape ``(N, d_in)`` and targets ``Y`` of shape ``(N, d_out)``; rows are samples."""

    X: jax.Array
    Y: jax.Array

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
