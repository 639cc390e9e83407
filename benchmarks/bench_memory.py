"""Process memory growth over repeated load / unload cycles.

Loads and unloads the bundled MiniLM encoder (about 90 MB of weights) 20 times
through `%models`, and prints the RSS growth between the first and the last
cycle as a fraction of the model's size (goal: under 0.05), plus how far above
the pre-load baseline each unload returns (goal: under 0.10).
"""

import sys

from _common import report, shell
from IPython.utils.capture import capture_output

import ipyllmapps
from ipyllmapps.manager.memory import process_rss, release_memory


def rss():
    release_memory()
    return process_rss()


def main():
    cycles = 5 if "--quick" in sys.argv else 20
    ip = shell()
    with capture_output():  # the %models table would print at every load
        size, baseline, after = measure(ip, cycles)
    growth = (after[-1] - after[0]) / size
    back = (after[-1] - baseline) / size
    report(
        f"RSS growth over {cycles} cycles / model size",
        growth,
        f"model {size / 2**20:.0f} MB, first cycle +{(after[0] - baseline) / 2**20:.1f}"
        f" MB, last +{(after[-1] - baseline) / 2**20:.1f} MB",
        goal="< 0.05",
    )
    report(
        "RSS above baseline after unload / model size",
        back,
        f"baseline {baseline / 2**20:.0f} MB",
        goal="< 0.10",
    )


def measure(ip, cycles):
    """Return the model's size, the RSS baseline and the RSS after each cycle."""
    ip.run_cell("import torch, transformers")
    ip.run_cell("%models load minilm")  # warm up imports and allocator pools
    size = ipyllmapps.manager().get("minilm").nbytes
    ip.run_cell("%models unload minilm")
    baseline = rss()
    after = []
    for _ in range(cycles):
        ip.run_cell("%models load minilm")
        ip.run_cell("%models unload minilm")
        after.append(rss())
    return size, baseline, after


if __name__ == "__main__":
    main()
