"""Layer 1: pure forward maps (MLPs, deep linear networks) and activations."""

from ._activations import (
    ACTIVATIONS as ACTIVATIONS,
    HOMOGENEOUS_ACTIVATIONS as HOMOGENEOUS_ACTIVATIONS,
    LEAKY_RELU_DEFAULT_SLOPE as LEAKY_RELU_DEFAULT_SLOPE,
    ODD_ACTIVATIONS as ODD_ACTIVATIONS,
    PIECEWISE_LINEAR_ACTIVATIONS as PIECEWISE_LINEAR_ACTIVATIONS,
    SMOOTH_ACTIVATIONS as SMOOTH_ACTIVATIONS,
    activation_family as activation_family,
    check_activation as check_activation,
    get_activation as get_activation,
    is_smooth as is_smooth,
    leaky_relu_slope as leaky_relu_slope,
)
from ._mlp import (
    MLP as MLP,
    deep_linear as deep_linear,
    init_mlp as init_mlp,
    mlp_from_arrays as mlp_from_arrays,
)
