"""``lossatlas find`` and ``lossatlas classify``: critical points and their classification."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .._errors import InputError
from ._common import check_out_path, emit_json, load_landscape, parse_freeze, print_kv

_METHODS = ("flow-newton", "newton", "saddle", "adam")


def _landscape(model, data, teacher, population, lam, freeze):
    """Build the landscape; ``--population ACT`` selects the closed-form population loss.

    The teacher comes from ``--teacher``; for convenience a *network* file given as ``--data``
    together with ``--population`` is read as the teacher.
    """
    from ..data import load_network
    from ..landscape import POPULATION_ACTIVATIONS

    if model is None:
        raise InputError("give --model NET.npz and --data DATA.npz (or --teacher TEACHER.npz).")
    if population is not None:
        if population not in POPULATION_ACTIVATIONS:
            raise InputError(
                f"--population must be one of {', '.join(sorted(POPULATION_ACTIVATIONS))} (the "
                f"closed-form Gaussian kernels), got {population!r}."
            )
        if teacher is None:
            if data is None:
                raise InputError("--population needs the teacher network: --teacher TEACHER.npz.")
            is_net = _is_network_file(data)
            if not is_net:
                raise InputError(
                    f"{data} is a data file (X, Y); the population loss needs the teacher network "
                    "instead: pass --teacher TEACHER.npz (a network file)."
                )
            teacher, data = data, None
        elif data is not None:
            raise InputError("give --teacher (population loss) or --data, not both.")
        t_act = str(load_network(teacher).activation)
        if t_act != population:
            raise InputError(
                f"--population {population} but the teacher network's activation is {t_act!r}."
            )
    ls = load_landscape(model, data, teacher, lam, parse_freeze(freeze))
    if population is not None and ls.model.activation != population:
        raise InputError(
            f"--population {population} but the student's activation is {ls.model.activation!r}."
        )
    return ls


def _is_network_file(path: Path) -> bool:
    if not Path(path).is_file():
        raise InputError(f"cannot read {path}: no such file.")
    try:
        with np.load(path, allow_pickle=False) as z:
            return "W1" in z.files and "activation" in z.files
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"cannot read {path} as .npz: {e}") from None


def _global_min(ls, given: float | None) -> float | None:
    """The known global minimum value: given, or 0 for a population loss whose student is at
    least as wide as its teacher (realisable)."""
    if given is not None:
        if not np.isfinite(given):
            raise InputError(f"--global-min-value must be finite, got {given}.")
        return float(given)
    if ls.is_population and not ls.freeze and ls.model.hidden_widths[0] >= ls.teacher.hidden_widths[0]:
        return 0.0
    return None


def find(
    model: Annotated[Path | None, typer.Option(help="start network file (.npz)")] = None,
    data: Annotated[Path | None, typer.Option(help="data file (.npz) with X and Y")] = None,
    teacher: Annotated[Path | None, typer.Option(help="teacher network: population loss")] = None,
    population: Annotated[str | None, typer.Option(help="population loss: erf | relu")] = None,
    method: Annotated[str, typer.Option(help="flow-newton | newton | saddle | adam")] = "flow-newton",
    lam: Annotated[float, typer.Option(help="L2 penalty λ ≥ 0")] = 0.0,
    freeze: Annotated[list[str] | None, typer.Option(help="array to hold fixed, e.g. W2")] = None,
    gtol: Annotated[float, typer.Option(help="target for ||∇L||_∞")] = 1e-12,
    max_steps: Annotated[int, typer.Option(help="Newton step budget")] = 200,
    t1: Annotated[float, typer.Option(help="final time of the gradient flow")] = 1e6,
    adam_steps: Annotated[int, typer.Option(help="Adam steps (--method adam)")] = 20000,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    global_min_value: Annotated[float | None, typer.Option(help="known global minimum value")] = None,
    out: Annotated[Path | None, typer.Option(help="write the critical point (.npz network)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Find a critical point from the network's weights, to machine precision, and classify it.

    flow-newton: gradient flow to ||∇L||_∞ ≤ 1e-6, then Levenberg-Marquardt on ∇L = 0 (keeps
    saddles); newton: trust-region Newton (descends to minima); saddle: Levenberg-Marquardt
    from the start; adam: Adam (optax), then trust-region Newton.
    """
    from ..data import save_network
    from ..dynamics import flow_then_polish, optimise
    from ..solvers import NewtonTrustRegion, SaddleNewton, classify, find_critical_point

    if method not in _METHODS:
        raise InputError(f"--method must be one of {', '.join(_METHODS)}, got {method!r}.")
    if not (gtol >= 0 and np.isfinite(gtol)):
        raise InputError(f"--gtol must be a finite number >= 0, got {gtol}.")
    if max_steps < 0 or adam_steps < 1 or not learning_rate > 0 or not t1 > 0:
        raise InputError("--max-steps >= 0, --adam-steps >= 1, --learning-rate > 0 and --t1 > 0 are required.")
    check_out_path(out)
    ls = _landscape(model, data, teacher, population, lam, freeze)
    theta0 = ls.ravel()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    extra: dict = {}
    if method == "flow-newton":
        fp = flow_then_polish(ls, theta0, t1=t1, polish=SaddleNewton(gtol=gtol),
                              max_newton_steps=max_steps)
        sol = fp.polish
        timings["flow"] = fp.flow.stats["wall_time"]
        extra["flow"] = fp.flow.to_record()
    elif method == "adam":
        t = time.perf_counter()
        run = optimise(ls, theta0, method="adam", learning_rate=learning_rate,
                       num_steps=adam_steps, record_every=100, gtol=gtol)
        timings["adam"] = time.perf_counter() - t
        extra["adam"] = {"num_steps": run.num_steps, "final_loss": float(run.losses[-1]),
                         "final_grad_norm_inf": float(run.grad_norms[-1])}
        sol = find_critical_point(ls, run.theta, NewtonTrustRegion(gtol=gtol), max_steps=max_steps,
                                  throw=False)
    else:
        solver = NewtonTrustRegion(gtol=gtol) if method == "newton" else SaddleNewton(gtol=gtol)
        sol = find_critical_point(ls, theta0, solver, max_steps=max_steps, throw=False)
    timings["newton"] = sol.stats["wall_time"]
    polish_method = "newton"
    theta, loss, gnorm, status = sol.theta, float(sol.loss), float(sol.grad_norm_inf), sol.result.name
    if not sol.success and not ls.freeze:
        # Newton stalls on degenerate critical manifolds: reduce to the minimal network,
        # polish that, project back onto its expansion subspace; keep it only if the gradient
        # evaluated at the projected point meets the target.
        from ..symmetry import polish_through_reduction

        t = time.perf_counter()
        alt = polish_through_reduction(ls, sol.theta, SaddleNewton(gtol=gtol))
        timings["symmetry_polish"] = time.perf_counter() - t
        if alt is not None and alt[2] <= max(gtol, sol.stats.get("gradient_floor", 0.0)):
            theta, loss, gnorm, status = alt[0], alt[1], alt[2], "successful"
            polish_method = "symmetry_projection"
    t = time.perf_counter()
    ok = status in ("successful", "roundoff_floor")
    cls = classify(ls, theta, global_min_value=_global_min(ls, global_min_value),
                   grad_tol=max(1e-8, 10 * max(gtol, sol.stats.get("gradient_floor", 0.0))) if ok else None)
    timings["classify"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    if out is not None:
        save_network(out, ls.unravel(theta))
    rec = sol.to_record()
    body = {
        "method": method,
        "n_params": ls.n_params,
        "trainable": list(ls.trainable_names),
        "frozen": list(ls.freeze),
        "population": ls.is_population,
        "loss": loss,
        "grad_norm_inf": gnorm,
        "status": status,
        "message": rec["message"] if polish_method == "newton" else
        "Converged through the symmetry reduction: the end point was projected onto the expansion "
        "subspace of its Newton-polished minimal network, and the gradient there meets the target.",
        "polish_method": polish_method,
        "newton_status": rec["status"],
        "steps": rec["num_steps"],
        "gradient_floor": rec["gradient_floor"],
        "target": rec["target"],
        "timings": timings,
        "classification": cls.to_record(),
        **extra,
    }
    for key in ("escape", "limit"):  # an escape to infinity: its evidence, and its limit point
        if key in rec and status == "diverging":
            body[key] = rec[key]
    if out is not None:
        body["out"] = str(out)
    if json_out:
        emit_json("find", body)
    else:
        flat = {k: v for k, v in body.items() if not isinstance(v, dict)}
        flat.update({f"time.{k}": v for k, v in timings.items()})
        flat["label"] = cls.label.value
        flat["index"] = cls.index
        flat["nullity"] = cls.nullity
        flat["reason"] = cls.evidence.get("reason", "")
        if "limit" in body:
            flat.update({f"limit.{k}": body["limit"][k] for k in ("loss", "grad_norm_inf", "index", "u")})
        print_kv("lossatlas find", flat)


def classify_cmd(
    model: Annotated[Path | None, typer.Option(help="network file (.npz)")] = None,
    data: Annotated[Path | None, typer.Option(help="data file (.npz) with X and Y")] = None,
    teacher: Annotated[Path | None, typer.Option(help="teacher network: population loss")] = None,
    population: Annotated[str | None, typer.Option(help="population loss: erf | relu")] = None,
    lam: Annotated[float, typer.Option(help="L2 penalty λ ≥ 0")] = 0.0,
    freeze: Annotated[list[str] | None, typer.Option(help="array to hold fixed, e.g. W2")] = None,
    global_min_value: Annotated[float | None, typer.Option(help="known global minimum value")] = None,
    grad_tol: Annotated[float | None, typer.Option(help="criticality threshold on ||∇L||_∞")] = None,
    max_order: Annotated[int, typer.Option(help="highest order of the higher-order test")] = 6,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Classify the network's point: not_critical, minimum, global_minimum, strict_saddle,
    non_strict_saddle, degenerate_minimum or undetermined, with the evidence."""
    from ..solvers import classify

    if max_order < 3:
        raise InputError(f"--max-order must be >= 3, got {max_order}.")
    if grad_tol is not None and not (grad_tol > 0 and np.isfinite(grad_tol)):
        raise InputError(f"--grad-tol must be a positive number, got {grad_tol}.")
    ls = _landscape(model, data, teacher, population, lam, freeze)
    c = classify(ls, ls.ravel(), global_min_value=_global_min(ls, global_min_value),
                 grad_tol=grad_tol, max_order=max_order)
    body = c.to_record()
    body["n_params"] = ls.n_params
    body["trainable"] = list(ls.trainable_names)
    body["frozen"] = list(ls.freeze)
    if c.direction is not None:
        body["certificate"] = {"direction": c.direction, "order": c.order,
                               "curvature_correction": c.curvature_correction}
    if json_out:
        emit_json("classification", body)
    else:
        ev = body.pop("evidence")
        body.pop("certificate", None)
        body["reason"] = ev.get("reason", "")
        body.update({f"evidence.{k}": v for k, v in ev.items()
                     if k != "reason" and not isinstance(v, list)})
        print_kv("lossatlas classify", body)


def register(app) -> None:
    app.command("find")(find)
    app.command("classify")(classify_cmd)
