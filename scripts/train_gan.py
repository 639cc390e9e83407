"""Reproduce the bundled ``digits-dcgan`` generator and write a sample grid.

The default generator of ``%gan_sample`` is the DCGAN of
``ipyllmapps.models.gan`` (latent 100, width 32, about 353k parameters in the
generator) trained on scikit-learn's 1,797 handwritten 8x8 digits, scaled to
28x28 with bicubic resampling. Training is the same code as ``%gan_train
--data digits``, with a fixed seed and one CPU thread so that it is
reproducible and leaves a shared machine usable (about ten minutes).

Run it from the repository root::

    python scripts/train_gan.py
    python scripts/train_gan.py --epochs 5 \\
        --out /tmp/try.safetensors --grid /tmp/try.png
"""

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261203


def main(argv=None):
    """Train the generator, save it, and write a grid of 64 samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--latent", type=int, default=100)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", default=str(ROOT / "ipyllmapps" / "data" / "digits-dcgan.safetensors")
    )
    parser.add_argument(
        "--grid", default="digits-dcgan.png", help="PNG of 64 samples (seed 0)"
    )
    args = parser.parse_args(argv)

    import torch

    from ipyllmapps.models import gan, render

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    data = gan.load_data("digits")
    config = gan.new_config(
        data, latent=args.latent, width=args.width, name="digits-dcgan", source="digits"
    )
    started = time.monotonic()

    def report(epoch, metrics, images):
        print(
            f"epoch {epoch:3d}  g_loss {metrics['g_loss']:.3f}  "
            f"d_loss {metrics['d_loss']:.3f}  {time.monotonic() - started:.0f}s",
            flush=True,
        )

    bundle, _ = gan.train(
        data,
        config,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=SEED,
        on_epoch=report,
    )
    path = gan.save(bundle, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")

    images = render.to_uint8(gan.sample(bundle, 64, seed=0))
    render.grid(images, nrow=8, scale=3).save(args.grid)
    print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
