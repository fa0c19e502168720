"""``lossatlas census``: where random starts of a ReLU committee machine end, up to symmetry."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._errors import InputError
from ._common import emit_json, print_kv


def census(
    k: Annotated[int, typer.Option("--k", help="student width k (neurons)")],
    n: Annotated[int, typer.Option("--n", help="teacher width n = input dimension (teacher V = I_n)")],
    starts: Annotated[int, typer.Option(help="number of random starts")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of the random starts")] = 0,
    method: Annotated[str, typer.Option(help="gd (batched, step 5/k) | flow-newton (one start at a time)")] = "gd",
    init_scale: Annotated[float | None, typer.Option(
        help="starts have entries N(0, s²); default s = 1/sqrt(k) (Xavier)")] = None,
    batch_size: Annotated[int, typer.Option(help="starts per vectorised batch")] = 2000,
    interval: Annotated[str, typer.Option(help="wilson | clopper-pearson (95%)")] = "wilson",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Census of spurious minima: student x ↦ Σ_j relu(w_jᵀx) (second layer fixed to ones) against
    the teacher V = I_n, population loss ½E(f − f_T)² under x ~ N(0, I_n).

    Every start runs gradient descent (step 5/k) and a Newton polish to ||∇L||_∞ ≤ 1e-10; end points
    are classified and grouped into orbits under student-neuron × input permutations.
    """
    from ..census import CensusMethod, IntervalMethod, run_census

    for name, v in (("--k", k), ("--n", n), ("--starts", starts), ("--batch-size", batch_size)):
        if v < 1:
            raise InputError(f"{name} must be a positive integer, got {v}.")
    if k * n > 1600:
        raise InputError(f"k·n = {k * n} parameters is beyond what the dense census handles (at most 1600).")
    if method not in {m.value for m in CensusMethod}:
        raise InputError(f"--method must be gd or flow-newton, got {method!r}.")
    if interval not in {m.value for m in IntervalMethod}:
        raise InputError(f"--interval must be wilson or clopper-pearson, got {interval!r}.")
    if init_scale is not None and not (init_scale > 0 and init_scale < float("inf")):
        raise InputError(f"--init-scale must be a finite number > 0, got {init_scale}.")
    from ..census import check_census_size

    check_census_size(starts, k * n)  # before the progress bar: one error line

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("census k={task.fields[k]} n={task.fields[n]}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("census", total=starts, k=k, n=n)
        res = run_census(k, n, starts=starts, seed=seed, method=method, init_scale=init_scale,
                         batch_size=batch_size, interval=interval,
                         progress=lambda m: bar.advance(task, m))
    rec = res.to_record()
    if json_out:
        emit_json("census", rec)
        return
    lo, hi = rec["spurious_interval"]
    print_kv(f"lossatlas census (k={k}, n={n})", {
        "starts": rec["starts"],
        "global_fraction": rec["global_fraction"],
        "spurious_fraction": f"{rec['spurious_fraction']:.4f}  (95% {rec['interval_method']}: "
                             f"[{lo:.4f}, {hi:.4f}])",
        "unconverged": rec["unconverged"],
        "other (saddles, undetermined)": rec["other_count"],
        "wall time (s)": round(rec["stats"]["wall_time"], 2),
    })
    from rich.table import Table

    table = Table(title="orbits (end points up to S_k × S_n)")
    for col in ("loss", "count", "label", "min_hessian_eig", "isotropy"):
        table.add_column(col)
    for o in rec["orbits"]:
        table.add_row(f"{o['loss']:.10g}", str(o["count"]), o["label"], f"{o['min_hessian_eig']:.6e}",
                      o["isotropy"])
    Console(file=sys.stdout).print(table)


def register(app) -> None:
    app.command("census")(census)
