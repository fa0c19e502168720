"""Deep linear networks (issue 5): the rank-based classification against exact Hessians.

Kinds of truth used here:
- identities: whitening ``||WX − Y||² = ||WQ − M||² + tr(YYᵀ) − tr(Σ)``, rows vs columns
  layout, closed-form gradient and Hessian against autodiff;
- known answers: hand-made critical points (achour2024.md §8 table: A–G, F, F'), the explicit
  cubic path of example D, the gap-swap curvature 2σ_i(σ_i − σ_j)/N;
- theory vs numerics on random samplers' points (depths 2–5, widths 1–6, d_x = d_y and
  d_x > d_y): the rank label agrees with the inertia of the exact Hessian, with
  ``solvers.classify``, and its certificate verifies (HVP Rayleigh quotients, PSD Hessians,
  loss evaluated along escape lines);
- dynamics: gradient flow from random starts ends at a global minimum.
"""

import itertools as it
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossatlas as la
import lossatlas.deep_linear as dl
from lossatlas._errors import InputError
from lossatlas.curvature import dense_hessian
from lossatlas.data import Dataset
from lossatlas.landscape import Landscape
from lossatlas.models import MLP, deep_linear, init_mlp
from tolerances import TOL

# --------------------------------------------------------------------------- helpers


def make_data(seed, n, dx, dy):
    r = np.random.default_rng(seed)
    return Dataset(jnp.asarray(r.standard_normal((n, dx))), jnp.asarray(r.standard_normal((n, dy))))


def random_widths(rng, square=None):
    """Depth 2..5, hidden widths 1..6, d_y in 1..4, d_x = d_y (square) or d_y..6."""
    H = int(rng.integers(2, 6))
    dy = int(rng.integers(1, 5))
    if square is None:
        square = rng.random() < 0.4
    dx = dy if square else int(rng.integers(dy, 7))
    return (dx,) + tuple(int(rng.integers(1, 7)) for _ in range(H - 1)) + (dy,)


def random_instance(rng, kinds=("global_minimum", "strict_saddle", "non_strict_saddle", "S")):
    """A random (net, data, requested kind) from the samplers; None when the family is empty."""
    widths = random_widths(rng)
    data = make_data(int(rng.integers(1 << 30)), int(rng.integers(widths[0] + 1, 3 * widths[0] + 6)),
                     widths[0], widths[-1])
    key = jax.random.PRNGKey(int(rng.integers(1 << 30)))
    kind = kinds[int(rng.integers(len(kinds)))]
    try:
        if kind == "S":
            r = int(rng.integers(0, min(widths) + 1))
            S = tuple(sorted(int(i) + 1 for i in rng.choice(widths[-1], size=r, replace=False)))
            return dl.sample_critical_point(widths, data, S, key=key), data, kind
        return dl.sample_point(kind, widths, data, key=key), data, kind
    except InputError:
        return None


def hessian_says_strict(an, H):
    lam = np.linalg.eigvalsh(H)
    scale = max(float(np.max(np.abs(lam))), an.spectral.eigenvalues[0] / an.spectral.n_samples)
    return bool(lam[0] < -TOL["dl_strict_eig_rel"] * scale), float(lam[0] / scale)


def _hand_loss(flat, shapes, X, Y):
    """½/N ||W_H⋯W_1 Xᵀ − Yᵀ||²_F written out (θ = row-major W_1, …, W_H concatenated)."""
    ws, o = [], 0
    for a, b in shapes:
        ws.append(flat[o:o + a * b].reshape(a, b))
        o += a * b
    P = ws[0]
    for w in ws[1:]:
        P = w @ P
    return 0.5 * jnp.sum((X @ P.T - Y) ** 2) / X.shape[0]


_hand_hessian = jax.jit(jax.hessian(_hand_loss), static_argnums=1)


def hand_hessian(net, data):
    """θ and the Hessian of the hand-written loss by jax.hessian (independent of lossatlas)."""
    ws = [np.asarray(w) for w in net.weights]
    shapes = tuple(w.shape for w in ws)
    flat = jnp.asarray(np.concatenate([w.ravel() for w in ws]))
    X, Y = jnp.asarray(np.asarray(data.X)), jnp.asarray(np.asarray(data.Y))
    return (float(_hand_loss(flat, shapes, X, Y)), np.asarray(_hand_hessian(flat, shapes, X, Y)))


def loss_polynomial(net, data, direction):
    """Coefficients c_m of L(W + tD) = Σ_m c_m t^m (exact: a polynomial of degree 2H in t),
    multiplying the matrix polynomials Π_h (W_h + t D_h) out by hand."""
    ws = [np.asarray(w) for w in net.weights]
    Ds, o = [], 0
    for w in ws:
        Ds.append(np.asarray(direction[o:o + w.size]).reshape(w.shape))
        o += w.size
    P = [ws[0], Ds[0]]
    for w, D in zip(ws[1:], Ds[1:], strict=True):
        Q = [np.zeros((w.shape[0], P[0].shape[1])) for _ in range(len(P) + 1)]
        for k, Pk in enumerate(P):
            Q[k] += w @ Pk
            Q[k + 1] += D @ Pk
        P = Q
    X, Y = np.asarray(data.X), np.asarray(data.Y)
    R = [X @ Pk.T for Pk in P]
    R[0] = R[0] - Y
    c = np.zeros(2 * len(R) - 1)
    for k, Rk in enumerate(R):
        for m, Rm in enumerate(R):
            c[k + m] += np.sum(Rk * Rm)
    return c / (2 * X.shape[0])


def global_min_by_hand(data, r):
    """min over rank ≤ r of ½/N ||W Xᵀ − Yᵀ||²: the least-squares residual plus the tail
    Σ_{i>r} σ_i² of W_ls L (L Lᵀ = XᵀX) — Eckart–Young on the whitened problem."""
    X, Y = np.asarray(data.X), np.asarray(data.Y)
    W = np.linalg.lstsq(X, Y, rcond=None)[0].T
    s = np.linalg.svd(W @ np.linalg.cholesky(X.T @ X), compute_uv=False)
    return (0.5 * np.sum((X @ W.T - Y) ** 2) + 0.5 * np.sum(s[r:] ** 2)) / X.shape[0]


def check_certificate_numbers(net, data, c, an, *, hessian=False):
    """Recompute what a verified certificate summarises, without lossatlas: the loss and the
    polynomial L(W + tD) multiplied out by hand, the global minimum by Eckart–Young, and (for
    escape curves, or when asked) the Hessian of the hand-written loss by jax.hessian.
    Returns the Hessian's eigenvalues and the strictness scale (None when not computed)."""
    X, Y = np.asarray(data.X), np.asarray(data.Y)
    P = np.asarray(net.weights[0])
    for w in net.weights[1:]:
        P = np.asarray(w) @ P
    L = 0.5 * np.sum((X @ P.T - Y) ** 2) / X.shape[0]
    assert L == pytest.approx(an.loss, rel=TOL["exact_rtol"], abs=TOL["exact_atol"])
    lam = scale = None
    if hessian or c.kind is dl.CertificateKind.escape_curve:
        _, H = hand_hessian(net, data)
        lam = np.linalg.eigvalsh(H)
        scale = max(float(np.max(np.abs(lam))), an.spectral.eigenvalues[0] / an.spectral.n_samples)
    if c.kind is dl.CertificateKind.negative_curvature:
        D = np.asarray(c.direction)
        q = 2 * loss_polynomial(net, data, D)[2] / (D @ D)  # DᵀHD/DᵀD = 2 c_2 / ||D||²
        assert q < 0 and q == pytest.approx(c.predicted, rel=TOL["exact_rtol"])
        assert c.measured == pytest.approx(c.predicted, rel=TOL["exact_rtol"])
        if lam is not None:
            assert lam[0] <= q * (1 - TOL["exact_rtol"])  # Rayleigh: λ_min ≤ DᵀHD/DᵀD
    elif c.kind is dl.CertificateKind.escape_curve:
        n = c.order
        assert lam[0] >= -TOL["dl_strict_eig_rel"] * scale  # PSD: no second-order escape
        co = loss_polynomial(net, data, c.direction)
        big = np.max(np.abs(co))
        assert co[0] == pytest.approx(L, rel=TOL["exact_rtol"], abs=TOL["exact_atol"])
        assert np.all(np.abs(co[1:n]) <= TOL["exact_rtol"] * big), co  # flat to order n − 1
        assert co[n] < 0 and -co[n] == pytest.approx(c.predicted, rel=TOL["exact_rtol"])
        # the drops the certificate evaluated, against the exact polynomial
        ts = np.asarray(c.ts)
        exact_drop = -np.array([np.polyval(co[:0:-1], t) * t for t in ts])
        drop = L - np.asarray(c.losses)
        np.testing.assert_allclose(drop, exact_drop, rtol=0,
                                   atol=TOL["dl_escape_drop_eps"] * np.finfo(float).eps * abs(L))
        slope = np.polyfit(np.log(ts), np.log(exact_drop), 1)[0]
        assert abs(c.fitted_order - slope) <= TOL["dl_escape_order_atol"]
    elif c.kind is dl.CertificateKind.global_gap:
        # a point whose loss is the global minimum value is a global minimum
        assert L == pytest.approx(global_min_by_hand(data, min(net.widths)), rel=TOL["exact_rtol"])
        assert abs(c.gap_to_global_min) <= TOL["exact_rtol"] * max(1, L)
    return lam, scale


def check_rank_label_against_hessian(net, data, kind, *, autodiff=False):
    """The rank label vs the exact Hessian's inertia and the exact critical-point facts."""
    an = dl.analyze_point(net, data)
    assert an.critical, an.reason
    assert an.grad_ratio <= TOL["dl_exact_rel"]
    assert an.product_residual <= TOL["dl_exact_rel"]
    assert an.loss == pytest.approx(an.critical_value, rel=TOL["exact_rtol"], abs=TOL["exact_atol"])
    expected = {"global_minimum": dl.DeepLinearLabel.global_minimum,
                "strict_saddle": dl.DeepLinearLabel.strict_saddle,
                "non_strict_saddle": dl.DeepLinearLabel.non_strict_saddle}.get(kind)
    if expected is not None:
        assert an.label is expected, an.reason
    assert an.label in (dl.DeepLinearLabel.global_minimum, dl.DeepLinearLabel.strict_saddle,
                        dl.DeepLinearLabel.non_strict_saddle), an.reason
    Hc = dl.closed_form_hessian(net, data, spectral=an.spectral)
    strict, rel = hessian_says_strict(an, Hc)
    assert strict == (an.label is dl.DeepLinearLabel.strict_saddle), (an.reason, rel)
    if an.label is dl.DeepLinearLabel.global_minimum:
        assert an.loss == pytest.approx(an.global_min_value, rel=TOL["exact_rtol"])
    else:
        assert an.loss > an.global_min_value
    if autodiff:
        ls = Landscape(net, data)
        Ha = dense_hessian(ls, ls.ravel())
        scale = max(np.abs(Ha).max(), 1.0)
        np.testing.assert_allclose(Hc, Ha, rtol=0, atol=TOL["exact_rtol"] * scale)
    return an


def whitened_net(ws_white, sd):
    """A network from whitened layers (W'_1 = W_1 Q)."""
    ws = [np.asarray(ws_white[0]) @ sd.Q_inv] + [np.asarray(w) for w in ws_white[1:]]
    return deep_linear([jnp.asarray(w) for w in ws])


# --------------------------------------------------------------------------- identities


def test_whitening_identity_and_row_layout():
    data = make_data(0, 25, 4, 3)
    sd = dl.spectral_data(data)
    Xr, Yr = np.asarray(data.X), np.asarray(data.Y)
    # Σ with samples as rows: Σ = Yᵀ X (Xᵀ X)⁻¹ Xᵀ Y (the paper's Y Xᵀ (X Xᵀ)⁻¹ X Yᵀ)
    Sigma = Yr.T @ Xr @ np.linalg.solve(Xr.T @ Xr, Xr.T @ Yr)
    np.testing.assert_allclose(sd.Sigma, Sigma, rtol=TOL["exact_rtol"])
    np.testing.assert_allclose(sd.U @ np.diag(sd.eigenvalues) @ sd.U.T, Sigma,
                               rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])
    assert np.all(np.diff(sd.eigenvalues) < 0)
    np.testing.assert_allclose(sd.M @ sd.V, sd.U[:, :3] * sd.singular_values, atol=1e-12)
    net = init_mlp(jax.random.PRNGKey(1), (4, 5, 3), "identity", scale=0.7)
    ls = Landscape(net, data)
    P = np.asarray(net.weights[1] @ net.weights[0])
    whitened = (np.sum((P @ sd.Q - sd.M) ** 2) + sd.trace_yy - np.sum(sd.eigenvalues)) / (2 * 25)
    for value in (sd.loss_of_product(P), whitened):
        assert value == pytest.approx(float(ls.loss(ls.ravel())), rel=TOL["exact_rtol"])


@pytest.mark.parametrize("seed", range(3))
def test_closed_form_gradient_and_hessian_match_autodiff(seed):
    rng = np.random.default_rng(seed)
    widths = ((3, 4, 2), (4, 2, 3, 3), (2, 3, 1, 2, 2))[seed]
    data = make_data(seed, 11, widths[0], widths[-1])
    net = init_mlp(jax.random.PRNGKey(int(rng.integers(100))), widths, "identity", scale=1.0)
    ls = Landscape(net, data)
    sd = dl.spectral_data(data)
    grads, _ = dl.gradient_parts([np.asarray(w) for w in net.weights], sd)
    g = np.concatenate([x.ravel() for x in grads])
    np.testing.assert_allclose(g, np.asarray(ls.grad(ls.ravel())), rtol=TOL["exact_rtol"],
                               atol=TOL["exact_atol"])
    Hc = dl.closed_form_hessian(net, data)
    Ha = dense_hessian(ls, ls.ravel())
    np.testing.assert_allclose(Hc, Ha, rtol=TOL["exact_rtol"], atol=TOL["exact_atol"])


# --------------------------------------------------------------------------- known answers


def _known(case):
    """Hand-made points of achour2024.md §8 (whitened block form) → (net, data, label, info)."""
    d33 = make_data(11, 14, 3, 3)
    sd = dl.spectral_data(d33)
    U, V, s = sd.U, sd.V, sd.singular_values
    e = np.eye(3)
    L = dl.DeepLinearLabel
    if case == "A":
        net = dl.sample_global_minimum((3, 3, 3, 3), d33, key=jax.random.PRNGKey(0))
        return net, d33, L.global_minimum, {}
    if case == "B":  # S = {2}
        ws = [s[1] * np.outer(e[0], V[:, 1]), np.outer(e[0], e[0]), np.outer(U[:, 1], e[0])]
        return whitened_net(ws, sd), d33, L.strict_saddle, {"S": (2,)}
    if case == "C":  # S = {1}, rk W1 = rk W3 = 1, rk W2 = 3
        ws = [s[0] * np.outer(e[0], V[:, 0]), np.eye(3), np.outer(U[:, 0], e[0])]
        return whitened_net(ws, sd), d33, L.strict_saddle, {"S": (1,)}
    if case == "D":  # padded rank-one chain: non-strict, explicit cubic path
        ws = [s[0] * np.outer(e[0], V[:, 0]), np.outer(e[0], e[0]), np.outer(U[:, 0], e[0])]
        return whitened_net(ws, sd), d33, L.non_strict_saddle, {"S": (1,), "k_max": 3}
    if case == "E":  # W = 0, H = 3
        return deep_linear([jnp.zeros((3, 3))] * 3), d33, L.non_strict_saddle, {"S": ()}
    if case == "E'":  # r = 0, W2 = 0, W3 = u_1 aᵀ, W1 = b v_2ᵀ Q⁻¹: only one rank-0 block
        ws = [np.outer(e[1], V[:, 1]), np.zeros((3, 3)), np.outer(U[:, 0], e[2])]
        return whitened_net(ws, sd), d33, L.strict_saddle, {"S": (), "k_max": 1}
    if case == "G":  # H = 2, S = {1}, all ranks 1
        ws = [s[0] * np.outer(e[0], V[:, 0]), np.outer(U[:, 0], e[0])]
        return whitened_net(ws, sd), d33, L.strict_saddle, {"S": (1,)}
    if case == "F":  # d = (4,2,2,2): W2 = W3 = 0, W1 X Yᵀ = 0, W1 ≠ 0
        d42 = make_data(12, 15, 4, 2)
        sd4 = dl.spectral_data(d42)
        k = np.linalg.svd(sd4.M)[2][-1]  # a unit vector of ker M
        ws = [np.outer([1.0, -0.5], k), np.zeros((2, 2)), np.zeros((2, 2))]
        return whitened_net(ws, sd4), d42, L.non_strict_saddle, {"S": (), "plain_differs": True}
    if case == "F'":  # d = (4,3,3,3,2): S = {1}, extra rows of W1 in ker M
        d42 = make_data(13, 15, 4, 2)
        sd4 = dl.spectral_data(d42)
        k = np.linalg.svd(sd4.M)[2][-1]
        ws = [sd4.singular_values[0] * np.outer(e[0], sd4.V[:, 0]) + np.outer(e[1], k),
              np.outer(e[0], e[0]) + np.outer(e[1], e[1]), np.outer(e[0], e[0]),
              np.outer(sd4.U[:, 0], e[0])]
        return whitened_net(ws, sd4), d42, L.non_strict_saddle, {"S": (1,), "plain_differs": True}
    if case == "K":  # k_max = 3 but no rank-one chain shorter than 4 (heuristic order fails)
        ws = [s[0] * np.outer(e[0], V[:, 0]) + np.outer(e[1], V[:, 1]), np.outer(e[0], e[0]),
              np.outer(e[0], e[0]), np.outer(e[0], e[0]),
              np.outer(U[:, 0], e[0]) + np.outer(U[:, 2], e[1])]
        return whitened_net(ws, sd), d33, L.non_strict_saddle, {"S": (1,), "k_max": 3, "chain": 4}
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["A", "B", "C", "D", "E", "E'", "G", "F", "F'", "K"])
def test_known_answers(case):
    net, data, label, info = _known(case)
    res = dl.classify(net, data, hessian="closed_form")
    an = res.analysis
    assert an.label is label, an.reason
    assert an.critical and an.grad_ratio <= TOL["dl_exact_rel"]
    if "S" in info:
        assert an.S == info["S"]
    if "k_max" in info:
        assert an.tightening.k_max == info["k_max"]
    if info.get("plain_differs"):
        # the plain-rank variant of "tightened" calls these strict (achour2024.md §4.3)
        assert an.tightening.tightened and not an.tightening_plain.tightened
    if "chain" in info:
        assert dl.find_chain(net, data, an).order == info["chain"]
    assert res.certificate.verified, res.certificate.summary
    strict, _ = hessian_says_strict(an, dl.closed_form_hessian(net, data))
    assert strict == (label is dl.DeepLinearLabel.strict_saddle)
    # the same verdict from the Hessian of the hand-written loss
    lam, scale = check_certificate_numbers(net, data, res.certificate, an, hessian=True)
    assert bool(lam[0] < -TOL["dl_strict_eig_rel"] * scale) == strict
    if label is dl.DeepLinearLabel.global_minimum:
        assert an.loss == pytest.approx(global_min_by_hand(data, min(net.widths)),
                                        rel=TOL["exact_rtol"])


def test_gap_swap_curvature_closed_form():
    """Example B: the gap certificate has curvature 2σ_2(σ_2 − σ_1)/N by HVP (4σ_i(σ_i−σ_j) unscaled)."""
    net, data, _, _ = _known("B")
    an = dl.analyze_point(net, data)
    D, pred, (i, j) = dl._certificates.gap_direction(net, data, an)
    s = an.spectral.singular_values
    assert (i, j) == (2, 1)
    assert pred == pytest.approx(2 * s[1] * (s[1] - s[0]) / data.n_samples, rel=1e-14)
    ls = Landscape(net, data)
    curv = float(D @ np.asarray(ls.hvp(ls.ravel(), jnp.asarray(D))))
    assert curv == pytest.approx(pred, rel=TOL["exact_rtol"])


def test_example_D_explicit_cubic_path():
    """L(W + tD) − L(W) = (−2σ_2 t³ + t⁶)/(2N) along D'_1 = e_2 v_2ᵀ, D_2 = e_2 e_2ᵀ, D_3 = u_2 e_2ᵀ."""
    net, data, _, _ = _known("D")
    sd = dl.spectral_data(data)
    e = np.eye(3)
    D = [np.outer(e[1], sd.V[:, 1]) @ sd.Q_inv, np.outer(e[1], e[1]), np.outer(sd.U[:, 1], e[1])]
    ls = Landscape(net, data)
    th = ls.ravel()
    v = jnp.asarray(np.concatenate([x.ravel() for x in D]))
    L0 = float(ls.loss(th))
    for t in (0.3, 0.1, 0.03):
        exact = (-2 * sd.singular_values[1] * t**3 + t**6) / (2 * data.n_samples)
        # the difference of two losses carries their round-off, a few ulps of L0 (measured
        # ≤ 1.6e-16 absolute, 7e-11 relative at t = 0.03; was rel=1e-9)
        atol = TOL["dl_escape_drop_eps"] * np.finfo(float).eps * L0
        assert float(ls.loss(th + t * v)) - L0 == pytest.approx(exact, rel=0, abs=atol)


# --------------------------------------------------------------------------- random instances


def test_random_samples_rank_label_matches_exact_hessian():
    rng = np.random.default_rng(2024)
    seen, plain_differs, done = set(), 0, 0
    while done < 120:
        inst = random_instance(rng)
        if inst is None:
            continue
        net, data, kind = inst
        an = check_rank_label_against_hessian(net, data, kind, autodiff=done < 3)
        seen.add((an.label, len(net.widths) - 1, net.widths[0] == net.widths[-1]))
        if an.tightening is not None and an.tightening.tightened != an.tightening_plain.tightened:
            plain_differs += 1
            assert net.widths[0] > net.widths[-1]  # the variants agree when d_x = d_y
        done += 1
    labels = {s[0] for s in seen}
    assert labels == {dl.DeepLinearLabel.global_minimum, dl.DeepLinearLabel.strict_saddle,
                      dl.DeepLinearLabel.non_strict_saddle}
    assert {s[1] for s in seen} == {2, 3, 4, 5} and {s[2] for s in seen} == {True, False}
    assert plain_differs > 0


_CERT_WIDTHS = [(3, 3, 2, 3), (4, 3, 3, 2), (3, 2, 3, 3, 2), (4, 4, 2, 3, 3, 2), (2, 2, 2)]


def test_certificates_verify_on_random_samples():
    rng = np.random.default_rng(7)
    counts = {}
    for i in range(20):
        widths = _CERT_WIDTHS[i % len(_CERT_WIDTHS)]
        data = make_data(100 + i % len(_CERT_WIDTHS), 13, widths[0], widths[-1])
        kind = ("global_minimum", "strict_saddle", "non_strict_saddle")[i % 3]
        if kind == "non_strict_saddle" and len(widths) == 3:
            kind = "strict_saddle"
        net = dl.sample_point(kind, widths, data, key=jax.random.PRNGKey(int(rng.integers(1 << 30))))
        res = dl.classify(net, data, hessian="closed_form")
        c = res.certificate
        assert c.verified, c.summary
        check_certificate_numbers(net, data, c, res.analysis)
        counts[c.kind] = counts.get(c.kind, 0) + 1
        if c.kind is dl.CertificateKind.negative_curvature:
            # closed form vs HVP: two exact float64 routes (measured ≤ 1.7e-15; was rel=1e-6)
            assert c.measured < 0 and c.measured == pytest.approx(c.predicted, rel=TOL["exact_rtol"])
        if c.kind is dl.CertificateKind.escape_curve:
            assert c.order >= 3 and c.hessian_psd
            assert abs(c.fitted_order - c.order) < TOL["dl_escape_order_vs_n_atol"]
            # the escape order of the shortest chain equals k_max on these samples
            assert c.order == res.analysis.tightening.k_max
        if c.kind is dl.CertificateKind.global_gap:
            assert abs(c.gap_to_global_min) <= TOL["exact_rtol"] * max(1, res.analysis.loss)
    assert set(counts) == {dl.CertificateKind.negative_curvature, dl.CertificateKind.escape_curve,
                           dl.CertificateKind.global_gap}


def test_autodiff_certificate_path():
    net, data, _, _ = _known("F'")
    c = dl.certify(net, data, hessian="autodiff")
    assert c.verified and c.hessian_psd and c.order == 3
    check_certificate_numbers(net, data, c, dl.analyze_point(net, data))


def _solvers_cases():
    """(widths, kind, seed) cross-checked against solvers.classify in the default run."""
    return [((3, 3, 2), "global_minimum", 1), ((3, 2, 3, 2), "global_minimum", 2),
            ((3, 2, 2), "strict_saddle", 3), ((3, 3, 2, 2), "strict_saddle", 4),
            ((3, 2, 2, 2), "non_strict_saddle", 5)]


@pytest.mark.parametrize("widths,kind,seed", _solvers_cases())
def test_rank_label_agrees_with_solvers_classify(widths, kind, seed):
    from lossatlas.solvers import classify

    data = make_data(seed, 12, widths[0], widths[-1])
    key = jax.random.PRNGKey(seed)
    if kind == "non_strict_saddle":
        net = dl.sample_non_strict_saddle(widths, data, key=key, rank=1)  # r ≥ 1: Hessian ≠ 0
    else:
        net = dl.sample_point(kind, widths, data, key=key)
    an = dl.analyze_point(net, data)
    ls = Landscape(net, data)
    # 4 kernel directions instead of 24 keep the default run fast (each is compiled afresh);
    # the slow test uses the defaults
    c = classify(ls, ls.ravel(), global_min_value=an.global_min_value, n_directions=4)
    assert c.label.value == an.label.value, (an.reason, c.reason)


def test_solvers_classify_on_example_F():
    """Example F: the Hessian is identically 0 in exact arithmetic (computed as ~1e-16 of O(1)
    terms that cancel); the classifier's round-off floor must see it as 0 and find the
    order-3 escape of this non-strict saddle."""
    from lossatlas.solvers import classify

    net, data, _, _ = _known("F")
    ls = Landscape(net, data)
    assert classify(ls, ls.ravel()).label.value == "non_strict_saddle"


# --------------------------------------------------------------------------- theorems


def test_no_non_strict_saddle_at_depth_two():
    rng = np.random.default_rng(5)
    n = 0
    while n < 60:
        dy = int(rng.integers(1, 5))
        widths = (int(rng.integers(dy, 7)), int(rng.integers(1, 7)), dy)
        data = make_data(int(rng.integers(1 << 20)), 14, widths[0], widths[-1])
        r = int(rng.integers(0, min(widths) + 1))
        S = tuple(sorted(int(i) + 1 for i in rng.choice(dy, size=r, replace=False)))
        net = dl.sample_critical_point(widths, data, S, key=jax.random.PRNGKey(n))
        an = check_rank_label_against_hessian(net, data, None)
        assert an.label is not dl.DeepLinearLabel.non_strict_saddle
        if S != tuple(range(1, min(widths) + 1)):
            assert an.label is dl.DeepLinearLabel.strict_saddle
        n += 1
    data = make_data(0, 10, 3, 2)
    with pytest.raises(InputError, match="depth-2"):
        dl.sample_non_strict_saddle((3, 4, 2), data, key=jax.random.PRNGKey(0))
    kinds = {k for v in dl.critical_values(data, (3, 4, 2)).values for k in v.kinds}
    assert dl.DeepLinearLabel.non_strict_saddle not in kinds


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_zero_is_non_strict_saddle_from_depth_three(depth):
    data = make_data(depth, 12, 3, 2)
    widths = (3,) + (2,) * (depth - 1) + (2,)
    net = deep_linear([jnp.zeros((widths[h + 1], widths[h])) for h in range(depth)])
    res = dl.classify(net, data, hessian="closed_form")
    an, c = res.analysis, res.certificate
    assert an.critical and an.S == () and an.critical_value == an.spectral.value_of(())
    assert c.verified, c.summary
    check_certificate_numbers(net, data, c, an)
    H = dl.closed_form_hessian(net, data)
    if depth == 2:
        assert an.label is dl.DeepLinearLabel.strict_saddle
        assert c.kind is dl.CertificateKind.negative_curvature and c.measured < 0
        assert np.linalg.eigvalsh(H)[0] < 0
    else:
        assert an.label is dl.DeepLinearLabel.non_strict_saddle
        assert np.all(H == 0.0)  # the Hessian vanishes identically at W = 0
        assert c.kind is dl.CertificateKind.escape_curve and c.order == depth


def test_gradient_flow_from_random_starts_ends_at_global_minimum():
    from lossatlas.dynamics import gradient_flow

    rng = np.random.default_rng(11)
    for widths in [(3, 4, 2), (2, 3, 1, 2, 2)]:
        data = make_data(int(rng.integers(1000)), 20, widths[0], widths[-1])
        net0 = init_mlp(jax.random.PRNGKey(int(rng.integers(1000))), widths, "identity", scale=0.7)
        ls = Landscape(net0, data)
        flow = gradient_flow(ls, ls.ravel(), t1=1e5, steady_tol=1e-11, solver="bdf")
        an = dl.analyze_point(ls.unravel(jnp.asarray(flow.theta)), data)
        assert an.label is dl.DeepLinearLabel.global_minimum, an.reason
        assert abs(an.gap_to_global_min) <= TOL["dl_flow_gap_rtol"] * an.global_min_value


def test_critical_values_enumeration():
    data = make_data(3, 16, 3, 3)
    cv = dl.critical_values(data, (3, 3, 3, 3))
    assert cv.count == 8 and cv.status == "ok"  # 2^3 index sets (achour2024.md §8)
    vals = [v.value for v in cv.values]
    assert vals == sorted(vals) and vals[0] == cv.global_min_value and vals[-1] == cv.max_value
    assert cv.values[0].S == (1, 2, 3) and cv.values[-1].S == ()
    data = make_data(4, 16, 5, 4)
    widths = (5, 2, 3, 4)
    cv = dl.critical_values(data, widths)
    assert cv.count == sum(math.comb(4, k) for k in range(3))
    by_S = {v.S: v for v in cv.values}
    for S in [(), (1,), (3,), (1, 2), (2, 4)]:
        net = dl.sample_critical_point(widths, data, S, key=jax.random.PRNGKey(len(S)))
        an = dl.analyze_point(net, data)
        assert an.S == S and by_S[S].value == pytest.approx(an.loss, rel=TOL["exact_rtol"])
        assert an.label in by_S[S].kinds
    assert by_S[(1, 2)].kinds == (dl.DeepLinearLabel.global_minimum,)
    assert by_S[(2, 4)].kinds == (dl.DeepLinearLabel.strict_saddle,)
    assert dl.DeepLinearLabel.non_strict_saddle in by_S[(1,)].kinds


def test_global_minimum_sampler_every_bottleneck_and_width_one():
    data = make_data(6, 12, 2, 2)
    for widths in [(2, 3, 2, 4, 2), (2, 1, 3, 1, 2), (2, 2, 2)]:
        ks = [k for k, w in enumerate(widths) if w == min(widths)]
        for k in ks:
            net = dl.sample_global_minimum(widths, data, key=jax.random.PRNGKey(k),
                                           bottleneck=k)
            an = check_rank_label_against_hessian(net, data, "global_minimum")
            assert an.r_max == min(widths)


def test_label_invariant_under_hidden_change_of_basis():
    rng = np.random.default_rng(9)
    data = make_data(9, 13, 4, 3)
    for kind in ("strict_saddle", "non_strict_saddle", "global_minimum"):
        net = dl.sample_point(kind, (4, 3, 4, 3, 3), data, key=jax.random.PRNGKey(3))
        ws = [np.asarray(w) for w in net.weights]
        for h in range(1, len(ws)):
            T = dl.random_invertible(rng, ws[h - 1].shape[0], log_cond=2.0)
            ws[h - 1] = T @ ws[h - 1]
            ws[h] = ws[h] @ np.linalg.inv(T)
        a, b = dl.analyze_point(net, data), dl.analyze_point(deep_linear(ws), data)
        assert (a.label, a.S, a.profile.plain, a.profile.effective_prefix) == (
            b.label, b.S, b.profile.plain, b.profile.effective_prefix)


def test_ambiguous_rank_gives_undetermined_not_a_guess():
    """Example D with W_2 = e_1e_1ᵀ + 1e-9 e_2e_2ᵀ: still critical, but rk(W_2) is 1 or 2 only
    up to a singular value one decade under the rank threshold (exactly: 2, hence strict with
    curvature ~1e-9; at the threshold: 1, hence non-strict). The answer is `undetermined`."""
    _, data, _, _ = _known("D")
    sd = dl.spectral_data(data)
    e = np.eye(3)
    ws = [sd.singular_values[0] * np.outer(e[0], sd.V[:, 0]),
          np.outer(e[0], e[0]) + 1e-9 * np.outer(e[1], e[1]), np.outer(sd.U[:, 0], e[0])]
    res = dl.classify(whitened_net(ws, sd), data, hessian="closed_form")
    assert res.analysis.critical
    assert res.label is dl.DeepLinearLabel.undetermined and res.analysis.rule is dl.Rule.numerics
    assert res.certificate.kind is dl.CertificateKind.none and not res.certificate.verified


def test_not_critical_point_and_gradient_certificate():
    data = make_data(1, 12, 3, 2)
    net = init_mlp(jax.random.PRNGKey(0), (3, 4, 2), "identity", scale=1.0)
    res = dl.classify(net, data)
    assert res.label is dl.DeepLinearLabel.not_critical and res.analysis.S is None
    assert res.certificate.kind is dl.CertificateKind.gradient and res.certificate.verified
    # the gradient written out: ∇W_2 = Rᵀ(X W_1ᵀ)/N, ∇W_1 = W_2ᵀ Rᵀ X / N with R = X W_1ᵀ W_2ᵀ − Y
    X, Y = np.asarray(data.X), np.asarray(data.Y)
    W1, W2 = (np.asarray(w) for w in net.weights)
    R = X @ W1.T @ W2.T - Y
    g = np.concatenate([(W2.T @ R.T @ X).ravel(), (R.T @ X @ W1.T).ravel()]) / X.shape[0]
    assert np.max(np.abs(g)) > 1e3 * TOL["critical_grad_inf"]


# --------------------------------------------------------------------------- assumptions


def test_singular_input_second_moments_are_refused():
    X = np.ones((10, 3))
    data = Dataset(jnp.asarray(X), jnp.asarray(np.random.default_rng(0).standard_normal((10, 2))))
    net = deep_linear([jnp.zeros((2, 3)), jnp.zeros((2, 2))])
    for call in (lambda: dl.analyze_point(net, data), lambda: dl.critical_values(data, (3, 2, 2)),
                 lambda: dl.sample_global_minimum((3, 2, 2), data, key=jax.random.PRNGKey(0))):
        with pytest.raises(InputError, match="singular"):
            call()


def test_repeated_or_zero_eigenvalues_give_assumption_violated():
    rng = np.random.default_rng(0)
    Xr = np.linalg.qr(rng.standard_normal((12, 3)))[0]  # XᵀX = I in rows layout
    data = Dataset(jnp.asarray(Xr), jnp.asarray(Xr[:, :2].copy()))  # Σ = I_2: repeated
    net = deep_linear([jnp.zeros((2, 3)), jnp.zeros((2, 2)), jnp.zeros((2, 2))])
    an = dl.analyze_point(net, data)
    assert an.label is dl.DeepLinearLabel.assumption_violated and an.S is None
    assert dl.Assumption.sigma_distinct in an.spectral.assumptions.violated
    cv = dl.critical_values(data, (3, 2, 2, 2))
    assert cv.status == "assumption_violated" and all(v.kinds is None for v in cv.values)
    with pytest.raises(InputError, match="distinct"):
        dl.sample_global_minimum((3, 2, 2, 2), data, key=jax.random.PRNGKey(0))
    # d_y > d_x: Σ has a zero eigenvalue
    data = make_data(2, 12, 2, 3)
    an = dl.analyze_point(deep_linear([jnp.zeros((2, 2)), jnp.zeros((3, 2))]), data)
    assert an.label is dl.DeepLinearLabel.assumption_violated
    assert dl.Assumption.sigma_full_rank in an.spectral.assumptions.violated
    # a point that is not critical is still labelled so
    an = dl.analyze_point(init_mlp(jax.random.PRNGKey(0), (2, 2, 3), "identity", scale=1.0), data)
    assert an.label is dl.DeepLinearLabel.not_critical


def test_bad_input_is_refused():
    data = make_data(0, 10, 3, 2)
    good = [jnp.zeros((2, 3)), jnp.zeros((2, 2))]
    cases = [
        (MLP(tuple(good), None, "relu"), data, "identity"),
        (MLP(tuple(good), (jnp.zeros(2), jnp.zeros(2)), "identity"), data, "biases"),
        (deep_linear([jnp.zeros((2, 3))]), data, "depth"),
        (deep_linear([jnp.zeros((2, 3), jnp.float32), jnp.zeros((2, 2))]), data, "float64"),
        (deep_linear([jnp.full((2, 3), jnp.nan), jnp.zeros((2, 2))]), data, "NaN"),
        (deep_linear([jnp.zeros((2, 4)), jnp.zeros((2, 2))]), data, "inputs"),
    ]
    for net, d, match in cases:
        with pytest.raises(InputError, match=match):
            dl.analyze_point(net, d)
    with pytest.raises(InputError, match="float64"):  # float32 data never reach the analysis
        Dataset(data.X.astype(jnp.float32), data.Y)
    with pytest.raises(InputError, match="r_max"):
        dl.sample_critical_point((3, 1, 2), data, (1, 2), key=jax.random.PRNGKey(0))
    with pytest.raises(InputError, match="not give a critical point"):
        dl.sample_critical_point((3, 2, 2, 2), data, (1,), key=jax.random.PRNGKey(0),
                                 links=("random", "random", "random"))
    with pytest.raises(InputError, match="blocks"):
        dl.sample_non_strict_saddle((3, 2, 2, 2), data, key=jax.random.PRNGKey(0), blocks=(1, 2))


def test_package_and_constructor_are_distinct():
    """`lossatlas.deep_linear` is this package; the constructor lives in `lossatlas.models`."""
    import lossatlas.deep_linear as pkg
    from lossatlas.models import deep_linear

    assert la.deep_linear is pkg and hasattr(pkg, "analyze_point")
    net = deep_linear([jnp.ones((2, 3)), jnp.ones((1, 2))])
    assert isinstance(net, MLP) and net.activation == "identity" and net.widths == (3, 2, 1)


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_thousands_of_random_instances():
    """2000 sampler points vs the exact Hessian; 300 certificates; 100 solvers.classify runs."""
    from lossatlas.solvers import classify

    rng = np.random.default_rng(20240)
    done, certs, classified, skipped_zero_hessian = 0, 0, 0, 0
    while done < 2000:
        inst = random_instance(rng)
        if inst is None:
            continue
        net, data, kind = inst
        an = check_rank_label_against_hessian(net, data, kind, autodiff=done % 50 == 0)
        done += 1
        if done % 6 == 0 and certs < 300:
            c = dl.certify(net, data, an, hessian="closed_form")
            assert c.verified, (net.widths, an.reason, c.summary)
            check_certificate_numbers(net, data, c, an)
            certs += 1
        if done % 12 == 0 and classified < 100:
            H = dl.closed_form_hessian(net, data, spectral=an.spectral)
            zero = np.max(np.abs(H)) <= 1e-12 * dl._certificates.hessian_term_scale(
                [np.asarray(w) for w in net.weights], an.spectral)
            skipped_zero_hessian += int(zero)
            ls = Landscape(net, data)
            c = classify(ls, ls.ravel(), global_min_value=an.global_min_value)
            # an identically-zero Hessian may leave the Hessian-based test undecided, never wrong
            allowed = {an.label.value, "undetermined"} if zero else {an.label.value}
            assert c.label.value in allowed, (net.widths, an.reason, c.evidence)
            classified += 1
    assert certs == 300 and classified == 100


@pytest.mark.slow
def test_gradient_flow_many_random_starts():
    from lossatlas.dynamics import gradient_flow

    rng = np.random.default_rng(12)
    for _ in range(20):
        widths = random_widths(rng)
        data = make_data(int(rng.integers(1000)), 3 * widths[0] + 5, widths[0], widths[-1])
        net0 = init_mlp(jax.random.PRNGKey(int(rng.integers(1000))), widths, "identity", scale=0.8)
        ls = Landscape(net0, data)
        flow = gradient_flow(ls, ls.ravel(), t1=1e6, steady_tol=1e-11, solver="bdf")
        an = dl.analyze_point(ls.unravel(jnp.asarray(flow.theta)), data)
        assert an.label is dl.DeepLinearLabel.global_minimum, (widths, an.reason)


def test_link_patterns_enumerated_at_depth_three():
    """Every critical link pattern at depth 3 gives the label its blocking structure predicts."""
    data = make_data(21, 14, 4, 3)
    widths = (4, 3, 3, 3)
    labels = set()
    for S in [(), (1,), (2,)]:
        for kinds in it.product(list(dl.LinkKind), repeat=3):
            try:
                net = dl.sample_critical_point(widths, data, S, key=jax.random.PRNGKey(1),
                                               links=kinds)
            except InputError:
                continue
            labels.add(check_rank_label_against_hessian(net, data, None).label)
    assert len(labels) == 2  # strict and non-strict saddles
