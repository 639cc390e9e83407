"""The code is formatted with ruff (88 columns) and passes its lint rules."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["ipyllmapps", "tests", "benchmarks", "scripts", "labextension/ui-tests"]


def ruff(*args):
    command = [str(Path(sys.executable).parent / "ruff"), *args, *PATHS]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_formatted():
    result = ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_clean():
    result = ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr
