"""A re-run cell against a cold load of the same model.

The cell loads the bundled MiniLM encoder through the manager and embeds one
sentence. Run once, it pays for loading; run again, it should cost only the
forward pass. Prints re-run time / cold time (smaller is better).
"""

import sys
import time

from _common import report, shell, timed

CELL = (
    "import ipyllmapps\n"
    "from ipyllmapps.models.embed import encode\n"
    "entry = ipyllmapps.manager().load('minilm', 'embed')\n"
    "vector = encode(entry.bundle, ['A re-run cell costs the forward pass.'])\n"
    "del entry"
)


def main():
    repeat = 3 if "--quick" in sys.argv else 10
    ip = shell()
    ip.run_cell("import torch, transformers")  # imports are not part of either side
    start = time.perf_counter()
    ip.run_cell(CELL)
    cold = time.perf_counter() - start
    rerun = timed(lambda: ip.run_cell(CELL), repeat)
    loads = ip.user_ns["ipyllmapps"].manager().load_count
    report("re-run / cold load", rerun / cold,
           f"cold {cold * 1000:.0f} ms, re-run {rerun * 1000:.1f} ms, loads {loads}")


if __name__ == "__main__":
    main()
