"""`%load_ext ipyllmapps` time as a fraction of `import torch` time.

Both are timed in fresh interpreters after IPython is imported, so the ratio
compares only what each step adds. Goal: under 0.03 (must be under 0.10).
"""

import sys

from _common import fresh_process_seconds, report

SETUP = (
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "ip = InteractiveShell.instance()\n"
)


def main():
    repeat = 3 if "--quick" in sys.argv else 7
    load_ext = fresh_process_seconds(
        "ip.run_line_magic('load_ext', 'ipyllmapps')", SETUP, repeat
    )
    torch = fresh_process_seconds("import torch", SETUP, repeat)
    report(
        "load_ext / import torch",
        load_ext / torch,
        f"%load_ext {load_ext * 1000:.0f} ms, import torch {torch * 1000:.0f} ms",
        goal="< 0.03",
    )


if __name__ == "__main__":
    main()
