"""The one table of tolerances used by the test suite.

Each entry says what it bounds and why the number is what it is. Tests import from here;
no test writes its own tolerance literal for a quantity listed below.
"""

from __future__ import annotations

TOL = {
    # Central finite differences with step h ~ eps^(1/3): truncation O(h^2) and round-off
    # O(eps/h) balance at ~eps^(2/3) ~ 4e-11 relative; 1e-6 leaves room for the scale of the
    # third derivatives of the nets tested.
    "fd_grad_rtol": 1e-6,
    "fd_hvp_rtol": 1e-6,
    # Two exact float64 computations of the same quantity (dense vs HVP columns, two code
    # paths for one closed form): round-off only.
    "exact_rtol": 1e-10,
    "exact_atol": 1e-12,
    # Lanczos eigenpairs against dense eigh (issue 2: relative residual <= 1e-10).
    "lanczos_residual": 1e-10,
    "lanczos_eig_rtol": 1e-9,
    # Critical points polished by Newton (issue 3 target).
    "critical_grad_inf": 1e-12,
    # Monte-Carlo estimates: compared in units of their standard error.
    "mc_sigmas": 5.0,
}
