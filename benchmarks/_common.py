"""Helpers shared by the benchmark scripts."""

import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def fresh_process_seconds(code, setup="", repeat=5):
    """Median seconds that ``code`` takes in a fresh interpreter after ``setup``."""
    program = (
        setup
        + "\nimport time\n_t0 = time.perf_counter()\n"
        + code
        + "\nprint(time.perf_counter() - _t0)\n"
    )
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        ).stdout
        runs.append(float(out.strip().splitlines()[-1]))
    return statistics.median(runs)


def timed(function, repeat=5):
    """Median seconds of ``function()`` over ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def shell():
    """A fresh IPython shell with ipyllmapps loaded."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "ipyllmapps")
    return ip


def report(name, ratio, detail, goal=None):
    """Print one benchmark line: name, ratio, what was measured, the goal."""
    goal_text = f" (goal: {goal})" if goal else ""
    print(f"{name}: ratio {ratio:.3f}{goal_text} — {detail}")
