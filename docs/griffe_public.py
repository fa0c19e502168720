"""Griffe extension for the API reference (used by mkdocstrings, see mkdocs.yml).

lossatlas' public packages re-export names from private modules (``from ._x import A as A``)
and load some of them lazily through a ``_LAZY = {name: submodule}`` table (PEP 562). This
extension makes the API pages show exactly those public names:

- every re-exported ``lossatlas`` name in a public package is marked public;
- every name of a ``_LAZY`` table becomes an alias of its definition;
- Sphinx roles in docstrings (``:func:`~a.b.c```) are shown as code (``c``), since the site
  renders docstrings as Markdown.
"""

from __future__ import annotations

import ast
import re

import griffe

_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|obj|exc|const):`(~?)([^`]+)`")


def _role(m: re.Match) -> str:
    target = m.group(2)
    return f"`{target.rsplit('.', 1)[-1]}`" if m.group(1) else f"`{target}`"


class PublicReexports(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:  # noqa: ARG002
        if pkg.name != "lossatlas":
            return
        self._expose(pkg)
        self._walk_docstrings(pkg)

    def _expose(self, mod: griffe.Module) -> None:
        lazy = mod.members.get("_LAZY")
        if lazy is not None and not lazy.is_alias and getattr(lazy, "value", None) is not None:
            for name, sub in ast.literal_eval(str(lazy.value)).items():
                if name not in mod.members:
                    mod.set_member(name, griffe.Alias(name, f"{mod.path}.{sub}.{name}", parent=mod))
        for name, member in list(mod.members.items()):
            if name.startswith("_"):
                continue
            if member.is_alias:
                if member.target_path.startswith("lossatlas.") and not member.target_path.startswith(
                    f"{mod.path}.{name}"
                ):
                    member.public = True
            elif member.is_module:
                self._expose(member)

    def _walk_docstrings(self, obj, seen=None) -> None:
        seen = set() if seen is None else seen
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_role, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk_docstrings(member, seen)
