"""Make ``--model linscale`` known to the real ``lm_eval`` command (lm-eval 0.4.x has no plugins).

lm-eval resolves ``--model NAME`` in its model registry before any user code runs, and 0.4.13 reads
no entry points. So the ``linscale-lm-eval.pth`` file that installing linscale puts in site-packages
runs :func:`install` at interpreter start-up. It costs one entry on ``sys.meta_path`` and imports
nothing: only when ``lm_eval.api.registry`` is imported (by lm_eval, in any process) does it add a
*lazy* registry entry, ``linscale -> "linscale.eval.adapter:LinscaleLM"``, so torch and the adapter
load only if the model is actually used. Without the .pth, ``python -m linscale.eval.lm_eval_cli``
(alias ``linscale lm-eval``) is the same command with the entry added explicitly.

The .pth must not import the ``linscale`` package: a package imported at start-up is the installed
checkout's, and it would then shadow the checkout a command runs in (two clones sharing one
environment: ``python -m linscale book`` in the second would build the first one's book). So the
.pth only *locates* the package (``importlib.util.find_spec``, which imports nothing) and executes
this file on its own, as the module ``_linscale_lm_eval_hook``; this file therefore uses the
standard library only. ``linscale`` itself is imported when lm-eval resolves the entry, from
whatever ``sys.path`` says then.
"""
from __future__ import annotations

import importlib.machinery
import sys

TARGET_MODULE = "lm_eval.api.registry"
MODEL_NAME = "linscale"
MODEL_PATH = "linscale.eval.adapter:LinscaleLM"


def register(registry_module) -> None:
    """Add the lazy ``linscale`` entry to lm-eval's model registry (idempotent)."""
    registry = registry_module.model_registry
    if MODEL_NAME not in registry:
        # lm-eval fills the registry with its own lazy entries only when it finds it empty
        # (get_model), so fill it first or our entry would hide "hf", "dummy", ...
        import lm_eval.models  # noqa: F401  (a name -> "module:Class" table; imports no backend)

        if MODEL_NAME not in registry:
            registry.register(MODEL_NAME, target=MODEL_PATH)


class _Loader:
    """Runs the real loader, then registers. (No importlib.abc: it would cost every start-up.)"""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            register(module)
        except Exception as err:  # never break lm_eval itself
            print(f"linscale: could not register the lm-eval model {MODEL_NAME!r}: {err}", file=sys.stderr)


class _RegistryHook:
    """Wraps the loader of ``lm_eval.api.registry`` so the entry is added right after it executes."""

    linscale_lm_eval_hook = True  # recognised by install() whichever copy of this file made it

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Register now if lm_eval's registry is already imported, else when it is."""
    if TARGET_MODULE in sys.modules:
        register(sys.modules[TARGET_MODULE])
    elif not any(getattr(f, "linscale_lm_eval_hook", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegistryHook())
