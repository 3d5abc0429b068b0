"""The main demonstration: a real torch 2.10 `torch.compile` failure, fixed by astpatch.

    python3 tools/demo.py

Creates (once, then reuses) a virtual environment with torch 2.10.0, installs astpatch into it
(the wheel built from this checkout's sdist), and runs demo/fxgraph_cache_valueerror.py there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import venvs  # noqa: E402


def main() -> int:
    python = venvs.find_python("3.11") or sys.executable
    venv = venvs.ensure("torch210", python)
    venvs.install_project(venv)
    script = venvs.ROOT / "demo" / "fxgraph_cache_valueerror.py"
    return subprocess.run([str(venvs.bin_python(venv)), str(script)], cwd=str(venv)).returncode


if __name__ == "__main__":
    raise SystemExit(main())
