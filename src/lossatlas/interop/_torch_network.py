"""Networks: ``nn.Sequential`` (or a ``state_dict`` + architecture) to a lossatlas MLP and back."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping

import numpy as np

from .._config import check_finite, check_float64, check_x64
from .._errors import InputError
from ..models import (
    LEAKY_RELU_DEFAULT_SLOPE,
    MLP,
    activation_family,
    check_activation,
    leaky_relu_slope,
    mlp_from_arrays,
)
from ._torch_common import TorchConversion, _supported_text, _to_float64, require_torch

#: ``nn.Softplus`` returns ``x`` (not ``log(1+eˣ)``) above its threshold; the difference is
#: ``log(1+e^{−t}) < ε·t`` in float64 once ``t ≥ 37``. Exported networks use this threshold.
_SOFTPLUS_THRESHOLD = 40.0
_SOFTPLUS_EXACT_FROM = 37.0
_SOFTPLUS_MIN_THRESHOLD = 20.0

_STATE_DICT_KEYS = ("state_dict", "model_state_dict")
_ARCHITECTURE_KEYS = ("activation", "widths", "bias")


@dataclasses.dataclass(frozen=True)
class _Layer:
    label: str
    weight: typing.Any
    bias: typing.Any


def _describe(m) -> str:
    text = " ".join(repr(m).split())
    return text if len(text) <= 90 else f"{type(m).__module__}.{type(m).__qualname__}"


def _activation_name(m, path: str, notes: list) -> str:
    """The lossatlas name of activation module ``m``, or :class:`InputError` naming the layer."""
    torch = require_torch()
    nn = torch.nn
    from .torch_nn import CUSTOM_ACTIVATIONS

    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    simple.update({cls: name for name, cls in CUSTOM_ACTIVATIONS.items()})
    t = type(m)
    if t in simple:
        return simple[t]
    if t is nn.LeakyReLU:
        slope = float(m.negative_slope)
        if not np.isfinite(slope) or slope < 0:
            raise InputError(
                f"unsupported layer {path}: {_describe(m)}; lossatlas's leaky_relu needs a "
                "finite negative_slope >= 0."
            )
        return "leaky_relu" if slope == LEAKY_RELU_DEFAULT_SLOPE else f"leaky_relu:{slope!r}"
    if t is nn.Softplus:
        if float(m.beta) != 1.0:
            raise InputError(
                f"unsupported layer {path}: {_describe(m)}; lossatlas's softplus is "
                "log(1+eˣ), i.e. nn.Softplus with beta=1."
            )
        thr = float(m.threshold)
        if thr < _SOFTPLUS_MIN_THRESHOLD:
            raise InputError(
                f"unsupported layer {path}: {_describe(m)} returns x instead of log(1+eˣ) "
                f"above {thr:g} (an error up to {np.log1p(np.exp(-thr)):.1e}); lossatlas's "
                f"softplus is exact. Use threshold >= {_SOFTPLUS_MIN_THRESHOLD:g}."
            )
        if thr < _SOFTPLUS_EXACT_FROM:
            notes.append(
                f"layer {path} is nn.Softplus(threshold={thr:g}), which returns x above "
                f"{thr:g} (a difference of at most {np.log1p(np.exp(-thr)):.1e} there); "
                "lossatlas uses the exact log(1+eˣ)."
            )
        return "softplus"
    if t is nn.GELU:
        if m.approximate != "none":
            raise InputError(
                f"unsupported layer {path}: {_describe(m)}; lossatlas's gelu is the exact, "
                "erf-based GELU: use nn.GELU(approximate='none')."
            )
        return "gelu"
    hint = ""
    if isinstance(m, nn.Dropout):
        hint = " Dropout is the identity in eval mode: remove it before importing."
    elif isinstance(m, nn.Flatten):
        hint = " Remove it: lossatlas inputs are already rows of features (N, d_in)."
    raise InputError(
        f"unsupported layer {path}: {_describe(m)}. lossatlas imports an nn.Sequential of "
        "nn.Linear layers with one activation between consecutive Linear layers; supported "
        f"activations: {_supported_text()}.{hint}"
    )


def _walk(module, prefix: str = ""):
    import torch

    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if type(child) is torch.nn.Sequential:
            yield from _walk(child, path + ".")
        else:
            yield path, child


def _from_module(model, activation: str | None) -> tuple[MLP, TorchConversion]:
    torch = require_torch()
    nn = torch.nn
    if type(model) is nn.Linear:
        entries = [("0", model)]
        source = "nn.Linear"
    elif type(model) is nn.Sequential:
        entries = list(_walk(model))
        source = "nn.Sequential"
    else:
        raise InputError(
            f"from_torch reads an nn.Sequential (or a single nn.Linear); got "
            f"{type(model).__module__}.{type(model).__qualname__}, whose forward lossatlas "
            "cannot see. Rebuild it as an nn.Sequential, or, if it is a plain stack of Linear "
            "layers, pass model.state_dict() with architecture={'activation': ...}."
        )
    notes: list[str] = []
    items = []  # ("linear", path, module) or ("act", path, name)
    for path, m in entries:
        if type(m) is nn.Linear:
            items.append(("linear", path, m))
        elif type(m) is nn.Identity:
            continue
        else:
            items.append(("act", path, _activation_name(m, path, notes)))
    if not any(kind == "linear" for kind, _, _ in items):
        raise InputError(
            "the model has no nn.Linear layer: a lossatlas network needs at least one."
        )
    if items[0][0] != "linear":
        raise InputError(
            f"layer {items[0][1]} ({items[0][2]}) comes before the first Linear layer; a "
            "lossatlas network starts with a Linear layer."
        )
    if items[-1][0] != "linear":
        raise InputError(
            f"layer {items[-1][1]} ({items[-1][2]}) comes after the last Linear layer; a "
            "lossatlas network ends with a linear output layer f = W_L h + b_L. Remove it "
            "(or make it part of your loss)."
        )
    gaps: list[tuple[str, str]] = []  # (where, activation name) between consecutive Linears
    pending: list[tuple[str, str]] = []
    for kind, path, obj in items[1:]:
        if kind == "act":
            pending.append((path, obj))
            continue
        if len(pending) > 1:
            raise InputError(
                f"layers {pending[0][0]} ({pending[0][1]}) and {pending[1][0]} ({pending[1][1]}) "
                "are two activations in a row; lossatlas applies one activation between "
                "consecutive Linear layers."
            )
        gaps.append(pending[0] if pending else (f"before layer {path}", "identity"))
        pending = []
    names = {name for _, name in gaps}
    if len(names) > 1:
        shown = ", ".join(f"{where}: {name}" for where, name in gaps)
        raise InputError(
            f"the hidden layers use different activations ({shown}); a lossatlas network uses "
            "one activation for all hidden layers."
        )
    if not gaps:
        act = activation or "identity"
        if activation is None:
            notes.append(
                "a single Linear layer has no activation; the network is stored with "
                "'identity' (pass activation=... to choose another name)."
            )
    else:
        act = names.pop()
        if activation is not None and activation != act:
            raise InputError(
                f"the model's hidden activation is {act!r} but activation={activation!r} was "
                "given; drop the argument or fix the model."
            )
    layers = [
        _Layer(f"layer {path} ({_describe(m)})", m.weight, m.bias)
        for kind, path, m in items
        if kind == "linear"
    ]
    return _assemble(layers, act, None, None, source, notes)


def _parse_architecture(architecture, activation: str | None):
    if architecture is None:
        arch: dict = {}
    elif isinstance(architecture, str):
        arch = {"activation": architecture}
    elif isinstance(architecture, Mapping):
        arch = dict(architecture)
    else:
        raise InputError(
            "`architecture` must be a dict like {'activation': 'tanh', 'widths': [3, 8, 1], "
            f"'bias': True}}, got {type(architecture).__name__}."
        )
    unknown = sorted(str(k) for k in set(arch) - set(_ARCHITECTURE_KEYS))
    if unknown:
        raise InputError(
            f"unknown architecture entries {unknown}; the architecture has the keys "
            f"{', '.join(_ARCHITECTURE_KEYS)} (only 'activation' is required)."
        )
    act = arch.get("activation")
    if act is not None and activation is not None and act != activation:
        raise InputError(
            f"the architecture says activation {act!r} but activation={activation!r} was given."
        )
    act = act if act is not None else activation
    if act is None:
        raise InputError(
            "a state_dict does not say which activation the network uses: pass "
            "architecture={'activation': 'tanh'} (command line: --activation tanh), or save "
            "torch.save({'state_dict': model.state_dict(), 'architecture': {'activation': "
            "'tanh'}}, path)."
        )
    check_activation(act)
    widths = arch.get("widths")
    if widths is not None:
        try:
            widths = tuple(int(w) for w in widths)
        except (TypeError, ValueError):
            raise InputError(
                f"architecture['widths'] must be a list of integers, got {widths!r}."
            ) from None
    bias = arch.get("bias")
    if bias is not None and not isinstance(bias, bool):
        raise InputError(f"architecture['bias'] must be True or False, got {bias!r}.")
    return act, widths, bias


_KEY = re.compile(r"(.*?)(\d+)\.(weight|bias)")


def _from_state_dict(sd, architecture, activation, source) -> tuple[MLP, TorchConversion]:
    torch = require_torch()
    act, widths, bias = _parse_architecture(architecture, activation)
    found: dict[int, dict] = {}
    prefixes = set()
    for key, t in sd.items():
        m = _KEY.fullmatch(key) if isinstance(key, str) else None
        if m is None:
            raise InputError(
                f"state_dict entry {key!r} is not the weight or bias of a Linear layer; "
                "lossatlas reads the state_dict of an nn.Sequential of nn.Linear layers and "
                "activations (keys like '0.weight', '0.bias', '2.weight')."
            )
        if not isinstance(t, torch.Tensor):
            raise InputError(f"state_dict entry {key!r} is a {type(t).__name__}, not a tensor.")
        prefixes.add(m[1])
        found.setdefault(int(m[2]), {})[m[3]] = (key, t)
    if not found:
        raise InputError(
            "the state_dict is empty: a lossatlas network needs at least one Linear layer."
        )
    if len(prefixes) > 1:
        raise InputError(
            f"the state_dict mixes key prefixes {sorted(prefixes)}; pass the state_dict of "
            "the nn.Sequential itself."
        )
    layers = []
    for idx in sorted(found):
        entry = found[idx]
        if "weight" not in entry:
            raise InputError(f"state_dict entry {entry['bias'][0]!r} has no matching weight.")
        wkey, w = entry["weight"]
        if w.ndim != 2:
            raise InputError(
                f"state_dict entry {wkey!r} has shape {tuple(w.shape)}; a Linear weight is a "
                "matrix (out_features, in_features). Layers other than nn.Linear "
                "(convolutions, normalisation, embeddings) are not supported."
            )
        b = entry.get("bias", (None, None))[1]
        layers.append(_Layer(repr(wkey), w, b))
    return _assemble(layers, act, widths, bias, source, [])


def _assemble(layers, act, widths_expected, bias_expected, source, notes):
    """Check shapes across layers, convert to float64, build the MLP and the report."""
    with_bias = [lay for lay in layers if lay.bias is not None]
    without = [lay for lay in layers if lay.bias is None]
    if with_bias and without:
        raise InputError(
            f"{with_bias[0].label} has a bias but {without[0].label} has none; a lossatlas "
            "network has biases in every layer or in none."
        )
    for prev, lay in zip(layers, layers[1:], strict=False):
        n_out, n_in = int(prev.weight.shape[0]), int(lay.weight.shape[1])
        if n_in != n_out:
            raise InputError(
                f"shape mismatch: {lay.label} takes {n_in} inputs but {prev.label} gives "
                f"{n_out} outputs; each Linear layer's in_features must equal the previous "
                "one's out_features."
            )
    for lay in with_bias:
        if tuple(lay.bias.shape) != (int(lay.weight.shape[0]),):
            raise InputError(
                f"shape mismatch: the bias of {lay.label} has shape {tuple(lay.bias.shape)}, "
                f"expected ({int(lay.weight.shape[0])},)."
            )
    widths = (int(layers[0].weight.shape[1]),) + tuple(int(lay.weight.shape[0]) for lay in layers)
    if widths_expected is not None and tuple(widths_expected) != widths:
        raise InputError(
            f"shape mismatch: the architecture says widths {list(widths_expected)} but the "
            f"weights give {list(widths)}."
        )
    has_bias = bool(with_bias)
    if bias_expected is not None and bias_expected != has_bias:
        raise InputError(
            f"the architecture says bias={bias_expected} but the layers "
            f"{'have' if has_bias else 'have no'} biases."
        )
    dtypes: dict[str, str] = {}
    converted: list[str] = []
    arrays = {}
    for i, lay in enumerate(layers):
        arrays[f"W{i + 1}"] = _to_float64(f"W{i + 1}", f"the weight of {lay.label}", lay.weight,
                                          dtypes, converted)
        if has_bias:
            arrays[f"b{i + 1}"] = _to_float64(f"b{i + 1}", f"the bias of {lay.label}", lay.bias,
                                              dtypes, converted)
    net = mlp_from_arrays(arrays, act)
    return net, TorchConversion(source, dtypes, tuple(converted), tuple(notes))


def _network_from_torch(model, architecture=None, activation=None):
    torch = require_torch()
    check_x64()
    if activation is not None:
        check_activation(activation)
    if isinstance(model, torch.nn.Module):
        if architecture is not None:
            raise InputError(
                "`architecture` goes with a state_dict; an nn.Sequential describes itself."
            )
        return _from_module(model, activation)
    if isinstance(model, Mapping):
        keys = [k for k in _STATE_DICT_KEYS if k in model]
        if keys:
            if architecture is not None:
                raise InputError(
                    "the checkpoint carries its own architecture; do not pass another one."
                )
            return _from_state_dict(model[keys[0]], model.get("architecture"), activation,
                                    "checkpoint (state_dict + architecture)")
        return _from_state_dict(model, architecture, activation, "state_dict + architecture")
    raise InputError(
        "from_torch takes an nn.Sequential of nn.Linear layers and activations, or a "
        f"state_dict with an architecture; got {type(model).__name__}."
    )


def from_torch(model, architecture=None, *, activation: str | None = None) -> MLP:
    """A lossatlas :class:`~lossatlas.MLP` from a PyTorch network (float64, exact copy).

    **Arguments:**

    - `model`: an ``nn.Sequential`` of ``nn.Linear`` layers with one activation module
      between consecutive ``Linear`` layers (nested ``nn.Sequential`` and ``nn.Identity``
      are allowed; activations in :data:`TORCH_ACTIVATIONS`), a single ``nn.Linear``, or a
      ``state_dict`` of such a network (keys ``'0.weight'``, ``'0.bias'``, ``'2.weight'``, …),
      or a checkpoint dict ``{"state_dict": ..., "architecture": {...}}``.
    - `architecture`: with a bare ``state_dict``: ``{"activation": "tanh"}``, optionally with
      ``"widths": [n_0, ..., n_L]`` and ``"bias": True/False``, which are checked.
    - `activation`: the activation name when the model does not show one (a single Linear
      layer, a bare ``state_dict``); checked against the model's own otherwise.

    float32 (float16, bfloat16) parameters are converted exactly to float64;
    :func:`load_torch` and the ``lossatlas import-torch`` command report the conversion.

    Raises :class:`~lossatlas.InputError` naming the layer for unsupported layers
    (e.g. ``nn.Dropout``, ``nn.Conv2d``, ``nn.GELU(approximate='tanh')``, an activation after
    the last Linear layer, mixed activations) and for mismatched shapes or biases.
    """
    return _network_from_torch(model, architecture, activation)[0]


def _torch_dtype(dtype):
    torch = require_torch()
    table = {"float64": torch.float64, "float32": torch.float32}
    if isinstance(dtype, str) and dtype in table:
        return table[dtype]
    if dtype in (torch.float64, torch.float32):
        return dtype
    raise InputError(f"dtype must be float64 or float32, got {dtype!r}.")


def _activation_module(name: str):
    torch = require_torch()
    nn = torch.nn
    from .torch_nn import CUSTOM_ACTIVATIONS

    if name in CUSTOM_ACTIVATIONS:
        return CUSTOM_ACTIVATIONS[name]()
    if activation_family(name) == "leaky_relu":
        return nn.LeakyReLU(negative_slope=leaky_relu_slope(name))
    factories = {
        "identity": nn.Identity,
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "softplus": lambda: nn.Softplus(beta=1.0, threshold=_SOFTPLUS_THRESHOLD),
        "gelu": lambda: nn.GELU(approximate="none"),
    }
    if name not in factories:  # a lossatlas activation added without a torch counterpart
        raise InputError(f"activation {name!r} has no PyTorch counterpart yet.")
    return factories[name]()


def to_torch(net: MLP, dtype="float64"):
    """The ``nn.Sequential`` computing the same function as ``net``.

    ``Linear, act, Linear, act, …, Linear`` with ``act`` the module of
    :data:`TORCH_ACTIVATIONS` (``nn.Identity`` for identity networks; ``nn.Softplus`` with
    ``threshold=40``, where its switch to ``x`` is below float64 round-off;
    :class:`~lossatlas.interop.torch_nn.Erf` and
    :class:`~lossatlas.interop.torch_nn.Sigmoid4PlusSoftplus` for the activations torch lacks).
    `dtype` is ``"float64"`` (default; the parameters are copied exactly) or ``"float32"``
    (rounded to nearest); torch dtypes are accepted too. Layers are created without random
    initialisation, so torch's global random state is left untouched. A one-layer network
    has no activation module, so its activation name is not kept (use :func:`save_torch`'s
    ``state_dict`` format to keep it).
    """
    torch = require_torch()
    if not isinstance(net, MLP):
        raise InputError(f"to_torch takes a lossatlas MLP, got {type(net).__name__}.")
    for name, a in net.arrays().items():
        check_float64(name, a)
        check_finite(name, a)
    tdtype = _torch_dtype(dtype)
    nn = torch.nn
    layers = []
    for i, w in enumerate(net.weights):
        n_out, n_in = (int(s) for s in w.shape)
        lin = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=net.has_bias, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float64)))
            if net.has_bias:
                lin.bias.copy_(torch.from_numpy(np.array(net.biases[i], dtype=np.float64)))
        layers.append(lin)
        if i < net.depth - 1:
            layers.append(_activation_module(net.activation))
    return nn.Sequential(*layers)
