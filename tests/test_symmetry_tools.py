"""Tests for the permutation-symmetry tools (lossatlas.symmetry, issue 4).

Kinds of truth used here:
- hand-written references: permutations and splits built directly from the weight arrays;
- invariances: loss, gradient and Hessian spectrum under hidden-neuron permutations and sign
  flips (with the gradient and Hessian carried along by the flat permutation map);
- the narrow network as the reference: every point of an expansion subspace computes its
  function; reduction returns it up to permutation;
- closed forms against numerics: subspace dimensions, the counts T, T_zero_loss (distinct
  numerically built subspaces), dimension histograms from the notes;
- theory against numerics: embedded critical points are critical on their whole subspace
  (and zero-type subspaces are not, away from zero loss); the Fukumizu-Amari identity
  vᵀHv = γ(1−γ)uᵀBu and the inertia predicted by Sylvester's law against dense Hessians;
- round-off bounds: the loss along connecting paths stays at the global-minimum value.
"""

import itertools as it

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf as _erf

from helpers import small_landscape
from lossatlas._errors import InputError
from lossatlas.curvature import dense_hessian
from lossatlas.data import Dataset, teacher_student
from lossatlas.landscape import Landscape
from lossatlas.models import MLP, init_mlp
from lossatlas.solvers import NewtonTrustRegion, SaddleNewton, find_critical_point
from lossatlas.symmetry import (
    LabelMap,
    add_zero_neurons,
    align,
    canonical_form,
    check_subspace_critical,
    connecting_path,
    count_G,
    count_T,
    count_T_zero_loss,
    critical_subspace,
    embed,
    enumerate_label_maps,
    enumerate_zero_loss_keys,
    equivalent,
    expansion_subspace,
    flat_transform,
    fukumizu_amari_B,
    fukumizu_amari_test,
    path_loss_profile,
    permutation_from_string,
    permute,
    reduce_network,
    split_direction,
    split_label_map,
    split_neuron,
    subspace_dimension,
)
from lossatlas.symmetry._common import ravel_network, unravel_network
from tolerances import TOL

G_ACT = "sigmoid4_plus_softplus"  # the asymmetric activation of Şimşek et al.


def _rng(seed):
    return np.random.default_rng(seed)


def _X(seed, n, d):
    return _rng(seed).standard_normal((n, d))


_NP_ACTIVATIONS = {
    "tanh": np.tanh,
    "erf": lambda z: _erf(z / np.sqrt(2.0)),
    G_ACT: lambda z: 1.0 / (1.0 + np.exp(-4.0 * z)) + np.logaddexp(z, 0.0),
}


def _forward(net, X):
    """Independent NumPy forward pass (reference for "computes the same function")."""
    h = np.asarray(X, dtype=np.float64)
    sigma = _NP_ACTIVATIONS[net.activation]
    for i, w in enumerate(net.weights):
        h = h @ np.asarray(w).T
        if net.biases is not None:
            h = h + np.asarray(net.biases[i])
        if i < net.depth - 1:
            h = sigma(h)
    return h


def _random_perms(net, rng, signs=False):
    perms = [rng.permutation(m) for m in net.hidden_widths]
    sg = [rng.choice([-1, 1], size=m) for m in net.hidden_widths] if signs else None
    return perms, sg


# ---------------------------------------------------------------------------------------------
# Permutation actions
# ---------------------------------------------------------------------------------------------


def test_permute_matches_hand_written_arrays():
    net = init_mlp(jax.random.PRNGKey(0), (3, 5, 2), "tanh", bias=True, scale=1.0)
    perm = np.array([3, 0, 4, 1, 2])
    signs = np.array([1, -1, -1, 1, -1])
    out = permute(net, [perm], [signs])
    W1, b1, W2, b2 = (np.asarray(a) for a in (net.weights[0], net.biases[0], net.weights[1],
                                                 net.biases[1]))
    np.testing.assert_array_equal(out.weights[0], W1[perm] * signs[:, None])
    np.testing.assert_array_equal(out.biases[0], b1[perm] * signs)
    np.testing.assert_array_equal(out.weights[1], W2[:, perm] * signs[None, :])
    np.testing.assert_array_equal(out.biases[1], b2)


@pytest.mark.parametrize("activation,signs", [
    ("tanh", True), (G_ACT, False), pytest.param("erf", True, marks=pytest.mark.slow)])
def test_loss_gradient_and_hessian_are_permutation_invariant(activation, signs):
    ls = small_landscape(activation, widths=(3, 4, 3, 2), bias=True, n=30, seed=1)
    net = ls.model
    perms, sg = _random_perms(net, _rng(2), signs=signs)
    other = permute(net, perms, sg)
    th, th2 = ls.ravel(net), ls.ravel(other)
    idx, sign = flat_transform(net, perms, sg)
    np.testing.assert_array_equal(np.asarray(th2), sign * np.asarray(th)[idx])
    rtol = TOL["symmetry_invariance_rtol"]
    L1, L2 = float(ls.loss(th)), float(ls.loss(th2))
    assert abs(L1 - L2) <= rtol * abs(L1)
    g1, g2 = np.asarray(ls.grad(th)), np.asarray(ls.grad(th2))
    assert np.max(np.abs(g2 - sign * g1[idx])) <= rtol * np.max(np.abs(g1))
    H1, H2 = dense_hessian(ls, th), dense_hessian(ls, th2)
    H1t = (sign[:, None] * sign[None, :]) * H1[np.ix_(idx, idx)]
    scale = np.max(np.abs(H1))
    assert np.max(np.abs(H2 - H1t)) <= rtol * scale
    e1, e2 = np.linalg.eigvalsh(H1), np.linalg.eigvalsh(H2)
    assert np.max(np.abs(e1 - e2)) <= rtol * scale * len(e1)


@pytest.mark.parametrize("activation", ["tanh", G_ACT])
@pytest.mark.parametrize("widths", [(3, 5, 2), (2, 4, 3, 2)])
def test_canonical_form_is_constant_on_orbits(activation, widths):
    net = init_mlp(jax.random.PRNGKey(3), widths, activation, bias=True, scale=1.0)
    odd = activation == "tanh"
    can = ravel_network(canonical_form(net))
    rng = _rng(4)
    for _ in range(5):
        perms, sg = _random_perms(net, rng, signs=odd)
        np.testing.assert_array_equal(ravel_network(canonical_form(permute(net, perms, sg))), can)
    c = canonical_form(net)
    np.testing.assert_array_equal(ravel_network(canonical_form(c)), can)  # idempotent
    assert equivalent(c, net, tol=TOL["equivalence_rtol"])
    X = _X(5, 7, widths[0])
    assert np.max(np.abs(_forward(c, X) - _forward(net, X))) <= TOL["symmetry_function_atol"]


@pytest.mark.parametrize("activation", ["tanh", G_ACT])
def test_align_recovers_permutations_and_equivalent_decides(activation):
    net = init_mlp(jax.random.PRNGKey(6), (3, 5, 4, 2), activation, bias=True, scale=1.0)
    odd = activation == "tanh"
    rng = _rng(7)
    perms, sg = _random_perms(net, rng, signs=odd)
    other = permute(net, perms, sg)
    noisy = unravel_network(other, ravel_network(other) + 1e-13 * rng.standard_normal(net.n_params))
    res = align(net, noisy)
    assert res.distance <= 1e-12
    np.testing.assert_allclose(ravel_network(permute(noisy, res.permutations, res.signs)),
                               ravel_network(net), atol=1e-12)
    assert equivalent(net, noisy, tol=TOL["equivalence_rtol"])
    bumped = ravel_network(other).copy()
    bumped[0] += 1e-4
    assert not equivalent(net, unravel_network(other, bumped), tol=TOL["equivalence_rtol"])
    if odd:
        assert not equivalent(net, other, signs=False)
    else:
        # a sign flip changes the function of a non-odd activation: refused as a symmetry
        with pytest.raises(InputError):
            permute(net, [None, None], [np.ones(5), None])
        flipped = net.replace(W1=-net.weights[0], W2=-net.weights[1])
        assert not equivalent(net, flipped)
    wider = init_mlp(jax.random.PRNGKey(6), (3, 6, 4, 2), activation, bias=True)
    assert not equivalent(net, wider)


@pytest.mark.parametrize("bad", [[0, 0, 1], [0, 1], [0.5, 1, 2], ["a", "b", "c"], [1, 2, 3],
                                 [[0, 1, 2]]])
def test_bad_permutations_raise_input_error(bad):
    net = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), G_ACT)
    with pytest.raises(InputError):
        permute(net, [bad])
    with pytest.raises(InputError):
        connecting_path(net, bad)


def test_permutation_strings():
    np.testing.assert_array_equal(permutation_from_string("2,0,1"), [2, 0, 1])
    for bad in ["2,0,0", "2,0", "a,b,c", "", "3,0,1", "1.5,0,2"]:
        with pytest.raises(InputError):
            permutation_from_string(bad, 3)


def test_float32_and_nonfinite_networks_are_refused():
    net = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), G_ACT)
    f32 = MLP(tuple(w.astype(jnp.float32) for w in net.weights), None, G_ACT)
    bad = net.replace(W1=net.weights[0].at[0, 0].set(jnp.nan))
    for fn in (canonical_form, reduce_network, lambda n: split_neuron(n, 0),
               lambda n: connecting_path(n, [1, 2, 0])):
        with pytest.raises(InputError):
            fn(f32)
        with pytest.raises(InputError):
            fn(bad)
    for arrays in (np.ones((1, 2), np.float32), [[1.0, np.inf]]):
        with pytest.raises(InputError):
            add_zero_neurons(net, arrays)
        with pytest.raises(InputError):
            connecting_path(net, [1, 2, 0], spare_incoming=np.ravel(arrays))
    with pytest.raises(InputError):
        split_neuron(net, 0, np.array([0.5, 0.5], np.float32))


# ---------------------------------------------------------------------------------------------
# Expansion and affine subspaces
# ---------------------------------------------------------------------------------------------


def test_split_neuron_matches_hand_written_split():
    net = init_mlp(jax.random.PRNGKey(1), (3, 4, 2), G_ACT, bias=True, scale=1.0)
    wide = split_neuron(net, 2, (0.2, -0.5, 1.3))
    W1, b1, W2 = np.asarray(net.weights[0]), np.asarray(net.biases[0]), np.asarray(net.weights[1])
    np.testing.assert_array_equal(wide.weights[0], np.concatenate([W1, W1[[2, 2]]]))
    np.testing.assert_array_equal(wide.biases[0], np.concatenate([b1, b1[[2, 2]]]))
    col = W2[:, 2]
    expect = np.concatenate([W2, np.stack([-0.5 * col, 1.3 * col], axis=1)], axis=1)
    expect[:, 2] = 0.2 * col
    np.testing.assert_array_equal(wide.weights[1], expect)
    X = _X(2, 9, 3)
    assert np.max(np.abs(_forward(wide, X) - _forward(net, X))) <= TOL["symmetry_function_atol"]
    with pytest.raises(InputError):
        split_neuron(net, 2, (0.5, 0.6))
    with pytest.raises(InputError):
        split_neuron(net, 4, (0.5, 0.5))


def test_add_zero_neurons_keeps_the_function():
    net = init_mlp(jax.random.PRNGKey(1), (3, 4, 5, 2), "tanh", bias=True, scale=1.0)
    wide = add_zero_neurons(net, np.ones((2, 4)), layer=2, bias=[0.3, -1.0])
    assert wide.hidden_widths == (4, 7)
    X = _X(3, 9, 3)
    assert np.max(np.abs(_forward(wide, X) - _forward(net, X))) <= TOL["symmetry_function_atol"]
    with pytest.raises(InputError):
        add_zero_neurons(net, np.ones((2, 3)), layer=2)


# (narrow widths, activation, bias, label map, signs)
EMBED_CASES = {
    "two-layer": ((2, 3, 1), G_ACT, False, ((1, 0, 2, 3, 1, 0, 2),), None),
    "two-layer-vector-bias-signs": ((3, 2, 2), "tanh", True, ((2, 1, 2, 0, 1),),
                                    ((1, 1, -1, 1, -1),)),
    "zero-groups": ((2, 2, 1), G_ACT, True, ((1, -1, 2, -1, 0, -2, -2, 2),), None),
    "deep-signs-groups": ((3, 2, 3, 2), "tanh", True,
                          ((2, 1, 0, 2, -1, -1), (1, 3, 0, 2, 3, 1, -1, -1)),
                          ((1, -1, 1, -1, 1, -1), (1, 1, 1, -1, 1, 1, -1, 1))),
    "deep": ((2, 3, 2, 1), G_ACT, False, ((3, 1, 1, 2, 0), (2, 1, 1)), None),
}


def _embed_case(name, seed=0):
    widths, act, bias, labels, signs = EMBED_CASES[name]
    narrow = init_mlp(jax.random.PRNGKey(seed), widths, act, bias=bias, scale=1.0)
    lm = LabelMap(labels, narrow.hidden_widths, signs)
    return narrow, lm


@pytest.mark.parametrize("name", sorted(EMBED_CASES))
def test_subspace_is_orthonormal_has_formula_dimension_and_keeps_the_function(name):
    narrow, lm = _embed_case(name)
    emb = embed(narrow, lm, key=jax.random.PRNGKey(1))
    sub = emb.subspace()
    B = sub.basis
    tol = TOL["subspace_basis_atol"]
    assert np.max(np.abs(B.T @ B - np.eye(sub.dim))) <= tol
    assert np.max(np.abs(B.T @ sub.base), initial=0.0) <= tol  # base = point nearest to 0
    d, d_out, bias = narrow.widths[0], narrow.widths[-1], narrow.has_bias
    assert sub.dim == subspace_dimension(lm, d, d_out, bias=bias)
    if narrow.depth == 2 and not lm.has_zero_groups:
        m, r = lm.wide_widths[0], lm.narrow_widths[0]
        k0 = len(lm.zero_neurons(1))
        assert sub.dim == d_out * (m - k0 - r) + (d + bias) * k0  # the notes' formula
    theta = ravel_network(emb.network)
    assert sub.distance(theta) <= tol
    X = _X(4, 11, d)
    ref = _forward(narrow, X)
    assert np.max(np.abs(_forward(emb.network, X) - ref)) <= TOL["symmetry_function_atol"]
    for x in sub.random_points(jax.random.PRNGKey(2), 5, scale=1.0):
        out = _forward(unravel_network(emb.network, x), X)
        assert np.max(np.abs(out - ref)) <= TOL["symmetry_function_atol"]
    # moving one copy's bias/first weight off the subspace leaves it
    off = theta.copy()
    off[0] += 1e-3
    assert sub.distance(off) > 1e-5


def _key_to_label_map(key, r, m):
    labels = [None] * m
    group = -1
    for label, block in sorted(key, key=lambda t: (t[0], sorted(t[1]))):
        if label == 0 and len(block) > 1:
            for j in block:
                labels[j] = group
            group -= 1
        else:
            for j in block:
                labels[j] = label
    return LabelMap((tuple(labels),), (r,))


def _distinct(subspaces):
    kept = []
    for s in subspaces:
        if not any(s.same_as(k) for k in kept):
            kept.append(s)
    return kept


def test_numerically_built_subspaces_reproduce_T_and_its_dimension_histogram():
    # r* = 2 teacher, m = 4, d = 2, scalar output, no bias: T(2, 4) = 50 distinct zero-loss
    # subspaces with dimensions {2: 14, 3: 24, 4: 12} (notes §3.2).
    teacher = init_mlp(jax.random.PRNGKey(11), (2, 2, 1), G_ACT, scale=1.0)
    X = _X(12, 15, 2)
    ref = _forward(teacher, X)
    subs = []
    for phi in enumerate_label_maps(2, 4, zero_type=True):
        sub = expansion_subspace(teacher, LabelMap((phi,), (2,)))
        x = sub.random_points(jax.random.PRNGKey(len(subs)), 1)[0]
        out = _forward(unravel_network(embed(teacher, LabelMap((phi,), (2,))).network, x), X)
        assert np.max(np.abs(out - ref)) <= TOL["symmetry_function_atol"]
        subs.append(sub)
    assert len(_distinct(subs)) == len(subs) == count_T(2, 4) == 50
    hist = {}
    for s in subs:
        hist[s.dim] = hist.get(s.dim, 0) + 1
    assert hist == {2: 14, 3: 24, 4: 12}


def test_zero_group_pieces_reproduce_T_zero_loss():
    teacher = init_mlp(jax.random.PRNGKey(13), (2, 1, 1), G_ACT, scale=1.0)
    X = _X(14, 15, 2)
    subs = []
    for key in enumerate_zero_loss_keys(1, 3, zero_groups=True):
        lm = _key_to_label_map(key, 1, 3)
        sub = expansion_subspace(teacher, lm)
        for x in sub.random_points(jax.random.PRNGKey(len(subs)), 2):
            out = _forward(unravel_network(embed(teacher, lm).network, x), X)
            assert np.max(np.abs(out - _forward(teacher, X))) <= TOL["symmetry_function_atol"]
        subs.append(sub)
    assert len(_distinct(subs)) == count_T_zero_loss(1, 3) == 10


def test_critical_subspace_is_the_collinear_part():
    narrow, lm = _embed_case("two-layer")
    lm = LabelMap(((1, 2, 3, 1, 1, 3),), (3,))
    assert critical_subspace(narrow, lm).same_as(expansion_subspace(narrow, lm))
    narrow, _ = _embed_case("deep")
    lm = LabelMap(((3, 1, 2, 1), (2, 1, 2, 2)), (3, 2))
    cs = critical_subspace(narrow, lm)
    assert cs.dim == (4 - 3) + (4 - 2)
    es = expansion_subspace(narrow, lm)
    assert es.dim > cs.dim
    # every collinear split is a point of the full expansion subspace
    pts = cs.random_points(jax.random.PRNGKey(0), 3)
    assert max(es.distance(x) for x in pts) <= TOL["subspace_basis_atol"]
    with pytest.raises(InputError):
        critical_subspace(narrow, LabelMap(((3, 1, 2, 0), (2, 1)), (3, 2)))


def test_label_map_and_embed_bad_input():
    narrow = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), G_ACT)
    for labels in [((1, 2),), ((1, 2, 4),), ((1, 2, 3, -1),), ((1, 2, 3.0),)]:
        with pytest.raises(InputError):
            LabelMap(labels, (3,))
    with pytest.raises(InputError):  # sign flips need an odd activation
        embed(narrow, LabelMap(((1, 2, 3, 1),), (3,), ((1, 1, 1, -1),)))
    with pytest.raises(InputError):  # ratios of neuron 0 sum to 0.9
        embed(narrow, LabelMap(((1, 2, 3, 1),), (3,)), gammas=[[0.5, 1, 1, 0.4]])
    with pytest.raises(InputError):
        split_label_map((3,), 4, splits={0: 3})


# ---------------------------------------------------------------------------------------------
# Reduction
# ---------------------------------------------------------------------------------------------


def _partition(lm, layer):
    return ({frozenset(g) for g in lm.groups(layer)}, set(lm.zero_neurons(layer)),
            {frozenset(g) for g in lm.zero_groups(layer)})


@pytest.mark.parametrize("name", sorted(EMBED_CASES))
def test_reduce_inverts_embed_at_random_points_of_the_subspace(name):
    narrow, lm = _embed_case(name, seed=3)
    emb = embed(narrow, lm, key=jax.random.PRNGKey(4))
    sub = emb.subspace()
    tol = TOL["reduction_rtol"]
    for x in sub.random_points(jax.random.PRNGKey(5), 3, scale=0.7):
        red = reduce_network(unravel_network(emb.network, x), tol=tol)
        assert equivalent(red.narrow, narrow, tol=TOL["equivalence_rtol"])
        for layer in range(1, narrow.depth):
            assert _partition(red.label_map, layer) == _partition(lm, layer)
        assert red.subspace.dim == sub.dim
        assert red.distance <= TOL["subspace_basis_atol"]
        assert red.on_expansion_manifold == (not lm.has_zero_groups)
    # the embedded point itself: its zero groups are silent neuron by neuron, so it also lies
    # on the expansion manifold, which reduction prefers
    red = reduce_network(emb.network, tol=tol)
    assert red.on_expansion_manifold
    assert red.distance <= TOL["subspace_basis_atol"]
    assert equivalent(red.narrow, narrow, tol=TOL["equivalence_rtol"])


def test_reduce_cancelling_pair_is_off_the_expansion_manifold():
    narrow = init_mlp(jax.random.PRNGKey(8), (2, 2, 1), G_ACT, scale=1.0)
    W1, W2 = np.asarray(narrow.weights[0]), np.asarray(narrow.weights[1])
    v = np.array([[0.3, -0.7]])
    wide = MLP((jnp.asarray(np.concatenate([W1, v, v])),
                jnp.asarray(np.concatenate([W2, [[0.4, -0.4]]], axis=1))), None, G_ACT)
    red = reduce_network(wide)
    assert red.label_map.labels == ((1, 2, -1, -1),)
    assert not red.on_expansion_manifold
    assert red.subspace.dim == 2 + 2 - 1  # d + |Z| - 1 (notes §3.2, variant B)
    assert red.distance <= TOL["subspace_basis_atol"]
    assert equivalent(red.narrow, narrow, tol=TOL["equivalence_rtol"])


def test_reduce_needs_a_second_pass_when_a_neuron_only_feeds_a_zero_group():
    narrow = init_mlp(jax.random.PRNGKey(9), (2, 2, 2, 1), "tanh", bias=True, scale=1.0)
    W1, W2, W3 = (np.asarray(w) for w in narrow.weights)
    b1, b2, b3 = (np.asarray(b) for b in narrow.biases)
    rng = _rng(10)
    e_in, e_b = rng.standard_normal(2), 0.4  # extra layer-1 neuron e (index 2)
    z_in = np.append(rng.standard_normal(2), 1.7)  # zero group {2, 3} of layer 2 reads e
    W1w = np.vstack([W1, e_in])
    b1w = np.append(b1, e_b)
    W2w = np.vstack([np.hstack([W2, np.zeros((2, 1))]), z_in, z_in])
    b2w = np.append(b2, [0.1, 0.1])
    W3w = np.hstack([W3, [[0.8, -0.8]]])
    wide = MLP((jnp.asarray(W1w), jnp.asarray(W2w), jnp.asarray(W3w)),
               (jnp.asarray(b1w), jnp.asarray(b2w), jnp.asarray(b3)), "tanh")
    red = reduce_network(wide)
    assert red.label_map.labels == ((1, 2, 0), (1, 2, -1, -1))
    assert red.passes == 3  # two passes that remove neurons, one that confirms
    assert red.distance <= TOL["subspace_basis_atol"]
    assert equivalent(red.narrow, narrow, tol=TOL["equivalence_rtol"])


def test_reduce_leaves_a_minimal_network_alone_and_merges_sign_flips_only_when_odd():
    net = init_mlp(jax.random.PRNGKey(10), (3, 4, 2), "tanh", bias=True, scale=1.0)
    red = reduce_network(net)
    assert red.is_minimal and red.label_map.labels == ((1, 2, 3, 4),)
    np.testing.assert_allclose(ravel_network(red.narrow), ravel_network(net), rtol=0, atol=0)
    flipped = split_neuron(net, 1, (0.5, 0.5))
    flipped = permute(flipped, [None], [np.array([1, 1, 1, 1, -1])])
    red = reduce_network(flipped)
    assert red.label_map.labels == ((1, 2, 3, 4, 2),)
    assert red.label_map.signs == ((1, 1, 1, 1, -1),)
    g_net = init_mlp(jax.random.PRNGKey(10), (3, 4, 2), G_ACT, bias=True, scale=1.0)
    w1 = np.asarray(g_net.weights[0])
    w1 = np.vstack([w1, -w1[1]])
    b1 = np.append(np.asarray(g_net.biases[0]), -np.asarray(g_net.biases[0])[1])
    w2 = np.hstack([np.asarray(g_net.weights[1]), -np.asarray(g_net.weights[1])[:, 1:2]])
    g_wide = MLP((jnp.asarray(w1), jnp.asarray(w2)), (jnp.asarray(b1), g_net.biases[1]), G_ACT)
    assert reduce_network(g_wide).is_minimal  # (−w, −a) is a different neuron for g


# ---------------------------------------------------------------------------------------------
# Critical points: embedding, Fukumizu-Amari
# ---------------------------------------------------------------------------------------------

# (seed, student width): polished narrow points whose Fukumizu-Amari matrix is positive
# definite, indefinite and negative definite (found by a scan; each is a strict local minimum).
FA_CASES = {"positive_definite": (0, 1), "indefinite": (2, 1), "negative_definite": (1, 2)}


def _problem(seed, r):
    teacher = init_mlp(jax.random.PRNGKey(100 + seed), (2, 3, 1), G_ACT, scale=1.5)
    data = teacher_student(jax.random.PRNGKey(200 + seed), teacher, 60)
    student = init_mlp(jax.random.PRNGKey(300 + seed), (2, r, 1), G_ACT, scale=1.0)
    return Landscape(student, data)


@pytest.fixture(scope="module")
def critical_points():
    """Narrow critical points polished by Newton trust region, then SaddleNewton."""
    out = {}
    for name, (seed, r) in FA_CASES.items():
        ls = _problem(seed, r)
        sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=300)
        sol = find_critical_point(ls, sol.theta, SaddleNewton(), max_steps=20)
        assert sol.grad_norm_inf <= TOL["critical_grad_inf"]
        assert sol.loss > 1e-6  # not a global minimum
        out[name] = (ls, sol.theta)
    return out


def test_duplication_subspaces_are_critical_and_zero_type_ones_are_not(critical_points):
    for name in ("positive_definite", "negative_definite"):
        ls, theta = critical_points[name]
        narrow = ls.unravel(theta)
        r, m = narrow.hidden_widths[0], 3
        n_critical = 0
        for phi in enumerate_label_maps(r, m, zero_type=True):
            lm = LabelMap((phi,), (r,))
            emb = embed(narrow, lm, key=jax.random.PRNGKey(sum(phi)))
            wls = Landscape(emb.network, ls.data)
            check = check_subspace_critical(wls, emb.subspace(), key=jax.random.PRNGKey(1),
                                            n_points=3, scale=1.0)
            assert check.loss_spread <= TOL["symmetry_invariance_rtol"] * float(ls.loss(theta))
            if 0 in phi:
                assert check.max_grad_norm_inf >= TOL["not_critical_grad_inf"]
            else:
                assert check.max_grad_norm_inf <= TOL["embedded_grad_inf"]
                n_critical += 1
        assert n_critical == count_G(r, m)


def test_every_expansion_subspace_of_a_zero_loss_minimum_is_critical():
    teacher = init_mlp(jax.random.PRNGKey(21), (2, 2, 1), G_ACT, bias=True, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(22), teacher, 40)
    worst = 0.0
    for phi in enumerate_label_maps(2, 4, zero_type=True):
        lm = LabelMap((phi,), (2,))
        emb = embed(teacher, lm, key=jax.random.PRNGKey(3))
        check = check_subspace_critical(Landscape(emb.network, data), emb.subspace(),
                                        key=jax.random.PRNGKey(4), n_points=2)
        worst = max(worst, check.max_grad_norm_inf)
        assert np.max(check.loss) <= TOL["path_zero_loss_atol"]
    assert worst <= TOL["embedded_grad_inf"]


@pytest.mark.slow  # the default run keeps a faster case of the same check (issue 17: suite under 5 min)
def test_vector_output_critical_point_is_critical_only_on_collinear_splits():
    teacher = init_mlp(jax.random.PRNGKey(7), (2, 3, 2), "tanh", scale=1.5)
    data = teacher_student(jax.random.PRNGKey(8), teacher, 40)
    ls = Landscape(init_mlp(jax.random.PRNGKey(9), (2, 2, 2), "tanh", scale=1.0), data)
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(), max_steps=200)
    sol = find_critical_point(ls, sol.theta, SaddleNewton(), max_steps=20)
    narrow = ls.unravel(sol.theta)
    lm = LabelMap(((1, 2, 1, 2, 1),), (2,), ((1, 1, -1, 1, 1),))  # with a sign-flipped copy
    wls = Landscape(embed(narrow, lm).network, data)
    cs, es = critical_subspace(narrow, lm), expansion_subspace(narrow, lm)
    assert (cs.dim, es.dim) == (3, 6)  # m − r against d_out (m − r)
    good = check_subspace_critical(wls, cs, key=jax.random.PRNGKey(0), n_points=4)
    bad = check_subspace_critical(wls, es, key=jax.random.PRNGKey(0), n_points=4)
    assert good.max_grad_norm_inf <= TOL["embedded_grad_inf"]
    assert bad.max_grad_norm_inf >= TOL["not_critical_grad_inf"]  # same function, not critical
    assert bad.loss_spread <= TOL["symmetry_invariance_rtol"] * sol.loss


def _second_variation_case(widths, act, bias, layer, neuron, seed):
    net = init_mlp(jax.random.PRNGKey(seed), widths, act, bias=bias, scale=1.0)
    teacher = init_mlp(jax.random.PRNGKey(seed + 1), widths, act, bias=bias, scale=1.0)
    data = teacher_student(jax.random.PRNGKey(seed + 2), teacher, 25)
    ls = Landscape(net, data)
    B = fukumizu_amari_B(ls, ls.ravel(), neuron, layer=layer)
    rng = _rng(seed)
    for gamma in (-0.7, 0.25, 0.5, 1.8):
        wide = split_neuron(net, neuron, (gamma, 1 - gamma), layer=layer)
        wls = Landscape(wide, data)
        u = rng.standard_normal(B.shape[0])
        v = split_direction(net, neuron, gamma, u, layer=layer)
        Hv = np.asarray(wls.hvp(wls.ravel(), jnp.asarray(v)))
        lhs, rhs = v @ Hv, gamma * (1 - gamma) * (u @ B @ u)
        scale = np.linalg.norm(v) * np.linalg.norm(Hv) + abs(gamma * (1 - gamma)) * (
            np.linalg.norm(u) * np.linalg.norm(B @ u))
        assert abs(lhs - rhs) <= TOL["fa_identity_rtol"] * scale


@pytest.mark.parametrize("case", [
    pytest.param(((2, 3, 1), G_ACT, False, 1, 0), marks=pytest.mark.slow),
    pytest.param(((3, 3, 2), "tanh", True, 1, 2), marks=pytest.mark.slow),
    pytest.param(((2, 3, 2, 2), G_ACT, True, 1, 1), marks=pytest.mark.slow),
    ((2, 3, 2, 2), G_ACT, True, 2, 0),  # the default run's case: deep, multi-output, fastest
])
def test_second_variation_along_a_split_is_gamma_one_minus_gamma_uBu(case):
    # Holds at every split point (critical or not) and at any depth: the split keeps the
    # function to first order, so vᵀHv only sees the σ'' term.
    _second_variation_case(*case, seed=31)


def _fa_loss(theta, shapes, X, Y):
    """½ mean ||W_2 g(W_1 x) − y||² with g(z) = sigmoid(4z) + softplus(z), written out."""
    (a, b), (c, e) = shapes
    W1, W2 = theta[: a * b].reshape(a, b), theta[a * b:].reshape(c, e)
    g = jax.nn.sigmoid(4 * (X @ W1.T)) + jnp.logaddexp(X @ W1.T, 0.0)
    return 0.5 * jnp.mean(jnp.sum((g @ W2.T - Y) ** 2, axis=1))


_fa_hessian = jax.jit(jax.hessian(_fa_loss), static_argnums=1)


@pytest.mark.parametrize("name", sorted(FA_CASES))
def test_fukumizu_amari_predictions_match_the_dense_hessian(critical_points, name):
    ls, theta = critical_points[name]
    gammas = (-0.5, 0.0, 0.3, 0.5, 1.0, 1.5)
    res = fukumizu_amari_test(ls, theta, 0, gammas)
    assert res.B_definiteness == name
    assert res.exact_inertia and res.narrow_index == 0 and res.narrow_nullity == 0
    d = res.B.shape[0]
    expected = {
        "positive_definite": ["saddle", "degenerate", "minimum", "minimum", "degenerate", "saddle"],
        "negative_definite": ["minimum", "degenerate", "saddle", "saddle", "degenerate", "minimum"],
        "indefinite": ["saddle", "degenerate", "saddle", "saddle", "degenerate", "saddle"],
    }[name]
    assert [s.label for s in res.splits] == expected
    # the numbers behind `exact_inertia` and `agrees`, from the Hessian of a hand-written loss
    # of the narrow net and of each split built by hand (neuron 0 copied, outgoing γc, (1 − γ)c)
    net = ls.unravel(jnp.asarray(theta))
    assert not net.has_bias and len(net.weights) == 2
    W1, W2 = (np.asarray(w) for w in net.weights)
    X, Y = ls.data.X, ls.data.Y

    def inertia(A, C):
        H = np.asarray(_fa_hessian(jnp.asarray(np.concatenate([A.ravel(), C.ravel()])),
                                   (A.shape, C.shape), X, Y))
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        tol = TOL["split_hessian_zero_rtol"] * np.max(np.abs(lam))
        return int(np.sum(lam < -tol)), int(np.sum(np.abs(lam) <= tol)), lam, tol

    assert inertia(W1, W2)[:2] == (0, 0)  # the narrow point is a non-degenerate minimum
    for gamma, s in zip(gammas, res.splits, strict=True):
        W1s = np.vstack([W1, W1[:1]])
        W2s = np.hstack([W2, (1 - gamma) * W2[:, :1]])
        W2s[:, 0] *= gamma
        index, nullity, lam, tol = inertia(W1s, W2s)
        assert (s.gamma, s.index, s.nullity) == (gamma, index, nullity)
        assert (s.predicted_index, s.predicted_nullity) == (index, nullity)
        assert lam[0] <= s.rayleigh_bound + tol  # Rayleigh: an upper bound on λ_min
        assert s.label == ("degenerate" if gamma in (0.0, 1.0) else
                           "saddle" if index > 0 else "minimum")
    for s in res.splits:
        assert s.grad_norm_inf <= TOL["embedded_grad_inf"]
        assert s.agrees, s.to_record()  # index and nullity by Sylvester's law, Rayleigh bound
        if s.label == "degenerate":
            assert s.nullity == 1 + d
        if s.label == "minimum":
            assert s.index == 0 and s.nullity == 1


def test_fukumizu_amari_bad_input(critical_points):
    ls, theta = critical_points["indefinite"]
    with pytest.raises(InputError):
        fukumizu_amari_B(ls, theta, 3)
    with pytest.raises(InputError):
        fukumizu_amari_B(Landscape(ls.model, ls.data, lam=0.1), theta, 0)
    with pytest.raises(InputError):
        fukumizu_amari_test(ls, theta, 0, [])


# ---------------------------------------------------------------------------------------------
# Connecting paths
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_r3():
    teacher = init_mlp(jax.random.PRNGKey(41), (2, 3, 1), G_ACT, bias=True, scale=1.0)
    return teacher, teacher_student(jax.random.PRNGKey(42), teacher, 50)


def _expected_segments(perm):
    seen, total = set(), 0
    for j in range(len(perm)):
        if j in seen or perm[j] == j:
            continue
        c, k = 0, j
        while k not in seen:
            seen.add(k)
            k = perm[k]
            c += 1
        total += 2 * (c + 1)
    return total + (1 if total else 0)


def test_paths_between_all_permuted_global_minima_keep_zero_loss(teacher_r3):
    teacher, data = teacher_r3
    X = data.X
    for perm in it.permutations(range(3)):
        path = connecting_path(teacher, list(perm))
        start, end = path.start, path.end
        assert start.hidden_widths == (4,)
        np.testing.assert_array_equal(path.waypoints[0], ravel_network(start))
        np.testing.assert_array_equal(path.waypoints[-1],
                                      ravel_network(permute(start, [list(perm) + [3]])))
        assert path.n_segments == _expected_segments(perm)
        prof = path_loss_profile(Landscape(start, data), path, samples_per_segment=100)
        assert prof.max_loss <= TOL["path_zero_loss_atol"]
        _, pts = path.points(25)
        out = np.stack([_forward(unravel_network(start, x), X) for x in pts])
        assert np.max(np.abs(out - _forward(teacher, X)[None])) <= TOL["path_function_atol"]
        assert equivalent(end, start, tol=0.0)


def test_path_with_a_random_spare_and_a_four_cycle():
    teacher = init_mlp(jax.random.PRNGKey(43), (3, 4, 2), "tanh", scale=1.0)
    data = teacher_student(jax.random.PRNGKey(44), teacher, 40)
    perm = [2, 3, 1, 0]
    path = connecting_path(teacher, perm, spare_incoming=_rng(45).standard_normal(3))
    assert path.n_segments == _expected_segments(perm) == 11
    prof = path_loss_profile(Landscape(path.start, data), path, samples_per_segment=64)
    assert prof.max_loss <= TOL["path_zero_loss_atol"]


def test_path_in_a_deep_network_permutes_every_layer():
    net = init_mlp(jax.random.PRNGKey(46), (3, 3, 4, 2), G_ACT, bias=True, scale=1.0)
    X = jnp.asarray(_X(47, 30, 3))
    ds = Dataset(X, net(X))
    path = connecting_path(net, [[1, 2, 0], [3, 2, 0, 1]], layer=None)
    assert path.start.hidden_widths == (4, 5)
    np.testing.assert_array_equal(
        path.waypoints[-1], ravel_network(permute(path.start, [[1, 2, 0, 3], [3, 2, 0, 1, 4]])))
    prof = path_loss_profile(Landscape(path.start, ds), path, samples_per_segment=64)
    assert prof.max_loss <= TOL["path_zero_loss_atol"]
    # a non-minimum: the loss is constant along the path, at its own value
    noisy = Dataset(X, net(X) + 0.1)
    prof = path_loss_profile(Landscape(path.start, noisy), path, samples_per_segment=16)
    assert prof.max_deviation <= TOL["symmetry_invariance_rtol"] * prof.start_loss
    with pytest.raises(InputError):
        connecting_path(net, [[1, 2, 0]], layer=None)
    with pytest.raises(InputError):
        connecting_path(net, [1, 2, 0], spare_incoming=np.ones(2))
