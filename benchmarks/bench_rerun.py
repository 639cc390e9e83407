"""A re-run cell against a cold load of the same model.

The cell is a `%%classify` cell with the bundled `sentiment` model. Run once,
it pays for loading; run again, it should cost only the forward pass (and the
widget). Prints re-run time / cold time (smaller is better) and the number of
loads the manager made.
"""

import sys
import time

from _common import report, shell, timed
from IPython.utils.capture import capture_output

import ipyllmapps

CELL = "%%classify\nA re-run cell costs the forward pass, not a reload.\n"


def main():
    repeat = 3 if "--quick" in sys.argv else 10
    ip = shell()
    ip.run_cell("import torch, transformers")  # imports are not part of either side
    with capture_output():  # the widgets' text fallbacks would print here
        start = time.perf_counter()
        ip.run_cell(CELL)
        cold = time.perf_counter() - start
        rerun = timed(lambda: ip.run_cell(CELL), repeat)
    loads = ipyllmapps.manager().load_count
    report(
        "re-run / cold load",
        rerun / cold,
        f"cold {cold * 1000:.0f} ms, re-run {rerun * 1000:.1f} ms, loads {loads}",
    )


if __name__ == "__main__":
    main()
