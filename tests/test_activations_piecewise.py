"""Piecewise-linear activations (issue 18): ``leaky_relu[:SLOPE]`` and ``abs``.

Kinds of truth: closed forms in NumPy, PyTorch's own modules and autograd (values and the
derivative it takes at the kink), exact file round trips, the parameter grammar (bad names
are refused with a how-to-fix message), and the command-line contract (exit code 2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossatlas as la
from lossatlas.cli import main
from lossatlas.data import load_network, save_data, save_network, teacher_student
from lossatlas.landscape import Landscape
from lossatlas.models import (
    PIECEWISE_LINEAR_ACTIVATIONS,
    SMOOTH_ACTIVATIONS,
    activation_family,
    check_activation,
    get_activation,
    init_mlp,
    is_smooth,
    leaky_relu_slope,
)
from tolerances import TOL

XS = np.array([-3.0, -1.25, -1e-3, 0.0, 1e-3, 0.7, 2.5])


@pytest.mark.parametrize("name, slope", [("leaky_relu", 0.01), ("leaky_relu:0.2", 0.2),
                                         ("leaky_relu:0", 0.0), ("leaky_relu:1.5e-1", 0.15),
                                         ("leaky_relu:3", 3.0)])
def test_leaky_relu_closed_form_and_slope(name, slope):
    assert check_activation(name) == name and activation_family(name) == "leaky_relu"
    assert leaky_relu_slope(name) == slope
    out = np.asarray(get_activation(name)(jnp.asarray(XS)))
    np.testing.assert_array_equal(out, np.where(XS > 0, XS, slope * XS))
    # piecewise linear: slope 1 on the right, `slope` on the left (and at 0, as PyTorch)
    d = np.asarray(jax.vmap(jax.grad(get_activation(name)))(jnp.asarray(XS)))
    np.testing.assert_array_equal(d, np.where(XS > 0, 1.0, slope))
    d2 = np.asarray(jax.vmap(jax.grad(jax.grad(get_activation(name))))(jnp.asarray(XS)))
    np.testing.assert_array_equal(d2, 0.0)


def test_abs_closed_form():
    f = get_activation("abs")
    np.testing.assert_array_equal(np.asarray(f(jnp.asarray(XS))), np.abs(XS))
    d = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(XS)))
    np.testing.assert_array_equal(d, np.sign(XS))  # 0 at the kink, as torch.abs


def test_piecewise_linear_family_is_not_smooth():
    assert PIECEWISE_LINEAR_ACTIVATIONS == {"relu", "leaky_relu", "abs"}
    assert not PIECEWISE_LINEAR_ACTIVATIONS & SMOOTH_ACTIVATIONS
    for name in ("relu", "leaky_relu", "leaky_relu:0.3", "abs"):
        assert not is_smooth(name)
    for name in ("tanh", "erf", "gelu", "identity"):
        assert is_smooth(name)
    from lossatlas.recovery import activation_kind
    from lossatlas.solvers._escape import _linear_channels_possible

    for name in ("relu", "leaky_relu", "leaky_relu:1", "abs"):
        assert not _linear_channels_possible(name)  # kinked at 0: no linear-neuron channel
        assert activation_kind(name).name == "non_analytic"
    assert _linear_channels_possible("tanh")


@pytest.mark.parametrize("bad, match", [
    ("leaky_relu:-0.1", "finite number >= 0"),
    ("leaky_relu:1e999", "finite number >= 0"),
    ("leaky_relu:nan", "plain number"),
    ("leaky_relu:inf", "plain number"),
    ("leaky_relu:", "plain number"),
    ("leaky_relu:0.1x", "plain number"),
    ("leaky_relu:0.1:2", "plain number"),
    ("leaky_relu: 0.1", "plain number"),
    ("relu:0.1", "only leaky_relu takes a parameter"),
    ("abs:1", "only leaky_relu takes a parameter"),
    ("leaky", "unknown activation"),
])
def test_bad_activation_names_are_refused(bad, match):
    with pytest.raises(la.InputError, match=match):
        check_activation(bad)
    with pytest.raises(la.InputError):
        init_mlp(jax.random.PRNGKey(0), (2, 3, 1), bad)


@pytest.mark.parametrize("name", ["leaky_relu:0.2", "leaky_relu", "abs"])
def test_network_file_round_trip(tmp_path, name):
    net = init_mlp(jax.random.PRNGKey(1), (3, 4, 2), name, bias=True, scale=1.0)
    save_network(tmp_path / "net.npz", net)
    back = load_network(tmp_path / "net.npz")
    assert back.activation == name
    X = jax.random.normal(jax.random.PRNGKey(2), (30, 3), jnp.float64)
    np.testing.assert_array_equal(np.asarray(back(X)), np.asarray(net(X)))


def test_gradient_matches_finite_differences_away_from_kinks():
    from helpers import central_difference_grad

    for name in ("leaky_relu:0.2", "abs"):
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
        data = teacher_student(k2, init_mlp(k1, (3, 4, 1), "tanh", bias=True, scale=1.0), 25)
        ls = Landscape(init_mlp(k3, (3, 4, 1), name, bias=True, scale=0.8), data, lam=0.01)
        th = ls.ravel()
        zs, _ = ls.model.layer_outputs(data.X)
        assert float(jnp.min(jnp.abs(zs[0]))) > 1e-4  # FD steps of 1e-6 stay inside one region
        g = np.asarray(ls.grad(th))
        fd = central_difference_grad(ls.loss, th, h=1e-6)
        assert np.linalg.norm(g - fd) <= TOL["fd_grad_rtol"] * np.linalg.norm(fd)


def test_cli_refuses_a_bad_slope_in_a_network_file(tmp_path, capsys):
    net = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "tanh", bias=True)
    arrays = {k: np.asarray(v) for k, v in net.arrays().items()}
    np.savez(tmp_path / "net.npz", activation=np.array("leaky_relu:-0.5"), **arrays)
    save_data(tmp_path / "data.npz", teacher_student(jax.random.PRNGKey(1), net, 10))
    code = main(["analyze", "--model", str(tmp_path / "net.npz"), "--data", str(tmp_path / "data.npz")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "negative slope" in err


# ------------------------------------------------------------------------------- PyTorch
@pytest.mark.torch
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0])
def test_torch_leaky_relu_both_ways(slope, tmp_path):
    torch = pytest.importorskip("torch")
    from lossatlas.interop import from_torch, load_torch, save_torch, to_torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5, dtype=torch.float64),
                                torch.nn.LeakyReLU(negative_slope=slope),
                                torch.nn.Linear(5, 2, dtype=torch.float64))
    with torch.no_grad():
        model[0].bias[0] = 0.0  # sample 0 below sits exactly on the kink of neuron 0
    net = from_torch(model)
    assert net.activation == ("leaky_relu" if slope == 0.01 else f"leaky_relu:{slope!r}")
    assert leaky_relu_slope(net.activation) == slope
    X = torch.randn(40, 3, dtype=torch.float64)
    X[0] = 0.0
    with torch.no_grad():
        ref = model(X).numpy()
    np.testing.assert_allclose(np.asarray(net(jnp.asarray(X.numpy()))), ref,
                               rtol=TOL["torch_outputs"], atol=TOL["torch_outputs"])
    back = to_torch(net)
    assert isinstance(back[1], torch.nn.LeakyReLU) and back[1].negative_slope == slope
    for fmt in ("module", "state_dict"):
        save_torch(tmp_path / f"{fmt}.pt", net, format=fmt)
        assert load_torch(tmp_path / f"{fmt}.pt").network.activation == net.activation


def test_relu_is_leaky_relu_with_slope_zero_derivatives_included():
    xs = jnp.asarray(XS)
    relu, leaky0 = get_activation("relu"), get_activation("leaky_relu:0")
    np.testing.assert_array_equal(np.asarray(relu(xs)), np.asarray(leaky0(xs)))
    d_relu = np.asarray(jax.vmap(jax.grad(relu))(xs))
    np.testing.assert_array_equal(d_relu, np.asarray(jax.vmap(jax.grad(leaky0))(xs)))
    np.testing.assert_array_equal(d_relu, (XS > 0).astype(float))  # 0 at the kink


@pytest.mark.torch
@pytest.mark.parametrize("name", ["relu", "leaky_relu:0.2", "abs"])
def test_derivative_at_the_kink_is_pytorchs(name):
    torch = pytest.importorskip("torch")
    from lossatlas.interop import to_torch

    net = init_mlp(jax.random.PRNGKey(0), (1, 1, 1), name, bias=False, scale=1.0)
    act = to_torch(net)[1]
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    act(x).sum().backward()
    assert float(jax.grad(get_activation(name))(0.0)) == float(x.grad[0])
