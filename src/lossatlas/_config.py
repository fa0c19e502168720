"""Float64 policy: checks that public entry points run on, never a global switch.

lossatlas computes in float64. It never flips ``jax_enable_x64`` itself (that setting is
process-wide and sticky); the command line turns it on first thing, and library users turn
it on themselves. These helpers turn a wrong set-up or wrong input into an
:class:`~lossatlas.InputError` that says how to fix it.
"""

from __future__ import annotations

import jax
import numpy as np

from ._errors import InputError

_X64_HINT = (
    "lossatlas computes in float64: run `jax.config.update('jax_enable_x64', True)` "
    "(or set JAX_ENABLE_X64=1) before creating any JAX arrays."
)


def check_x64() -> None:
    """Raise :class:`InputError` unless JAX's 64-bit mode is on."""
    if not jax.config.jax_enable_x64:
        raise InputError("JAX's 64-bit mode is off. " + _X64_HINT)


def from_torch(x, name: str = "array"):
    """A PyTorch tensor as a NumPy array (detached, copied to the CPU); anything else unchanged.

    Only float64 tensors (and integer ones) pass: a float32 tensor is refused with the exact
    upcast to use, the same rule as for float32 arrays in files.
    """
    if type(x).__module__.split(".")[0] != "torch":
        return x
    if x.is_floating_point() and str(x.dtype) != "torch.float64":
        raise InputError(
            f"`{name}` is a {x.dtype} tensor; lossatlas computes in float64 only. Convert it "
            f"explicitly with `{name}.double()` (exact: every float32 number is a float64 number)."
        )
    return x.detach().cpu().numpy()


def check_float64(name: str, x) -> None:
    """Raise :class:`InputError` unless ``x`` is a float64 array (float32 is refused)."""
    x = from_torch(x, name)
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        raise InputError(f"`{name}` must be a float64 array, got {type(x).__name__}.")
    if np.dtype(dtype) != np.float64:
        raise InputError(
            f"`{name}` has dtype {np.dtype(dtype)}; lossatlas computes in float64 only. "
            f"Convert it explicitly, e.g. `np.asarray({name}, dtype=np.float64)`"
            + ("" if jax.config.jax_enable_x64 else ", and " + _X64_HINT)
        )


def check_finite(name: str, x) -> None:
    """Raise :class:`InputError` if ``x`` holds NaN or inf."""
    arr = np.asarray(x)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"`{name}` holds {bad} NaN/inf value(s); lossatlas needs finite input.")
