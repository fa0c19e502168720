"""L2-regularised networks (issue 6): representation/covariance losses, forces, pruning, the
tight example and the ``lossatlas l2`` commands. Grouped by kind of truth."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from lossatlas import InputError
from lossatlas.data import Dataset, save_data, save_network
from lossatlas.models import MLP, init_mlp
from lossatlas.representation import (
    PruneMode,
    bipartite_tight_example,
    covariance_loss,
    forces,
    kink_stationarity,
    l2_losses,
    min_norm_network,
    neuron_balance,
    nuclear_lower_bound,
    parameter_loss,
    prune,
    prune_bound,
    representation_loss,
    train_l2,
    width_scan,
)
from tolerances import TOL

LAM = 0.05


def _data(seed, n=6, d_in=3, d_out=2):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return Dataset(jax.random.normal(k1, (n, d_in), dtype=jnp.float64),
                   jax.random.normal(k2, (n, d_out), dtype=jnp.float64))


def _augmented(net):
    """W̄_l = [W_l, b_l], rebuilt in the test."""
    out = []
    for i, w in enumerate(net.weights):
        w = np.asarray(w)
        if net.has_bias:
            w = np.hstack([w, np.asarray(net.biases[i])[:, None]])
        out.append(w)
    return out


def _hbar(net, X):
    _, hs = net.layer_outputs(X)
    hs = [np.asarray(h) for h in hs]
    if net.has_bias:
        hs = [np.hstack([h, np.ones((h.shape[0], 1))]) for h in hs]
    return hs


# ------------------------------------------------------------------ identities at random points
@pytest.mark.parametrize("activation", ["relu", "identity", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_minus_representation_is_residual_penalty(activation, bias):
    data = _data(0)
    for seed in range(3):
        net = init_mlp(jax.random.PRNGKey(10 + seed), (3, 9, 7, 2), activation, bias=bias, scale=0.7)
        par, rep = parameter_loss(net, data, LAM), representation_loss(net, data, LAM)
        assert rep <= par * (1 + TOL["exact_rtol"])
        # λ Σ ||W̄_l Q_l||² with Q_l an orthonormal basis of ker H̄_{l-1} (scipy, independent route)
        resid = sum(float(np.sum((w @ scipy.linalg.null_space(h)) ** 2))
                    for w, h in zip(_augmented(net), _hbar(net, data.X), strict=True))
        np.testing.assert_allclose(par - rep, LAM * resid, rtol=1e-9, atol=1e-12 * par)
        assert par - rep > 0  # widths 9, 7 exceed N = 6: residuals exist at random points


@pytest.mark.parametrize("activation", ["relu", "identity", "tanh"])
def test_min_norm_keeps_representations_and_closes_the_gap(activation):
    data = _data(1)
    net = init_mlp(jax.random.PRNGKey(3), (3, 12, 10, 2), activation, bias=True, scale=0.6)
    mn = min_norm_network(net, data)
    zs0, _ = net.layer_outputs(data.X)
    zs1, _ = mn.layer_outputs(data.X)
    for a, b in zip(zs0, zs1, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-12 * float(jnp.max(jnp.abs(a))))
    par0, par1 = parameter_loss(net, data, LAM), parameter_loss(mn, data, LAM)
    rep1 = representation_loss(mn, data, LAM)
    assert par1 < par0
    np.testing.assert_allclose(par1, rep1, rtol=TOL["exact_rtol"])
    np.testing.assert_allclose(rep1, representation_loss(net, data, LAM), rtol=TOL["exact_rtol"])
    # min-norm rows lie in the row space of H̄: no component in its kernel
    for w, h in zip(_augmented(mn), _hbar(mn, data.X), strict=True):
        assert np.max(np.abs(w @ scipy.linalg.null_space(h)), initial=0.0) < 1e-12 * np.max(np.abs(w))


@pytest.mark.parametrize("activation", ["relu", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_covariance_form_agrees_with_representation_form(activation, bias):
    data = _data(2)
    for seed in range(3):
        net = init_mlp(jax.random.PRNGKey(20 + seed), (3, 15, 15, 2), activation, bias=bias, scale=0.6)
        res = l2_losses(net, data, LAM)
        np.testing.assert_allclose(res.covariance_loss, res.representation_loss, rtol=TOL["l2_forms_rtol"])
        assert res.gaps["parameter_minus_representation"] >= 0
        np.testing.assert_allclose(covariance_loss(net, data, LAM), res.covariance_loss, rtol=1e-12)


def test_bad_input_is_refused():
    data = _data(3)
    net = init_mlp(jax.random.PRNGKey(0), (3, 5, 2), "tanh")
    with pytest.raises(InputError, match="homogeneous"):
        covariance_loss(net, data, LAM)
    with pytest.raises(InputError, match="homogeneous"):
        l2_losses(net, data, LAM, covariance=True)
    with pytest.raises(InputError, match="homogeneous"):
        prune(net, data, LAM)
    assert l2_losses(net, data, LAM).covariance_loss is None
    relu = init_mlp(jax.random.PRNGKey(0), (3, 5, 2), "relu")
    for bad in (-1.0, float("nan")):
        with pytest.raises(InputError, match="λ"):
            l2_losses(relu, data, bad)
    f32 = MLP(tuple(w.astype(jnp.float32) for w in relu.weights), None, "relu")
    with pytest.raises(InputError, match="float64"):
        parameter_loss(f32, data, LAM)


# ------------------------------------------------------------------ forces against finite differences
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_attraction_and_repulsion_are_gradients(activation):
    data = _data(4)
    net = min_norm_network(init_mlp(jax.random.PRNGKey(5), (3, 5, 4, 2), activation, bias=True, scale=0.8), data)
    f = forces(net, data, 1)
    zs, _ = net.layer_outputs(data.X)
    Z, Znext = np.asarray(zs[0]), np.asarray(zs[1])
    H0 = np.hstack([np.asarray(data.X), np.ones((6, 1))])
    sig = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))

    def att(Zv):
        return float(np.sum((np.linalg.pinv(H0) @ Zv) ** 2))

    def rep(Zv):
        H1 = np.hstack([sig(Zv), np.ones((6, 1))])
        return float(np.sum((np.linalg.pinv(H1) @ Znext) ** 2))

    V = np.asarray(jax.random.normal(jax.random.PRNGKey(9), Z.shape, dtype=jnp.float64))
    V = f.projector @ V  # stay in the admissible (reachable) directions
    h = 1e-5
    for fn, grad in ((att, f.attraction), (rep, f.repulsion)):
        fd = (fn(Z + h * V) - fn(Z - h * V)) / (2 * h)
        np.testing.assert_allclose(fd, np.sum(grad * V), rtol=TOL["l2_force_fd_rtol"])


# ------------------------------------------------------------------ minima
def test_smooth_minimum_balances_forces_and_closes_gaps():
    data = _data(5)
    net = init_mlp(jax.random.PRNGKey(2), (3, 8, 2), "tanh", bias=True, scale=0.5)
    # small λ keeps K^σ_1 full rank (large λ collapses it, where the repulsion formula and the
    # balance do not apply: see the notes, §8)
    res = train_l2(net, data, 1e-3, adam_steps=300, newton_steps=60)
    assert res.stationarity.grad_inf < TOL["critical_grad_inf"] * 100
    assert abs(res.losses["gaps"]["parameter_minus_representation"]) < 1e-12
    f = forces(res.network, data, 1)
    assert np.linalg.matrix_rank(f.projector) == 4  # rank of H̄_0 = [X, 1]
    assert f.balance < 1e-10


def test_identity_minimum_is_balanced():
    data = _data(6)
    net = init_mlp(jax.random.PRNGKey(4), (3, 5, 5, 2), "identity", bias=False, scale=0.5)
    res = train_l2(net, data, LAM, adam_steps=1000, newton_steps=60)
    assert res.stationarity.grad_inf < 1e-10
    bal = neuron_balance(res.network)
    assert max(float(np.max(np.abs(b))) for b in bal) < 1e-10
    # β = 0: every layer has the same Frobenius norm at a minimum
    norms = [float(np.sum(np.asarray(w) ** 2)) for w in res.network.weights]
    np.testing.assert_allclose(norms, norms[0], rtol=1e-9)
    r = res.losses
    np.testing.assert_allclose(r["covariance_loss"], r["parameter_loss"], rtol=TOL["l2_forms_rtol"])


@pytest.mark.slow
def test_relu_minimum_on_kinks_is_clarke_stationary():
    data = _data(7, n=5)
    net = init_mlp(jax.random.PRNGKey(8), (3, 12, 2), "relu", bias=True, scale=0.5)
    res = train_l2(net, data, LAM, adam_steps=2000, gd_rounds=3, gd_steps=1000, gd_learning_rate=0.05)
    st = res.stationarity
    assert "active-set-newton" in res.method
    assert st.n_kinks > 0 and st.exact
    assert st.grad_inf > 1e-6  # the plain gradient does not vanish on kinks ...
    assert st.measure < TOL["l2_kink_stationarity"]  # ... but a subgradient does
    assert res.max_neuron_imbalance < 1e-10
    assert abs(res.losses["gaps"]["parameter_minus_representation"]) <= 1e-12 * res.loss
    assert res.loss <= res.loss_start
    # independent re-measurement with a looser kink tolerance cannot be worse
    assert kink_stationarity(res.network, data, LAM, kink_tol=1e-6).measure <= st.measure + 1e-15


# ------------------------------------------------------------------ pruning
@pytest.mark.parametrize("mode", list(PruneMode))
@pytest.mark.parametrize(("activation", "bias"), [("relu", True), ("relu", False), ("identity", True)])
def test_pruning_meets_bound_and_keeps_loss(mode, activation, bias):
    data = _data(8, n=4)
    N = 4
    bound = prune_bound(N, mode)
    assert bound == (20 if mode is PruneMode.PAIRS else 11)
    for seed in range(2):
        net = init_mlp(jax.random.PRNGKey(30 + seed), (3, 60, 50, 2), activation, bias=bias, scale=0.5)
        res = prune(net, data, LAM, mode=mode)
        assert all(w <= bound for w in res.widths_after)
        assert res.widths_before == (60, 50)
        assert res.loss_after <= res.loss_before
        pruned = res.network
        np.testing.assert_allclose(parameter_loss(pruned, data, LAM), res.loss_after, rtol=1e-14)
        np.testing.assert_allclose(res.loss_after, parameter_loss(min_norm_network(net, data), data, LAM),
                                   rtol=TOL["l2_prune_rtol"])
        np.testing.assert_allclose(pruned(data.X), net(data.X), atol=TOL["l2_prune_output_atol"])
        # K^σ (and K in pairs mode) recomputed independently from the forward passes
        for layer in range(1, 3):
            h0, h1 = _hbar(net, data.X)[layer], _hbar(pruned, data.X)[layer]
            np.testing.assert_allclose(h1 @ h1.T, h0 @ h0.T, atol=1e-10 * np.max(np.abs(h0 @ h0.T)))
            if mode is PruneMode.PAIRS:
                z0 = np.asarray(net.layer_outputs(data.X)[0][layer - 1])
                z1 = np.asarray(pruned.layer_outputs(data.X)[0][layer - 1])
                np.testing.assert_allclose(z1 @ z1.T, z0 @ z0.T, atol=1e-10 * np.max(np.abs(z0 @ z0.T)))


# ------------------------------------------------------------------ the tight example
@pytest.mark.parametrize("n", [4, 6])
def test_tight_example_construction(n):
    ex = bipartite_tight_example(n)
    assert ex.min_width == n * n // 4
    net, data = ex.network, ex.data
    np.testing.assert_allclose(net(data.X), data.Y, atol=0)  # exact fit
    np.testing.assert_allclose(parameter_loss(net, data, 1.0), n * n, rtol=1e-15)
    # R(I, Y) = 2||Y||_* = N² (nuclear norm of the PSD Y_N is its trace)
    np.testing.assert_allclose(2 * np.sum(np.linalg.svd(np.asarray(data.Y), compute_uv=False)), n * n, rtol=1e-12)
    assert np.max(np.abs(neuron_balance(net)[0])) == 0.0  # in = out = 2 for every neuron
    # the N²/4 neurons are linearly independent generators: pruning keeps them all
    assert prune(net, data, 1e-3).widths_after == (n * n // 4,)


@pytest.mark.slow  # the default run keeps a faster case of the same check (issue 17: suite under 5 min)
def test_tight_example_plateau_value_reached_at_width_n2_over_4():
    ex = bipartite_tight_example(4)
    lam = 5e-4  # = the notes' λ = 1e-3 with C = (1/N)||·||²: loss/λ is the same number
    bound = nuclear_lower_bound(ex.data.Y, lam)
    np.testing.assert_allclose(bound / lam, 15.988, rtol=1e-12)
    res = train_l2(ex.network, ex.data, lam, adam_steps=0, gd_rounds=2, gd_steps=2000, learning_rate=0.05)
    np.testing.assert_allclose(res.loss, bound, rtol=TOL["l2_plateau_rtol"])
    assert res.stationarity.measure < TOL["l2_kink_stationarity"]


@pytest.mark.slow
def test_tight_example_width_three_stays_above_the_plateau():
    ex = bipartite_tight_example(4)
    lam = 5e-4
    bound = nuclear_lower_bound(ex.data.Y, lam)
    scan = width_scan(ex.data, (3,), lam, key=jax.random.PRNGKey(0), restarts=24, steps=6000,
                      learning_rate=2e-2, init_scale=0.7)
    best = scan.best / lam
    # the nuclear-norm bound holds at every width (a theorem), and 24 trained width-3 networks
    # stay well above the plateau 15.988 that the width-4 construction reaches exactly (see
    # test_tight_example_plateau_value_reached_at_width_n2_over_4). Random-start Adam does not
    # reliably reach the plateau at widths 4 and 6 either (16.7-16.8 measured), so only the
    # construction is used as evidence for "width N²/4 suffices".
    assert np.all(scan.best >= bound * (1 - 1e-9))
    assert best[0] > 16.2  # notes: 16.296 at width 3


# ------------------------------------------------------------------ CLI
@pytest.fixture
def files(tmp_path):
    data = _data(11, n=4)
    relu = init_mlp(jax.random.PRNGKey(1), (3, 30, 2), "relu", bias=True, scale=0.5)
    tanh = init_mlp(jax.random.PRNGKey(1), (3, 6, 2), "tanh", bias=True, scale=0.5)
    paths = {"data": tmp_path / "d.npz", "relu": tmp_path / "r.npz", "tanh": tmp_path / "t.npz"}
    save_data(paths["data"], data)
    save_network(paths["relu"], relu)
    save_network(paths["tanh"], tanh)
    return paths


def _run(args, capsys):
    from lossatlas.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _l2_by_hand(model_path, data_path, lam):
    """A one-hidden-layer relu net read from its .npz and evaluated in NumPy: outputs, the data
    loss (1/2N)||f(X) − Y||² (lossatlas' mse), the parameter loss (+ λ Σ ||[W_l, b_l]||²) and the representation
    loss (+ λ Σ ||W̄_l Π_l||², Π_l the projector onto the row space of H̄_{l−1} = [H_{l−1}, 1]:
    the smallest-norm weights with the same pre-activations on the data)."""
    with np.load(model_path) as z, np.load(data_path) as d:
        W1, b1, W2, b2 = z["W1"], z["b1"], z["W2"], z["b2"]
        X, Y = d["X"], d["Y"]
    H0 = np.hstack([X, np.ones((X.shape[0], 1))])
    H1 = np.maximum(H0 @ np.hstack([W1, b1[:, None]]).T, 0.0)
    out = H1 @ W2.T + b2
    H1 = np.hstack([H1, np.ones((X.shape[0], 1))])
    data_loss = 0.5 * np.sum((out - Y) ** 2) / X.shape[0]
    Wb = [np.hstack([W1, b1[:, None]]), np.hstack([W2, b2[:, None]])]
    par = data_loss + lam * sum(np.sum(w**2) for w in Wb)
    rep = data_loss + lam * sum(np.sum((w @ np.linalg.pinv(h) @ h) ** 2)
                                for w, h in zip(Wb, (H0, H1), strict=True))
    return out, data_loss, par, rep


def test_cli_losses_and_prune(files, capsys, tmp_path):
    base = ["--model", str(files["relu"]), "--data", str(files["data"]), "--lam", "0.01"]
    code, out, _ = _run(["l2", "losses", *base, "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "lossatlas.l2_losses/1"
    for k in ("parameter_loss", "representation_loss", "covariance_loss", "gaps"):
        assert k in doc
    assert doc["gaps"]["parameter_minus_representation"] >= 0
    # the printed numbers against the NumPy forms written out above
    out0, data_loss, par, rep = _l2_by_hand(files["relu"], files["data"], 0.01)
    assert doc["data_loss"] == pytest.approx(data_loss, rel=TOL["exact_rtol"])
    assert doc["parameter_loss"] == pytest.approx(par, rel=TOL["exact_rtol"])
    assert doc["representation_loss"] == pytest.approx(rep, rel=TOL["l2_forms_rtol"])
    assert doc["covariance_loss"] == pytest.approx(rep, rel=TOL["l2_forms_rtol"])
    assert doc["gaps"]["parameter_minus_representation"] == pytest.approx(
        par - rep, rel=TOL["l2_forms_rtol"], abs=TOL["l2_forms_rtol"] * par)
    outp = tmp_path / "pruned.npz"
    code, out, _ = _run(["l2", "prune", *base, "--out", str(outp), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    for k in ("widths_before", "widths_after", "bound", "loss_before", "loss_after"):
        assert k in doc
    assert doc["widths_before"] == [30] and doc["widths_after"][0] <= doc["bound"] == 20
    assert doc["loss_after"] <= doc["loss_before"] and outp.is_file()
    # N(N + 1) neurons suffice (pairs mode, N = 4); the written net by hand: the same outputs on
    # the data, its loss the min-norm (representation) loss of the original, as printed
    assert doc["bound"] == 4 * 5
    out1, _, par1, _ = _l2_by_hand(outp, files["data"], 0.01)
    with np.load(outp) as z:
        assert z["W1"].shape[0] == doc["widths_after"][0]
    np.testing.assert_allclose(out1, out0, rtol=0, atol=TOL["l2_prune_output_atol"])
    assert doc["loss_before"] == pytest.approx(par, rel=TOL["exact_rtol"])
    assert doc["loss_after"] == pytest.approx(par1, rel=TOL["exact_rtol"])
    assert par1 == pytest.approx(rep, rel=TOL["l2_prune_rtol"])
    code, out, _ = _run(["l2", "losses", "--model", str(files["tanh"]), "--data", str(files["data"]),
                         "--lam", "0.01", "--json"], capsys)
    assert code == 0 and json.loads(out)["covariance_loss"] is None


def test_cli_train(files, capsys, tmp_path):
    outp = tmp_path / "trained.npz"
    code, out, _ = _run(["l2", "train", "--model", str(files["tanh"]), "--data", str(files["data"]),
                         "--lam", "0.01", "--out", str(outp), "--adam-steps", "300", "--json"], capsys)
    assert code == 0 and outp.is_file()
    doc = json.loads(out)
    assert doc["loss"] <= doc["loss_start"] and doc["stationarity"]["grad_inf"] < 1e-9
    # the printed losses and the stationarity of the written net, by a hand-written objective
    # (1/2N)||f(X) − Y||² + λ Σ ||[W_l, b_l]||² of a tanh net and jax.grad
    def objective(params, X, Y):
        W1, b1, W2, b2 = params
        f = jnp.tanh(X @ W1.T + b1) @ W2.T + b2
        return (0.5 * jnp.sum((f - Y) ** 2) / X.shape[0]
                + 0.01 * sum(jnp.sum(p**2) for p in params))

    with np.load(files["data"]) as d:
        X, Y = jnp.asarray(d["X"]), jnp.asarray(d["Y"])
    for path, key in ((files["tanh"], "loss_start"), (outp, "loss")):
        with np.load(path) as z:
            params = tuple(jnp.asarray(z[k]) for k in ("W1", "b1", "W2", "b2"))
        assert doc[key] == pytest.approx(float(objective(params, X, Y)), rel=TOL["exact_rtol"])
    g = jax.jit(jax.grad(objective))(params, X, Y)
    assert max(float(jnp.max(jnp.abs(x))) for x in g) <= TOL["critical_grad_inf"]


@pytest.mark.parametrize("case", ["neg_lam", "tanh_prune", "tanh_covariance"])
def test_cli_bad_input(files, capsys, tmp_path, case):
    d = ["--data", str(files["data"])]
    args = {
        "neg_lam": ["l2", "losses", "--model", str(files["relu"]), *d, "--lam", "-1"],
        "tanh_prune": ["l2", "prune", "--model", str(files["tanh"]), *d, "--lam", "0.1",
                       "--out", str(tmp_path / "x.npz")],
        "tanh_covariance": ["l2", "losses", "--model", str(files["tanh"]), *d, "--lam", "0.1", "--covariance"],
    }[case]
    code, out, err = _run(args, capsys)
    assert code == 2
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert out == ""
