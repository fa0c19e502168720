"""``lossatlas recovery …``: branches of the global-minimum set of two-layer networks and flow rates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from ._common import emit_json, print_kv


def branches(
    m: Annotated[int, typer.Option("--m", help="student width m")],
    m0: Annotated[int, typer.Option("--m0", help="teacher width m0 (<= m)")],
    d: Annotated[int, typer.Option("--d", help="input dimension d")],
    activation: Annotated[str, typer.Option(help="tanh | erf | sigmoid4_plus_softplus")] = "tanh",
    bias: Annotated[bool, typer.Option(
        "--bias", help="student and teacher with biases in both layers (M = m(d+2)+1; constant neurons give "
                       "curved components)")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Every branch of Q* with its dim, codim, model rank, Morse-Bott flag and threshold N_t."""
    from ..recovery import activation_support, enumerate_branches, n_params

    bs = enumerate_branches(m, m0, d, activation, bias=bias)
    sup = activation_support(activation, m, m0, bias=bias)
    bound = n_params(m, d, bias=bias)
    thresholds = [b.threshold for b in bs if b.threshold is not None]
    curved = sum(not b.affine for b in bs)
    body = {"m": m, "m0": m0, "d": d, "activation": activation, "activation_kind": sup.kind.name,
            "bias": bias, "n_params": bound, "count": len(bs), "threshold_bound": bound,
            "max_threshold": max(thresholds), "affine": curved == 0, "non_affine_count": curved,
            "threshold_missing_count": len(bs) - len(thresholds),
            "note": sup.reason or None,
            "branches": [b.to_record() for b in bs]}
    if json_out:
        emit_json("recovery_branches", body)
        return
    import sys

    from rich.console import Console
    from rich.table import Table

    mform = "m(d+2)+1" if bias else "m(d+1)"
    table = Table(title=f"Q* branches: m={m}, m0={m0}, d={d}, {activation}{', biases' if bias else ''} "
                        f"({len(bs)} branches, M = {mform} = {bound})")
    cols = ("branch", "dim", "codim", "model_rank", "morse_bott", "threshold") + (("affine",) if bias else ())
    for col in cols:
        table.add_column(col, justify="left" if col == "branch" else "right")
    for b in bs:
        row = [b.label, str(b.dim), str(b.codim), str(b.model_rank), str(b.morse_bott).lower(),
               "null" if b.threshold is None else str(b.threshold)]
        table.add_row(*row, *((str(b.affine).lower(),) if bias else ()))
    console = Console(file=sys.stdout, width=120)
    console.print(table)
    if curved:
        console.print(f"{curved} component(s) with constant neurons C are curved (affine = false): "
                      "c + sum_{k in C} a_k sigma(b_k) = c*.", markup=False)
    if len(thresholds) < len(bs):
        console.print(f"threshold null for {len(bs) - len(thresholds)} curved non-Morse-Bott component(s): "
                      f"{bs[[b.threshold for b in bs].index(None)].threshold_reason}.", markup=False)


def rate(
    model: Annotated[Path, typer.Option(help="start network (.npz): two layers, one output, with or without "
                                             "biases")],
    data: Annotated[Path, typer.Option(help="data file (.npz) with X (n, d) and Y (n, 1)")],
    t1: Annotated[float, typer.Option(help="final time of the gradient flow")] = 1e8,
    cluster_tol: Annotated[float, typer.Option(help="tolerance for reading off the branch at the end")] = 1e-2,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Run gradient flow from MODEL and compare its convergence law with the branch it reaches."""
    import math

    from ..data import load_data, load_network
    from ..landscape import check_network_finite
    from ..recovery import flow_rate

    if not (math.isfinite(t1) and t1 > 0):
        raise InputError(f"--t1 must be a positive number, got {t1}.")
    if not (math.isfinite(cluster_tol) and cluster_tol > 0):
        raise InputError(f"--cluster-tol must be a positive number, got {cluster_tol}.")
    net = load_network(model)
    check_network_finite(net)
    ds = load_data(data).check()
    res = flow_rate(net, ds, t1=t1, cluster_tol=cluster_tol)
    body = res.to_record()
    if json_out:
        emit_json("recovery_rate", body)
        return
    law = body["law"]
    rows = {
        "status": body["flow"]["status"], "t_final": body["flow"]["t_final"],
        "initial_loss": body["initial_loss"], "final_loss": body["flow"]["final_loss"],
        "law": law["kind"], "fitted_rate": law["rate"], "fitted_exponent": law["exponent"],
        "lambda_min_positive": body["lambda_min_positive"], "predicted_rate (2 λ⁺_min)": body["predicted_rate"],
        "rate_relative_error": body["rate_relative_error"],
        "branch": None if res.branch is None else res.branch.label,
        "branch_affine": None if res.branch is None else res.branch.affine,
        "codim": None if res.branch is None else res.branch.codim,
        "hessian_rank": body["hessian"]["rank"], "morse_bott": body["morse_bott"],
        "expected_law": body["expected_kind"], "expected_law_reason": body["expected_reason"],
        "agrees": body["agrees"],
        "kernel_fraction_last": body["kernel_fraction_last"], "kernel_exponent": body["kernel_exponent"],
    }
    print_kv("lossatlas recovery rate", rows)


def register(app: typer.Typer) -> None:
    """Add the ``recovery`` command group."""
    sub = typer.Typer(
        name="recovery",
        help="Global minima of two-layer networks: branches of Q*, thresholds, flow rates.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    sub.command("branches")(branches)
    sub.command("rate")(rate)
    app.add_typer(sub, name="recovery")
