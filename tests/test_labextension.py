"""The JupyterLab extension: installed with the package, tested, driven in Chromium.

``pip install .`` (or the Makefile's editable install) builds ``labextension/``
and installs it into ``share/jupyter/labextensions/ipyllmapps``. The browser
test runs ``labextension/ui-tests/sidebar_ui.py``, which starts its own
JupyterLab on loopback and drives Debian's headless Chromium with Playwright.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABEXTENSION = REPO / "labextension"
UI_TEST = LABEXTENSION / "ui-tests" / "sidebar_ui.py"
CHROMIUM = os.environ.get("IPYLLMAPPS_CHROMIUM", "/usr/bin/chromium")


def _jupyter(*args):
    return subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_extension_is_enabled_and_ok():
    result = _jupyter("labextension", "list")
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    line = next((ln for ln in listing.splitlines() if "ipyllmapps v" in ln), None)
    assert line is not None, (
        f"ipyllmapps is not among the installed lab extensions "
        f"(`pip install -e .` builds and installs it):\n{listing}"
    )
    pattern = r"ipyllmapps v\d+\.\d+\.\d+ enabled\s+OK \(python, ipyllmapps\)"
    assert re.search(pattern, line), line


def test_the_built_extension_has_its_entry_point():
    built = REPO / "ipyllmapps" / "labextension" / "package.json"
    assert built.exists(), "`pip install -e .` builds it into ipyllmapps/labextension"
    meta = json.loads(built.read_text())
    assert meta["name"] == "ipyllmapps"
    assert (built.parent / meta["jupyterlab"]["_build"]["load"]).exists()


def test_jest_unit_tests_pass():
    if not (LABEXTENSION / "node_modules").is_dir():
        pytest.fail("labextension/node_modules is missing: `pip install -e .` fills it")
    result = subprocess.run(
        ["npm", "test", "--silent"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Tests:\s+\d+ passed, \d+ total", result.stderr + result.stdout)


@pytest.mark.browser
def test_sidebar_lists_and_unloads_a_model_in_chromium(tmp_path):
    assert shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing: `apt-get install -y chromium` (CI's .ci/run does)"
    )
    result = subprocess.run(
        [sys.executable, str(UI_TEST), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    output = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, output
    for name in ("sidebar.png", "sidebar-unloaded.png"):
        shot = tmp_path / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert shot.stat().st_size > 20_000, f"{name} looks blank"
