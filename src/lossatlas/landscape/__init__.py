"""Layer 2: the loss landscape (model + data + loss + L2 penalty) over a flat parameter vector."""

from ._batch import batch_loss as batch_loss
from ._landscape import (
    LOSSES as LOSSES,
    PENALIZE as PENALIZE,
    POPULATION_ACTIVATIONS as POPULATION_ACTIVATIONS,
    Landscape as Landscape,
    check_class_targets as check_class_targets,
    check_network_finite as check_network_finite,
    check_population_pair as check_population_pair,
)
from ._population import population_loss as population_loss
