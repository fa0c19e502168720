"""Tests for the symmetry counts G, T and T_zero_loss (lossatlas.symmetry._counting).

Kinds of truth used here:
- known-answer tables (Şimşek et al. 2021 notes, /work/shared/papers/simsek2021.md §3.4);
- closed forms against brute-force enumeration of label maps / set partitions, every r <= m <= 7;
- closed forms against *independent recurrences* (derived below, written here) for m = 1000;
- the geometry behind the counts, in exact rational arithmetic: subspaces built from label maps
  reproduce the teacher function (zero loss) or consist of critical points of a genuine
  non-global critical point, exactly when the counts say so; and no counted subspace contains
  another (so counting keys counts subspaces).
"""

import dataclasses
import itertools as it
import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from lossatlas._errors import InputError
from lossatlas.symmetry import (
    BruteForceCounts,
    MultiLayerSymmetryCounts,
    SymmetryCounts,
    asymptotic_saddle_to_minimum_ratio,
    bell,
    brute_force_count_G,
    brute_force_count_T,
    brute_force_count_T_zero_loss,
    brute_force_multilayer_counts,
    count_G,
    count_T,
    count_T_zero_loss,
    enumerate_label_maps,
    enumerate_zero_loss_keys,
    label_map_key,
    multilayer_symmetry_counts,
    saddle_to_minimum_ratio,
    set_partitions,
    stirling2,
    symmetry_counts,
)
from tolerances import TOL

SMALL_PAIRS = [(r, m) for m in range(1, 8) for r in range(1, m + 1)]  # every r <= m <= 7
#: brute-force enumerations that take over 10 s each (run with -m slow; the rest stay in the default run)
_HEAVY_PAIRS = {(4, 7), (5, 7), (6, 7), (6, 6)}

# ---------------------------------------------------------------------------------------------
# Known answers (the note's §3.4 tables; rows r = 1..6, columns m = 1..8; None where r > m)
# ---------------------------------------------------------------------------------------------

_ = None
TABLE_T = {
    1: [1, 3, 7, 15, 31, 63, 127, 255],
    2: [_, 2, 12, 50, 180, 602, 1932, 6050],
    3: [_, _, 6, 60, 390, 2100, 10206, 46620],
    4: [_, _, _, 24, 360, 3360, 25200, 166824],
    5: [_, _, _, _, 120, 2520, 31920, 317520],
    6: [_, _, _, _, _, 720, 20160, 332640],
}
TABLE_G = {
    1: [1, 1, 1, 1, 1, 1, 1, 1],
    2: [_, 2, 6, 14, 30, 62, 126, 254],
    3: [_, _, 6, 36, 150, 540, 1806, 5796],
    4: [_, _, _, 24, 240, 1560, 8400, 40824],
    5: [_, _, _, _, 120, 1800, 16800, 126000],
    6: [_, _, _, _, _, 720, 15120, 191520],
}
TABLE_T_ZERO_LOSS = {
    1: [1, 3, 10, 37, 151, 674, 3263, 17007],
    2: [_, 2, 12, 62, 320, 1712, 9604, 56674],
    3: [_, _, 6, 60, 450, 3120, 21336, 147756],
    4: [_, _, _, 24, 360, 3720, 33600, 287784],
    5: [_, _, _, _, 120, 2520, 34440, 394800],
    6: [_, _, _, _, _, 720, 20160, 352800],
}
TABLE_CELLS = [(r, m) for r in range(1, 7) for m in range(r, 9)]


@pytest.mark.parametrize(("r", "m"), TABLE_CELLS)
def test_known_answer_tables(r, m):
    assert count_T(r, m) == TABLE_T[r][m - 1]
    assert count_G(r, m) == TABLE_G[r][m - 1]
    assert count_T_zero_loss(r, m) == TABLE_T_ZERO_LOSS[r][m - 1]


def test_stirling_and_bell_known_values():
    assert stirling2(4, 2) == 7
    assert stirling2(6, 3) == 90
    assert stirling2(0, 0) == 1
    assert stirling2(5, 0) == 0
    assert stirling2(3, 5) == 0
    assert [bell(n) for n in range(11)] == [1, 1, 2, 5, 15, 52, 203, 877, 4140, 21147, 115975]


@pytest.mark.parametrize("m", range(1, 13))
def test_special_values(m):
    assert count_G(1, m) == 1
    assert count_T(1, m) == 2**m - 1
    if m >= 2:
        assert count_G(2, m) == 2**m - 2
        assert count_T(2, m) == 3**m - 2 ** (m + 1) + 1
    r = m
    assert count_G(r, r) == count_T(r, r) == count_T_zero_loss(r, r) == math.factorial(r)
    assert count_G(r, r + 1) * 2 == r * math.factorial(r + 1)
    assert count_T(r, r + 1) * 2 == math.factorial(r + 1) * (r + 2)
    # Figure 4 of the paper (m = r + 1): (r+1)! "blue" plus r (r+1)!/2 "green" subspaces.
    blue = math.factorial(r + 1)
    green = count_G(r, r + 1)
    assert count_T(r, r + 1) == blue + green
    # The two readings of T agree up to m = r* + 1 and differ from r* + 2 on.
    assert count_T_zero_loss(r, r + 1) == count_T(r, r + 1)
    assert count_T_zero_loss(r, r + 2) > count_T(r, r + 2)


@pytest.mark.parametrize("m", range(1, 11))
def test_closed_form_identities(m):
    bells = _bell_triangle(m)
    for r in range(1, m + 1):
        # G: multinomial sum over compositions k_1 + ... + k_r = m, k_i >= 1.
        multinomial = sum(
            math.factorial(m) // math.prod(math.factorial(k) for k in ks)
            for ks in it.product(range(1, m - r + 2), repeat=r)
            if sum(ks) == m
        )
        assert count_G(r, m) == multinomial
        assert count_G(r, m) == math.factorial(r) * stirling2(m, r)
        # T: choose the k0 zero-type neurons, then a surjection of the rest.
        by_k0 = sum(math.comb(m, k0) * count_G(r, m - k0) for k0 in range(m - r + 1))
        assert count_T(r, m) == by_k0 == math.factorial(r) * stirling2(m + 1, r + 1)
        # T_zero_loss: the neurons outside teacher blocks form any set partition (Bell).
        with_bell = sum(
            math.comb(m, k0) * count_G(r, m - k0) * bells[k0] for k0 in range(m - r + 1)
        )
        by_blocks = sum(
            stirling2(m, j) * math.factorial(j) // math.factorial(j - r) for j in range(r, m + 1)
        )
        assert count_T_zero_loss(r, m) == with_bell == by_blocks


def test_types_up_to_permutation():
    # Orbits of label maps under permutations of the m student neurons are the block-size
    # vectors (k_0 >= 0; k_1..k_r >= 1): C(m, r) of them for T, C(m-1, r-1) for G.
    for r, m in [(2, 5), (3, 6), (1, 4), (4, 6)]:
        t_types = {tuple(phi.count(i) for i in range(r + 1)) for phi in enumerate_label_maps(r, m)}
        g_types = {
            tuple(phi.count(i) for i in range(1, r + 1))
            for phi in enumerate_label_maps(r, m, zero_type=False)
        }
        assert len(t_types) == math.comb(m, r)
        assert len(g_types) == math.comb(m - 1, r - 1)


# ---------------------------------------------------------------------------------------------
# Closed forms == brute force, every r <= m <= 7
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("r", "m"), [pytest.param(r, m, marks=pytest.mark.slow) if (r, m) in _HEAVY_PAIRS else (r, m)
                                     for r, m in SMALL_PAIRS])
def test_closed_forms_equal_brute_force(r, m):
    assert brute_force_count_G(r, m) == count_G(r, m)
    assert brute_force_count_T(r, m) == count_T(r, m)
    assert brute_force_count_T_zero_loss(r, m) == count_T_zero_loss(r, m)


@pytest.mark.parametrize(("r", "m"), [(r, m) for r, m in SMALL_PAIRS if m <= 6])
def test_two_enumeration_routes_give_the_same_subspaces(r, m):
    # Variant A reached through label maps (itertools.product) and through set partitions with
    # singleton zero blocks must give the same *set* of subspace keys, not only the same size.
    via_maps = {label_map_key(phi) for phi in enumerate_label_maps(r, m)}
    via_partitions = set(enumerate_zero_loss_keys(r, m, zero_groups=False))
    assert via_maps == via_partitions
    # Label maps without zero-type neurons are exactly the keys without label-0 blocks.
    saddle_keys = {label_map_key(phi) for phi in enumerate_label_maps(r, m, zero_type=False)}
    assert saddle_keys == {k for k in via_maps if all(label > 0 for label, _ in k)}
    # Variant B contains variant A; the surplus are exactly the keys with a zero group.
    variant_b = set(enumerate_zero_loss_keys(r, m, zero_groups=True))
    assert via_maps <= variant_b
    assert variant_b - via_maps == {
        k for k in variant_b if any(label == 0 and len(b) > 1 for label, b in k)
    }


def test_set_partitions_are_all_distinct_partitions():
    for m in range(0, 7):
        partitions = list(set_partitions(m))
        assert len(partitions) == len({frozenset(p) for p in partitions}) == _bell_triangle(m)[m]
        for p in partitions:
            assert sorted(it.chain.from_iterable(p)) == list(range(m))


# ---------------------------------------------------------------------------------------------
# Exact values for large m against independent recurrences
# ---------------------------------------------------------------------------------------------


def _banded(n_target, k_target, step, k_min_of):
    """Run a 2-D recurrence f(n, k) = step(f(n-1, .), k) from f(0, .) = [k == 0].

    Only the k needed to reach (n_target, k_target) are kept: k_min_of(n) <= k <= k_max(n).
    """
    row = {0: 1}
    for n in range(1, n_target + 1):
        lo, hi = k_min_of(n)
        row = {k: step(row, k) for k in range(lo, hi + 1)}
    return row.get(k_target, 0)


def _stirling2_recurrence(n, k):
    """S2(n, k) = k S2(n-1, k) + S2(n-1, k-1) (item n alone, or joins one of k blocks)."""
    return _banded(
        n,
        k,
        lambda row, j: j * row.get(j, 0) + row.get(j - 1, 0),
        lambda i: (max(0, k - (n - i)), min(i, k)),
    )


def _G_recurrence(r, m):
    """G(r, m) = r G(r, m-1) + r G(r-1, m-1).

    Neuron m gets one of r labels; either that label is used by another neuron too
    (r G(r, m-1)) or by neuron m alone (r choices, the rest a surjection onto r-1 labels).
    """
    return _banded(
        m,
        r,
        lambda row, s: s * row.get(s, 0) + s * row.get(s - 1, 0),
        lambda i: (max(0, r - (m - i)), min(i, r)),
    )


def _T_recurrence(r, m):
    """T(r, m) = (r+1) T(r, m-1) + r T(r-1, m-1), with T(0, m) = 1.

    Neuron m is zero-type or shares its label with another neuron ((r+1) T(r, m-1)), or is the
    only neuron with its label (r T(r-1, m-1)).
    """
    return _banded(
        m,
        r,
        lambda row, s: (s + 1) * row.get(s, 0) + s * row.get(s - 1, 0),
        lambda i: (max(0, r - (m - i)), min(i, r)),
    )


def _T_zero_loss_recurrence(r, m):
    """A(n+1, s) = s A(n, s-1) + (s+1) A(n, s) + A(n, s+1), A(0, s) = [s == 0].

    A(n, s) counts set partitions of n neurons with s labelled (teacher) blocks and any number
    of unlabelled (zero) blocks. Neuron n+1 opens a new teacher block (s choices of label),
    joins a teacher block (s), opens a zero block (1), or joins a zero block: marking that
    zero block and giving it label s+1 is a bijection with A(n, s+1).
    """
    return _banded(
        m,
        r,
        lambda row, s: s * row.get(s - 1, 0) + (s + 1) * row.get(s, 0) + row.get(s + 1, 0),
        lambda i: (max(0, r - (m - i)), min(i, r + (m - i))),
    )


def _bell_triangle(n_max):
    """Bell numbers 0..n_max from Aitken's array (no Stirling numbers involved)."""
    bells = [1]
    row = [1]
    for _ in range(n_max):
        new = [row[-1]]
        for x in row:
            new.append(new[-1] + x)
        row = new
        bells.append(row[0])
    return bells


def test_recurrences_agree_with_closed_forms_on_small_cells():
    for r, m in SMALL_PAIRS + [(r, 12) for r in range(1, 13)]:
        assert (
            _G_recurrence(r, m) == count_G(r, m) == math.factorial(r) * _stirling2_recurrence(m, r)
        )
        assert _T_recurrence(r, m) == count_T(r, m)
        assert _T_zero_loss_recurrence(r, m) == count_T_zero_loss(r, m)


@pytest.mark.parametrize("r", [1, 3, 10, 995, 1000])
def test_large_m_exact_values_against_recurrences(r):
    m = 1000
    assert count_G(r, m) == _G_recurrence(r, m) == math.factorial(r) * _stirling2_recurrence(m, r)
    assert count_T(r, m) == _T_recurrence(r, m)
    assert count_T(r, m) == math.factorial(r) * _stirling2_recurrence(m + 1, r + 1)
    assert stirling2(m, r) == _stirling2_recurrence(m, r)


@pytest.mark.parametrize(("r", "m"), [(1, 1000), (4, 400), (990, 1000), (1000, 1000)])
def test_large_m_zero_loss_count_against_recurrence(r, m):
    assert count_T_zero_loss(r, m) == _T_zero_loss_recurrence(r, m)


def test_large_m_bell_against_aitken_array():
    bells = _bell_triangle(301)
    assert bell(300) == bells[300]
    assert count_T_zero_loss(1, 300) == bells[301] - bells[300]  # sum_j j S2(m, j)


def test_m_1000_is_exact_and_typed():
    for r in (1, 2, 500, 1000):
        c = symmetry_counts(r, 1000)
        for value in (c.T, c.G, c.T_zero_loss, c.G_saddle):
            assert type(value) is int
        assert c.T == (r + 1) ** 1000 - r * r**1000 + _tail(r, 1000)


def _tail(r, m):
    """The inclusion-exclusion terms of T(r, m) beyond the first two (j >= 2)."""
    return sum((-1) ** j * math.comb(r, j) * (r + 1 - j) ** m for j in range(2, r + 1))


# ---------------------------------------------------------------------------------------------
# Saddle-to-minimum ratio and its asymptotics
# ---------------------------------------------------------------------------------------------


def test_ratio_at_h_zero_is_half_of_r_minus_one():
    for r in range(1, 60):
        assert saddle_to_minimum_ratio(r, r) == Fraction(r - 1, 2)


@pytest.mark.parametrize("r", [2, 3, 5, 10])
def test_exact_ratio_approaches_asymptotic(r):
    # Bonferroni: (r-1)^m - (r-1)(r-2)^m <= G(r-1, m) <= (r-1)^m and
    # (r+1)^m - r r^m <= T(r, m) <= (r+1)^m, so exact/asymptotic lies in
    # [1 - (r-1)((r-2)/(r-1))^m, 1/(1 - r (r/(r+1))^m)], which shrinks to {1}.
    previous_error = None
    for m in [*range(r, 40), 100, 200, 400, 1000]:
        exact = saddle_to_minimum_ratio(r, m)
        asymptotic = asymptotic_saddle_to_minimum_ratio(r, m)
        assert asymptotic == Fraction(r - 1, r + 1) ** m
        quotient = exact / asymptotic
        lower = 1 - (r - 1) * Fraction(r - 2, r - 1) ** m
        assert quotient >= lower
        upper_gap = r * Fraction(r, r + 1) ** m
        if upper_gap < 1:
            assert quotient <= 1 / (1 - upper_gap)
        error = abs(quotient - 1)
        if m >= 3 * r:
            assert previous_error is None or error < previous_error
            previous_error = error
    assert previous_error < Fraction(r) * Fraction(r, r + 1) ** 999  # relative error at m = 1000


def test_ratio_regimes_from_the_notes():
    # Fixed h, large r*: R ~ r*/(2(h+1)); the note quotes 99.5, 49.1, 23.9 for r* = 200.
    quoted = {0: 99.5, 1: 49.1, 3: 23.9}
    for h, value in quoted.items():
        assert round(float(saddle_to_minimum_ratio(200, 200 + h)), 1) == value
    for h in (0, 1, 3):
        relative = [
            float(saddle_to_minimum_ratio(r, r + h)) * 2 * (h + 1) / r for r in (50, 100, 200, 400)
        ]
        assert all(abs(1 - b) < abs(1 - a) for a, b in it.pairwise(relative))
    # Crossover: first h with R < 1 is h = 5, 13, 26, 52 for r* = 20, 50, 100, 200.
    for r, h_cross in {20: 5, 50: 13, 100: 26, 200: 52}.items():
        assert (
            saddle_to_minimum_ratio(r, r + h_cross)
            < 1
            <= saddle_to_minimum_ratio(r, r + h_cross - 1)
        )


def test_ratio_table_from_the_notes():
    # r*: (R(h=0), R(h=1), R(h=2)), first h with R < 1, sum_{r<r*} G(r, r*) / T(r*, r*).
    table = {
        2: ((0.500, 0.083, 0.020), 0, 0.500),
        3: ((1.000, 0.233, 0.077), 1, 1.167),
        4: ((1.500, 0.417, 0.161), 1, 2.125),
        6: ((2.500, 0.833, 0.379), 1, 5.504),
        8: ((3.500, 1.283, 0.636), 2, 12.538),
        10: ((4.500, 1.750, 0.916), 2, 27.177),
        12: ((5.500, 2.226, 1.210), 3, 57.646),
    }
    for r, (ratios, first_h, summed) in table.items():
        assert [round(float(saddle_to_minimum_ratio(r, r + h)), 3) for h in range(3)] == list(
            ratios
        )
        h = 0
        while saddle_to_minimum_ratio(r, r + h) >= 1:
            h += 1
        assert h == first_h
        total = Fraction(sum(count_G(q, r) for q in range(1, r)), count_T(r, r))
        assert round(float(total), 3) == summed


def test_ratio_for_r_star_one_is_zero():
    c = symmetry_counts(1, 5)
    assert c.G_saddle == 0
    assert c.saddle_to_minimum_ratio == 0 == asymptotic_saddle_to_minimum_ratio(1, 5)
    assert c.log10_saddle_to_minimum_ratio == -math.inf
    assert c.to_record()["log10_saddle_to_minimum_ratio"] is None


# ---------------------------------------------------------------------------------------------
# Typed results
# ---------------------------------------------------------------------------------------------


def test_symmetry_counts_fields():
    c = symmetry_counts(3, 6)
    assert isinstance(c, SymmetryCounts)
    assert (c.r, c.m) == (3, 6)
    assert (c.T, c.G, c.T_zero_loss) == (count_T(3, 6), count_G(3, 6), count_T_zero_loss(3, 6))
    assert c.G_saddle == count_G(2, 6)
    assert c.saddle_to_minimum_ratio == Fraction(count_G(2, 6), count_T(3, 6))
    assert c.saddle_to_minimum_ratio_float == float(c.saddle_to_minimum_ratio)
    assert math.isclose(
        10**c.log10_saddle_to_minimum_ratio,
        c.saddle_to_minimum_ratio_float,
        rel_tol=TOL["exact_rtol"],
    )
    assert c.asymptotic_saddle_to_minimum_ratio == Fraction(1, 2) ** 6
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.T = 0  # type: ignore[misc]
    record = json.loads(json.dumps(c.to_record()))
    assert record["T"] == c.T
    assert Fraction(record["saddle_to_minimum_ratio"]) == c.saddle_to_minimum_ratio


def test_log10_ratio_is_finite_where_the_float_underflows():
    c = symmetry_counts(2, 1000)
    assert c.saddle_to_minimum_ratio_float == 0.0
    # G(1, m) = 1 and T(2, m) ~ 3^m.
    assert math.isclose(
        c.log10_saddle_to_minimum_ratio, -math.log10(c.T), rel_tol=TOL["exact_rtol"]
    )


def test_multilayer_products():
    result = multilayer_symmetry_counts([(2, 3), (3, 4)])
    assert isinstance(result, MultiLayerSymmetryCounts)
    assert result.T == 12 * 60 == 720  # the note's example, against 2! 3! = 12 isolated minima
    assert result.G == count_G(2, 3) * count_G(3, 4)
    assert result.T_zero_loss == count_T_zero_loss(2, 3) * count_T_zero_loss(3, 4)
    assert result.saddle_to_minimum_ratio == saddle_to_minimum_ratio(
        2, 3
    ) * saddle_to_minimum_ratio(3, 4)
    assert [layer.r for layer in result.layers] == [2, 3]
    assert multilayer_symmetry_counts([(2, 2), (3, 3)]).T == math.factorial(2) * math.factorial(3)
    json.dumps(result.to_record())
    # Depth amplifies: ratios above 1 grow and ratios below 1 shrink with more layers.
    big, small = saddle_to_minimum_ratio(8, 8), saddle_to_minimum_ratio(3, 6)
    assert big > 1 > small
    assert multilayer_symmetry_counts([(8, 8)] * 3).saddle_to_minimum_ratio == big**3
    assert multilayer_symmetry_counts([(3, 6)] * 3).saddle_to_minimum_ratio == small**3


@pytest.mark.parametrize(
    "widths", [[(1, 2), (2, 3)], [(2, 3), (1, 3)], [(2, 2), (2, 3), (1, 2)], [(3, 4)]]
)
def test_multilayer_products_equal_tuple_enumeration(widths):
    counts = multilayer_symmetry_counts(widths)
    assert brute_force_multilayer_counts(widths) == BruteForceCounts(
        T=counts.T, G=counts.G, T_zero_loss=counts.T_zero_loss
    )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

TWO_WIDTH_FUNCTIONS = [
    count_G,
    count_T,
    count_T_zero_loss,
    saddle_to_minimum_ratio,
    asymptotic_saddle_to_minimum_ratio,
    symmetry_counts,
    brute_force_count_G,
    brute_force_count_T,
    brute_force_count_T_zero_loss,
]
BAD_WIDTHS = [
    (5, 3),
    (0, 3),
    (-1, 3),
    (2.0, 3),
    (2, 3.0),
    (True, 3),
    (1, True),
    ("2", 3),
    (None, 3),
    (2, float("nan")),
]


@pytest.mark.parametrize("function", TWO_WIDTH_FUNCTIONS)
@pytest.mark.parametrize(("r", "m"), BAD_WIDTHS)
def test_bad_widths_raise_input_error(function, r, m):
    with pytest.raises(InputError) as info:
        function(r, m)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert any(hint in message for hint in ("Pass", "Swap", "at least 1"))


def test_numpy_integers_are_accepted():
    assert count_T(np.int64(2), np.int32(4)) == 50


def test_other_bad_inputs():
    for bad in ([], [(2, 1)], [(1, 2, 3)], "12", [(True, 2)], 5, [(1, 2), (0, 2)]):
        with pytest.raises(InputError):
            multilayer_symmetry_counts(bad)  # type: ignore[arg-type]
    for bad_n, bad_k in [(-1, 0), (3, -2), (2.5, 1), (False, 0)]:
        with pytest.raises(InputError):
            stirling2(bad_n, bad_k)
    with pytest.raises(InputError):
        bell(-1)
    with pytest.raises(InputError, match="closed forms"):
        brute_force_count_T(2, 9)
    # The enumerators validate when called, not on first iteration.
    with pytest.raises(InputError):
        enumerate_label_maps(1, 9)
    with pytest.raises(InputError):
        enumerate_zero_loss_keys(3, 2, zero_groups=True)
    with pytest.raises(InputError):
        set_partitions(-1)


# ---------------------------------------------------------------------------------------------
# The geometry behind the counts, in exact rational arithmetic
# ---------------------------------------------------------------------------------------------
#
# Two-layer net f(x) = sum_j a_j sigma(w_j . x), input dimension D_IN = 2, no bias, with the
# rational activation sigma(z) = 1/(2 + z) on positive data and weights (no poles). Features
# 1/(2 + w . x) with distinct w are linearly independent (distinct polar hyperplanes), so the
# setting matches the "generic activation" assumption, and every check is an exact equality.

D_IN = 2


def _sigma(z):
    return 1 / (2 + z)


def _dsigma(z):
    return -1 / (2 + z) ** 2


def _dot(w, x):
    return sum(wc * xc for wc, xc in zip(w, x, strict=True))


def _rand_positive(rng):
    return Fraction(rng.randint(1, 40), rng.randint(1, 7))


def _rand_vector(rng):
    return tuple(_rand_positive(rng) for _ in range(D_IN))


class _Narrow:
    """A width-r parameter theta_r, data X, and targets for the zero-loss and saddle cases."""

    def __init__(self, r, seed):
        rng = random.Random(seed)
        self.r = r
        self.w = []
        while len(self.w) < r:
            w = _rand_vector(rng)
            if w not in self.w:
                self.w.append(w)
        self.a = [
            Fraction(rng.choice([-1, 1]) * rng.randint(1, 9), rng.randint(1, 4)) for _ in range(r)
        ]
        n = (D_IN + 1) * r + 2
        self.X = [_rand_vector(rng) for _ in range(n)]
        self.f_star = [self.f(self.w, self.a, x) for x in self.X]
        # Non-global critical point: residual e orthogonal to every column of the Jacobian.
        jac_t = [[_sigma(_dot(self.w[i], x)) for x in self.X] for i in range(r)]
        for i in range(r):
            for c in range(D_IN):
                jac_t.append([self.a[i] * _dsigma(_dot(self.w[i], x)) * x[c] for x in self.X])
        self.e = _null_vector(jac_t)
        assert any(self.e)

    @staticmethod
    def f(ws, as_, x):
        return sum(a * _sigma(_dot(w, x)) for w, a in zip(ws, as_, strict=True))

    def point_on(self, key, m, rng):
        """A random point of the affine subspace with the given key (blocks of labels)."""
        ws, as_ = [None] * m, [None] * m
        for label, block in key:
            members = sorted(block)
            w = self.w[label - 1] if label > 0 else _rand_vector(rng)
            total = self.a[label - 1] if label > 0 else Fraction(0)
            shares = [Fraction(rng.randint(-9, 9), rng.randint(1, 5)) for _ in members[:-1]]
            if label == 0 and len(members) == 1:
                shares = []
            for j, share in zip(members, [*shares, total - sum(shares)], strict=True):
                ws[j], as_[j] = w, share
        return ws, as_

    def gradient_vanishes(self, ws, as_):
        """Exact check of grad L = 0 for L = sum_x (f(x) - y(x))^2 / (2n), y = f* - e."""
        residual = [
            self.f(ws, as_, x) - (fs - e)
            for x, fs, e in zip(self.X, self.f_star, self.e, strict=True)
        ]
        for w, a in zip(ws, as_, strict=True):
            zs = [_dot(w, x) for x in self.X]
            if sum(res * _sigma(z) for res, z in zip(residual, zs, strict=True)) != 0:
                return False
            for c in range(D_IN):
                if (
                    sum(
                        res * a * _dsigma(z) * x[c]
                        for res, z, x in zip(residual, zs, self.X, strict=True)
                    )
                    != 0
                ):
                    return False
        return True

    def has_zero_loss(self, ws, as_):
        return all(self.f(ws, as_, x) == fs for x, fs in zip(self.X, self.f_star, strict=True))


def _null_vector(rows):
    """A non-zero rational vector v with rows @ v = 0 (Gauss-Jordan; more columns than rows)."""
    rows = [list(row) for row in rows]
    n_cols = len(rows[0])
    pivots = []
    rank = 0
    for col in range(n_cols):
        pivot = next((i for i in range(rank, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        inv = 1 / rows[rank][col]
        rows[rank] = [v * inv for v in rows[rank]]
        for i in range(len(rows)):
            if i != rank and rows[i][col] != 0:
                factor = rows[i][col]
                rows[i] = [v - factor * p for v, p in zip(rows[i], rows[rank], strict=True)]
        pivots.append(col)
        rank += 1
    free = next(col for col in range(n_cols) if col not in pivots)
    v = [Fraction(0)] * n_cols
    v[free] = Fraction(1)
    for i, col in enumerate(pivots):
        v[col] = -rows[i][free]
    return v


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_label_map_subspaces_are_zero_loss_exactly_when_counted_by_T(m):
    # Enumerate *all* (r+1)^m maps, without the "hits every label" filter: exactly T(r, m)
    # of them give zero-loss subspaces, and a random point on each reproduces the teacher.
    rng = random.Random(m)
    for r in range(1, m + 1):
        net = _Narrow(r, seed=10 * r + m)
        zero_loss = 0
        for phi in it.product(range(r + 1), repeat=m):
            ws, as_ = net.point_on(label_map_key(phi), m, rng)
            hits_all = set(range(1, r + 1)) <= set(phi)
            assert net.has_zero_loss(ws, as_) == hits_all
            zero_loss += hits_all
        assert zero_loss == count_T(r, m)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_label_map_subspaces_are_critical_exactly_when_counted_by_G(m):
    # theta_r is a genuine non-global critical point (residual e != 0, J^T e = 0). Among all
    # (r+1)^m maps, random points are critical exactly for the G(r, m) surjections; zero-type
    # subspaces are not made of critical points (dL/da_j = sum e sigma(w_j . x) != 0).
    rng = random.Random(100 + m)
    for r in range(1, m + 1):
        net = _Narrow(r, seed=20 * r + m)
        critical = 0
        for phi in it.product(range(r + 1), repeat=m):
            ws, as_ = net.point_on(label_map_key(phi), m, rng)
            is_saddle_map = set(phi) == set(range(1, r + 1))
            assert net.gradient_vanishes(ws, as_) == is_saddle_map
            critical += is_saddle_map
        assert critical == count_G(r, m)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_zero_group_pieces_have_zero_loss(m):
    rng = random.Random(200 + m)
    for r in range(1, m + 1):
        net = _Narrow(r, seed=30 * r + m)
        keys = set(enumerate_zero_loss_keys(r, m, zero_groups=True))
        assert len(keys) == count_T_zero_loss(r, m)
        for key in keys:
            assert net.has_zero_loss(*net.point_on(key, m, rng))


def test_cancelling_pair_is_zero_loss_but_outside_the_expansion_manifold():
    # (w*, v, v; a*, c, -c): zero loss, yet in no variant-A subspace (it needs a_2 = a_3 = 0
    # or w_2 = w_3 = w*), while it lies in the variant-B piece {(1, {0}), (0, {1, 2})}.
    net = _Narrow(1, seed=7)
    v, c = (Fraction(3), Fraction(5, 2)), Fraction(7, 3)
    ws, as_ = [net.w[0], v, v], [net.a[0], c, -c]
    assert net.has_zero_loss(ws, as_)
    members_a = [
        k
        for k in (label_map_key(p) for p in enumerate_label_maps(1, 3))
        if _contains(net, k, ws, as_)
    ]
    assert members_a == []
    members_b = [
        k for k in enumerate_zero_loss_keys(1, 3, zero_groups=True) if _contains(net, k, ws, as_)
    ]
    assert members_b == [frozenset({(1, frozenset({0})), (0, frozenset({1, 2}))})]
    assert count_T(1, 3) == 7 and count_T_zero_loss(1, 3) == 10


def _contains(net, key, ws, as_):
    """Whether (ws, as_) satisfies the equations of the subspace with this key."""
    for label, block in key:
        members = sorted(block)
        if label > 0 and any(ws[j] != net.w[label - 1] for j in members):
            return False
        if label == 0 and any(ws[j] != ws[members[0]] for j in members):
            return False
        if sum(as_[j] for j in members) != (net.a[label - 1] if label > 0 else 0):
            return False
    return True


def _affine_subspace(key, m, teacher_w, teacher_a):
    """(point, basis) of the subspace with this key in R^{m (D_IN + 1)}, order (w_1..w_m, a)."""
    size = m * (D_IN + 1)
    point = np.zeros(size)
    directions = []

    def w_index(j, c):
        return j * D_IN + c

    def a_index(j):
        return m * D_IN + j

    for label, block in key:
        members = sorted(block)
        if label > 0:
            for j in members:
                point[w_index(j, 0) : w_index(j, 0) + D_IN] = teacher_w[label - 1]
            point[a_index(members[0])] = teacher_a[label - 1]
        else:  # shared free w (d directions), a summing to zero
            for c in range(D_IN):
                u = np.zeros(size)
                for j in members:
                    u[w_index(j, c)] = 1.0
                directions.append(u)
        for j in members[1:]:  # a_j - a_first keeps the block sum fixed
            u = np.zeros(size)
            u[a_index(j)], u[a_index(members[0])] = 1.0, -1.0
            directions.append(u)
    basis = np.array(directions).reshape(-1, size)
    return point, basis


@pytest.mark.parametrize("zero_groups", [False, True])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_counted_subspaces_are_distinct_and_none_contains_another(m, zero_groups):
    teacher_w = np.array([[1.0, 2.0], [3.0, -1.0], [-2.0, 5.0], [4.0, 4.0]])
    teacher_a = np.array([1.5, -2.0, 3.0, 0.5])
    for r in range(1, m + 1):
        keys = sorted(set(enumerate_zero_loss_keys(r, m, zero_groups=zero_groups)), key=repr)
        spaces = []
        for key in keys:
            point, basis = _affine_subspace(key, m, teacher_w, teacher_a)
            if basis.shape[0]:
                q, _ = np.linalg.qr(basis.T)
                rank = np.linalg.matrix_rank(basis)
                q = q[:, :rank]
            else:
                q = np.zeros((point.size, 0))
            spaces.append((point, basis, q))
        scale = 1.0 + np.abs(teacher_w).max() + np.abs(teacher_a).max()
        for (p1, b1, _), (p2, _, q2) in it.permutations(spaces, 2):

            def off(v, q2=q2):
                return v - q2 @ (q2.T @ v)

            residual = max([np.abs(off(p1 - p2)).max()] + [np.abs(off(u)).max() for u in b1])
            assert residual > TOL["exact_rtol"] * scale  # subspace 1 is not inside subspace 2


def test_subspace_dimensions_match_formula():
    # dim Gamma_phi = (m - r) + k0 (d - 1); T(2, 4) with d = 2 splits as {2: 14, 3: 24, 4: 12}.
    teacher_w = np.array([[1.0, 2.0], [3.0, -1.0]])
    teacher_a = np.array([1.5, -2.0])
    histogram = {}
    for phi in enumerate_label_maps(2, 4):
        _, basis = _affine_subspace(label_map_key(phi), 4, teacher_w, teacher_a)
        dim = np.linalg.matrix_rank(basis)
        assert dim == (4 - 2) + phi.count(0) * (D_IN - 1)
        histogram[dim] = histogram.get(dim, 0) + 1
    assert histogram == {2: 14, 3: 24, 4: 12}
