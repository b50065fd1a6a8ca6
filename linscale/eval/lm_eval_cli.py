"""``python -m linscale.eval.lm_eval_cli ARGS`` = ``lm_eval ARGS`` with the ``linscale`` model registered.

The plain ``lm_eval`` command sees the model too when linscale is installed (the .pth start-up hook
of ``linscale._lm_eval_plugin``); this wrapper is for environments where .pth files are not
processed (e.g. ``python -S``) and is what ``linscale lm-eval`` runs.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from linscale._lm_eval_plugin import install

    install()
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = ["lm_eval", *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
