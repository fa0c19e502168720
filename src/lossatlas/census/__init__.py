"""Committee machines and the census of spurious minima (Safran & Shamir 2018).

The soft committee machine ``x ↦ Σ_j relu(w_jᵀ x)`` (second layer frozen to ones) learning the
orthonormal teacher ``V = I_n`` under Gaussian input; :func:`run_census` counts where many
random starts end, up to the ``S_k × S_n`` symmetry.
"""

from ._batch import (
    BatchRun as BatchRun,
    batch_end_state as batch_end_state,
    batch_gradient_descent as batch_gradient_descent,
    batch_loss_and_min_eig as batch_loss_and_min_eig,
    batch_newton_polish as batch_newton_polish,
)
from ._census import (
    CensusMethod as CensusMethod,
    CensusResult as CensusResult,
    IntervalMethod as IntervalMethod,
    Orbit as Orbit,
    check_census_size as check_census_size,
    run_census as run_census,
    zero_loss_tolerance as zero_loss_tolerance,
)
from ._model import (
    COMMITTEE_FREEZE as COMMITTEE_FREEZE,
    committee_landscape as committee_landscape,
    committee_machine as committee_machine,
    committee_teacher as committee_teacher,
)
from ._orbits import (
    Isotropy as Isotropy,
    canonical_form as canonical_form,
    isotropy as isotropy,
    value_classes as value_classes,
)
from ._stats import clopper_pearson_interval as clopper_pearson_interval, wilson_interval as wilson_interval
