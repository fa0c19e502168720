"""Shared pieces of the PyTorch bridge: the lazy torch import, the activation table, and
the report of float64 conversions."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._errors import InputError

_INSTALL_HINT = 'pip install "lossatlas[torch]"'

#: The PyTorch module of every lossatlas activation (import and export map them by name).
#: On import, no module between two Linear layers (or only ``nn.Identity``) means identity.
TORCH_ACTIVATIONS: dict[str, str] = {
    "identity": "nn.Identity",
    "relu": "nn.ReLU",
    "leaky_relu": "nn.LeakyReLU(negative_slope) (leaky_relu:SLOPE; plain leaky_relu = 0.01)",
    "abs": "lossatlas.interop.torch_nn.Abs",
    "tanh": "nn.Tanh",
    "erf": "lossatlas.interop.torch_nn.Erf",
    "sigmoid": "nn.Sigmoid",
    "softplus": "nn.Softplus(beta=1)",
    "gelu": "nn.GELU(approximate='none')",
    "sigmoid4_plus_softplus": "lossatlas.interop.torch_nn.Sigmoid4PlusSoftplus",
}


def require_torch():
    """Import and return ``torch``, or raise :class:`InputError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise InputError(
            f"PyTorch is not installed; the PyTorch bridge needs it: {_INSTALL_HINT}"
        ) from None
    return torch


def _supported_text() -> str:
    return ", ".join(TORCH_ACTIVATIONS.values())


# --------------------------------------------------------------------------- reports
@dataclasses.dataclass(frozen=True)
class TorchConversion:
    """What an import from PyTorch read and which arrays it converted to float64.

    **Fields:**

    - `source`: what was read, e.g. ``"nn.Sequential"``, ``"TensorDataset"``.
    - `dtypes`: the original torch dtype of every array, by lossatlas name
      (``W1``, ``b1``, … or ``X``, ``Y``).
    - `converted`: the arrays that were not float64 and were converted (exactly) to float64.
    - `notes`: anything else a user should know about the import.
    """

    source: str
    dtypes: dict[str, str]
    converted: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def any_converted(self) -> bool:
        """Whether any array was converted."""
        return bool(self.converted)

    def summary(self) -> str:
        """One sentence describing the dtype conversion."""
        if not self.converted:
            return "no conversion: every array was float64 already."
        by_dtype: dict[str, list[str]] = {}
        for name in self.converted:
            by_dtype.setdefault(self.dtypes[name], []).append(name)
        parts = "; ".join(f"{', '.join(names)} from {dt}" for dt, names in by_dtype.items())
        return (
            f"converted to float64: {parts}. The conversion is exact (every "
            f"{'/'.join(by_dtype)} number is a float64 number); lossatlas analyses exactly "
            "these rounded values, in float64."
        )

    def to_record(self) -> dict:
        """JSON-ready dict."""
        return {
            "source": self.source,
            "dtypes": dict(self.dtypes),
            "converted": list(self.converted),
            "summary": self.summary(),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- tensors
def _dtype_name(t) -> str:
    return str(t.dtype).removeprefix("torch.")


def _to_float64(name: str, label: str, t, dtypes: dict, converted: list) -> np.ndarray:
    """A float64 NumPy copy of tensor ``t``; records its dtype and whether it was converted."""
    torch = require_torch()
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{label} must be a torch.Tensor, got {type(t).__name__}.")
    if t.is_meta:
        raise InputError(f"{label} is a meta tensor without values; materialise the model first.")
    if t.is_complex() or not t.is_floating_point():
        raise InputError(
            f"{label} has dtype {_dtype_name(t)}; lossatlas needs real floating-point values. "
            "Convert it explicitly, e.g. `t.double()`."
        )
    dtypes[name] = _dtype_name(t)
    if t.dtype != torch.float64:
        converted.append(name)
    return np.array(t.detach().to(device="cpu", dtype=torch.float64).numpy(), copy=True)
