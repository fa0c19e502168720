"""Permutation symmetry: symmetry-induced critical subspaces, expansion manifolds, counts.

Following Şimşek et al. (ICML 2021, arXiv:2105.12221) and Fukumizu & Amari (2000):

- permutation actions: :func:`permute`, :func:`canonical_form`, :func:`align` (weight
  matching), :func:`equivalent` (with sign flips for odd activations);
- expansion: :func:`split_neuron`, :func:`add_zero_neurons`, :func:`embed` along a
  :class:`LabelMap`; the affine subspaces :func:`expansion_subspace` (every point computes the
  narrow function) and :func:`critical_subspace` (collinear splits: critical points);
- reduction: :func:`reduce_network` (minimal width, label map, subspace, distance);
- counting: :func:`count_G`, :func:`count_T`, :func:`count_T_zero_loss`,
  :func:`symmetry_counts`, :func:`multilayer_symmetry_counts` and their brute-force checks;
- verification: :func:`check_subspace_critical`, :func:`fukumizu_amari_B`,
  :func:`fukumizu_amari_test`;
- paths: :func:`connecting_path` between a network and its permuted copy through one extra
  neuron, with :func:`path_loss_profile`.
"""

# Counting is pure Python and imported eagerly; the JAX-based tools load on first use
# (PEP 562) so that `lossatlas count` starts without JAX.
from ._counting import (
    BruteForceCounts as BruteForceCounts,
    MultiLayerSymmetryCounts as MultiLayerSymmetryCounts,
    SymmetryCounts as SymmetryCounts,
    asymptotic_saddle_to_minimum_ratio as asymptotic_saddle_to_minimum_ratio,
    bell as bell,
    brute_force_count_G as brute_force_count_G,
    brute_force_count_T as brute_force_count_T,
    brute_force_count_T_zero_loss as brute_force_count_T_zero_loss,
    brute_force_multilayer_counts as brute_force_multilayer_counts,
    count_G as count_G,
    count_T as count_T,
    count_T_zero_loss as count_T_zero_loss,
    enumerate_label_maps as enumerate_label_maps,
    enumerate_zero_loss_keys as enumerate_zero_loss_keys,
    label_map_key as label_map_key,
    multilayer_symmetry_counts as multilayer_symmetry_counts,
    saddle_to_minimum_ratio as saddle_to_minimum_ratio,
    set_partitions as set_partitions,
    stirling2 as stirling2,
    symmetry_counts as symmetry_counts,
)

_LAZY = {
    "AffineSubspace": "_subspace",
    "Alignment": "_permutations",
    "ConnectingPath": "_paths",
    "Embedding": "_expansion",
    "FukumizuAmariTest": "_verification",
    "LabelMap": "_subspace",
    "PathProfile": "_paths",
    "Reduction": "_reduction",
    "SplitPrediction": "_verification",
    "SubspaceCheck": "_verification",
    "ZERO": "_subspace",
    "add_zero_neurons": "_expansion",
    "align": "_permutations",
    "canonical_form": "_permutations",
    "check_layer": "_common",
    "check_network": "_common",
    "check_subspace_critical": "_verification",
    "connecting_path": "_paths",
    "critical_subspace": "_expansion",
    "embed": "_expansion",
    "equivalent": "_permutations",
    "expansion_subspace": "_subspace",
    "flat_transform": "_permutations",
    "flip_signs": "_permutations",
    "fukumizu_amari_B": "_verification",
    "fukumizu_amari_test": "_verification",
    "path_loss_profile": "_paths",
    "permutation_from_string": "_paths",
    "permute": "_permutations",
    "permute_neurons": "_permutations",
    "reduce_network": "_reduction",
    "split_direction": "_verification",
    "split_label_map": "_expansion",
    "split_neuron": "_expansion",
    "subspace_dimension": "_subspace",
}

__all__ = [
    "BruteForceCounts",
    "MultiLayerSymmetryCounts",
    "SymmetryCounts",
    "asymptotic_saddle_to_minimum_ratio",
    "bell",
    "brute_force_count_G",
    "brute_force_count_T",
    "brute_force_count_T_zero_loss",
    "brute_force_multilayer_counts",
    "count_G",
    "count_T",
    "count_T_zero_loss",
    "enumerate_label_maps",
    "enumerate_zero_loss_keys",
    "label_map_key",
    "multilayer_symmetry_counts",
    "saddle_to_minimum_ratio",
    "set_partitions",
    "stirling2",
    "symmetry_counts",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lossatlas.symmetry' has no attribute {name!r}")
