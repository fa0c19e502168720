"""PyTorch files: read with ``weights_only=True`` (only supported classes allowed), written
atomically."""

from __future__ import annotations

import dataclasses
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

from .._errors import InputError
from ..data import Dataset, atomic_path
from ..models import MLP
from ._torch_common import TorchConversion, _supported_text, require_torch
from ._torch_data import data_from_torch
from ._torch_network import _network_from_torch, to_torch

_CHECKPOINT_FORMAT = "lossatlas.torch/1"
_FORMATS = ("state_dict", "module")


@dataclasses.dataclass(frozen=True)
class TorchImport:
    """The content of a PyTorch file: a network or a data set, with its conversion report.

    `kind` is ``"network"`` (then `network` is set) or ``"data"`` (then `data` is set).
    """

    kind: str
    conversion: TorchConversion
    network: MLP | None = None
    data: Dataset | None = None

    def to_record(self) -> dict:
        """JSON-ready dict (without the arrays)."""
        rec: dict = {"kind": self.kind, "source": self.conversion.source}
        if self.network is not None:
            rec.update(
                widths=list(self.network.widths),
                activation=self.network.activation,
                bias=self.network.has_bias,
                n_params=self.network.n_params,
            )
        if self.data is not None:
            rec.update(
                n_samples=self.data.n_samples,
                d_in=int(self.data.X.shape[1]),
                d_out=int(self.data.Y.shape[1]),
            )
        rec["conversion"] = self.conversion.to_record()
        return rec


def _allowed_classes():
    torch = require_torch()
    nn = torch.nn
    from .torch_nn import CUSTOM_ACTIVATIONS

    return [nn.Sequential, nn.Linear, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Softplus,
            nn.GELU, torch.utils.data.TensorDataset, *CUSTOM_ACTIVATIONS.values()]


def _unsupported_in_file(path, names) -> InputError:
    return InputError(
        f"{path} holds {', '.join(names)}, which lossatlas does not import. It reads an "
        "nn.Sequential of nn.Linear layers with the activations " + _supported_text() + "; "
        "a checkpoint {'state_dict': model.state_dict(), 'architecture': {'activation': "
        "'tanh'}}; or data as a TensorDataset or (X, Y) tensors. PyTorch files are read with "
        "weights_only=True, so no code in them runs: if your model is a plain stack of Linear "
        "layers, save it as such a checkpoint."
    )


def _read_torch_file(path):
    """``torch.load`` with ``weights_only=True`` and only the supported classes allowed."""
    torch = require_torch()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"PyTorch file {path} does not exist.")
    allowed = _allowed_classes()
    allowed_names = {f"{c.__module__}.{c.__qualname__}" for c in allowed}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - legacy or broken file: torch.load below says what is wrong
        found = []
    bad = sorted(set(found) - allowed_names)
    if bad:
        raise _unsupported_in_file(path, bad)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if m:
            raise _unsupported_in_file(path, [m[1]]) from None
        m = re.search(r"WeightsUnpickler error:(.*?)(Check the documentation|$)", str(e), re.S)
        detail = " ".join(m[1].split()) if m and m[1].strip() else _first_line(e)
        raise InputError(
            f"{path} is not a readable PyTorch file, or holds something that cannot be read "
            f"safely (torch.load with weights_only=True failed: {detail}); write it with "
            "torch.save."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as e:
        raise InputError(
            f"{path} is not a readable PyTorch file (torch.load failed with "
            f"{_first_line(e)}); write it with torch.save."
        ) from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return type(e).__name__ + (f": {text.splitlines()[0][:300]}" if text else "")


def _is_data(payload) -> bool:
    import torch

    if isinstance(payload, torch.utils.data.TensorDataset | tuple | list):
        return True
    return isinstance(payload, Mapping) and set(payload) == {"X", "Y"}


def load_torch(path, *, activation: str | None = None) -> TorchImport:
    """Read a PyTorch file holding a network or a data set (see the module docs for formats).

    The file is read with ``torch.load(weights_only=True)``, allowing only the layer classes
    lossatlas supports, so nothing in it is executed; an unsupported class is named in the
    :class:`~lossatlas.InputError`. `activation` names the activation of a bare
    ``state_dict`` or of a one-layer network.
    """
    payload = _read_torch_file(path)
    if _is_data(payload):
        if activation is not None:
            raise InputError(f"{path} holds a data set; an activation applies to networks only.")
        data, conv = data_from_torch(payload)
        return TorchImport("data", conv, data=data)
    import torch

    if not isinstance(payload, torch.nn.Module | Mapping):
        raise InputError(
            f"{path} holds a {type(payload).__name__}; expected a network (nn.Sequential, "
            "checkpoint dict or state_dict) or data (TensorDataset or (X, Y) tensors)."
        )
    net, conv = _network_from_torch(payload, None, activation)
    return TorchImport("network", conv, network=net)


def save_torch(path, net: MLP, *, format: str = "state_dict", dtype="float64") -> None:
    """Write ``net`` as a PyTorch file (atomically: temporary file, then rename).

    `format`:

    - ``"state_dict"`` (default): ``{"format": "lossatlas.torch/1", "state_dict": ...,
      "architecture": {"activation": ..., "widths": [...], "bias": ...}}``. Plain
      ``torch.load(path)`` reads it (no lossatlas needed); rebuild the model with
      :func:`to_torch` or by hand and call ``model.load_state_dict(ckpt["state_dict"])``.
    - ``"module"``: the whole ``nn.Sequential`` of :func:`to_torch`. Reading it back with
      ``weights_only=True`` needs its classes allow-listed (:func:`load_torch` does that).
    """
    torch = require_torch()
    if format not in _FORMATS:
        raise InputError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}.")
    module = to_torch(net, dtype)
    if format == "module":
        payload = module
    else:
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "state_dict": module.state_dict(),
            "architecture": {
                "activation": net.activation,
                "widths": list(net.widths),
                "bias": net.has_bias,
            },
        }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
