"""Names a package gives its users, imported from their modules on first use (PEP 562).

``import aelab`` and ``from aelab import ui`` then cost nothing until a name is used: a
Streamlit page's first line runs before anything is drawn, so the heavy imports (PyTorch,
plotting) must wait for a spinner that says so.
"""
from __future__ import annotations

import importlib


def lazy_names(package: str, namespace: dict, exports: dict[str, tuple]) -> None:
    """Give ``namespace`` (a package's ``globals()``) ``__all__``, ``__getattr__`` and
    ``__dir__`` for ``exports``: module -> its names (a pair for a name the package gives
    differently: (the package's name, the module's))."""
    where = {(n if isinstance(n, str) else n[0]): (module, n if isinstance(n, str) else n[1])
             for module, names in exports.items() for n in names}

    def __getattr__(name: str):
        try:
            module, attr = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    namespace.update(__all__=sorted(where), __getattr__=__getattr__, __dir__=__dir__)
