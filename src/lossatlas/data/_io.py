"""Network and data files (``.npz``), read safely and written atomically.

Network file: float64 arrays ``W1 … WL``, optional ``b1 … bL`` and a 0-d string array
``activation``. Data file: float64 arrays ``X`` and ``Y`` (or, for classification, ``X`` and
integer class ``labels``). Files are read with
``allow_pickle=False``; writes go to a temporary file in the same folder, then an atomic
rename, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .._errors import InputError
from ..models import MLP, mlp_from_arrays
from ._datasets import Dataset, targets_from_labels


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"cannot write {path}: folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npz(path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path, what: str = "file") -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (no pickles); :class:`InputError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise InputError(f"{what} {path} is not a readable .npz file ({e}).") from None


def _float64(name: str, a: np.ndarray, path) -> np.ndarray:
    if a.dtype != np.float64:
        raise InputError(
            f"array {name} in {path} has dtype {a.dtype}; lossatlas files hold float64 "
            "arrays (convert with `a.astype(np.float64)` before saving)."
        )
    return a


def load_network(path) -> MLP:
    """Read a network file; raises :class:`InputError` for missing, corrupt or invalid files."""
    arrays = load_npz(path, "network file")
    if "activation" not in arrays:
        raise InputError(f"network file {path} has no `activation` entry (a 0-d string array).")
    act = arrays.pop("activation")
    if act.ndim != 0 or act.dtype.kind not in "US":
        raise InputError(f"`activation` in {path} must be a 0-d string array.")
    import jax.numpy as jnp

    arrays = {k: jnp.asarray(_float64(k, v, path)) for k, v in arrays.items()}
    return mlp_from_arrays(arrays, str(act))


def save_network(path, net: MLP) -> None:
    """Write ``net`` as a network file (atomic)."""
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in net.arrays().items()}
    arrays["activation"] = np.array(net.activation)
    save_npz(path, arrays)


def load_data(path, n_outputs: int | None = None) -> Dataset:
    """Read a data file with float64 ``X (N, d_in)`` and ``Y (N, d_out)``; checks finiteness.

    Instead of ``Y`` a classification data file may hold integer class ``labels (N,)``; they
    become targets by :func:`~lossatlas.data.targets_from_labels` for a network with
    `n_outputs` outputs (one-hot rows for ``n_outputs ≥ 2``, a 0/1 column for one output;
    default: ``max(labels) + 1`` classes).
    """
    arrays = load_npz(path, "data file")
    if "X" not in arrays:
        raise InputError(f"data file {path} has no array `X` (needs X and Y, or X and labels).")
    if "labels" in arrays and "Y" in arrays:
        raise InputError(
            f"data file {path} holds both `Y` and `labels`; keep one: Y (N, d_out) float64 "
            "targets, or integer class labels (N,)."
        )
    if "Y" not in arrays and "labels" not in arrays:
        raise InputError(
            f"data file {path} has no array `Y` (needs X and Y, or X and integer class `labels`)."
        )
    import jax.numpy as jnp

    X = arrays["X"]
    if "labels" in arrays:
        try:
            Y = targets_from_labels(arrays["labels"], n_outputs)
        except InputError as e:
            raise InputError(f"`labels` in {path}: {e}") from None
        if X.shape[:1] != Y.shape[:1]:
            raise InputError(
                f"X in {path} has shape {X.shape} but `labels` has {Y.shape[0]} entries: one label "
                "per sample."
            )
    else:
        Y = arrays["Y"]
    if Y.ndim == 1:
        raise InputError(
            f"Y in {path} has shape {Y.shape}; store targets as a matrix (N, d_out), "
            "e.g. `Y[:, None]` for one output."
        )
    return Dataset(jnp.asarray(_float64("X", X, path)), jnp.asarray(_float64("Y", Y, path))).check()


def save_data(path, data: Dataset) -> None:
    """Write a data file (atomic)."""
    save_npz(path, {"X": np.asarray(data.X), "Y": np.asarray(data.Y)})
