"""Layer 3: gradients, Hessian-vector products, dense Hessians, spectra and their estimates."""

from ._analyze import HessianAnalysis as HessianAnalysis, analyze_point as analyze_point
from ._dense import (
    dense_hessian as dense_hessian,
    hessian_asymmetry as hessian_asymmetry,
    hessian_roundoff as hessian_roundoff,
    raw_hessian as raw_hessian,
)
from ._inertia import InertiaBounds as InertiaBounds, lanczos_inertia_bounds as lanczos_inertia_bounds
from ._lanczos import hvp_operator as hvp_operator, lanczos_extreme as lanczos_extreme
from ._spectrum import (
    SpectrumMethod as SpectrumMethod,
    SpectrumSummary as SpectrumSummary,
    dense_spectrum as dense_spectrum,
    eigenvalue_tolerance as eigenvalue_tolerance,
    summarize as summarize,
)
from ._trace import (
    SpectralDensity as SpectralDensity,
    TraceEstimate as TraceEstimate,
    hutchinson_trace as hutchinson_trace,
    hutchpp_trace as hutchpp_trace,
    lanczos_tridiagonal as lanczos_tridiagonal,
    slq_density as slq_density,
)
