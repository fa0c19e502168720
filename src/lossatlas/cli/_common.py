"""Shared pieces of the command line: loading inputs, printing JSON or tables, errors."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from .._errors import InputError


def to_jsonable(obj):
    """Convert NumPy/JAX scalars and arrays to plain JSON values (ints stay exact)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return to_jsonable(float(obj))
    if hasattr(obj, "shape"):
        arr = np.asarray(obj)
        return to_jsonable(arr.tolist()) if arr.ndim else to_jsonable(arr.item())
    if hasattr(obj, "value") and hasattr(obj, "name"):  # enums
        return obj.value
    return str(obj)


def emit_json(kind: str, body: dict, version: int = 1) -> None:
    """Print one JSON document with its ``schema`` field on stdout."""
    doc = {"schema": f"lossatlas.{kind}/{version}"}
    doc.update(to_jsonable(body))
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def print_kv(title: str, rows: dict) -> None:
    """Print a two-column table of results on stdout (human form)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("quantity", style="bold")
    table.add_column("value")
    for k, v in rows.items():
        table.add_row(str(k), _fmt(v))
    Console(file=sys.stdout).print(table)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, list | tuple) and v and isinstance(v[0], float):
        shown = ", ".join(f"{x:.6g}" for x in v[:12])
        return f"[{shown}{', …' if len(v) > 12 else ''}] ({len(v)} values)"
    return str(v)


def check_out_path(path: Path | None) -> None:
    """Refuse an output file that cannot be written, before any work is done: a path that is a
    folder, a folder that does not exist or cannot be written, an existing file that cannot be
    replaced. (Files are written to a temporary name beside `path`, then renamed onto it.)"""
    if path is None:
        return
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name.")
    folder = p.resolve().parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: its folder does not exist.")
    import tempfile

    try:  # a probe: os.access is wrong on read-only mounts (for root) and ignores ACLs
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InputError(f"cannot write {path}: folder {folder} is not writable ({e.strerror}).") from None
    if p.exists() and not p.is_file():
        raise InputError(f"cannot write {path}: it exists and is not a regular file.")


def parse_freeze(freeze: list[str] | None) -> tuple[str, ...]:
    """``--freeze W2 --freeze b2`` or ``--freeze W2,b2`` → ``("W2", "b2")``."""
    out = []
    for item in freeze or []:
        out.extend(s.strip() for s in item.split(",") if s.strip())
    return tuple(out)


def penalty_from_flags(lam: float = 0.0, weight_decay: float | None = None) -> float:
    """λ from ``--lam`` or ``--weight-decay WD`` (PyTorch's ``weight_decay``: λ = WD/2)."""
    if lam < 0 or not math.isfinite(lam):
        raise InputError(f"--lam must be a finite number >= 0, got {lam}.")
    if weight_decay is None:
        return float(lam)
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise InputError(f"--weight-decay must be a finite number >= 0, got {weight_decay}.")
    if lam != 0.0 and weight_decay != 0.0:
        raise InputError(
            "give --lam or --weight-decay, not both: --weight-decay WD is PyTorch's weight_decay "
            "and sets λ = WD/2."
        )
    return float(lam) if weight_decay == 0.0 else 0.5 * float(weight_decay)


def load_landscape(model: Path, data: Path | None, teacher: Path | None = None,
                   lam: float = 0.0, freeze: tuple[str, ...] = (), *, loss: str = "mse",
                   penalize: str = "all", weight_decay: float | None = None):
    """Network file + data file (or teacher file for the population loss) → Landscape.

    `loss` is ``mse`` or ``cross_entropy`` (a data file with integer ``labels`` gets targets
    for the network's outputs); `penalize` is ``all`` or ``weights``; `weight_decay` WD is
    PyTorch's ``weight_decay`` on the penalised parameters, i.e. λ = WD/2 (an error together
    with a nonzero `lam`).
    """
    from ..data import load_data, load_network
    from ..landscape import LOSSES, PENALIZE, Landscape, check_network_finite

    if loss not in LOSSES:
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}.")
    if penalize not in PENALIZE:
        raise InputError(f"--penalize must be one of {', '.join(PENALIZE)}, got {penalize!r}.")
    lam = penalty_from_flags(lam, weight_decay)
    net = load_network(model)
    check_network_finite(net)
    if data is not None and teacher is not None:
        raise InputError("give either --data or --teacher, not both.")
    if data is None and teacher is None:
        raise InputError("give --data DATA.npz (or --teacher TEACHER.npz for the population loss).")
    if teacher is not None:
        if loss != "mse":
            raise InputError(f"--loss {loss} needs --data: the population loss (--teacher) is the "
                             "squared loss only.")
        return Landscape(net, teacher=load_network(teacher), lam=lam, freeze=freeze,
                         penalize=penalize)
    return Landscape(net, load_data(data, n_outputs=net.widths[-1]), lam=lam, freeze=freeze,
                     loss=loss, penalize=penalize)
