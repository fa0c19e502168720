"""``lossatlas count`` and ``lossatlas symmetry reduce|embed|connect``: permutation symmetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from ._common import check_out_path, emit_json, print_kv

#: Integers with more digits are shown rounded in the human table (exact with --json).
_MAX_DIGITS_SHOWN = 40
#: Largest wide width `count` answers: T_zero_loss costs ~m³ big-integer bit operations
#: (measured: m = 1000 in 0.6 s, 2000 in 4.8 s, 4000 in 49 s). Per layer for --widths, whose
#: layers share the budget MAX_COUNT_M³.
MAX_COUNT_M = 2000
#: Largest network `symmetry embed` writes (parameters; 8 bytes each: 0.8 GB).
MAX_EMBED_PARAMS = 100_000_000


def _check_count_size(pairs) -> None:
    cost = sum(int(m) ** 3 for _, m in pairs)
    if cost > MAX_COUNT_M**3:
        ms = ", ".join(str(m) for _, m in pairs)
        raise InputError(
            f"m = {ms} is beyond what `count` answers in seconds (limit: m <= {MAX_COUNT_M}, or Σ m³ <= "
            f"{MAX_COUNT_M}³ over layers; T_zero_loss costs ~m³: m = 4000 takes ~50 s). For larger m, "
            "call lossatlas.symmetry.count_T / count_G from Python (milliseconds even at m = 10⁵) or "
            "count_T_zero_loss (no limit, cubic time)."
        )


def _show_int(n: int) -> str:
    s = str(n)
    if len(s) <= _MAX_DIGITS_SHOWN:
        return s
    return f"{s[0]}.{s[1:7]}e+{len(s) - 1} ({len(s)} digits; exact with --json)"


def _parse_widths(text: str) -> list[tuple[int, int]]:
    pairs = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2:
            raise InputError(
                f"--widths entry {item!r} must be a pair r:m; write e.g. --widths 2:3,3:4 "
                "(one pair per hidden layer)."
            )
        try:
            pairs.append((int(parts[0]), int(parts[1])))
        except ValueError:
            raise InputError(
                f"--widths entry {item!r} must hold two integers r:m, e.g. 2:3."
            ) from None
    if not pairs:
        raise InputError("--widths is empty; write e.g. --widths 2:3,3:4.")
    return pairs


def count_command(
    r: Annotated[int | None, typer.Option(
        "--r", help="minimal width r* (narrow width for G)")] = None,
    m: Annotated[int | None, typer.Option("--m", help="wide width m >= r")] = None,
    widths: Annotated[str | None, typer.Option(
        "--widths", help="multi-layer form: one r:m pair per hidden layer, e.g. 2:3,3:4")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Counts T, G, T_zero_loss and the saddle-to-minimum ratio G(r*-1, m)/T(r*, m)."""
    import sys

    from ..symmetry import multilayer_symmetry_counts, symmetry_counts

    sys.set_int_max_str_digits(0)  # exact integers of any size (Python refuses > 4300 digits)
    if widths is not None:
        if r is not None or m is not None:
            raise InputError("give either --r and --m, or --widths, not both.")
        pairs = _parse_widths(widths)
        _check_count_size(pairs)
        rec = multilayer_symmetry_counts(pairs).to_record()
    else:
        if r is None or m is None:
            raise InputError("give --r R and --m M (or --widths r1:m1,r2:m2 for several layers).")
        _check_count_size([(r, m)])
        rec = symmetry_counts(r, m).to_record()
    if json_out:
        emit_json("count", rec)
        return
    rows = {}
    if "widths" in rec:
        rows["widths (r:m per layer)"] = ", ".join(f"{a}:{b}" for a, b in rec["widths"])
    else:
        rows["r"], rows["m"] = rec["r"], rec["m"]
    for key in ("T", "G", "T_zero_loss", "G_saddle"):
        rows[key] = _show_int(rec[key])
    ratio = rec["saddle_to_minimum_ratio"]
    num, _, den = ratio.partition("/")
    if len(num) + len(den) > 2 * _MAX_DIGITS_SHOWN:
        ratio = "(exact fraction with --json)"
    rows["saddle_to_minimum_ratio = G(r*-1,m)/T(r*,m)"] = ratio
    rows["saddle_to_minimum_ratio (float)"] = rec["saddle_to_minimum_ratio_float"]
    rows["log10 saddle_to_minimum_ratio"] = rec["log10_saddle_to_minimum_ratio"]
    if "asymptotic_saddle_to_minimum_ratio_float" in rec:
        rows["asymptotic ((r*-1)/(r*+1))^m"] = rec["asymptotic_saddle_to_minimum_ratio_float"]
    print_kv("lossatlas count", rows)


def reduce_command(
    model: Annotated[Path, typer.Option("--model", help="network file (.npz)")],
    tol: Annotated[float, typer.Option(
        help="relative tolerance for duplicates and zero weights")] = 1e-8,
    out: Annotated[Path | None, typer.Option(
        "--out", help="write the minimal network (.npz)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Reduce a network to its minimal width; report the affine subspace it lies on."""
    from ..data import load_network, save_network
    from ..symmetry import reduce_network

    check_out_path(out)
    net = load_network(model)
    res = reduce_network(net, tol=tol)
    if out is not None:
        save_network(out, res.narrow)
    rec = res.to_record()
    rec["model"] = str(model)
    rec["activation"] = net.activation
    if out is not None:
        rec["out"] = str(out)
    if json_out:
        emit_json("reduction", rec)
        return
    rows = {k: rec[k] for k in ("model", "wide_widths", "minimal_widths", "is_minimal",
                                "on_expansion_manifold", "subspace_dim", "distance", "tol")}
    for layer in rec["layers"]:
        ly = layer["layer"]
        title = f"layer {ly}: labels (i = copy of neuron i-1, 0 zero-type, <0 zero group)"
        rows[title] = layer["labels"]
        if any(s < 0 for s in layer["signs"]):
            rows[f"layer {ly}: signs"] = layer["signs"]
    if out is not None:
        rows["out"] = rec["out"]
    print_kv("lossatlas symmetry reduce", rows)


def _parse_split(item: str) -> tuple[int, int, list[float] | None]:
    """``"i=γ1,γ2,…"`` (ratios) or ``"i:k"`` (k equal copies) → (neuron, copies, ratios)."""
    text = item.strip()
    try:
        if "=" in text:
            head, tail = text.split("=", 1)
            gammas = [float(x) for x in tail.split(",") if x.strip()]
            return int(head), len(gammas), gammas
        if ":" in text:
            head, tail = text.split(":", 1)
            return int(head), int(tail), None
    except ValueError:
        pass
    raise InputError(
        f"--split {item!r}: write NEURON=γ1,γ2,… (copies with outgoing weights γ_c times the "
        "original, Σγ = 1) or NEURON:K (K equal copies), e.g. --split 0=0.3,0.7."
    )


def embed_command(
    model: Annotated[Path, typer.Option("--model", help="network file (.npz)")],
    width: Annotated[int, typer.Option("--width", help="width M of the wide hidden layer")],
    out: Annotated[Path, typer.Option("--out", help="wide network file to write (.npz)")],
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="NEURON=γ1,γ2,… or NEURON:K; repeatable; the rest of the width is "
        "filled with zero-type neurons")] = None,
    layer: Annotated[int, typer.Option(help="hidden layer to widen (1 = after W1)")] = 1,
    seed: Annotated[int, typer.Option(help="seed of the zero-type neurons' incoming weights")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """Embed a network into width M by splitting neurons and adding zero-type neurons."""
    import jax
    import numpy as np

    from ..data import load_network, save_network
    from ..symmetry import check_layer, check_network, embed, split_label_map, subspace_dimension

    check_out_path(out)
    net = check_network(load_network(model))
    layer = check_layer(net, layer)
    r = net.widths[layer]
    if width < r:
        raise InputError(
            f"--width {width} is below the network's width {r} in hidden layer {layer}; "
            "embedding only widens."
        )
    wide = [*net.widths]
    wide[layer] = width
    n_wide = sum(a * b + (b if net.has_bias else 0) for a, b in zip(wide[:-1], wide[1:], strict=True))
    if n_wide > MAX_EMBED_PARAMS:
        raise InputError(
            f"--width {width} gives a network of {n_wide} parameters, above the limit of "
            f"{MAX_EMBED_PARAMS:.0e} of `symmetry embed` (8 bytes each); for larger networks call "
            "lossatlas.symmetry.embed from Python."
        )
    splits: dict[int, int] = {}
    ratios: dict[int, list[float] | None] = {}
    for item in split or []:
        neuron, copies, gammas = _parse_split(item)
        if neuron in splits:
            raise InputError(f"neuron {neuron} is split twice; give one --split per neuron.")
        splits[neuron], ratios[neuron] = copies, gammas
    lm = split_label_map(net.hidden_widths, width, layer=layer, splits=splits)
    gam = []
    for ly in range(1, net.depth):
        labels = lm.labels[ly - 1]
        g = np.zeros(len(labels))
        for i, members in enumerate(lm.groups(ly)):
            given = ratios.get(i) if ly == layer else None
            g[list(members)] = given if given is not None else 1.0 / len(members)
        gam.append(g)
    emb = embed(net, lm, gammas=gam, key=jax.random.PRNGKey(seed))
    save_network(out, emb.network)
    rec = emb.to_record()
    rec["subspace_dim"] = subspace_dimension(lm, net.widths[0], net.widths[-1], bias=net.has_bias)
    rec["model"], rec["out"], rec["layer"] = str(model), str(out), layer
    if json_out:
        emit_json("embedding", rec)
        return
    rows = {k: rec[k] for k in ("model", "narrow_widths", "wide_widths", "subspace_dim")}
    title = f"layer {layer}: labels (i = copy of neuron i-1, 0 zero-type)"
    rows[title] = list(lm.labels[layer - 1])
    rows[f"layer {layer}: split ratios γ"] = [float(x) for x in gam[layer - 1]]
    rows["out"] = rec["out"]
    print_kv("lossatlas symmetry embed", rows)


def connect_command(
    model: Annotated[Path, typer.Option(
        "--model", help="network file (.npz), e.g. a global minimum")],
    data: Annotated[Path, typer.Option("--data", help="data file (.npz) with X and Y")],
    permutation: Annotated[str, typer.Option(
        "--permutation", help="new neuron j = old neuron π[j], e.g. 2,0,1")],
    out: Annotated[Path, typer.Option("--out", help="path file to write (.npz)")],
    layer: Annotated[int, typer.Option(help="hidden layer to permute (1 = after W1)")] = 1,
    samples: Annotated[int, typer.Option(
        "--samples-per-segment", help="loss evaluations per straight segment")] = 64,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
):
    """A constant-loss path (one extra neuron) from a network to its permuted copy."""
    import numpy as np

    from ..data import load_data, load_network, save_npz
    from ..landscape import Landscape
    from ..symmetry import check_layer, check_network, connecting_path, path_loss_profile, permutation_from_string

    check_out_path(out)
    if samples < 1:
        raise InputError(f"--samples-per-segment must be >= 1, got {samples}.")
    net = check_network(load_network(model))
    layer = check_layer(net, layer)
    perm = permutation_from_string(permutation, net.widths[layer])
    ds = load_data(data)
    path = connecting_path(net, perm, layer=layer)
    ls = Landscape(path.start, ds)
    prof = path_loss_profile(ls, path, samples_per_segment=samples)
    save_npz(out, {
        "waypoints": path.waypoints,
        "t": prof.t,
        "loss": prof.loss,
        "permutation": np.asarray(perm, dtype=np.int64),
        "layer": np.asarray(layer, dtype=np.int64),
        "widths": np.asarray(path.start.widths, dtype=np.int64),
    })
    rec = {
        "model": str(model),
        "data": str(data),
        "layer": layer,
        "permutation": perm.tolist(),
        "n_segments": path.n_segments,
        "n_waypoints": int(path.waypoints.shape[0]),
        "n_params": int(path.waypoints.shape[1]),
        "wide_widths": list(path.start.widths),
        **prof.to_record(),
        "out": str(out),
    }
    if json_out:
        emit_json("path", rec)
        return
    rows = {k: rec[k] for k in ("permutation", "wide_widths", "n_segments", "max_loss",
                                "start_loss", "max_loss_deviation", "n_samples", "out")}
    print_kv("lossatlas symmetry connect", rows)


def register(app: typer.Typer) -> None:
    """Add ``count`` and the ``symmetry`` group to the ``lossatlas`` app."""
    app.command("count")(count_command)
    sym = typer.Typer(
        name="symmetry",
        help="Permutation symmetry: reduce, embed and connect networks.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    sym.command("reduce")(reduce_command)
    sym.command("embed")(embed_command)
    sym.command("connect")(connect_command)
    app.add_typer(sym, name="symmetry")
