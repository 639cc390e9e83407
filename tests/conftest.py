"""Shared fixtures: a real IPython shell with the extension loaded, offline."""

import atexit
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402


@pytest.fixture
def shell():
    """A fresh ``InteractiveShell`` with ``ipyllmapps`` loaded, torn down after.

    Cells run through ``shell.run_cell`` exactly as a notebook runs them; a
    test checks ``result.error_in_exec`` or the one-line message a user sees.
    """
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(config=config)
    ip.extension_manager.load_extension("ipyllmapps")
    yield ip
    ip.extension_manager.unload_extension("ipyllmapps")
    # Each shell registers an exit hook that empties its caches with a full
    # garbage collection; hundreds of them kept pytest busy for minutes after
    # the last test. This shell's test is over, so its hook goes.
    atexit.unregister(ip.atexit_operations)
    InteractiveShell.clear_instance()


@pytest.fixture
def factory(tmp_path):
    """Builds tiny models from configs into ``tmp_path`` (see tests/factory.py)."""
    from tests import factory as tiny

    return tiny.Factory(tmp_path)


def run(ip, cell):
    """Run a cell; re-raise whatever it raised so a test fails on a bug."""
    result = ip.run_cell(cell)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def usage_error(ip, cell, capsys):
    """Run a cell that should fail with a one-line user error; return that line."""
    result = ip.run_cell(cell)
    error = result.error_in_exec or result.error_before_exec
    assert error is not None, f"expected a usage error from {cell!r}"
    assert type(error).__name__ == "UsageError", f"{cell!r} raised {error!r}"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {err!r}"
    assert "Traceback" not in err
    return lines[0]
