"""Losses and penalties (issue 18): cross-entropy, weight decay as PyTorch means it, and the
`analyze` bounds.

Kinds of truth: closed forms in NumPy/SciPy, PyTorch's own losses, autograd and optimizer
steps (``nn.CrossEntropyLoss``, ``nn.BCEWithLogitsLoss``, ``nn.MSELoss``, ``torch.optim.SGD``
with ``weight_decay``), finite differences of the loss and gradient, the dense Hessian
against Lanczos bounds, and the command-line contract (bad input: one ``error:`` line,
exit code 2).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log1p, logsumexp

import lossatlas as la
from helpers import central_difference_grad
from lossatlas.cli import main
from lossatlas.curvature import analyze_point, dense_hessian
from lossatlas.data import Dataset, load_data, save_data, save_network, targets_from_labels
from lossatlas.landscape import Landscape
from lossatlas.models import init_mlp
from lossatlas.solvers import Label, NewtonTrustRegion, classify, find_critical_point
from tolerances import TOL


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def _ce_landscape(k=3, n=40, activation="tanh", bias=True, lam=0.0, penalize="all", seed=0,
                  scale=1.0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    X = jax.random.normal(k1, (n, 4), jnp.float64)
    labels = np.asarray(jax.random.randint(k2, (n,), 0, max(k, 2)))
    Y = jnp.asarray(targets_from_labels(labels, k))
    net = init_mlp(k3, (4, 5, k), activation, bias=bias, scale=scale)
    return Landscape(net, Dataset(X, Y), loss="cross_entropy", lam=lam, penalize=penalize), labels


def _reference_ce(f, labels, k):
    """Cross-entropy by SciPy: mean of logsumexp(f_i) − f_{i,y_i}, or the logistic loss."""
    f = np.asarray(f)
    if k == 1:
        y = labels.astype(float)
        return float(np.mean(np.logaddexp(0.0, f[:, 0]) - y * f[:, 0]))
    return float(np.mean(logsumexp(f, axis=1) - f[np.arange(f.shape[0]), labels]))


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cross_entropy_value_matches_closed_form(k):
    ls, labels = _ce_landscape(k=k)
    th = ls.ravel()
    f = ls.model(ls.data.X)
    assert float(ls.loss(th)) == pytest.approx(_reference_ce(f, labels, k), rel=TOL["exact_rtol"])


def test_cross_entropy_is_accurate_for_huge_logits():
    """Margins of ±800 overflow a naive exp; tiny losses keep their relative accuracy."""
    X = jnp.eye(3)
    W = jnp.asarray(800.0 * np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]))
    net = la.MLP((W,), None, "identity")
    right = Landscape(net, Dataset(X, jnp.eye(3)), loss="cross_entropy")
    # each sample: log(1 + 2 e^{-800}) = 2 e^{-800} to relative 1e-300 (log1p(x) = x − x²/2)
    assert float(right.loss(right.ravel())) == pytest.approx(2 * np.exp(-800.0), rel=1e-14)
    wrong = Landscape(net, Dataset(X, jnp.asarray(np.eye(3)[[1, 2, 0]])), loss="cross_entropy")
    assert float(wrong.loss(wrong.ravel())) == pytest.approx(800.0, rel=1e-15)  # log(e^800 + 2)
    for ls in (right, wrong):
        assert np.all(np.isfinite(np.asarray(ls.grad(ls.ravel()))))
    # logistic loss at margins ±60: softplus(−60) = e^{-60} (1 + O(e^{-60}))
    one = la.MLP((jnp.asarray([[60.0]]),), None, "identity")
    Xb, Yb = jnp.asarray([[1.0], [-1.0]]), jnp.asarray([[1.0], [0.0]])
    lb = Landscape(one, Dataset(Xb, Yb), loss="cross_entropy")
    assert float(lb.loss(lb.ravel())) == pytest.approx(float(log1p(np.exp(-60.0))), rel=1e-14)


# ------------------------------------------------------------------- derivatives by FD
@pytest.mark.parametrize("k, penalize", [(3, "all"), (1, "weights"), (2, "weights")])
def test_cross_entropy_gradient_hvp_and_hessian_match_finite_differences(k, penalize):
    ls, _ = _ce_landscape(k=k, lam=0.03, penalize=penalize, seed=k)
    th = ls.ravel()
    assert _rel(ls.grad(th), central_difference_grad(ls.loss, th)) < TOL["fd_grad_rtol"]
    v = jax.random.normal(jax.random.PRNGKey(9), th.shape, jnp.float64)
    h = 1e-5
    fd = (np.asarray(ls.grad(th + h * v)) - np.asarray(ls.grad(th - h * v))) / (2 * h)
    assert _rel(ls.hvp(th, v), fd) < TOL["fd_hvp_rtol"]
    H = dense_hessian(ls, th)
    fd_H = np.stack([central_difference_grad(lambda t, i=i: ls.grad(t)[i], th) for i in range(3)])
    assert _rel(H[:3], fd_H) < TOL["fd_hvp_rtol"]


def test_penalize_weights_leaves_biases_free():
    lam = 0.07
    base, _ = _ce_landscape(k=3)
    th = base.ravel()
    g0 = np.asarray(base.grad(th))
    for penalize in ("all", "weights"):
        ls = Landscape(base.model, base.data, loss="cross_entropy", lam=lam, penalize=penalize)
        arrays = {n: np.asarray(a) for n, a in ls.model.arrays().items()}
        kept = [n for n in arrays if penalize == "all" or n.startswith("W")]
        expect = lam * sum(float(np.sum(arrays[n] ** 2)) for n in kept)
        assert float(ls.loss(th) - base.loss(th)) == pytest.approx(expect, rel=TOL["exact_rtol"])
        dg = np.asarray(ls.grad(th)) - g0  # ∇(λ Σ ||A||²) = 2λA on the penalised arrays only
        for n, sl in ls.slices().items():
            want = 2 * lam * arrays[n].ravel() if n in kept else np.zeros(sl.stop - sl.start)
            np.testing.assert_allclose(dg[sl], want, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


# ------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_how_to_fix():
    ls, _ = _ce_landscape(k=3)
    with pytest.raises(la.InputError, match="mse, cross_entropy"):
        Landscape(ls.model, ls.data, loss="hinge")
    with pytest.raises(la.InputError, match="'all'.*'weights'"):
        Landscape(ls.model, ls.data, penalize="biases")
    soft = Dataset(ls.data.X, ls.data.Y * 0.5 + 0.1)
    with pytest.raises(la.InputError, match="one-hot rows.*labels"):
        Landscape(ls.model, soft, loss="cross_entropy")
    one, _ = _ce_landscape(k=1)
    with pytest.raises(la.InputError, match="targets 0 or 1"):
        Landscape(one.model, Dataset(one.data.X, one.data.Y + 0.5), loss="cross_entropy")
    with pytest.raises(la.InputError, match="labels must lie in 0..2"):
        targets_from_labels(np.array([0, 1, 3]), 3)
    with pytest.raises(la.InputError, match="labels 0 or 1"):
        targets_from_labels(np.array([0, 2]), 1)
    with pytest.raises(la.InputError, match="integer array.*astype"):
        targets_from_labels(np.array([0.0, 1.0]), 2)
    teacher = init_mlp(jax.random.PRNGKey(0), (2, 3, 1), "erf")
    with pytest.raises(la.InputError, match="population loss.*squared loss only"):
        Landscape(teacher, teacher=teacher, loss="cross_entropy")
    with pytest.raises(la.InputError, match="squared loss"):
        ls.residuals(ls.ravel())


def test_labels_in_a_data_file(tmp_path):
    X = np.random.default_rng(0).standard_normal((6, 2))
    labels = np.array([0, 2, 1, 1, 0, 2])
    np.savez(tmp_path / "d.npz", X=X, labels=labels)
    Y = np.asarray(load_data(tmp_path / "d.npz", n_outputs=4).Y)
    np.testing.assert_array_equal(Y, np.eye(4)[labels])
    assert load_data(tmp_path / "d.npz").Y.shape == (6, 3)
    np.savez(tmp_path / "b.npz", X=X, labels=labels % 2)
    np.testing.assert_array_equal(np.asarray(load_data(tmp_path / "b.npz", n_outputs=1).Y)[:, 0], labels % 2)
    np.savez(tmp_path / "both.npz", X=X, labels=labels, Y=np.eye(3)[labels])
    with pytest.raises(la.InputError, match="keep one"):
        load_data(tmp_path / "both.npz")
    np.savez(tmp_path / "short.npz", X=X, labels=labels[:4])
    with pytest.raises(la.InputError, match="one label per sample"):
        load_data(tmp_path / "short.npz")


# ---------------------------------------------- no global minimum for the cross-entropy
def test_cross_entropy_never_claims_a_global_minimum_without_a_value():
    """Logistic regression on non-separable data: convex, so its critical point *is* the
    minimiser, but its value is unknown: classify says `minimum`, not `global_minimum`."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 2))
    labels = (X[:, 0] + 0.8 * rng.standard_normal(60) > 0).astype(np.int64)
    net = la.MLP((jnp.zeros((1, 2)),), (jnp.zeros(1),), "identity")
    ls = Landscape(net, Dataset(jnp.asarray(X), jnp.asarray(targets_from_labels(labels, 1))),
                   loss="cross_entropy")
    sol = find_critical_point(ls, ls.ravel(), NewtonTrustRegion(gtol=1e-12), max_steps=100)
    assert np.max(np.abs(np.asarray(ls.grad(sol.theta)))) <= TOL["critical_grad_inf"]
    assert float(np.min(ls.margins(sol.theta))) < 0  # not separated
    c = classify(ls, sol.theta)
    assert c.label is Label.minimum
    assert c.evidence.loss_infimum is not None and c.evidence.global_min_value is None


def test_separated_data_infimum_at_infinity():
    """Every sample classified correctly: the loss decreases along t·(W_L, b_L) forever; a point
    far along that ray (gradient below any tolerance) is still reported `not_critical`."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 2))
    X = np.sign(X) * (0.5 + np.abs(X))  # away from the axes: every margin below is >= 1
    labels = np.where(X[:, 0] > 0, 1, 0) + 2 * (X[:, 1] > 0)  # 4 classes, one per quadrant
    net = init_mlp(jax.random.PRNGKey(0), (2, 4, 4), "identity", bias=True)
    W = np.array([[-1.0, -1], [1, -1], [-1, 1], [1, 1]])
    net = net.replace(W1=jnp.eye(4, 2), b1=jnp.zeros(4), W2=jnp.asarray(W @ np.eye(2, 4)), b2=jnp.zeros(4))
    data = Dataset(jnp.asarray(X), jnp.asarray(targets_from_labels(labels, 4)))
    ls = Landscape(net, data, loss="cross_entropy")
    assert float(np.min(ls.margins(ls.ravel()))) > 0
    s = ls.slices()
    losses = []
    for t in (1.0, 2.0, 4.0):  # independent check of the claim: strictly decreasing along the ray
        th = np.asarray(ls.ravel()).copy()
        th[s["W2"]] *= t
        th[s["b2"]] *= t
        losses.append(float(ls.loss(jnp.asarray(th))))
    assert losses[0] > losses[1] > losses[2] > 0
    far = np.asarray(ls.ravel()).copy()
    far[s["W2"]] *= 50.0
    c = classify(ls, jnp.asarray(far))
    assert np.max(np.abs(np.asarray(ls.grad(jnp.asarray(far))))) < 1e-10  # looks critical
    assert c.label is Label.not_critical
    assert c.evidence.infimum_at_infinity is not None and c.evidence.min_margin > 0
    # with a penalty the ray is not a descent path: no claim
    from lossatlas.solvers._classify import _cross_entropy_evidence

    pen = Landscape(net, data, loss="cross_entropy", lam=1e-3)
    assert _cross_entropy_evidence(pen, jnp.asarray(far)) == (
        {k: getattr(c.evidence, k) for k in ("min_margin", "misclassified", "loss_infimum")}, False)


# ------------------------------------------------------------------------ PyTorch
def _torch_setup(k, bias=True, seed=0):
    torch = pytest.importorskip("torch")
    from lossatlas.interop import to_torch

    ls, labels = _ce_landscape(k=k, bias=bias, seed=seed)
    model = to_torch(ls.model)
    X = torch.from_numpy(np.array(ls.data.X))
    return torch, ls, labels, model, X


def _flat_grad(model):
    return np.concatenate([p.grad.detach().numpy().ravel() for p in model.parameters()])


def _flat(model):
    return np.concatenate([p.detach().numpy().ravel().copy() for p in model.parameters()])


@pytest.mark.torch
@pytest.mark.parametrize("k", [3, 2])
def test_softmax_cross_entropy_equals_torch(k):
    torch, ls, labels, model, X = _torch_setup(k)
    out = torch.nn.CrossEntropyLoss()(model(X), torch.from_numpy(np.array(labels)).long())
    out.backward()
    th = ls.ravel()
    assert float(ls.loss(th)) == pytest.approx(out.item(), rel=TOL["torch_outputs"])
    assert _rel(ls.grad(th), _flat_grad(model)) < TOL["torch_grad_rtol"]


@pytest.mark.torch
def test_logistic_loss_equals_torch_bce_with_logits():
    torch, ls, labels, model, X = _torch_setup(1)
    out = torch.nn.BCEWithLogitsLoss()(model(X), torch.from_numpy(np.array(ls.data.Y)))
    out.backward()
    th = ls.ravel()
    assert float(ls.loss(th)) == pytest.approx(out.item(), rel=TOL["torch_outputs"])
    assert _rel(ls.grad(th), _flat_grad(model)) < TOL["torch_grad_rtol"]


@pytest.mark.torch
def test_cross_entropy_hessian_equals_torch_func_hessian():
    torch, ls, labels, model, X = _torch_setup(3)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    target = torch.from_numpy(np.array(labels)).long()

    def loss(theta):
        params, start = {}, 0
        for n, s in zip(names, shapes, strict=True):
            params[n] = theta[start : start + s.numel()].reshape(s)
            start += s.numel()
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (X,)), target)

    Ht = torch.func.hessian(loss)(torch.from_numpy(_flat(model))).numpy()
    H = dense_hessian(ls, ls.ravel())
    assert _rel(H, Ht) < TOL["torch_grad_rtol"]


@pytest.mark.torch
@pytest.mark.parametrize("penalize", ["all", "weights"])
def test_weight_decay_is_lam_half_as_in_torch_sgd(penalize):
    """One torch.optim.SGD step (lr = 1, weight_decay = WD) moves θ by exactly ∇L_λ with λ = WD/2,
    L = lossatlas' 1/(2N) Σ ||f − y||² = 0.5 · nn.MSELoss(reduction='sum') / N."""
    torch = pytest.importorskip("torch")
    from lossatlas.interop import to_torch

    wd = 0.3
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(7), 3)
    X = jax.random.normal(k1, (25, 3), jnp.float64)
    Y = jax.random.normal(k2, (25, 2), jnp.float64)
    net = init_mlp(k3, (3, 4, 2), "tanh", bias=True, scale=1.0)
    net = net.replace(b1=jnp.linspace(-0.5, 0.5, 4), b2=jnp.asarray([0.3, -0.2]))
    ls = Landscape(net, Dataset(X, Y), lam=wd / 2, penalize=penalize)
    model = to_torch(net)
    Xt, Yt = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(Y))
    mse_sum = torch.nn.MSELoss(reduction="sum")(model(Xt), Yt)
    plain = Landscape(net, Dataset(X, Y))
    assert float(plain.loss(plain.ravel())) == pytest.approx(0.5 * mse_sum.item() / 25, rel=TOL["torch_outputs"])
    assert float(plain.loss(plain.ravel())) == pytest.approx(
        2 / 2 * torch.nn.MSELoss()(model(Xt), Yt).item(), rel=TOL["torch_outputs"])  # d_out/2 · mean
    if penalize == "all":
        groups = [{"params": list(model.parameters()), "weight_decay": wd}]
    else:
        groups = [{"params": [p for n, p in model.named_parameters() if n.endswith("weight")], "weight_decay": wd},
                  {"params": [p for n, p in model.named_parameters() if n.endswith("bias")], "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=1.0)
    before = _flat(model)
    opt.zero_grad()
    (0.5 * torch.nn.MSELoss(reduction="sum")(model(Xt), Yt) / 25).backward()
    opt.step()
    step = before - _flat(model)
    assert _rel(ls.grad(ls.ravel()), step) < TOL["torch_grad_rtol"]


# ------------------------------------------------------------------------ analyze
def test_analyze_point_reports_lanczos_index_as_a_lower_bound():
    """A random point whose dense index exceeds top-k: Lanczos reports `index_lower_bound` ≤ the
    dense index (interlacing), never an exact `index`; λ_min/λ_max match the dense ends."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
    data = Dataset(jax.random.normal(k1, (30, 3), jnp.float64), jax.random.normal(k2, (30, 2), jnp.float64))
    ls = Landscape(init_mlp(k3, (3, 8, 2), "tanh", bias=True, scale=1.5), data)
    dense = analyze_point(ls, ls.ravel(), method="dense").to_record()["hessian"]
    top_k = 3
    assert dense["index"] > top_k
    rec = analyze_point(ls, ls.ravel(), method="lanczos", top_k=top_k).to_record()["hessian"]
    assert "index" not in rec and "nullity" not in rec
    assert rec["index_lower_bound"] <= dense["index"] and rec["index_lower_bound"] == top_k
    assert 0 <= rec["nullity_lower_bound"] <= dense["nullity"]
    scale = max(abs(dense["lambda_min"]), abs(dense["lambda_max"]))
    for end in ("lambda_min", "lambda_max"):
        assert rec[end] == pytest.approx(dense[end], abs=TOL["lanczos_eig_rtol"] * scale)
    assert dense["lambda_min"] == dense["eigenvalues"][0] and dense["lambda_max"] == dense["eigenvalues"][-1]


# ------------------------------------------------------------------------ CLI
def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("losses")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    labels = rng.integers(0, 3, 50)
    np.savez(d / "cls.npz", X=X, labels=labels)
    np.savez(d / "bin.npz", X=X, labels=labels % 2)
    save_network(d / "net3.npz", init_mlp(jax.random.PRNGKey(1), (4, 5, 3), "leaky_relu:0.1", bias=True, scale=1.0))
    save_network(d / "net2.npz", init_mlp(jax.random.PRNGKey(1), (4, 5, 2), "tanh", bias=True, scale=1.0))
    save_network(d / "net1.npz", init_mlp(jax.random.PRNGKey(1), (4, 5, 1), "tanh", bias=True, scale=1.0))
    save_network(d / "big.npz", init_mlp(jax.random.PRNGKey(2), (4, 8, 2), "tanh", bias=True, scale=1.5))
    save_data(d / "reg.npz", Dataset(jnp.asarray(X), jnp.asarray(rng.standard_normal((50, 2)))))
    return d


@pytest.mark.parametrize("net, data", [("net3.npz", "cls.npz"), ("net1.npz", "bin.npz")])
def test_cli_analyze_cross_entropy(capsys, files, net, data):
    code, out, err = run(capsys, "analyze", "--model", files / net, "--data", files / data,
                         "--loss", "cross_entropy", "--weight-decay", "0.01", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["loss_name"] == "cross_entropy" and doc["lam"] == 0.005 and doc["penalize"] == "all"
    from lossatlas.data import load_network

    m = load_network(files / net)
    ls = Landscape(m, load_data(files / data, n_outputs=m.widths[-1]), loss="cross_entropy", lam=0.005)
    assert doc["loss"] == pytest.approx(float(ls.loss(ls.ravel())), rel=TOL["exact_rtol"])
    lam = np.linalg.eigvalsh(dense_hessian(ls, ls.ravel()))
    assert doc["hessian"]["lambda_max"] == pytest.approx(lam[-1], rel=TOL["exact_rtol"])
    assert doc["hessian"]["lambda_min"] == pytest.approx(lam[0], rel=TOL["exact_rtol"], abs=TOL["exact_atol"])


def test_cli_analyze_lanczos_prints_index_as_a_bound(capsys, files):
    code, out, err = run(capsys, "analyze", "--model", files / "big.npz", "--data", files / "reg.npz",
                         "--method", "lanczos", "--top-k", "3", "--json")
    assert code == 0, err
    h = json.loads(out)["hessian"]
    assert "index" not in h and h["index_lower_bound"] == 3
    code, out, err = run(capsys, "analyze", "--model", files / "big.npz", "--data", files / "reg.npz")
    assert code == 0, err
    dense_index = int(next(line for line in out.splitlines() if "hessian.index" in line).split("│")[2])
    assert dense_index > 3
    code, out, err = run(capsys, "analyze", "--model", files / "big.npz", "--data", files / "reg.npz",
                         "--method", "lanczos", "--top-k", "3")
    assert code == 0, err
    assert "≥ 3 (lower bound)" in out and "lambda_max" in out and "lambda_min" in out


@pytest.mark.parametrize("extra, match", [
    (["--loss", "hinge"], "--loss must be one of mse, cross_entropy"),
    (["--loss", "cross_entropy", "--penalize", "biases"], "--penalize must be one of all, weights"),
    (["--loss", "cross_entropy", "--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--loss", "cross_entropy", "--weight-decay", "0.1", "--lam", "0.1"], "not both"),
    (["--loss", "cross_entropy", "--model", "NET2"], "labels range over 0..2, but the network has 2 outputs"),
])
def test_cli_bad_loss_input_exits_2(capsys, files, extra, match):
    model = files / ("net2.npz" if "NET2" in extra else "net3.npz")
    extra = [e for e in extra if e not in ("--model", "NET2")]
    code, out, err = run(capsys, "analyze", "--model", model, "--data", files / "cls.npz", *extra)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err


def test_cli_cross_entropy_needs_class_targets(capsys, files):
    code, out, err = run(capsys, "analyze", "--model", files / "net2.npz", "--data", files / "reg.npz",
                         "--loss", "cross_entropy")
    assert code == 2 and "one-hot rows" in err
