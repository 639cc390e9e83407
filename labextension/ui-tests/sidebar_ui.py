"""Drive the ipyllmapps sidebar in JupyterLab with a real headless Chromium.

The test starts its own JupyterLab server on loopback in a temporary folder,
opens a notebook that loads the extension and a tiny BERT model, and checks,
as a user would see it:

1. before ``%load_ext``, the sidebar says how to load the extension;
2. the cell's widget renders (no "Error displaying widget");
3. the sidebar and the status bar list the model and its memory;
4. a question of the bank, clicked, becomes a ``%ask qN`` cell below;
5. the sidebar's Unload button empties the list.

Screenshots go to ``--out`` (default ``labextension/ui-tests/test-results``).
Chromium is Debian's (``apt-get install chromium``); nothing is downloaded.

Run it with ``python labextension/ui-tests/sidebar_ui.py``; it exits non-zero
and saves ``failure.png`` when a check fails.
"""

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("IPYLLMAPPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KERNEL_WAIT_MS = 180_000  # kernel start + torch/transformers import on a busy CPU
UI_WAIT_MS = 30_000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "test-results"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="ipyllmapps-ui-") as tmp:
        root = Path(tmp)
        model = _tiny_model(root / "models")
        (root / "work").mkdir()
        _write_notebook(root / "work" / "sidebar.ipynb", model)
        with _JupyterLab(root / "work", root / "state") as lab:
            _check_sidebar(lab, out)
    print(f"UI test passed; screenshots in {out}")


def _tiny_model(root):
    """A 2-layer BERT folder from the test factory (random weights, no download)."""
    sys.path.insert(0, str(REPO))
    from tests.factory import Factory

    return Factory(root).bert_classifier(name="tiny-bert")


def _write_notebook(path, model):
    cells = ["%load_ext ipyllmapps", f"%models load {model} --task classify"]
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


class _JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, stopped on exit.

    Its settings, workspaces, runtime files and IPython profile live in
    ``state``, so nothing of the user's own setup leaks in.
    """

    def __init__(self, root, state):
        self.root = root
        self.state = state
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = state / "jupyter.log"

    def __enter__(self):
        settings = self.state / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # No "Would you like to get notified about Jupyter news?" toast.
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false"})
        )
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            IPYTHONDIR=str(self.state / "ipython"),
            JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.state / "config"),
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--allow-root",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.state / 'settings'}",
            f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=2
                ):
                    return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not start:\n{self.log.read_text()}")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()
        if exc[0] is not None:
            print("---- jupyter lab log (last 4000 characters) ----", file=sys.stderr)
            print(self.log.read_text()[-4000:], file=sys.stderr)


def _check_sidebar(lab, out):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        profile = tempfile.mkdtemp(prefix="ipyllmapps-chromium-")
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 850},
        )
        page = browser.pages[0] if browser.pages else browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            _steps(page, lab, out, expect)
        except Exception:
            page.screenshot(path=str(out / "failure.png"))
            raise
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)
        ours = [e for e in errors if "ipyllmapps" in e]
        assert not ours, f"the extension raised in the page: {ours}"


def _steps(page, lab, out, expect):
    page.goto(f"{lab.url}/lab/tree/sidebar.ipynb?token={lab.token}")
    page.locator(".jp-Notebook").first.wait_for(timeout=UI_WAIT_MS)

    # 1. The sidebar, opened before the extension is loaded, says how to load it.
    page.locator('.jp-SideBar li[data-id="ipyllmapps-sidebar"]').click()
    sidebar = page.locator("#ipyllmapps-sidebar")
    expect(sidebar.locator(".jp-ipyllmapps-message")).to_have_text(
        "Run `%load_ext ipyllmapps` in this notebook.", timeout=KERNEL_WAIT_MS
    )

    # 2. Run both cells; the %models widget renders.
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
    widget = output.locator(".widget-vbox")
    expect(widget.first).to_be_visible(timeout=KERNEL_WAIT_MS)
    expect(widget.first).to_contain_text("tiny-bert")
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)

    # 3. The sidebar and the status bar list the model and its memory.
    row = sidebar.locator('.jp-ipyllmapps-model[data-name="tiny-bert"]')
    expect(row).to_be_visible(timeout=UI_WAIT_MS)
    expect(row.locator(".jp-ipyllmapps-model-task")).to_have_text("classify")
    expect(row.locator(".jp-ipyllmapps-model-device")).to_have_text("cpu")
    expect(row.locator(".jp-ipyllmapps-model-bytes")).to_contain_text("KB")
    expect(sidebar.locator(".jp-ipyllmapps-device").first).to_contain_text("cpu")
    status = page.locator(".jp-ipyllmapps-status")
    expect(status).to_contain_text("1 model · ")

    # 4. A question of the bank becomes a `%ask qN` cell below the active one.
    sidebar.locator("summary", has_text="Question bank").click()
    question = sidebar.locator(".jp-ipyllmapps-bank-ask").first
    expect(question).to_be_visible(timeout=UI_WAIT_MS)
    page.screenshot(path=str(out / "sidebar.png"))
    label = question.locator(".jp-ipyllmapps-bank-id").inner_text()
    cells = page.locator(".jp-Notebook .jp-Cell")
    count = cells.count()
    question.click()
    expect(cells).to_have_count(count + 1)
    active = page.locator(".jp-Notebook .jp-Cell.jp-mod-active .jp-InputArea-editor")
    expect(active).to_have_text(f"%ask {label}")

    # 5. Unload from the sidebar empties the list, the status bar follows.
    row.get_by_role("button", name="Unload").click()
    expect(sidebar.locator(".jp-ipyllmapps-model")).to_have_count(0, timeout=UI_WAIT_MS)
    empty = sidebar.locator(".jp-ipyllmapps-empty").first
    expect(empty).to_contain_text("No model is loaded")
    expect(status).to_contain_text("0 models · 0 B")
    page.screenshot(path=str(out / "sidebar-unloaded.png"))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
