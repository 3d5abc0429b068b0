"""Packaging glue that pyproject.toml cannot express: ship astpatch-autoinstall.pth.

A .pth file must sit at the top of site-packages, outside any package, so it is copied into the
root of the build directory, which becomes the root of the wheel.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "astpatch-autoinstall.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        shutil.copy(Path(__file__).parent / PTH, Path(self.build_lib) / PTH)

    def get_outputs(self, include_bytecode: bool = True) -> list:  # type: ignore[override]
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
