"""GPU check of the model manager (run by hand on a machine with CUDA).

    python tests/gpu/check_cuda_release.py

Loads a 512 MB model on the GPU through the manager, fails a forward pass so
that the last traceback holds the model's frames, unloads it, and checks that
``torch.cuda.memory_allocated`` returns to the baseline; then checks that 10
load / unload cycles do not grow it, that ``%models to NAME cpu`` frees the GPU
copy, and that an ``auto`` budget was computed from ``torch.cuda.mem_get_info``.
Exits non-zero on the first failed check. CI has no GPU and does not run it.
"""

import sys

import torch
from IPython.core.interactiveshell import InteractiveShell

import ipyllmapps
from ipyllmapps.manager import Bundle

MB = 2**20


def loader(source, *, device, dtype, offline):
    side = int((512 * MB / 4) ** 0.5)
    return Bundle(model=torch.nn.Linear(side, side, bias=False).to(device))


def check(label, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {detail}")
    if not ok:
        sys.exit(1)


def main():
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "ipyllmapps")
    ip.user_ns["loader"] = loader
    manager = ipyllmapps.manager()
    baseline = torch.cuda.memory_allocated()

    ip.run_cell(
        "import ipyllmapps, torch\n"
        "ipyllmapps.manager().load('big', 'demo', loader, device='cuda')"
    )
    held = torch.cuda.memory_allocated() - baseline
    check("load on the GPU", held >= 500 * MB, f"{held / MB:.0f} MB allocated")
    check(
        "auto budget from mem_get_info",
        manager.budget_bytes("cuda:0") > 0,
        f"{manager.budget_bytes('cuda:0') / 2**30:.1f} GB",
    )

    ip.run_cell(
        "m = ipyllmapps.manager().get('big').bundle.model\n"
        "try:\n    m(torch.zeros(3, 3, device='cuda'))\nfinally:\n    del m"
    )
    ip.run_cell("%models unload big")
    after = torch.cuda.memory_allocated() - baseline
    check(
        "unload after a failed forward pass",
        after < 0.1 * 512 * MB,
        f"{after / MB:.1f} MB left",
    )

    for _ in range(10):
        ip.run_cell("ipyllmapps.manager().load('big', 'demo', loader, device='cuda')")
        ip.run_cell("%models unload big")
    grown = torch.cuda.memory_allocated() - baseline
    check("10 load / unload cycles", grown < 0.05 * 512 * MB, f"{grown / MB:.1f} MB")

    ip.run_cell("ipyllmapps.manager().load('big', 'demo', loader, device='cuda')")
    ip.run_cell("%models to big cpu")
    moved = torch.cuda.memory_allocated() - baseline
    check(
        "move to the CPU frees the GPU", moved < 0.1 * 512 * MB, f"{moved / MB:.1f} MB"
    )
    reserved = torch.cuda.memory_reserved()
    check(
        "CUDA cache emptied", reserved < 64 * MB + baseline, f"{reserved / MB:.0f} MB"
    )


if __name__ == "__main__":
    main()
