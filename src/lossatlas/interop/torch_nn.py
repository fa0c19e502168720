"""PyTorch modules for the lossatlas activations that ``torch.nn`` does not have.

Importing this module imports torch (``pip install "lossatlas[torch]"``); nothing else in
lossatlas imports it until a torch function is called.

- :class:`Erf`: ``erf(x/√2)`` (lossatlas's ``erf``; note the ``1/√2``: it is *not* ``torch.erf``).
- :class:`Sigmoid4PlusSoftplus`: ``1/(1+e^{−4x}) + log(1+eˣ)`` (lossatlas's
  ``sigmoid4_plus_softplus``).
- :class:`Abs`: ``|x|`` (lossatlas's ``abs``).

All carry the lossatlas activation name in the class attribute ``lossatlas_name``;
:func:`lossatlas.interop.to_torch` puts them into the ``nn.Sequential`` it builds and
:func:`lossatlas.interop.from_torch` maps them back to that name. All are parameter-free, so
a ``state_dict`` never mentions them; a file holding a whole ``nn.Sequential`` refers to them
by their import path ``lossatlas.interop.torch_nn.<Class>``, so reading such a file needs
lossatlas installed (or the file saved as a ``state_dict`` with an architecture instead).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

_SQRT1_2 = 0.7071067811865476


class Erf(nn.Module):
    """``erf(x / √2)`` elementwise: lossatlas's ``erf`` activation (odd, bounded in (−1, 1))."""

    lossatlas_name: ClassVar[str] = "erf"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``erf(x/√2)``."""
        return torch.erf(x * _SQRT1_2)


class Sigmoid4PlusSoftplus(nn.Module):
    """``1/(1+e^{−4x}) + log(1+eˣ)`` elementwise: lossatlas's ``sigmoid4_plus_softplus``.

    The softplus term is computed as ``logaddexp(x, 0)``, stable for large ``|x|`` (unlike
    ``nn.Softplus``, which switches to ``x`` above its threshold).
    """

    lossatlas_name: ClassVar[str] = "sigmoid4_plus_softplus"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``σ(4x) + log(1 + eˣ)``."""
        return torch.sigmoid(4.0 * x) + torch.logaddexp(x, torch.zeros_like(x))


class Abs(nn.Module):
    """``|x|`` elementwise: lossatlas's ``abs`` activation (``torch.abs``; derivative 0 at 0)."""

    lossatlas_name: ClassVar[str] = "abs"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``|x|``."""
        return torch.abs(x)


#: The custom activation modules by lossatlas name.
CUSTOM_ACTIVATIONS: dict[str, type[nn.Module]] = {
    cls.lossatlas_name: cls for cls in (Erf, Sigmoid4PlusSoftplus, Abs)
}
