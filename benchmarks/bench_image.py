"""``%classify_image`` against a plain torchvision loop on the same 64 images.

Both sides read the same PNG files from disk, resize and crop them to 224
pixels, run the default model (EfficientNet-Lite0) in batches of the same
size and take the top-5 classes. The magic also builds its thumbnail grid and
fallbacks. The model is loaded before timing; each side's best of a few runs
is compared.

Run: ``python benchmarks/bench_image.py`` (``--quick`` for 16 images, one run).
Prints ``ratio: X`` = magic throughput / plain-loop throughput (1.0 = as fast).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_images(folder, count):
    """Write ``count`` PNG files cut from scikit-image's sample photos."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.rocket(), data.astronaut()]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
        crop = photo[top : top + 3 * h // 4, left : left + 3 * w // 4]
        path = Path(folder) / f"img{i:03d}.png"
        Image.fromarray(crop).save(path)
        paths.append(path)
    return paths


def plain_loop(model, paths, batch_size):
    """The baseline: PIL + torchvision transforms + the model, batch by batch."""
    import torch
    from PIL import Image
    from torchvision import transforms

    prepare = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ]
    )
    results = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = torch.stack(
                [
                    prepare(Image.open(p).convert("RGB"))
                    for p in paths[start : start + batch_size]
                ]
            )
            top = model(batch).softmax(-1).topk(5)
            results += top.indices[:, 0].tolist()
    return results


def best_times(functions, repeats):
    """Best time of each function, their runs interleaved so load affects both."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, spent in zip(functions, times):
            start = time.perf_counter()
            function()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 images, one run")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    count, repeats = (16, 1) if args.quick else (64, 4)

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    import ipyllmapps

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("ipyllmapps")
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(folder, count)
        line = f"%classify_image {folder} -b {args.batch_size} -o res"

        def magic():
            with capture_output():
                result = shell.run_cell(line)
            result.raise_error()

        magic()  # loads the model
        model = ipyllmapps.manager().get("imagenet").bundle.model
        baseline = plain_loop(model, paths, args.batch_size)
        labels = shell.user_ns["res"]["label"].tolist()
        names = ipyllmapps.manager().get("imagenet").bundle.labels
        assert labels == [names[i] for i in baseline], "the two paths disagree"

        magic_s, plain_s = best_times(
            [magic, lambda: plain_loop(model, paths, args.batch_size)], repeats
        )

    print(f"images: {count}, batch size: {args.batch_size}, best of {repeats}")
    print(f"%classify_image: {magic_s:.2f} s ({count / magic_s:.1f} images/s)")
    print(f"plain torchvision loop: {plain_s:.2f} s ({count / plain_s:.1f} images/s)")
    print(f"ratio: {plain_s / magic_s:.2f}")


if __name__ == "__main__":
    main()
