"""lossatlas: critical points, curvature and symmetry of neural-network loss landscapes.

lossatlas computes in float64 and never changes JAX's global configuration itself: call
``jax.config.update("jax_enable_x64", True)`` before using it (the ``lossatlas`` command
does this for you).
"""

import importlib.metadata

from ._errors import (
    InputError as InputError,
    LossAtlasError as LossAtlasError,
    SolverError as SolverError,
)
from .curvature import (
    analyze_point as analyze_point,
    dense_hessian as dense_hessian,
    lanczos_extreme as lanczos_extreme,
)
from .data import Dataset as Dataset, teacher_student as teacher_student
from .landscape import Landscape as Landscape
from .models import MLP as MLP, deep_linear as deep_linear, init_mlp as init_mlp

try:
    __version__ = importlib.metadata.version("lossatlas")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"
