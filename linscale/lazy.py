"""Package attributes imported on first use (PEP 562), for the packages whose modules import Lightning
and torch (``linscale.train``, ``linscale.data``): reading a preset or a results table needs neither, and
importing them costs about 10 s of a process's start on a 2-core machine."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, namespace: dict, exports: dict[str, tuple[str, ...]]):
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` (its ``globals()`` is ``namespace``)
    that serve ``exports`` ({submodule: names}), importing a submodule when one of its names is first
    asked for and keeping the name in the package afterwards."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        namespace[name] = value  # looked up once
        return value

    def __dir__():
        return sorted(set(namespace) | set(module_of))

    return __getattr__, __dir__
