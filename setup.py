"""Only here to ship ``linscale-lm-eval.pth`` (see linscale/_lm_eval_plugin.py); everything else
is in pyproject.toml. A .pth file must sit at the top of site-packages, which pyproject metadata
cannot express, so build_py copies it there: into the wheel for normal installs, and into the
unpacked editable wheel for ``pip install -e .``."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "linscale-lm-eval.pth"


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        # editable installs (setuptools >= 64) write non-package files straight into the unpacked
        # wheel, which is install_lib; regular builds collect build_lib.
        target = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(target) / PTH), preserve_mode=0)


setup(cmdclass={"build_py": build_py_with_pth})
