"""Closed-form Gaussian kernels and population loss, against independent references.

References used (none of them calls the code under test):
- Monte-Carlo averages over x ~ N(0, I) in numpy/scipy, compared in standard errors;
- Gauss–Hermite tensor quadrature (erf, smooth) and piecewise Gauss–Legendre quadrature in
  polar coordinates (relu, kinks at known angles), both converged to round-off;
- hand-derived closed forms (uniform law of erf(z/√2), committee machines, one neuron);
- central finite differences of the loss and of its gradient;
- at zero loss, the Gauss–Newton matrix E[JᵀJ] (equal to the Hessian there) by Monte Carlo.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import erf as sp_erf

from lossatlas._errors import InputError
from lossatlas.landscape._population import (
    SUPPORTED_ACTIVATIONS,
    gaussian_kernel,
    population_loss,
)
from tolerances import TOL

ACTS = ("erf", "relu")
MC_SAMPLES = 200_000
MC_CHUNK = 20_000


# ------------------------------------------------------------------ numpy references
def np_sigma(act, z):
    if act == "erf":
        return sp_erf(z / math.sqrt(2.0))
    return np.maximum(z, 0.0)


def np_dsigma(act, z):
    if act == "erf":
        return math.sqrt(2.0 / math.pi) * np.exp(-0.5 * z * z)
    return (z > 0).astype(np.float64)


def mc_mean_se(sample_fn, n=MC_SAMPLES, chunk=MC_CHUNK, seed=0):
    """Mean and standard error of ``sample_fn(X)`` (per-sample values on axis 0)."""
    rng = np.random.default_rng(seed)
    s1 = s2 = 0.0
    for _ in range(n // chunk):
        v = sample_fn(rng)
        s1 = s1 + v.sum(axis=0)
        s2 = s2 + (v * v).sum(axis=0)
    mean = s1 / n
    var = np.maximum(s2 / n - mean * mean, 0.0) * n / (n - 1)
    return mean, np.sqrt(var / n)


def assert_within_mc(value, mean, se):
    value = np.asarray(value)
    bound = TOL["mc_sigmas"] * se + TOL["exact_atol"]
    dev = np.abs(value - mean)
    assert np.all(dev <= bound), f"max deviation in SEs: {np.max(dev / (se + 1e-300))}"


def np_loss_samples(act, W1, W2, V1, V2, X):
    r = np_sigma(act, X @ W1.T) @ W2.T - np_sigma(act, X @ V1.T) @ V2.T
    return 0.5 * np.sum(r * r, axis=1)


def flat_loss(act, shapes, V1, V2):
    (m, d), (k, _) = shapes

    def f(theta):
        W1 = theta[: m * d].reshape(m, d)
        W2 = theta[m * d :].reshape(k, m)
        return population_loss(act, W1, W2, V1, V2)

    return f


def flat(W1, W2):
    return np.concatenate([np.ravel(W1), np.ravel(W2)])


def teacher(seed=0, n=3, d=4, k=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((k, n))


# ------------------------------------------------------------------ (1) kernel vs MC
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("d", [1, 2, 5])
def test_kernel_matches_monte_carlo(act, d):
    rng = np.random.default_rng(10 + d)
    A = rng.standard_normal((3, d)) * np.array([[0.5], [1.0], [2.0]])
    B = rng.standard_normal((4, d))

    def sample(r):
        X = r.standard_normal((MC_CHUNK, d))
        sa, sb = np_sigma(act, X @ A.T), np_sigma(act, X @ B.T)
        return sa[:, :, None] * sb[:, None, :]

    mean, se = mc_mean_se(sample, seed=d)
    K = np.asarray(gaussian_kernel(act, A, B))
    assert K.shape == (3, 4)
    assert_within_mc(K, mean, se)


# ------------------------------------------------------------------ (2) quadrature, d = 2
def test_erf_kernel_matches_gauss_hermite():
    """2-D tensor Gauss–Hermite (probabilists'), converged to round-off for this smooth case.

    Also pins the constant: with σ(u) = erf(u/√2) the kernel is (2/π) arcsin(c/√((1+p)(1+q))).
    """
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 2))
    B = 1.5 * rng.standard_normal((4, 2))
    x, w = hermegauss(120)
    w = w / math.sqrt(2.0 * math.pi)
    X = np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2)
    W = np.outer(w, w).ravel()
    ref = (np_sigma("erf", X @ A.T) * W[:, None]).T @ np_sigma("erf", X @ B.T)
    np.testing.assert_allclose(
        gaussian_kernel("erf", A, B), ref, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )
    # d = 1 with 1-D Gauss–Hermite
    a, b = np.array([[0.7], [-1.3]]), np.array([[2.0], [0.4], [-0.1]])
    ref1 = (np_sigma("erf", np.outer(x, a[:, 0])) * w[:, None]).T @ np_sigma(
        "erf", np.outer(x, b[:, 0])
    )
    np.testing.assert_allclose(
        gaussian_kernel("erf", a, b), ref1, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )


def relu_kernel_polar(a, b, deg=30):
    """E[relu(a·x) relu(b·x)], x ~ N(0, I_2), in polar coordinates.

    With x = r u(φ): density r e^{-r²/2} dr dφ / (2π), integrand r² relu(a·u) relu(b·u), and
    ∫_0^∞ r³ e^{-r²/2} dr = 2, so K = (1/π) ∫_0^{2π} relu(a·u) relu(b·u) dφ. The angular
    integrand is a trigonometric polynomial between the kinks at angle(a) ± π/2 and
    angle(b) ± π/2, so Gauss–Legendre on each piece is exact to round-off.
    """
    kinks = []
    for v in (a, b):
        if np.linalg.norm(v) > 0:
            ang = math.atan2(v[1], v[0])
            kinks += [(ang + math.pi / 2) % (2 * math.pi), (ang - math.pi / 2) % (2 * math.pi)]
    edges = np.unique(np.concatenate([[0.0, 2 * math.pi], kinks]))
    t, wt = leggauss(deg)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        phi = 0.5 * (hi - lo) * t + 0.5 * (hi + lo)
        u = np.stack([np.cos(phi), np.sin(phi)], -1)
        g = np.maximum(u @ a, 0.0) * np.maximum(u @ b, 0.0)
        total += 0.5 * (hi - lo) * np.sum(wt * g)
    return total / math.pi


def test_relu_kernel_matches_polar_quadrature():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 2))
    B = np.concatenate([rng.standard_normal((3, 2)), A[:1], -2.0 * A[1:2], np.zeros((1, 2))])
    ref = np.array([[relu_kernel_polar(a, b) for b in B] for a in A])
    np.testing.assert_allclose(
        gaussian_kernel("relu", A, B), ref, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )


def test_relu_kernel_d1_and_special_angles():
    # d = 1: E[relu(a x) relu(b x)] = |a||b|/2 if ab > 0 else 0.
    a, b = np.array([[0.7], [-1.3], [0.0]]), np.array([[2.0], [-0.4]])
    ref = np.array([[ai * bj / 2 if ai * bj > 0 else 0.0 for bj in b[:, 0]] for ai in a[:, 0]])
    np.testing.assert_allclose(
        gaussian_kernel("relu", a, b), ref, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )
    # orthogonal unit vectors: independent half-normals, E[relu(z)]² = 1/(2π)
    eye = np.eye(3)
    ref = np.where(eye > 0, 0.5, 1.0 / (2.0 * math.pi))
    np.testing.assert_allclose(
        gaussian_kernel("relu", eye, eye), ref, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )


def test_erf_kernel_uniform_law():
    """erf(z/√2) = 2Φ(z) − 1 is uniform on [−1, 1] for z ~ N(0,1): E[σ²] = 1/3, and
    independent (orthogonal) neurons are uncorrelated (σ odd)."""
    eye = np.eye(3)
    ref = np.where(eye > 0, 1.0 / 3.0, 0.0)
    np.testing.assert_allclose(
        gaussian_kernel("erf", eye, eye), ref, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )


@pytest.mark.parametrize("act", ACTS)
def test_kernel_rotation_invariance_and_symmetry(act):
    rng = np.random.default_rng(4)
    A, B = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    K = np.asarray(gaussian_kernel(act, A, B))
    np.testing.assert_allclose(
        gaussian_kernel(act, A @ Q, B @ Q), K, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )
    np.testing.assert_allclose(
        gaussian_kernel(act, B, A), K.T, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"]
    )
    # jit with the activation static gives the same numbers
    Kj = jax.jit(gaussian_kernel, static_argnums=0)(act, A, B)
    np.testing.assert_allclose(Kj, K, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


# ------------------------------------------------------------------ (3) loss vs MC
@pytest.mark.parametrize("act", ACTS)
def test_population_loss_matches_monte_carlo(act):
    V1, V2 = teacher(0)
    rng = np.random.default_rng(5)
    W1, W2 = rng.standard_normal((4, 4)), rng.standard_normal((2, 4))

    mean, se = mc_mean_se(
        lambda r: np_loss_samples(act, W1, W2, V1, V2, r.standard_normal((MC_CHUNK, 4))), seed=7
    )
    L = population_loss(act, W1, W2, V1, V2)
    assert L.shape == () and L.dtype == jnp.float64
    assert_within_mc(L, mean, se)


# ------------------------------------------------------------------ (4) derivatives
def special_points(act):
    """(name, W1, W2, V1, V2): generic and singular student points."""
    V1, V2 = teacher(1)
    rng = np.random.default_rng(6)
    W1g, W2g = rng.standard_normal((3, 4)), rng.standard_normal((2, 3))
    pts = [("generic", W1g, W2g), ("student=teacher", V1.copy(), V2.copy())]
    W1 = W1g.copy()
    W1[2] = W1[0]
    pts.append(("equal student rows", W1, W2g))
    W1 = W1g.copy()
    W1[1] = 1.7 * V1[2]
    pts.append(("row parallel to teacher", W1, W2g))
    W1 = W1g.copy()
    W1[1] = -0.6 * V1[0]
    pts.append(("row antiparallel to teacher", W1, W2g))
    return [(name, W1, W2, V1, V2) for name, W1, W2 in pts]


def central_grad(f, x, h):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


@pytest.mark.parametrize("act", ACTS)
def test_grad_matches_finite_differences(act):
    for name, W1, W2, V1, V2 in special_points(act):
        f = jax.jit(flat_loss(act, (W1.shape, W2.shape), V1, V2))
        x = flat(W1, W2)
        g = np.asarray(jax.grad(f)(x))
        g_fd = central_grad(f, x, h=np.finfo(np.float64).eps ** (1 / 3))
        scale = max(1.0, np.max(np.abs(g)))
        np.testing.assert_allclose(
            g_fd, g, rtol=TOL["fd_grad_rtol"], atol=TOL["fd_grad_rtol"] * scale, err_msg=name
        )


@pytest.mark.parametrize("act", ACTS)
def test_hessian_matches_finite_differences_of_grad(act):
    """Also at a_i ∥ b_j, where relu's kernel is C² but not C³: there the central difference
    D(h) of the gradient is H + c|h| + O(h²), so the Richardson combination 2 D(h/2) − D(h)
    (exact for the c|h| term, O(h²) otherwise) is used everywhere."""
    for name, W1, W2, V1, V2 in special_points(act):
        f = flat_loss(act, (W1.shape, W2.shape), V1, V2)
        x = flat(W1, W2)
        H = np.asarray(jax.jit(jax.hessian(f))(x))
        assert np.all(np.isfinite(H)), name
        grad = jax.jit(jax.grad(f))

        def D(h, x=x, grad=grad):
            cols = []
            for i in range(x.size):
                e = np.zeros_like(x)
                e[i] = h
                cols.append((np.asarray(grad(x + e)) - np.asarray(grad(x - e))) / (2 * h))
            return np.stack(cols, axis=1)

        h = 1e-4
        H_fd = 2.0 * D(h / 2) - D(h)
        scale = max(1.0, np.max(np.abs(H)))
        np.testing.assert_allclose(
            H_fd, H, rtol=TOL["fd_hvp_rtol"], atol=TOL["fd_hvp_rtol"] * scale, err_msg=name
        )
        np.testing.assert_allclose(H, H.T, rtol=0, atol=TOL["exact_atol"] * scale, err_msg=name)


@pytest.mark.parametrize("act", [pytest.param("erf", marks=pytest.mark.slow), "relu"])
def test_hessian_at_zero_loss_equals_gauss_newton_monte_carlo(act):
    """At student = teacher the residual vanishes, so ∇²L = E[JᵀJ] with J = ∂f/∂θ; this is
    an independent check of the Hessian exactly at a_i = b_i (relu's t = 1 singular set)."""
    V1, V2 = teacher(2, n=3, d=3, k=2)
    m, d = V1.shape
    k = V2.shape[0]
    H = np.asarray(jax.jit(jax.hessian(flat_loss(act, (V1.shape, V2.shape), V1, V2)))(flat(V1, V2)))
    assert np.all(np.isfinite(H))

    def sample(r):
        X = r.standard_normal((MC_CHUNK, d))
        Z = X @ V1.T  # (N, m)
        s, ds = np_sigma(act, Z), np_dsigma(act, Z)
        # ∂f_k/∂W1[i, l] = V2[k, i] σ'(z_i) x_l ;  ∂f_k/∂W2[k', i] = δ_kk' σ(z_i)
        J1 = V2[None, :, :, None] * ds[:, None, :, None] * X[:, None, None, :]
        J2 = np.eye(k)[None, :, :, None] * s[:, None, None, :]
        J = np.concatenate([J1.reshape(MC_CHUNK, k, m * d), J2.reshape(MC_CHUNK, k, k * m)], 2)
        return np.einsum("nkp,nkq->npq", J, J)

    mean, se = mc_mean_se(sample, seed=11)
    assert_within_mc(H, mean, se)


@pytest.mark.parametrize("act", [pytest.param("erf", marks=pytest.mark.slow), "relu"])
def test_zero_row_is_finite_and_a_dead_neuron(act):
    V1, V2 = teacher(3)
    rng = np.random.default_rng(8)
    W1, W2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 3))
    W1[1] = 0.0
    f = flat_loss(act, (W1.shape, W2.shape), V1, V2)
    x = flat(W1, W2)
    L = f(x)
    g = np.asarray(jax.jit(jax.grad(f))(x))  # jitted: one compilation instead of thousands of eager ops
    H = np.asarray(jax.jit(jax.hessian(f))(x))
    assert np.isfinite(L) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    # σ(0) = 0 for both: the neuron contributes nothing, so the loss is that of the net without it
    keep = [0, 2]
    L_pruned = population_loss(act, W1[keep], W2[:, keep], V1, V2)
    np.testing.assert_allclose(L, L_pruned, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    if act == "relu":
        # not differentiable there; the convention relu'(0) = 0 makes the neuron dead:
        # every derivative involving its incoming or outgoing weights is 0
        idx = [4 + j for j in range(4)] + [12 + 1, 12 + 3 + 1]  # W1[1, :], W2[:, 1]
        assert np.all(g[idx] == 0.0)
        assert np.all(H[idx, :] == 0.0) and np.all(H[:, idx] == 0.0)


# ------------------------------------------------------------------ (5) exact zeros, symmetries
@pytest.mark.parametrize("act", ACTS)
def test_loss_exactly_zero_at_teacher(act):
    V1, V2 = teacher(4, n=5, d=3, k=2)
    assert float(population_loss(act, V1, V2, V1, V2)) == 0.0
    assert float(population_loss(act, V1[:1], V2[:, :1], V1[:1], V2[:, :1])) == 0.0


@pytest.mark.parametrize("act", ACTS)
def test_permutation_and_sign_symmetries(act):
    V1, V2 = teacher(5)
    rng = np.random.default_rng(9)
    W1, W2 = rng.standard_normal((4, 4)), rng.standard_normal((2, 4))
    L = float(population_loss(act, W1, W2, V1, V2))
    perm = np.array([2, 0, 3, 1])
    L_perm = float(population_loss(act, W1[perm], W2[:, perm], V1, V2))
    np.testing.assert_allclose(L_perm, L, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    # student = permuted teacher: zero loss up to round-off
    tp = np.array([2, 0, 1])
    L0 = float(population_loss(act, V1[tp], V2[:, tp], V1, V2))
    assert abs(L0) <= TOL["exact_atol"]
    flip = np.array([1.0, -1.0, 1.0, -1.0])
    L_flip = float(population_loss(act, W1 * flip[:, None], W2 * flip[None, :], V1, V2))
    if act == "erf":  # odd activation: (w_i, W2[:, i]) → (−w_i, −W2[:, i]) is a symmetry
        np.testing.assert_allclose(L_flip, L, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    else:  # relu is not odd: the flip changes the function, and the loss
        assert abs(L_flip - L) > 1e3 * TOL["exact_atol"]


# ------------------------------------------------------------------ (6) hand closed forms
@pytest.mark.parametrize("c", [0.0, 0.3, 1.0, 2.5, -0.4, -2.0])
def test_relu_single_neuron_scaled_teacher(c):
    """Student w = c v, teacher v, both outgoing weights 1, z = v·x ~ N(0, |v|²):
    c ≥ 0: relu(cz) − relu(z) = (c − 1) relu(z), L = ½ (c−1)² |v|²/2;
    c < 0: relu(cz) = |c| relu(−z) has support disjoint from relu(z), L = ½ (c² + 1) |v|²/2."""
    v = np.array([[0.6, -1.2, 0.3]])
    nv2 = float(np.sum(v * v))
    expected = 0.25 * ((c - 1.0) ** 2 if c >= 0 else c * c + 1.0) * nv2
    L = population_loss("relu", c * v, np.ones((1, 1)), v, np.ones((1, 1)))
    np.testing.assert_allclose(L, expected, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


@pytest.mark.parametrize("n", [2, 3, pytest.param(5, marks=pytest.mark.slow)])
def test_relu_committee_machine_missing_units(n):
    """Teacher V1 = I_n, V2 = 1ᵀ (soft committee). A student equal to the teacher's first
    unit leaves the residual Σ_{i≥2} relu(x_i), a sum of n−1 independent half-normals:
    L = ½ [(n−1) E relu² + (n−1)(n−2) (E relu)²] = ½ [(n−1)/2 + (n−1)(n−2)/(2π)].
    A zero student (dead unit) gives the same with n in place of n−1."""
    V1, V2 = np.eye(n), np.ones((1, n))

    def expected(j):
        return 0.5 * (j / 2.0 + j * (j - 1) / (2.0 * math.pi))

    L1 = population_loss("relu", V1[:1], np.ones((1, 1)), V1, V2)
    L0 = population_loss("relu", np.zeros((1, n)), np.ones((1, 1)), V1, V2)
    np.testing.assert_allclose(L1, expected(n - 1), rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    np.testing.assert_allclose(L0, expected(n), rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


def test_erf_committee_machine_closed_forms():
    """erf(z/√2) is uniform on [−1, 1] for z ~ N(0,1), so E σ² = 1/3, and orthogonal units are
    independent with mean 0. Teacher V1 = I_3, V2 = 1ᵀ; student = first unit: L = ½·2/3.
    Student = teacher unit with doubled weights: E[(erf(√2 z) − erf(z/√2))²] from the kernel
    values (2/π)arcsin(4/5), (2/π)arcsin(2/√10), 1/3 (hand-evaluated Gram entries)."""
    V1, V2 = np.eye(3), np.ones((1, 3))
    L = population_loss("erf", V1[:1], np.ones((1, 1)), V1, V2)
    np.testing.assert_allclose(L, 1.0 / 3.0, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    e1 = V1[:1]
    k_ww = 2 / math.pi * math.asin(4.0 / 5.0)  # |w|² = 4: 4/√(5·5)
    k_wv = 2 / math.pi * math.asin(2.0 / math.sqrt(10.0))  # 2/√(5·2)
    expected = 0.5 * (k_ww - 2 * k_wv + 1.0 / 3.0)
    L2 = population_loss("erf", 2.0 * e1, np.ones((1, 1)), e1, np.ones((1, 1)))
    np.testing.assert_allclose(L2, expected, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


# ------------------------------------------------------------------ errors
def test_unsupported_activation_raises_input_error():
    A = np.ones((2, 3))
    for bad in ("tanh", "ReLU", "gelu", None):
        with pytest.raises(InputError) as info:
            gaussian_kernel(bad, A, A)
        msg = str(info.value)
        assert "'erf'" in msg and "'relu'" in msg and "finite data set" in msg
        with pytest.raises(ValueError):
            population_loss(bad, A, np.ones((1, 2)), A, np.ones((1, 2)))
    assert SUPPORTED_ACTIVATIONS == ("erf", "relu")


def test_shape_mismatch_raises_input_error():
    A = np.ones((2, 3))
    with pytest.raises(InputError):
        gaussian_kernel("erf", A, np.ones((2, 4)))
    with pytest.raises(InputError):
        population_loss("relu", A, np.ones((1, 3)), A, np.ones((1, 2)))
    with pytest.raises(InputError):
        population_loss("relu", A, np.ones((2, 2)), A, np.ones((1, 2)))
    with pytest.raises(InputError):
        gaussian_kernel("erf", np.ones(3), A)
