"""``lossatlas analyze``: loss, gradient and Hessian spectrum at one network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .._errors import InputError
from ._common import check_out_path, emit_json, load_landscape, parse_freeze, print_kv


def builtin_example(name: str):
    """The built-in landscapes: ``teacher-student`` (erf teacher of width 3, student of width 4)."""
    import jax

    from ..data import teacher_student
    from ..landscape import Landscape
    from ..models import init_mlp

    if name != "teacher-student":
        raise InputError(f"unknown example {name!r}; available: teacher-student.")
    teacher = init_mlp(jax.random.PRNGKey(0), (4, 3, 1), "erf", scale=1.0)
    data = teacher_student(jax.random.PRNGKey(1), teacher, 200)
    student = init_mlp(jax.random.PRNGKey(2), (4, 4, 1), "erf")
    return Landscape(student, data)


def analyze(
    model: Annotated[Path | None, typer.Option(help="network file (.npz)")] = None,
    data: Annotated[Path | None, typer.Option(help="data file (.npz) with X and Y")] = None,
    teacher: Annotated[Path | None, typer.Option(help="teacher network: population loss")] = None,
    lam: Annotated[float, typer.Option(help="L2 penalty λ ≥ 0 on weights and biases (see --penalize)")] = 0.0,
    weight_decay: Annotated[float | None, typer.Option(
        help="PyTorch's weight_decay WD (SGD/Adam, not AdamW): sets λ = WD/2")] = None,
    penalize: Annotated[str, typer.Option(help="what λ penalises: all | weights (biases free)")] = "all",
    loss: Annotated[str, typer.Option(
        help="mse | cross_entropy (targets: one-hot Y, 0/1 Y for one output, or integer labels)")] = "mse",
    freeze: Annotated[list[str] | None, typer.Option(help="array to hold fixed, e.g. W2")] = None,
    example: Annotated[str | None, typer.Option(help="built-in example: teacher-student")] = None,
    method: Annotated[str, typer.Option(help="auto | dense | lanczos")] = "auto",
    top_k: Annotated[int, typer.Option(help="extreme eigenpairs per end (Lanczos)")] = 5,
    save_hessian: Annotated[Path | None, typer.Option(help="write the dense Hessian (.npy)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Loss, gradient norms and Hessian spectrum (index, nullity, tolerance) at a network."""
    from ..curvature import analyze_point
    from ..data import atomic_path

    if example is not None:
        if model is not None or data is not None or teacher is not None:
            raise InputError("--example replaces --model/--data; give one or the other.")
        if (lam, weight_decay, penalize, loss, freeze) != (0.0, None, "all", "mse", None):
            raise InputError("--example is a fixed landscape; --lam, --weight-decay, --penalize, "
                             "--loss and --freeze go with --model/--data.")
        ls = builtin_example(example)
    else:
        if model is None:
            raise InputError("give --model NET.npz and --data DATA.npz (or --example teacher-student).")
        ls = load_landscape(model, data, teacher, lam, parse_freeze(freeze), loss=loss,
                            penalize=penalize, weight_decay=weight_decay)
    if top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {top_k}.")
    if method not in ("auto", "dense", "lanczos"):
        raise InputError(f"--method must be auto, dense or lanczos, got {method!r}.")
    if save_hessian is not None:
        check_out_path(save_hessian)
        if method == "lanczos":
            raise InputError("--save-hessian needs the dense Hessian; drop --method lanczos.")
        method = "dense"
    res = analyze_point(ls, ls.ravel(), method=method, top_k=top_k,
                        keep_hessian=save_hessian is not None)
    if save_hessian is not None:
        with atomic_path(save_hessian, ".npy") as tmp, open(tmp, "wb") as f:
            np.save(f, res.hessian)
    body = res.to_record()
    body["trainable"] = list(ls.trainable_names)
    body["frozen"] = list(ls.freeze)
    body["loss_name"] = ls.loss_name
    body["lam"] = ls.lam
    body["penalize"] = ls.penalize
    if json_out:
        emit_json("analysis", body)
    else:
        h = body.pop("hessian")
        rows = {}
        for k, v in h.items():
            if k in ("lambda_min", "lambda_max"):
                continue
            if k.endswith("_lower_bound"):  # Lanczos saw only the extremes: a bound, said as one
                rows[f"hessian.{k.removesuffix('_lower_bound')}"] = f"≥ {v} (lower bound)"
            else:
                rows[f"hessian.{k}"] = v
            if k == "eigenvalues":
                rows["hessian.lambda_min"] = h["lambda_min"]
                rows["hessian.lambda_max"] = h["lambda_max"]
        body.update(rows)
        print_kv("lossatlas analyze", body)
