"""PyTorch bridge (issue 9): networks and data between PyTorch and lossatlas.

Kinds of truth: PyTorch itself (the same network evaluated by both frameworks agrees to
round-off; the dense Hessian equals ``torch.func.hessian`` in the design's flat order), exact
round trips (arrays bit for bit), a train → import → polish → classify → export pipeline, and
the command-line contract (bad input gives one ``error:`` line and exit code 2).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.torch]
torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from torch import nn  # noqa: E402

import lossatlas as la  # noqa: E402
from lossatlas.cli import main  # noqa: E402
from lossatlas.curvature import dense_hessian  # noqa: E402
from lossatlas.data import load_data, load_network, save_network  # noqa: E402
from lossatlas.interop import (  # noqa: E402
    TORCH_ACTIVATIONS,
    data_from_torch,
    from_torch,
    load_torch,
    save_torch,
    to_torch,
)
from lossatlas.interop.torch_nn import Abs, Erf, Sigmoid4PlusSoftplus  # noqa: E402
from lossatlas.models import ACTIVATIONS  # noqa: E402
from lossatlas.solvers import Label, NewtonTrustRegion, classify, find_critical_point  # noqa: E402
from tolerances import TOL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

#: How a PyTorch user writes each activation (nn.Softplus with its default threshold of 20).
NATIVE = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "abs": Abs,
    "tanh": nn.Tanh,
    "erf": Erf,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "sigmoid4_plus_softplus": Sigmoid4PlusSoftplus,
}


def torch_mlp(widths, activation, *, bias=True, dtype=torch.float64, seed=0):
    """A network built the PyTorch way: Linear, act, Linear, ..., Linear (torch's own init)."""
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=bias, dtype=dtype))
        if i < len(widths) - 2:
            layers.append(NATIVE[activation]())
    return nn.Sequential(*layers)


def torch_inputs(n, d, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def assert_same_function(model, net, X):
    """Outputs of the torch model (its parameters in float64) and the lossatlas MLP agree."""
    with torch.no_grad():
        out_t = copy.deepcopy(model).double()(X.double()).numpy()
    out_l = np.asarray(net(jnp.asarray(X.double().numpy())))
    np.testing.assert_allclose(out_l, out_t, rtol=TOL["torch_outputs"], atol=TOL["torch_outputs"])


def flat_torch_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()


def la_key(seed=0):
    return jax.random.PRNGKey(seed)


def assert_same_arrays(a, b):
    assert a.activation == b.activation
    assert a.param_names == b.param_names
    for name, x in a.arrays().items():
        y = b.arrays()[name]
        assert x.dtype == y.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ----------------------------------------------------------------------------- networks
def test_every_activation_has_a_torch_counterpart():
    assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS) == set(NATIVE)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_torch_to_lossatlas_same_function_and_parameters(activation, bias):
    model = torch_mlp((3, 5, 4, 2), activation, bias=bias)
    net = from_torch(model)
    assert net.activation == activation
    assert net.widths == (3, 5, 4, 2) and net.has_bias == bias
    # The flat order W1, b1, W2, b2, ... (row-major) is model.parameters() flattened in turn.
    theta = np.concatenate([np.ravel(np.asarray(a)) for a in net.arrays().values()])
    np.testing.assert_array_equal(theta, flat_torch_params(model))
    assert_same_function(model, net, torch_inputs(50, 3))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_lossatlas_to_torch_and_back_is_exact(activation, bias, tmp_path):
    net = la.init_mlp(la_key(), (3, 5, 4, 2), activation, bias=bias, scale=1.0)
    model = to_torch(net)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert_same_function(model, net, torch_inputs(50, 3))
    assert_same_arrays(from_torch(model), net)
    for fmt in ("state_dict", "module"):
        path = tmp_path / f"{fmt}.pt"
        save_torch(path, net, format=fmt)
        imp = load_torch(path)
        assert imp.kind == "network" and not imp.conversion.any_converted
        assert_same_arrays(imp.network, net)


def test_torch_round_trip_keeps_the_state_dict():
    model = torch_mlp((4, 6, 6, 3), "gelu")
    again = to_torch(from_torch(model))
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2
        assert torch.equal(a, b)
    assert [type(m) for m in again] == [type(m) for m in model]


def test_softplus_threshold_is_reported_and_export_is_exact_beyond_it(tmp_path):
    model = torch_mlp((2, 3, 1), "softplus")
    torch.save(model, tmp_path / "softplus.pt")
    notes = load_torch(tmp_path / "softplus.pt").conversion.notes
    assert any("threshold=20" in note for note in notes)
    net = from_torch(model).replace(W1=jnp.full((3, 2), 30.0))  # pre-activations > 20
    assert_same_function(to_torch(net), net, torch_inputs(5, 2).abs())


def test_one_layer_network_and_identity_stacks():
    lin = nn.Linear(3, 2, dtype=torch.float64)
    net = from_torch(lin)
    assert net.activation == "identity" and net.depth == 1
    assert from_torch(nn.Sequential(lin), activation="tanh").activation == "tanh"
    deep_linear = nn.Sequential(nn.Linear(3, 4, bias=False, dtype=torch.float64),
                                nn.Linear(4, 2, bias=False, dtype=torch.float64))
    net = from_torch(deep_linear)
    assert net.activation == "identity" and not net.has_bias
    assert_same_function(deep_linear, net, torch_inputs(10, 3))
    nested = nn.Sequential(nn.Sequential(nn.Linear(3, 4, dtype=torch.float64), nn.Tanh()),
                           nn.Identity(), nn.Linear(4, 1, dtype=torch.float64))
    assert_same_function(nested, from_torch(nested), torch_inputs(10, 3))


def test_state_dict_with_architecture():
    model = torch_mlp((3, 4, 2), "erf")
    sd = model.state_dict()
    net = from_torch(sd, {"activation": "erf", "widths": [3, 4, 2], "bias": True})
    assert_same_function(model, net, torch_inputs(20, 3))
    assert_same_arrays(from_torch(sd, activation="erf"), net)
    ckpt = {"state_dict": sd, "architecture": {"activation": "erf"}}
    assert_same_arrays(from_torch(ckpt), net)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_hessian_equals_torch_func_hessian(activation):
    """Dense lossatlas Hessian at the imported network = torch.func.hessian of the original."""
    model = torch_mlp((3, 4, 3, 2), activation)
    X = torch_inputs(30, 3)
    Y = torch_inputs(30, 2, seed=2)
    data, report = data_from_torch((X, Y))
    assert not report.any_converted
    ls = la.Landscape(from_torch(model), data)
    H = dense_hessian(ls, ls.ravel())

    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss(theta):
        params, start = {}, 0
        for n, s in zip(names, shapes, strict=True):
            params[n] = theta[start : start + s.numel()].reshape(s)
            start += s.numel()
        out = torch.func.functional_call(model, params, (X,))
        return 0.5 * ((out - Y) ** 2).sum() / X.shape[0]

    theta = torch.from_numpy(flat_torch_params(model))
    np.testing.assert_array_equal(np.asarray(ls.ravel()), theta.numpy())
    H_torch = torch.func.hessian(loss)(theta).numpy()
    assert H.shape == H_torch.shape == (ls.n_params, ls.n_params)
    np.testing.assert_allclose(float(ls.loss(ls.ravel())), float(loss(theta)),
                               rtol=TOL["exact_rtol"])
    err = np.linalg.norm(H - H_torch) / max(np.linalg.norm(H_torch), 1e-300)
    assert err <= TOL["exact_rtol"], err


# ----------------------------------------------------------------------------- data
def test_data_float32_conversion_is_exact_and_reported():
    X = torch_inputs(12, 3, dtype=torch.float32)
    Y = torch_inputs(12, 2, dtype=torch.float32, seed=3)
    for payload, source in (
        (torch.utils.data.TensorDataset(X, Y), "TensorDataset"),
        ((X, Y), "(X, Y) tensors"),
        ({"X": X, "Y": Y}, "{'X': X, 'Y': Y} tensors"),
    ):
        data, report = data_from_torch(payload)
        assert report.source == source
        assert report.converted == ("X", "Y")
        assert report.dtypes == {"X": "float32", "Y": "float32"}
        assert "float32" in report.summary() and "exact" in report.summary()
        assert data.X.dtype == data.Y.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(data.X), X.double().numpy())
        np.testing.assert_array_equal(np.asarray(data.Y), Y.double().numpy())
        assert report.to_record()["converted"] == ["X", "Y"]
    data, report = data_from_torch((X.double(), Y.double()))
    assert report.converted == () and "no conversion" in report.summary()


def test_float32_network_conversion_is_exact_and_reported(tmp_path):
    model = torch_mlp((3, 4, 1), "tanh", dtype=torch.float32)
    path = tmp_path / "m32.pt"
    torch.save(model, path)
    imp = load_torch(path)
    assert imp.conversion.converted == ("W1", "b1", "W2", "b2")
    assert set(imp.conversion.dtypes.values()) == {"float32"}
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(np.asarray(a)) for a in imp.network.arrays().values()]),
        flat_torch_params(model),
    )
    assert_same_function(model, imp.network, torch_inputs(10, 3))


@pytest.mark.parametrize(
    "payload, match",
    [
        (lambda: (torch.zeros(5, 2), torch.zeros(5)), r"Y has shape \(5,\).*Y\[:, None\]"),
        (lambda: (torch.zeros(5, 2, 2), torch.zeros(5, 1)), r"X has shape \(5, 2, 2\)"),
        (lambda: (torch.zeros(5, 2), torch.zeros(4, 1)), "X has 5 samples but Y has 4"),
        (lambda: (torch.zeros(5, 2, dtype=torch.int64), torch.zeros(5, 1)), "dtype int64"),
        (lambda: (torch.zeros(5, 2), torch.zeros(5, 1), torch.zeros(5)), "exactly two"),
        (lambda: (np.zeros((5, 2), np.float32), torch.zeros(5, 1)), "must be a torch.Tensor"),
        (lambda: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
            torch.zeros(5, 2), torch.zeros(5, 1))), "loader.dataset"),
        (lambda: (torch.tensor([[float("nan")]]), torch.zeros(1, 1)), "NaN"),
    ],
)
def test_data_errors(payload, match):
    with pytest.raises(la.InputError, match=match):
        data_from_torch(payload())


# ----------------------------------------------------------------------------- errors
class _NotSequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x) ** 2


def _lin(i, o, bias=True):
    return nn.Linear(i, o, bias=bias)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Sequential(_lin(3, 4), nn.Dropout(0.1), _lin(4, 1)),
         r"unsupported layer 1: Dropout.*remove it"),
        (lambda: nn.Sequential(_lin(3, 4), nn.ELU(), _lin(4, 1)),
         r"unsupported layer 1: ELU.*nn\.ReLU"),
        (lambda: nn.Sequential(nn.Sequential(_lin(3, 4), nn.BatchNorm1d(4)), _lin(4, 1)),
         r"unsupported layer 0\.1: BatchNorm1d"),
        (lambda: nn.Sequential(nn.Conv1d(3, 4, 1)), r"unsupported layer 0: Conv1d"),
        (lambda: nn.Sequential(_lin(3, 4), nn.GELU(approximate="tanh"), _lin(4, 1)),
         r"approximate='none'"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Softplus(beta=2.0), _lin(4, 1)), "beta=1"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Softplus(threshold=5.0), _lin(4, 1)),
         "threshold >= 20"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(4, 1), nn.Sigmoid()),
         r"layer 3 \(sigmoid\) comes after the last Linear layer"),
        (lambda: nn.Sequential(nn.Tanh(), _lin(3, 1)), "before the first Linear layer"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), nn.Tanh(), _lin(4, 1)),
         "two activations in a row"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(4, 4), nn.ReLU(), _lin(4, 1)),
         r"different activations \(1: tanh, 3: relu\)"),
        (lambda: nn.Sequential(_lin(3, 4), _lin(4, 4), nn.ReLU(), _lin(4, 1)),
         "different activations"),
        (lambda: nn.Sequential(), "no nn.Linear layer"),
        (lambda: _NotSequential(), r"_NotSequential.*state_dict"),
        (lambda: "model.pt", "got str"),
    ],
)
def test_unsupported_layers_are_named(make, match):
    with pytest.raises(la.InputError, match=match):
        from_torch(make())


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(5, 1)), {},
         r"shape mismatch: layer 2 \(Linear\(in_features=5.*takes 5 inputs but layer 0 .* "
         r"gives 4 outputs"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(4, 1, bias=False)), {},
         r"layer 0 .* has a bias but layer 2 .* has none"),
        (lambda: nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(4, 1)), {"activation": "relu"},
         r"hidden activation is 'tanh' but activation='relu'"),
        (lambda: nn.Sequential(_lin(3, 1)), {"activation": "swish"}, "unknown activation"),
        (lambda: torch_mlp((3, 4, 1), "tanh").state_dict(), {},
         "does not say which activation"),
        (lambda: torch_mlp((3, 4, 1), "tanh").state_dict(),
         {"architecture": {"activation": "tanh", "widths": [3, 5, 1]}},
         r"shape mismatch: the architecture says widths \[3, 5, 1\] but the weights give "
         r"\[3, 4, 1\]"),
        (lambda: torch_mlp((3, 4, 1), "tanh").state_dict(),
         {"architecture": {"activation": "tanh", "bias": False}}, "bias=False"),
        (lambda: torch_mlp((3, 4, 1), "tanh").state_dict(),
         {"architecture": {"activation": "tanh", "depth": 2}}, "unknown architecture entries"),
        (lambda: {"0.weight": torch.zeros(4, 3), "2.weight": torch.zeros(1, 5)},
         {"activation": "tanh"}, r"shape mismatch: '2.weight' takes 5 inputs"),
        (lambda: {"0.weight": torch.zeros(4, 3), "0.bias": torch.zeros(3)},
         {"activation": "tanh"}, r"the bias of '0.weight' has shape \(3,\), expected \(4,\)"),
        (lambda: nn.Sequential(_lin(3, 4), nn.BatchNorm1d(4)).state_dict(),
         {"activation": "tanh"}, "'1.running_mean' is not the weight or bias of a Linear"),
        (lambda: nn.Sequential(nn.Conv1d(3, 4, 1)).state_dict(), {"activation": "tanh"},
         r"'0.weight' has shape \(4, 3, 1\)"),
    ],
)
def test_shape_mismatches_and_bad_state_dicts(make, kwargs, match):
    with pytest.raises(la.InputError, match=match):
        from_torch(make(), **kwargs)


def test_to_torch_refuses_float32_and_bad_dtypes():
    net32 = la.MLP((jnp.ones((2, 3), jnp.float32),), None, "tanh")
    with pytest.raises(la.InputError, match="float64"):
        to_torch(net32)
    net = la.init_mlp(la_key(), (3, 2), "tanh")
    with pytest.raises(la.InputError, match="dtype must be float64 or float32"):
        to_torch(net, dtype="float16")
    model = to_torch(net, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def _record_call(*args):  # what a malicious file would run on unpickling
    _CALLS.append(args)
    return args


_CALLS: list = []


class _Payload:
    def __reduce__(self):
        return (_record_call, ("file code ran",))


def test_files_are_read_without_running_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "architecture": _Payload()}, path)
    with pytest.raises(la.InputError, match="_record_call, which lossatlas does not import"):
        load_torch(path)
    assert _CALLS == []


@pytest.mark.parametrize(
    "payload, match",
    [
        (lambda: nn.Sequential(_lin(3, 4), nn.Dropout(0.1), _lin(4, 1)),
         "torch.nn.modules.dropout.Dropout, which lossatlas does not import"),
        (lambda: _NotSequential(), "_NotSequential, which lossatlas does not import"),
        (lambda: torch_mlp((3, 4, 1), "tanh").state_dict(), "does not say which activation"),
        (lambda: 3.5, "holds a float"),
    ],
)
def test_file_errors(payload, match, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(payload(), path)
    with pytest.raises(la.InputError, match=match):
        load_torch(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(la.InputError, match="does not exist"):
        load_torch(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(la.InputError, match="not a readable PyTorch file"):
        load_torch(junk)
    with pytest.raises(la.InputError, match="format must be one of"):
        save_torch(tmp_path / "x.pt", la.init_mlp(la_key(), (2, 1), "tanh"), format="onnx")


# ----------------------------------------------------------------------------- round trip
def _train_in_torch(dtype, seed=4, steps=500, n=60):
    """A tanh student of width 2 trained by Adam on noisy data from a width-2 tanh teacher."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g, dtype=dtype)
    W1, W2 = torch.randn(2, 2, generator=g, dtype=dtype), torch.randn(1, 2, generator=g, dtype=dtype)
    Y = torch.tanh(X @ W1.T) @ W2.T + 0.1 * torch.randn(n, 1, generator=g, dtype=dtype)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((model(X) - Y) ** 2).sum() / n
        loss.backward()
        opt.step()
    return model, X, Y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_train_import_polish_classify_export(dtype, tmp_path):
    model, X, Y = _train_in_torch(dtype)
    torch.save(model, tmp_path / "trained.pt")
    torch.save(torch.utils.data.TensorDataset(X, Y), tmp_path / "data.pt")

    imp = load_torch(tmp_path / "trained.pt")
    dimp = load_torch(tmp_path / "data.pt")
    assert dimp.kind == "data"
    converted = dtype == torch.float32
    assert imp.conversion.any_converted == dimp.conversion.any_converted == converted
    ls = la.Landscape(imp.network, dimp.data)
    assert_same_function(model, imp.network, X)

    theta0 = ls.ravel()
    assert float(jnp.max(jnp.abs(ls.grad(theta0)))) > 1e-7  # training stopped short
    sol = find_critical_point(ls, theta0, NewtonTrustRegion(), max_steps=100)
    assert sol.success and sol.grad_norm_inf <= 1e-10
    cls = classify(ls, sol.theta)
    assert cls.label is Label.minimum and cls.index == 0

    polished = ls.unravel(jnp.asarray(sol.theta))
    save_torch(tmp_path / "polished.pt", polished)
    ckpt = torch.load(tmp_path / "polished.pt", weights_only=True)  # plain torch, no allow-list
    exported = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)).double()
    exported.load_state_dict(ckpt["state_dict"])
    np.testing.assert_array_equal(flat_torch_params(exported), np.asarray(sol.theta))
    assert_same_function(exported, polished, X)
    back = load_torch(tmp_path / "polished.pt").network
    assert_same_arrays(back, polished)
    np.testing.assert_array_equal(np.asarray(ls.grad(ls.ravel(back))),
                                  np.asarray(ls.grad(jnp.asarray(sol.theta))))


# ----------------------------------------------------------------------------- CLI
def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_and_export(tmp_path, capsys):
    model = torch_mlp((3, 4, 1), "erf", dtype=torch.float32)
    torch.save(model, tmp_path / "m.pt")
    code, out, err = _run(capsys, "import-torch", tmp_path / "m.pt", "--out", tmp_path / "n.npz")
    assert code == 0, err
    assert "erf" in out and "float32" in out and "exact" in out
    net = load_network(tmp_path / "n.npz")
    assert_same_function(model, net, torch_inputs(10, 3))

    code, out, err = _run(capsys, "import-torch", tmp_path / "m.pt", "--out",
                          tmp_path / "n2.npz", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "lossatlas.torch_import/1"
    assert doc["kind"] == "network" and doc["widths"] == [3, 4, 1]
    assert doc["conversion"]["converted"] == ["W1", "b1", "W2", "b2"]

    X, Y = torch_inputs(8, 3, dtype=torch.float32), torch_inputs(8, 1, dtype=torch.float32)
    torch.save((X, Y), tmp_path / "d.pt")
    code, out, err = _run(capsys, "import-torch", tmp_path / "d.pt", "--out",
                          tmp_path / "d.npz", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "data" and doc["conversion"]["converted"] == ["X", "Y"]
    np.testing.assert_array_equal(np.asarray(load_data(tmp_path / "d.npz").X), X.double().numpy())

    for fmt in ("state_dict", "module"):
        out_pt = tmp_path / f"e_{fmt}.pt"
        code, out, err = _run(capsys, "export-torch", tmp_path / "n.npz", "--out", out_pt,
                              "--format", fmt, "--json")
        assert code == 0, err
        assert json.loads(out)["schema"] == "lossatlas.torch_export/1"
        assert_same_arrays(load_torch(out_pt).network, net)
    code, out, err = _run(capsys, "export-torch", tmp_path / "n.npz", "--out", tmp_path / "e.pt")
    assert code == 0 and "load_state_dict" in out


def test_cli_bare_state_dict_needs_activation(tmp_path, capsys):
    torch.save(torch_mlp((3, 4, 1), "tanh").state_dict(), tmp_path / "sd.pt")
    code, out, err = _run(capsys, "import-torch", tmp_path / "sd.pt", "--out", tmp_path / "n.npz")
    assert code == 2 and "--activation" in err
    code, out, err = _run(capsys, "import-torch", tmp_path / "sd.pt", "--out", tmp_path / "n.npz",
                          "--activation", "tanh")
    assert code == 0, err
    assert load_network(tmp_path / "n.npz").activation == "tanh"


def _bad_cli_cases(tmp: Path):
    torch.save(nn.Sequential(_lin(3, 4), nn.Dropout(0.1), _lin(4, 1)), tmp / "drop.pt")
    torch.save(nn.Sequential(_lin(3, 4), nn.Tanh(), _lin(5, 1)), tmp / "shape.pt")
    (tmp / "junk.pt").write_text("not a checkpoint")
    save_network(tmp / "net.npz", la.init_mlp(la_key(), (3, 2), "tanh"))
    np.savez(tmp / "data.npz", X=np.zeros((2, 3)), Y=np.zeros((2, 1)))
    return [
        ("import-torch", tmp / "missing.pt", "--out", tmp / "o.npz"),
        ("import-torch", tmp / "drop.pt", "--out", tmp / "o.npz"),
        ("import-torch", tmp / "shape.pt", "--out", tmp / "o.npz"),
        ("import-torch", tmp / "junk.pt", "--out", tmp / "o.npz"),
        ("import-torch", tmp / "drop.pt"),
        ("import-torch", tmp / "drop.pt", "--out", tmp / "nofolder" / "o.npz"),
        ("import-torch", tmp / "drop.pt", "--out", tmp),
        ("export-torch", tmp / "net.npz", "--out", tmp / "o.pt", "--format", "onnx"),
        ("export-torch", tmp / "net.npz", "--out", tmp / "o.pt", "--dtype", "float16"),
        ("export-torch", tmp / "data.npz", "--out", tmp / "o.pt"),
        ("export-torch", tmp / "missing.npz", "--out", tmp / "o.pt"),
    ]


def test_cli_bad_input_exits_2_with_one_error_line(tmp_path, capsys):
    for args in _bad_cli_cases(tmp_path):
        code, out, err = _run(capsys, *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert "Traceback" not in err and out == ""
    code, out, err = _run(capsys, "import-torch", tmp_path / "shape.pt", "--out",
                          tmp_path / "o.npz")
    assert "shape mismatch" in err
    code, out, err = _run(capsys, "import-torch", tmp_path / "drop.pt", "--out",
                          tmp_path / "o.npz")
    assert "Dropout" in err
    assert not (tmp_path / "o.npz").exists()


def test_cli_without_torch_says_how_to_install(tmp_path, capsys, monkeypatch):
    torch.save(torch_mlp((3, 1), "tanh"), tmp_path / "m.pt")
    save_network(tmp_path / "net.npz", la.init_mlp(la_key(), (3, 2), "tanh"))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for args in (("import-torch", tmp_path / "m.pt", "--out", tmp_path / "o.npz"),
                 ("export-torch", tmp_path / "net.npz", "--out", tmp_path / "o.pt")):
        code, out, err = _run(capsys, *args)
        assert code == 2
        assert err.startswith("error: ") and 'pip install "lossatlas[torch]"' in err


def test_import_lossatlas_never_imports_torch():
    code = textwrap.dedent("""
        import sys
        import lossatlas, lossatlas.interop, lossatlas.cli
        from lossatlas.cli._app import build_app
        build_app()
        from lossatlas.cli import main
        assert main(["--help"]) == 0
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not bad, bad
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr


# ----------------------------------------------------------------------------- example
@pytest.mark.slow
def test_example_runs():
    res = subprocess.run([sys.executable, str(REPO / "examples" / "torch_roundtrip.py"),
                          "--quick"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "polished" in res.stdout
