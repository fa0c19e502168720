"""lossatlas: critical points, curvature and symmetry of neural-network loss landscapes.

lossatlas computes in float64 and never changes JAX's global configuration itself: call
``jax.config.update("jax_enable_x64", True)`` before using it (the ``lossatlas`` command
does this for you).

The verbs a user needs are here, loaded on first use::

    import lossatlas as la
    ls = la.Landscape(la.load_network("NET.npz"), la.load_data("DATA.npz"))
    end = la.polish(ls, ls.ravel(), max_time=60)          # an EndPoint
    print(end.converged, end.grad_norm_inf, end.label)

Entry points take NumPy arrays, JAX arrays and float64 PyTorch tensors (float32 is refused
with the exact conversion to use).
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from ._errors import (
    InputError as InputError,
    LossAtlasError as LossAtlasError,
    SolverError as SolverError,
)
from ._progress import Progress as Progress

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from .curvature import (
        analyze_point as analyze_point,
        dense_hessian as dense_hessian,
        lanczos_extreme as lanczos_extreme,
    )
    from .data import (
        Dataset as Dataset,
        load_data as load_data,
        load_network as load_network,
        save_network as save_network,
        teacher_student as teacher_student,
    )
    from .interop import from_torch as from_torch, to_torch as to_torch
    from .landscape import Landscape as Landscape
    from .models import MLP as MLP, init_mlp as init_mlp
    from .pipeline import (
        EndPoint as EndPoint,
        Explanation as Explanation,
        Producer as Producer,
        classify as classify,
        explain as explain,
        polish as polish,
    )
    from .solvers import RESULTS as RESULTS, Label as Label, find_critical_point as find_critical_point

# Everything else is imported on first use (PEP 562), so light commands such as
# ``lossatlas count`` start without loading JAX.
_LAZY = {
    "analyze_point": "curvature",
    "dense_hessian": "curvature",
    "lanczos_extreme": "curvature",
    "Dataset": "data",
    "load_data": "data",
    "load_network": "data",
    "save_network": "data",
    "teacher_student": "data",
    "from_torch": "interop",
    "to_torch": "interop",
    "Landscape": "landscape",
    "MLP": "models",
    "init_mlp": "models",
    "EndPoint": "pipeline",
    "Explanation": "pipeline",
    "Producer": "pipeline",
    "classify": "pipeline",
    "explain": "pipeline",
    "polish": "pipeline",
    "RESULTS": "solvers",
    "Label": "solvers",
    "find_critical_point": "solvers",
}

__all__ = ["InputError", "LossAtlasError", "Progress", "SolverError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lossatlas' has no attribute {name!r}")


def __dir__():
    return sorted({*__all__, "__version__"})


try:
    __version__ = importlib.metadata.version("lossatlas")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"
