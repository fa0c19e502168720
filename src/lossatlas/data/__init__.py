"""Layer 1b: inputs and targets, and the network and data files."""

from ._datasets import (
    Dataset as Dataset,
    gaussian_inputs as gaussian_inputs,
    targets_from_labels as targets_from_labels,
    teacher_student as teacher_student,
)
from ._io import (
    atomic_path as atomic_path,
    load_data as load_data,
    load_network as load_network,
    load_npz as load_npz,
    save_data as save_data,
    save_network as save_network,
    save_npz as save_npz,
)
