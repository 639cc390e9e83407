"""Sampling 64 images through ``%gan_sample`` against the bare generator.

Baseline: the bundled generator's forward pass on 64 latents (one batch,
``torch.inference_mode``), then the uint8 conversion and one PNG encoding of
the 8x8 grid, with no magic, manager or display. Measured: ``%gan_sample 64
--seed S`` in a real IPython shell (parsing, manager lookup, fixed-size
batches, grid, widget and fallback display). Both are timed warm (the model
already loaded), best of ``--repeat`` runs. Prints ``ratio: magic / bare``.

Run from the repository root::

    python benchmarks/bench_gan.py
    python benchmarks/bench_gan.py --quick
"""

import argparse
import io
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None):
    """Time both paths and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else args.repeat

    import numpy as np
    import torch
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from PIL import Image

    from ipyllmapps.models import gan

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("ipyllmapps")
    with capture_output():
        shell.run_line_magic("gan_sample", "1 --seed 0")  # load the model once
    generator = gan.load(  # the same weights, outside the manager
        "digits-dcgan", device="cpu", dtype="float32", offline=True
    ).model
    latent = generator[0].in_features

    def bare(seed):
        z = torch.from_numpy(gan.latents(args.count, latent, seed))
        with torch.inference_mode():
            images = generator(z).numpy()  # (N, 1, 28, 28) in [-1, 1]
        pixels = np.clip((images[:, 0] + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        rows = pixels.reshape(8, -1, 28, 28).transpose(0, 2, 1, 3).reshape(8 * 28, -1)
        buffer = io.BytesIO()
        Image.fromarray(rows).save(buffer, format="PNG")
        return buffer.getvalue()

    def magic(seed):
        with capture_output():
            shell.run_line_magic("gan_sample", f"{args.count} --seed {seed}")

    times = {}
    for name, function in (("bare", bare), ("magic", magic)):
        function(0)  # warm up
        best = float("inf")
        for seed in range(repeat):
            started = time.perf_counter()
            function(seed)
            best = min(best, time.perf_counter() - started)
        times[name] = best
        print(
            f"{name:6s} {best * 1000:8.2f} ms  ({args.count} images, best of {repeat})"
        )
    print(f"ratio: {times['magic'] / times['bare']:.2f}")


if __name__ == "__main__":
    main()
