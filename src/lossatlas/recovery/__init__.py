"""Global minima of two-layer networks: branches of ``Q*``, thresholds, Morse–Bott tests, rates.

Bias-free students, or students with biases in both layers (``bias=True``; then components
with constant neurons are curved and flagged ``affine = False``).

References:
    L. Zhang, Y. Zhang, T. Luo, "Geometry and Local Recovery of Global Minima of Two-layer
    Neural Networks at Overparameterization", arXiv:2309.00508.
"""

from ._activation import (
    SUPPORTED_ACTIVATIONS as SUPPORTED_ACTIVATIONS,
    ActivationKind as ActivationKind,
    ActivationSupport as ActivationSupport,
    activation_kind as activation_kind,
    activation_support as activation_support,
)
from ._branches import (
    Branch as Branch,
    BranchIntersection as BranchIntersection,
    Teacher as Teacher,
    branches_containing as branches_containing,
    count_branches as count_branches,
    enumerate_branches as enumerate_branches,
    identify_branch as identify_branch,
    intersect as intersect,
    join_theta as join_theta,
    join_theta_bias as join_theta_bias,
    n_params as n_params,
    random_teacher as random_teacher,
    split_theta as split_theta,
    split_theta_bias as split_theta_bias,
)
from ._experiment import (
    RecoveryMethod as RecoveryMethod,
    RecoveryOutcome as RecoveryOutcome,
    RecoveryTrials as RecoveryTrials,
    levenberg as levenberg,
    local_recovery as local_recovery,
)
from ._geometry import (
    HessianRank as HessianRank,
    MorseBottTest as MorseBottTest,
    ThresholdProfile as ThresholdProfile,
    forward as forward,
    gauss_newton as gauss_newton,
    hessian_rank as hessian_rank,
    model_rank as model_rank,
    morse_bott_test as morse_bott_test,
    student_network as student_network,
    tangent_features as tangent_features,
    threshold_profile as threshold_profile,
)
from ._rates import (
    RateAnalysis as RateAnalysis,
    fit_window as fit_window,
    flow_rate as flow_rate,
    kernel_fraction as kernel_fraction,
)
