"""`lossatlas.pipeline.explain`: end points explained by the critical point of their minimal network.

Truth comes from constructions: wide points are built from known narrow critical points with
`lossatlas.symmetry.embed` (copies with chosen split ratios, sign flips, permutations, zero-type
neurons), so the family, the split ratios, the subspace and (Sylvester's law) the wide inertia are
known before `explain` is asked; canonical forms are checked against brute force over the whole
orbit of small networks. The problem: an erf teacher of width 3 in d = 3, population loss.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import InputError
from lossatlas.cli import main
from lossatlas.data import save_network
from lossatlas.landscape import Landscape
from lossatlas.models import MLP
from lossatlas.pipeline import (
    ExplanationKind,
    canonical_family,
    classify,
    explain,
    family_key,
    polish,
)
from lossatlas.pipeline._explain import KEY_BITS
from lossatlas.solvers import SaddleNewton, find_critical_point
from lossatlas.symmetry import LabelMap, embed, permute, subspace_dimension
from tolerances import TOL

T = np.array([[1.0, 0.3, -0.5], [-0.4, 1.1, 0.6], [0.2, -0.7, 1.3]])
A = np.array([1.2, -0.8, 1.0])
#: Starts (4 decimals) next to critical points of the width-1 and width-2 problems of this teacher.
STARTS = {
    "r1_min": ([[0.4355, -0.2755, 0.0124]], [2.8131]),
    "r2_saddle": ([[-0.2852, 0.9674, 0.2371], [0.5941, 0.0203, 0.1314]], [-1.0576, 1.7425]),
    "r2_min": ([[0.6424, -0.1727, -0.4551], [-0.2256, 0.7032, -1.2268]], [1.9231, -1.0356]),
}


def net(W1, a, act="erf") -> MLP:
    return MLP((jnp.asarray(np.array(W1, dtype=np.float64)), jnp.asarray(np.array([a], dtype=np.float64))),
               None, act)


TEACHER = net(T, A)


def pop(network) -> Landscape:
    return Landscape(network, teacher=TEACHER)


def polished(network) -> MLP:
    ls = pop(network)
    sol = find_critical_point(ls, ls.ravel(), SaddleNewton(gtol=1e-13), max_steps=50)
    assert sol.grad_norm_inf <= TOL["critical_grad_inf"]
    return ls.unravel(sol.theta)


@pytest.fixture(scope="module")
def narrow():
    return {name: polished(net(*start)) for name, start in STARTS.items()}


def flat(network: MLP) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a)) for a in network.arrays().values()])


# ------------------------------------------------------------------------------------ keys


def _orbit(network: MLP):
    """Every permutation × sign flip of the hidden neurons of a two-layer network."""
    m = network.hidden_widths[0]
    for perm in itertools.permutations(range(m)):
        for signs in itertools.product((1, -1), repeat=m):
            yield permute(network, [list(perm)], [list(signs)])


def _is_canonical(network: MLP, q: float) -> bool:
    """The defining conditions of the canonical form, on parameters rounded to the quantum."""
    qi = np.rint(np.asarray(network.weights[0]) / q)
    qo = np.rint(np.asarray(network.weights[1]).T / q)
    if any(row[int(np.argmax(np.abs(row)))] < 0 for row in qi):
        return False
    rows = [tuple(r) for r in np.concatenate([qi, qo], axis=1)]
    return rows == sorted(rows)


def test_canonical_form_against_brute_force(narrow):
    """Over the whole orbit (m! · 2^m members, m ≤ 3) every member gets the same key and the same
    canonical network bit for bit; that network is the one member meeting the canonical
    conditions; and distinct critical points get distinct keys."""
    keys = {}
    for name, network in {**narrow, "teacher": TEACHER}.items():
        key, canon = canonical_family(network)
        q = np.ldexp(1.0, int(np.ceil(np.log2(max(1.0, np.max(np.abs(flat(network))))))) - KEY_BITS)
        members = list(_orbit(network))
        assert len(members) == np.prod(range(1, network.hidden_widths[0] + 1)) * 2 ** network.hidden_widths[0]
        for member in members:
            k2, c2 = canonical_family(member)
            assert k2 == key
            assert np.array_equal(flat(c2), flat(canon))
        meeting = [mb for mb in members if _is_canonical(mb, q)]
        assert len(meeting) == 1 and np.array_equal(flat(meeting[0]), flat(canon)), name
        assert key.startswith(f"r{network.hidden_widths[0]}-")
        keys[name] = key
    assert len(set(keys.values())) == len(keys)  # four different critical points, four keys
    # far below the quantum: the same key; far above it: another
    base = narrow["r2_saddle"]
    bump = np.zeros_like(flat(base))
    bump[0] = 1.0
    for eps, same in ((1e-12, True), (1e-4, False)):
        moved = pop(base).unravel(jnp.asarray(flat(base) + eps * bump))
        assert (family_key(moved) == keys["r2_saddle"]) is same


def test_key_is_stable_across_starts_reaching_the_same_point(narrow):
    """Newton from differently perturbed (and permuted, sign-flipped) starts reaches the width-2
    saddle with different round-off; the key is the same and the canonical points agree to
    far below the key's quantum."""
    ref_key, ref = canonical_family(narrow["r2_saddle"])
    start = net(*STARTS["r2_saddle"])
    rng = np.random.default_rng(3)
    for k in range(3):
        th = flat(start) + 1e-2 * rng.standard_normal(8)
        s = pop(start).unravel(jnp.asarray(th))
        if k == 2:
            s = permute(s, [[1, 0]], [[-1, 1]])
        key, canon = canonical_family(polished(s))
        assert key == ref_key
        assert np.max(np.abs(flat(canon) - flat(ref))) <= 1e-9


# ------------------------------------------------------------------------------- explain


@pytest.fixture(scope="module")
def own(narrow):
    """Each narrow critical point explained at its own width (irreducible)."""
    return {name: explain(pop(n), flat(n)) for name, n in narrow.items()}


def test_narrow_points_are_their_own_families(narrow, own):
    for name, ex in own.items():
        assert ex.kind is ExplanationKind.irreducible and ex.family_kind is ExplanationKind.irreducible, name
        assert ex.family_key == family_key(narrow[name])
        assert ex.family_width == ex.wide_width == narrow[name].hidden_widths[0]
        assert ex.family_index == ex.wide_index and ex.subspace_dim == 0
    assert own["r2_saddle"].family_label.value == "strict_saddle" and own["r2_saddle"].family_index == 1
    assert own["r1_min"].family_label.value == "minimum" and own["r1_min"].family_index == 0


CASES = {
    # narrow point, label map onto m = 3 (with signs), split ratios, permutation of the wide neurons
    "saddle_split_signed": ("r2_saddle", ((2, 1, 2),), ((1, -1, -1),), [[1.4, 1.0, -0.4]], [2, 0, 1]),
    "minimum_three_copies": ("r1_min", ((1, 1, 1),), None, [[0.3, -0.2, 0.9]], [1, 2, 0]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_embedded_points_are_explained_back(narrow, own, case):
    """A wide point built from a known narrow critical point is ``reducible`` to it: same family
    key as the narrow point's own explanation, the split ratios and signs it was built with, the
    subspace dimension of the label map, on the subspace, critical at its projection, and (one
    hidden layer, one output, copies only) the wide inertia Sylvester's law predicts from the
    narrow inertia and the Fukumizu-Amari split curvature: measured on the dense wide Hessian."""
    name, labels, signs, gammas, perm = CASES[case]
    lm = LabelMap(labels, (narrow[name].hidden_widths[0],), signs)
    emb = embed(narrow[name], lm, gammas=gammas)
    wide = permute(emb.network, [perm])
    ls = pop(wide)
    ex = explain(ls, ls.ravel(), global_min_value=0.0)
    assert ex.kind is ExplanationKind.reducible, ex.reason
    assert ex.family_key == own[name].family_key
    assert ex.family_width == narrow[name].hidden_widths[0] and ex.wide_width == 3
    assert ex.family_critical and ex.family_grad_norm_inf <= ex.family_target
    assert ex.family_index == own[name].family_index and ex.family_label is own[name].family_label
    assert ex.family_loss == pytest.approx(ex.wide_loss, rel=TOL["same_critical_set_loss_rtol"])
    # the embedding, read in the wide network's numbering (new neuron j is old neuron perm[j])
    old_labels, old_gammas = labels[0], gammas[0]
    old_signs = (1,) * 3 if signs is None else signs[0]
    (layer,) = ex.embedding()
    groups = [sorted(g) for g in layer["groups"]]
    expected_groups = sorted(sorted(j for j in range(3) if old_labels[perm[j]] == i)
                             for i in set(old_labels))
    assert sorted(groups) == expected_groups
    for g, ratios in zip(layer["groups"], layer["split_ratios"], strict=True):
        np.testing.assert_allclose(ratios, [old_gammas[perm[j]] for j in g], rtol=TOL["exact_rtol"])
        rel = [layer["signs"][j] * old_signs[perm[j]] for j in g]  # canonical sign × construction sign
        assert len(set(rel)) == 1  # copies of one narrow neuron keep their relative signs
    assert ex.subspace_dim == subspace_dimension(ex.label_map, 3, 1, bias=False)
    assert ex.subspace_dim == 1 * (3 - 0 - narrow[name].hidden_widths[0])  # d_out (m − k0 − r)
    assert ex.on_subspace and ex.subspace_distance <= TOL["symmetry_function_atol"]
    assert ex.on_expansion_manifold
    assert ex.projected_grad_norm_inf <= TOL["embedded_grad_inf"]
    assert ex.index_at_least_narrow and ex.wide_index >= ex.family_index
    predicted = (ex.predicted_wide_index, ex.predicted_wide_nullity)
    assert predicted == (ex.wide_index, ex.wide_nullity) and ex.inertia_agrees, (predicted, ex.wide_index,
                                                                                  ex.wide_nullity)
    assert [s.copies for s in ex.split_curvature] == [tuple(g) for g in layer["groups"] if len(g) > 1]
    rec = ex.to_record()
    json.dumps(rec)
    for field in ("explanation", "family_key", "family_width", "family_loss", "family_index", "family_nullity",
                  "family_grad_norm_inf", "family_label", "wide_width", "wide_index", "index_at_least_narrow",
                  "subspace_dim", "subspace_distance", "on_expansion_manifold", "embedding", "merge_tol"):
        assert field in rec
    assert rec["explanation"] == "reducible" and ex.family_theta.shape == (narrow[name].n_params,)


def test_global_minimum_and_its_family(narrow):
    """The teacher itself (permuted, sign-flipped) is a global minimum of its own family; with a
    zero-type neuron added (m = 4 > r*) it reduces to that family, the zero neuron recorded and
    the subspace of dimension d_out (m − k0 − r) + d k0."""
    key = family_key(TEACHER)
    wide = permute(TEACHER, [[2, 0, 1]], [[1, -1, 1]])
    ex = explain(pop(wide), flat(wide), global_min_value=0.0)
    assert ex.kind is ExplanationKind.global_minimum and ex.family_kind is ExplanationKind.irreducible
    assert ex.family_key == key and ex.family_label.value == "global_minimum"
    zero = embed(TEACHER, LabelMap(((1, 2, 0, 3),), (3,)))
    wide4 = zero.network.replace(W1=zero.network.weights[0].at[2].set(jnp.asarray([0.5, -0.3, 0.8])))
    ex4 = explain(pop(wide4), flat(wide4), global_min_value=0.0)
    assert ex4.kind is ExplanationKind.global_minimum and ex4.family_kind is ExplanationKind.reducible, ex4.reason
    assert ex4.family_key == key and ex4.family_width == 3 and ex4.wide_width == 4
    (layer,) = ex4.embedding()
    assert layer["zero_neurons"] == [2] and layer["zero_groups"] == []
    assert ex4.subspace_dim == subspace_dimension(ex4.label_map, 3, 1, bias=False) == 1 * (4 - 1 - 3) + 3 * 1
    assert ex4.on_expansion_manifold and ex4.on_subspace
    assert ex4.family_loss <= TOL["committee_zero_loss_atol"]


def test_non_critical_points_get_no_explanation(narrow):
    """A point off the critical set is not explained: kind None, the reason, no family."""
    wide = embed(narrow["r2_saddle"], LabelMap(((1, 2, 2),), (2,))).network
    th = flat(wide) + 1e-3 * np.random.default_rng(0).standard_normal(12)
    ex = explain(pop(wide), th)
    assert ex.kind is None and not ex.explained and "not critical" in ex.reason
    rec = ex.to_record()
    assert rec["explanation"] is None and rec["family_key"] is None and rec["wide_label"] == "not_critical"


def test_unexplained_when_the_reduced_network_is_not_critical():
    """Two copies of a *non-critical* width-1 network, taken as critical (a classification made
    with a loose threshold): the point reduces, but its reduced network is not critical, so it is
    ``unexplained``. The reduced network's gradient is the theory's: for copies with shares γ_j,
    ∂L_r/∂a = ∂L/∂a_j and ∂L_r/∂w = (∂L/∂w_j) / γ_j."""
    base = net([[0.9, -1.2, 0.4]], [0.7])
    wide = embed(base, LabelMap(((1, 1),), (1,)), gammas=[[0.25, 0.75]]).network
    ls = pop(wide)
    cls = classify(ls, ls.ravel(), grad_tol=10.0)
    assert cls.label.value != "not_critical"
    ex = explain(ls, ls.ravel(), classification=cls)
    assert ex.kind is ExplanationKind.unexplained and ex.family_kind is ExplanationKind.unexplained
    assert ex.family_key is None and ex.family_width == 1 and ex.family_index is None
    assert not (ex.family_critical and ex.on_subspace)
    g = np.asarray(ls.grad(ls.ravel()))
    gw, ga = g[:6].reshape(2, 3), g[6:]
    narrow_grad = max(abs(ga[0]), np.max(np.abs(gw[0] / 0.25)))
    assert np.max(np.abs(gw[0] / 0.25 - gw[1] / 0.75)) <= TOL["exact_atol"]
    assert ex.reduced_grad_norm_inf == pytest.approx(narrow_grad, rel=TOL["exact_rtol"])
    assert any(a.outcome in ("not_critical", "off_subspace") for a in ex.attempts)
    assert ex.to_record()["explanation"] == "unexplained"


def test_end_point_carries_its_explanation(narrow):
    """`explain(ls, end.theta, end=end)` reuses the end point's classification; the explanation
    rides on the EndPoint into its record; an `end` of another point is refused; landscapes the
    theory does not cover get no explanation, with the reason."""
    ls = pop(net(*STARTS["r2_saddle"]))
    end = polish(ls, ls.ravel(), method="saddle")
    assert end.converged
    ex = explain(ls, end.theta, end=end)
    assert ex.kind is ExplanationKind.irreducible and ex.wide_index == end.classification.index
    rec = dataclasses.replace(end, explanation=ex).to_record()
    assert rec["explanation"]["family_key"] == family_key(narrow["r2_saddle"])
    json.dumps(rec["explanation"])
    with pytest.raises(InputError, match="end point at `theta`"):
        explain(ls, end.theta + 1e-3, end=end)
    late = explain(ls, end.theta, end=end, budget=1e-9)  # a budget already spent: no reduction is tried
    assert late.kind is None and "time budget" in late.reason
    frozen = Landscape(narrow["r2_saddle"], teacher=TEACHER, freeze=("W2",))
    assert "freezes W2" in explain(frozen, frozen.ravel()).reason
    l2 = Landscape(narrow["r2_saddle"], teacher=TEACHER, lam=0.01)
    ex_l2 = explain(l2, l2.ravel())
    assert ex_l2.kind is None and "L2 penalty" in ex_l2.reason


# ----------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory, narrow):
    d = tmp_path_factory.mktemp("explain")
    save_network(d / "teacher.npz", TEACHER)
    wide = embed(narrow["r2_saddle"], LabelMap(((1, 2, 2),), (2,)), gammas=[[1.0, 0.6, 0.4]]).network
    save_network(d / "wide.npz", wide)
    return d


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_classify_explain(capsys, files, own):
    base = ["classify", "--model", files / "wide.npz", "--teacher", files / "teacher.npz", "--population", "erf",
            "--explain"]
    code, out, err = run(capsys, *base, "--json")
    assert code == 0, err
    doc = json.loads(out)
    ex = doc["explanation"]
    assert doc["schema"] == "lossatlas.classification/1" and doc["label"] == "strict_saddle"
    assert ex["explanation"] == "reducible" and ex["family_key"] == own["r2_saddle"].family_key
    assert ex["family_width"] == 2 and ex["wide_width"] == 3 and ex["family_index"] == 1
    assert ex["wide_index"] == doc["index"] and ex["index_at_least_narrow"] is True
    assert sorted(map(sorted, ex["embedding"][0]["groups"])) == [[0], [1, 2]]
    code, out, err = run(capsys, *base)
    assert code == 0 and "Explanation: reducible" in out


@pytest.mark.parametrize("extra", [["--freeze", "W2"], ["--lam", "0.1"]])
def test_cli_explain_bad_input(capsys, files, extra):
    args = ["classify", "--model", files / "wide.npz", "--teacher", files / "teacher.npz", "--population", "erf",
            "--explain", *extra]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--explain" in lines[0], err


# --------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_split_curvature_matches_fukumizu_amari_B():
    """On an empirical loss the B matrix measured by Hessian-vector products equals the closed-form
    Fukumizu-Amari matrix of lossatlas.symmetry (two routes through the same sums)."""
    import jax

    from lossatlas.data import teacher_student
    from lossatlas.symmetry import fukumizu_amari_B

    data = teacher_student(jax.random.PRNGKey(0), TEACHER, 200)
    ls1 = Landscape(net(*STARTS["r1_min"]), data)
    sol = find_critical_point(ls1, ls1.ravel(), SaddleNewton(gtol=1e-13), max_steps=50)
    n1 = ls1.unravel(sol.theta)
    wide = embed(n1, LabelMap(((1, 1),), (1,)), gammas=[[0.3, 0.7]]).network
    ls = Landscape(wide, data)
    ex = explain(ls, ls.ravel())
    assert ex.kind is ExplanationKind.reducible, ex.reason
    (sc,) = ex.split_curvature
    B = fukumizu_amari_B(Landscape(ex.family_network, data), flat(ex.family_network), 0)
    lam = np.linalg.eigvalsh(B)
    np.testing.assert_allclose(sc.B_eigenvalues, lam, atol=TOL["fa_identity_rtol"] * np.max(np.abs(lam)))
    assert ex.inertia_agrees


@pytest.mark.slow
def test_flow_end_points_are_explained():
    """Gradient-flow end points of students of widths 2 and 4 (r* = 3): every critical one is
    explained (none ``unexplained``), every family verified, the inertia predicted at the subspace
    measured there, and the family reproduced by explaining the family network itself."""
    import jax

    from lossatlas.models import init_mlp

    explained = 0
    for m, seed in itertools.product((2, 4), range(3)):
        student = init_mlp(jax.random.PRNGKey(seed), (3, m, 1), "erf", bias=False, scale=1.0)
        ls = pop(student)
        gmv = 0.0 if m >= 3 else None
        end = polish(ls, ls.ravel(), global_min_value=gmv, t1=1e4)
        if end.label.value == "not_critical":
            continue
        ex = explain(ls, end.theta, end=end, global_min_value=gmv)
        assert ex.kind is not None and ex.family_kind is not ExplanationKind.unexplained, ex.reason
        assert ex.family_critical and ex.on_subspace and ex.index_at_least_narrow
        assert ex.inertia_agrees is not False
        explained += 1
        fam = ex.family_network
        assert explain(pop(fam), flat(fam), global_min_value=0.0 if fam.hidden_widths[0] >= 3 else None
                       ).family_key == ex.family_key
    assert explained >= 4


# ------------------------------------------------------------------------------------ silent neurons, width 0


def test_silent_neuron_at_a_global_minimum_is_explained_by_the_teacher():
    """A fourth neuron with zero incoming weights (erf(0) = 0) and a non-zero outgoing weight computes
    nothing: the point is a global minimum whose family is the teacher itself (width 3), and it lies on
    the silent subspace Γ' = {the copies fixed, w_4 = 0, a_4 free}, of dimension 1 (only a_4 moves)."""
    W1 = np.vstack([T, np.zeros((1, 3))])
    a = np.concatenate([A, [0.7]])
    wide = net(W1, a)
    ls = pop(wide)
    theta = ls.ravel()
    assert float(ls.loss(theta)) <= 1e-28 and float(jnp.max(jnp.abs(ls.grad(theta)))) <= 1e-14
    ex = explain(ls, theta, global_min_value=0.0)
    assert ex.kind is ExplanationKind.global_minimum and ex.family_kind is ExplanationKind.reducible
    assert ex.family_widths == (3,) and ex.family_key == family_key(TEACHER)
    assert ex.silent_neurons == (3,) and ex.on_expansion_manifold is False
    assert ex.subspace_dim == 1 and ex.subspace_distance <= 1e-12
    emb = ex.embedding()[0]
    assert emb["silent_neurons"] == [3] and 3 not in emb["zero_neurons"]
    assert ex.projected_grad_norm_inf <= 1e-14
    rec = ex.to_record()
    assert rec["silent_neurons"] == [3] and rec["family_width"] == 3
    # a silent neuron whose incoming weights are not small is no silent neuron: the point is not the
    # teacher's function and is not explained by it
    W1b = W1.copy()
    W1b[3] = [0.05, 0.0, 0.0]
    ex2 = explain(pop(net(W1b, a)), pop(net(W1b, a)).ravel(), global_min_value=0.0)
    assert ex2.family_key != family_key(TEACHER) or ex2.kind is None


def test_the_origin_is_explained_by_the_width_0_network():
    """θ = 0 (no biases) is critical for any teacher: f ≡ 0. Every neuron is zero-type: the family is
    the width-0 network, and the subspace {a = 0, W free} has dimension m·d."""
    wide = net(np.zeros((3, 3)), np.zeros(3))
    ls = pop(wide)
    theta = ls.ravel()
    assert float(jnp.max(jnp.abs(ls.grad(theta)))) == 0.0
    ex = explain(ls, theta, global_min_value=0.0)
    assert ex.kind is ExplanationKind.reducible and ex.family_widths == (0,) and ex.family_width == 0
    assert ex.family_key.startswith("r0-") and ex.family_network is None and ex.family_theta is None
    assert ex.family_loss == pytest.approx(float(ls.loss(theta)), rel=1e-14)
    assert ex.subspace_dim == 9 and ex.subspace_distance == 0.0 and ex.silent_neurons == ()
    assert ex.to_record()["family_width"] == 0


#: An end point of the certified small atlas (erf teacher r* = 3, d = 4, seed 3; student m = 3, seed 0):
#: a critical point whose third neuron is saturated (|w_3| ~ 1.5e4, a_3 ~ -8.9e-5). Exact float64 values.
SATURATED = [float.fromhex(h) for h in (
    "-0x1.80cd0eaf99d90p-1", "-0x1.be773ad0e5b50p-4", "-0x1.43cf49e66bb98p-3", "-0x1.536be1c1871bep-1",
    "-0x1.4766973941373p-3", "0x1.dfdc207c35fafp-1", "-0x1.28a5c0f3ff31bp-1", "0x1.44d805fc5d53ap+0",
    "0x1.9c48df76abccdp+13", "-0x1.ff65bcccb87e5p+12", "-0x1.df288cdf84feep+13", "0x1.40b1f1054dcbep+13",
    "-0x1.41051e5a5c742p+0", "0x1.c37624423450ep-1", "-0x1.750e60bd0c0f5p-14")]


def test_false_merges_at_a_large_weight_leave_the_point_its_own_family():
    """At max|θ| ~ 1.5e4 the relative merge threshold (≥ 15) merges all three neurons into a dead group:
    the width-0 network (f ≡ 0) is trivially critical, but the point is not on its subspace and its loss
    (~5e-3) is far from the zero function's (checked independently below): every merge is a false merge
    (another function), so the point does not reduce and is its own family (irreducible), not unexplained."""
    from lossatlas.experiments import TeacherSpec
    from lossatlas.experiments._kind_teacher_student import teacher_network

    teacher = teacher_network(TeacherSpec(activation="erf", width=3, input_dim=4, scale=1.0, seed=3))
    ls = Landscape(MLP((jnp.zeros((3, 4)), jnp.zeros((1, 3))), None, "erf"), teacher=teacher)
    theta = jnp.asarray(np.array(SATURATED))
    assert float(jnp.max(jnp.abs(ls.grad(theta)))) <= 1e-11
    loss = float(ls.loss(theta))
    assert abs(loss - float(ls.loss(jnp.zeros(15)))) > 1e-2  # the zero function is far away in loss
    ex = explain(ls, theta, global_min_value=0.0)
    assert ex.kind is ExplanationKind.irreducible and ex.family_width == 3
    assert {a.outcome for a in ex.attempts} == {"false_merge"}
    assert all(a.narrow_widths == (0,) for a in ex.attempts)
    assert "close but distinct" in ex.reason and ex.to_record()["explanation"] == "irreducible"
