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


# Measured split of the default run (tests/timings/select_slow.py): the tests listed in
# tests/timings/slow.txt took over 3 s each on a quiet 2-core machine with a cold compile cache and
# run with `-m slow`, like the tests marked @pytest.mark.slow in the source.
def _measured_slow() -> frozenset[str]:
    path = os.path.join(os.path.dirname(__file__), "timings", "slow.txt")
    with open(path, encoding="utf-8") as fh:
        return frozenset(ln.split("#")[0].strip() for ln in fh if ln.split("#")[0].strip())


_SLOW = _measured_slow()


def pytest_collection_modifyitems(config, items):
    for item in items:
        nid = item.nodeid.split("tests/", 1)[-1]
        if "tests/" + nid in _SLOW:
            item.add_marker(pytest.mark.slow)
