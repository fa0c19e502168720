"""`lossatlas analyze` against an independent dense Hessian: the loss written out by hand
(L(θ) = 1/(2N) Σ_i (W2 tanh(W1 x_i + b1) + b2 − y_i)² + λ Σ ||·||²) and `jax.hessian` of it."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.cli import main
from lossatlas.data import Dataset, save_data, save_network
from lossatlas.models import init_mlp
from tolerances import TOL


def _hand_loss(X, Y, lam, shapes):
    """The loss of the flat vector θ = (W1, b1, W2, b2), each row-major (the design's order)."""
    sizes = [int(np.prod(s)) for s in shapes]
    cuts = np.cumsum([0, *sizes])

    def loss(theta):
        W1, b1, W2, b2 = (theta[cuts[i] : cuts[i + 1]].reshape(shapes[i]) for i in range(4))
        pred = jnp.tanh(X @ W1.T + b1) @ W2.T + b2
        mse = jnp.sum((pred - Y) ** 2) / (2 * X.shape[0])
        return mse + lam * (jnp.sum(W1**2) + jnp.sum(b1**2) + jnp.sum(W2**2) + jnp.sum(b2**2))

    return loss


@pytest.mark.parametrize("lam", [0.0, 0.03])
def test_analyze_matches_an_independent_dense_hessian(tmp_path, capsys, lam):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((25, 3))
    Y = np.sin(X @ rng.standard_normal((3, 2)))
    net = init_mlp(jax.random.PRNGKey(2), (3, 4, 2), "tanh", bias=True)
    save_network(tmp_path / "net.npz", net)
    save_data(tmp_path / "data.npz", Dataset(jnp.asarray(X), jnp.asarray(Y)))
    code = main(["analyze", "--model", str(tmp_path / "net.npz"), "--data", str(tmp_path / "data.npz"),
                 "--lam", str(lam), "--save-hessian", str(tmp_path / "H.npy"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)

    arrays = net.arrays()
    names = ("W1", "b1", "W2", "b2")
    theta = jnp.concatenate([jnp.ravel(jnp.asarray(arrays[k])) for k in names])
    loss = _hand_loss(jnp.asarray(X), jnp.asarray(Y), lam, [arrays[k].shape for k in names])
    H = np.asarray(jax.jit(jax.hessian(loss))(theta))
    g = np.asarray(jax.grad(loss)(theta))
    lam_ref = np.linalg.eigvalsh(0.5 * (H + H.T))

    assert doc["n_params"] == theta.size == 4 * 3 + 4 + 2 * 4 + 2
    scale = max(1.0, float(np.max(np.abs(lam_ref))))
    assert doc["loss"] == pytest.approx(float(loss(theta)), rel=TOL["exact_rtol"])
    assert doc["grad_norm_inf"] == pytest.approx(np.max(np.abs(g)), rel=TOL["exact_rtol"])
    assert doc["grad_norm_2"] == pytest.approx(np.linalg.norm(g), rel=TOL["exact_rtol"])
    ev = np.asarray(doc["hessian"]["eigenvalues"])
    np.testing.assert_allclose(ev, lam_ref, rtol=0, atol=TOL["exact_rtol"] * scale)
    saved = np.load(tmp_path / "H.npy")
    np.testing.assert_allclose(saved, H, rtol=0, atol=TOL["exact_rtol"] * scale)
    # index and nullity from the reference spectrum with the reported tolerance
    tol = doc["hessian"]["tolerance"]
    assert doc["hessian"]["index"] == int(np.sum(lam_ref < -tol))
    assert doc["hessian"]["nullity"] == int(np.sum(np.abs(lam_ref) <= tol))
