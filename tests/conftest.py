"""Test configuration: float64 and strict dtype promotion for every test."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Compiled XLA code is kept between runs (most of the suite's time is compilation): in
# $LOSSATLAS_TEST_JAX_CACHE, or ~/.cache/lossatlas/jax-tests; LOSSATLAS_TEST_JAX_CACHE="" turns it
# off. A cached executable is the one the compiler would produce again, so no result changes.
_cache = os.environ.get("LOSSATLAS_TEST_JAX_CACHE", os.path.expanduser("~/.cache/lossatlas/jax-tests"))
if _cache:
    try:
        os.makedirs(_cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", _cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    except OSError:  # an unwritable home: compile as usual
        pass

import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
