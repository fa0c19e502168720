"""Shared test problems: small landscapes of every activation, with and without biases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas.data import Dataset, teacher_student
from lossatlas.landscape import Landscape
from lossatlas.models import ACTIVATIONS, init_mlp


def small_landscape(activation="tanh", widths=(3, 4, 2), bias=True, n=40, lam=0.0, seed=0,
                    freeze=()):
    """A student of `widths` on data from a random teacher of the same widths."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    teacher = init_mlp(k1, widths, activation, bias=bias, scale=1.0)
    data = teacher_student(k2, teacher, n)
    student = init_mlp(k3, widths, activation, bias=bias, scale=0.8)
    return Landscape(student, data, lam=lam, freeze=freeze)


def random_data(seed, n, d_in, d_out):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return Dataset(jax.random.normal(k1, (n, d_in), jnp.float64),
                   jax.random.normal(k2, (n, d_out), jnp.float64))


def central_difference_grad(f, x, h=None):
    """Central finite differences of a scalar function, one coordinate at a time."""
    x = np.asarray(x, dtype=np.float64)
    h = np.finfo(np.float64).eps ** (1 / 3) if h is None else h
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (float(f(jnp.asarray(x + e))) - float(f(jnp.asarray(x - e)))) / (2 * h)
    return g


ALL_ACTIVATIONS = tuple(ACTIVATIONS)


#: A tiny teacher-student sweep (erf teacher of width 2 in d = 2, students of widths 1-3): the
#: spec of the atlas and report tests; format it with ``seeds=``.
TINY_SWEEP = """
[experiment]
name = "tiny"
[teacher]
activation = "erf"
width = 2
input_dim = 2
[student]
widths = [1, 2, 3]
[run]
seeds = {seeds}
t1 = 1e4
batch_size = 2
[report]
slice_points = 5
"""
