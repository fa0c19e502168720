"""``lossatlas find`` and ``lossatlas classify``: critical points and their classification."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .._errors import InputError
from ._common import check_out_path, emit_json, load_landscape, parse_freeze, print_kv

_METHODS = ("flow-newton", "newton", "saddle", "adam")


def _landscape(model, data, teacher, population, lam, freeze, loss="mse", penalize="all", weight_decay=None):
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
    ls = load_landscape(model, data, teacher, lam, parse_freeze(freeze), loss=loss, penalize=penalize,
                        weight_decay=weight_decay)
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


#: Options shared by the commands that build a landscape from files.
_Loss = Annotated[str, typer.Option(help="mse | cross_entropy")]
_Penalize = Annotated[str, typer.Option(help="what --lam / --weight-decay penalise: all | weights")]
_WeightDecay = Annotated[float | None, typer.Option(help="PyTorch's weight_decay WD (λ = WD/2)")]

#: What to try, by how a run ended without a critical point.
_ADVICE = {
    "time_limit_reached": "allow more time (--time-limit), or start from a better point (e.g. a trained network)",
    "max_steps_reached": "raise --max-steps (or --t1 for the flow), or try --method newton",
    "gradient_flat": "the point is not critical; follow the flow further (--t1) or try --method newton",
    "diverging": "the iterates escape to infinity: see the escape and its limit above",
    "diverged": "the parameters exploded: check the data scale and the start",
    "nonfinite": "NaN/inf appeared: check the data scale and the start",
    "kink": "the limit lies on a kink of the activation (see its Clarke stationarity measure); another start, "
            "or a smooth activation, may reach a smooth critical point",
}


def find(
    model: Annotated[Path | None, typer.Option(help="start network file (.npz)")] = None,
    data: Annotated[Path | None, typer.Option(help="data file (.npz) with X and Y")] = None,
    teacher: Annotated[Path | None, typer.Option(help="teacher network: population loss")] = None,
    population: Annotated[str | None, typer.Option(help="population loss: erf | relu")] = None,
    method: Annotated[str, typer.Option(help="flow-newton | newton | saddle | adam")] = "flow-newton",
    loss: _Loss = "mse",
    lam: Annotated[float, typer.Option(help="L2 penalty λ ≥ 0 (weights and biases)")] = 0.0,
    penalize: _Penalize = "all",
    weight_decay: _WeightDecay = None,
    freeze: Annotated[list[str] | None, typer.Option(help="array to hold fixed, e.g. W2")] = None,
    gtol: Annotated[float, typer.Option(help="target for ||∇L||_∞")] = 1e-12,
    max_steps: Annotated[int | None, typer.Option(help="Newton step budget (default 200)")] = None,
    time_limit: Annotated[float | None, typer.Option(help="wall-clock budget in seconds")] = None,
    t1: Annotated[float, typer.Option(help="final time of the gradient flow")] = 1e6,
    adam_steps: Annotated[int, typer.Option(help="Adam steps (--method adam)")] = 20000,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    global_min_value: Annotated[float | None, typer.Option(help="known global minimum value")] = None,
    out: Annotated[Path | None, typer.Option(help="write the critical point (.npz network)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress line on stderr")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Find a critical point from the network's weights, to machine precision, and classify it.

    flow-newton: gradient flow to ||∇L||_∞ ≤ 1e-6, then Levenberg-Marquardt on ∇L = 0 (keeps
    saddles); newton: trust-region Newton (descends to minima); saddle: Levenberg-Marquardt
    from the start; adam: Adam (optax), then trust-region Newton. Then, where Newton stalls, the
    symmetry-aware polish (lossatlas.polish). Above 3000 parameters no Hessian is formed:
    Newton-MR (Hessian-vector products only) replaces Levenberg-Marquardt, and the index and
    nullity printed are Lanczos lower bounds. Exit code 3 when no critical point was reached.
    """
    from ..data import save_network
    from ..pipeline import polish
    from ..pipeline.policy import METHODS
    from ._progress import ProgressLine

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}.")
    if not (gtol >= 0 and np.isfinite(gtol)):
        raise InputError(f"--gtol must be a finite number >= 0, got {gtol}.")
    if (max_steps is not None and max_steps < 0) or adam_steps < 1 or not learning_rate > 0 or not t1 > 0:
        raise InputError("--max-steps >= 0, --adam-steps >= 1, --learning-rate > 0 and --t1 > 0 are required.")
    if time_limit is not None and not (time_limit > 0 and np.isfinite(time_limit)):
        raise InputError(f"--time-limit must be a positive number of seconds, got {time_limit}.")
    check_out_path(out)
    ls = _landscape(model, data, teacher, population, lam, freeze, loss, penalize, weight_decay)
    with ProgressLine("lossatlas find", enabled=not (quiet or json_out)) as line:
        end = polish(ls, ls.ravel(), method=method, gtol=gtol, max_steps=max_steps, max_time=time_limit,
                     progress=line, global_min_value=_global_min(ls, global_min_value), t1=t1,
                     adam_steps=adam_steps, learning_rate=learning_rate)
    if out is not None:
        save_network(out, ls.unravel(end.theta))
    rec = end.to_record()
    cls = end.classification
    body = {
        "method": method,
        "n_params": ls.n_params,
        "trainable": list(ls.trainable_names),
        "frozen": list(ls.freeze),
        "population": ls.is_population,
        "loss_function": ls.loss_name,
        **rec,
        "newton_status": end.attempts[0].result.name if end.attempts else None,
        "steps": int(sum(a.steps for a in end.attempts)),
    }
    if out is not None:
        body["out"] = str(out)
    if json_out:
        emit_json("find", body)
    else:
        flat = {k: v for k, v in body.items() if not isinstance(v, dict | list)}
        flat.update({f"time.{k}": v for k, v in rec["timings"].items()})
        flat["label"] = cls.label.value
        flat["index"] = cls.index if cls.complete else f"≥ {cls.index} (lower bound)"
        flat["nullity"] = cls.nullity if cls.complete else f"≥ {cls.nullity_lower_bound} (lower bound)"
        flat["reason"] = cls.reason
        if end.limit is not None:
            flat.update({f"limit.{k}": end.limit[k] for k in ("loss", "grad_norm_inf", "index", "u")
                         if k in end.limit})
        print_kv("lossatlas find", flat)
        if not end.converged:
            advice = _ADVICE.get(end.result.name, "")
            sys.stdout.write(f"No critical point reached ({end.result.name}): {end.message}"
                             + (f" Try: {advice}." if advice else "") + "\n")
    if not end.converged:
        raise typer.Exit(code=3)


def classify_cmd(
    model: Annotated[Path | None, typer.Option(help="network file (.npz)")] = None,
    data: Annotated[Path | None, typer.Option(help="data file (.npz) with X and Y")] = None,
    teacher: Annotated[Path | None, typer.Option(help="teacher network: population loss")] = None,
    population: Annotated[str | None, typer.Option(help="population loss: erf | relu")] = None,
    loss: _Loss = "mse",
    lam: Annotated[float, typer.Option(help="L2 penalty λ ≥ 0 (weights and biases)")] = 0.0,
    penalize: _Penalize = "all",
    weight_decay: _WeightDecay = None,
    freeze: Annotated[list[str] | None, typer.Option(help="array to hold fixed, e.g. W2")] = None,
    global_min_value: Annotated[float | None, typer.Option(help="known global minimum value")] = None,
    gtol: Annotated[float, typer.Option(help="the polish target the point is judged by")] = 1e-12,
    grad_tol: Annotated[float | None, typer.Option(help="criticality threshold on ||∇L||_∞ "
                                                   "(default: 10·max(gtol, round-off floor))")] = None,
    max_order: Annotated[int, typer.Option(help="highest order of the higher-order test")] = 6,
    explain: Annotated[bool, typer.Option("--explain", help="also say where the critical point comes from: "
                                          "its minimal network's critical point (family key, width, index)")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Classify the network's point: not_critical, minimum, global_minimum, strict_saddle,
    non_strict_saddle, degenerate_minimum or undetermined, with the evidence. The point is
    critical when ||∇L||_∞ ≤ 10·max(gtol, floor), the rule `find` and `atlas` label by.

    --explain: reduce the point to its minimal network, polish that as a critical point of the
    narrow problem and report the family it comes from (global_minimum, reducible, irreducible or
    unexplained), with the embedding (copies, split ratios, zero neurons) and the theory checks
    (lossatlas.pipeline.explain). Needs every array trainable and no L2 penalty."""
    from ..pipeline import classify

    if max_order < 3:
        raise InputError(f"--max-order must be >= 3, got {max_order}.")
    if grad_tol is not None and not (grad_tol > 0 and np.isfinite(grad_tol)):
        raise InputError(f"--grad-tol must be a positive number, got {grad_tol}.")
    if not (gtol >= 0 and np.isfinite(gtol)):
        raise InputError(f"--gtol must be a finite number >= 0, got {gtol}.")
    ls = _landscape(model, data, teacher, population, lam, freeze, loss, penalize, weight_decay)
    if explain and ls.freeze:
        raise InputError(f"--explain needs every array trainable; drop --freeze {','.join(ls.freeze)} (a narrow "
                         "network has no counterpart of a frozen wide array).")
    if explain and ls.lam != 0.0:
        raise InputError("--explain needs the unregularised loss (no --lam / --weight-decay): splitting a neuron "
                         "changes the L2 penalty, so critical points do not embed into wider networks.")
    gmv = _global_min(ls, global_min_value)
    c = classify(ls, ls.ravel(), global_min_value=gmv, grad_tol=grad_tol, gtol=gtol, max_order=max_order)
    ex = None
    if explain:
        from ..pipeline import explain as explain_point

        ex = explain_point(ls, ls.ravel(), global_min_value=gmv, gtol=gtol, classification=c)
    body = c.to_record()
    body["n_params"] = ls.n_params
    body["trainable"] = list(ls.trainable_names)
    body["frozen"] = list(ls.freeze)
    if c.direction is not None:
        body["certificate"] = {"direction": c.direction, "order": c.order,
                               "curvature_correction": c.curvature_correction}
    if ex is not None:
        body["explanation"] = ex.to_record()
    if json_out:
        emit_json("classification", body)
    else:
        ev = body.pop("evidence")
        body.pop("certificate", None)
        body.pop("explanation", None)
        body["reason"] = c.reason
        body.update({f"evidence.{k}": v for k, v in ev.items()
                     if k != "reason" and not isinstance(v, list)})
        print_kv("lossatlas classify", body)
        if ex is not None:
            sys.stdout.write(f"Explanation: {ex.summary()}\n")


def register(app) -> None:
    app.command("find")(find)
    app.command("classify")(classify_cmd)
