"""Lazy package exports: a package names its public objects, each imported from its module on first use.

Used by ``interp`` and ``probes`` so importing the package stays cheap (no
torch/pandas/scikit-learn until a function is actually used).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``(__getattr__, __dir__)`` for ``package``; ``exports`` maps name -> module path.

    A resolved name is stored in ``namespace`` (the package's ``globals()``) so later lookups are direct.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
