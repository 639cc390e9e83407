"""DCGAN generators: training data, training, sampling, saving and loading.

The generator maps a latent vector to an image in [-1, 1]: 28x28 grey
(digits, Fashion-MNIST) or 32 / 64 pixel colour from a folder of images. It
is saved as ``.safetensors`` with its configuration in the file's metadata,
so a saved file is all ``%gan_sample -m FILE`` needs. The Keras version of
the same network lives in :mod:`ipyllmapps.models.gan_keras`.

Sampling is reproducible image by image: the latent of image ``i`` depends
only on the seed and ``i`` (not on how many images are drawn), and the
generator runs in eval mode in batches of a fixed size, so ``%gan_sample 1
--seed 1`` is exactly the first image of ``%gan_sample 16 --seed 1``.
"""

import gzip
import json
import logging
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle

log = logging.getLogger(__name__)

BUNDLED_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "digits-dcgan.safetensors"
)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SIZES = (28, 32, 64)
CHUNK = 16  # the generator always runs on batches of this many latents
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
METADATA_KEY = "ipyllmapps"


@dataclass(eq=False)
class GanBundle(Bundle):
    """A generator and its configuration (latent, channels, size, width...)."""

    config: dict = field(default_factory=dict)


# -- loading ---------------------------------------------------------------


def load(source, *, device, dtype, offline):
    """Load a generator: ``digits-dcgan``, a ``.safetensors`` or a ``.keras`` file."""
    if source == "digits-dcgan":
        path = BUNDLED_FILE
    else:
        path = Path(source).expanduser()
    if path.suffix == ".keras":
        from ipyllmapps.models import gan_keras

        return gan_keras.load(path)
    if not path.is_file():
        raise UserError(
            f"No generator `{source}`: use `digits-dcgan`, a `.safetensors` file "
            "written by `%gan_train --save`, or a `.keras` file."
        )
    if path.suffix != ".safetensors":
        raise UserError(
            f"`{source}` is not a generator file: use a `.safetensors` file written "
            "by `%gan_train --save` or a `.keras` file."
        )
    return load_safetensors(path, device=device, dtype=dtype)


def load_safetensors(path, *, device="cpu", dtype="float32"):
    """Build the generator described in a file's metadata and load its weights."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from ipyllmapps.models._hf import torch_dtype

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(_not_a_generator(path, exc)) from None
    if METADATA_KEY not in metadata:
        raise UserError(
            f"`{path}` holds no ipyllmapps generator configuration: use a file "
            "written by `%gan_train --save`."
        )
    try:
        config = json.loads(metadata[METADATA_KEY])
        generator = build_generator(config)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(_not_a_generator(path, exc)) from None
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"`{path}` does not match its own configuration: {first}"
        ) from None
    generator.to(device=device, dtype=torch_dtype(dtype)).eval()
    return GanBundle(model=generator, config=config)


def _not_a_generator(path, exc):
    """The one line for a generator file that is truncated or corrupt."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (
        f"`{path}` is not a valid generator file ({first}): it may be truncated; "
        "write it again with `%gan_train --save`."
    )


def save(bundle, path):
    """Write a generator to ``.safetensors`` (torch) or ``.keras`` (Keras).

    The folder must exist: a mistyped folder is reported, not created.
    """
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"`--save {path}`: the folder `{path.parent}` does not exist.")
    if bundle.framework == "keras":
        if path.suffix != ".keras":
            raise UserError(
                f"`--save {path}`: a Keras generator is saved as `NAME.keras`."
            )
        bundle.model.save(str(path))
        return path
    if path.suffix != ".safetensors":
        raise UserError(
            f"`--save {path}`: a torch generator is saved as `NAME.safetensors`."
        )
    from safetensors.torch import save_file

    state = {
        key: (value.float() if value.is_floating_point() else value).cpu().contiguous()
        for key, value in bundle.model.state_dict().items()
    }
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(bundle.config)})
    return path


# -- the networks ----------------------------------------------------------


def plan(size):
    """Return ``(start, doublings)``: the side the generator starts from, and
    how many times it doubles to reach ``size`` (28 = 7 * 2**2, 32 = 4 * 2**3)."""
    for start in (7, 4):
        side, doublings = start, 0
        while side < size:
            side, doublings = side * 2, doublings + 1
        if side == size:
            return start, doublings
    raise UserError(f"`--size {size}` is not supported: use one of {SIZES}.")


def widths(config):
    """Feature maps after the projection and after each doubling but the last."""
    _, doublings = plan(config["size"])
    return [config["width"] * 2 ** (doublings - 1 - i) for i in range(doublings)]


def build_generator(config):
    """The DCGAN generator: latent ``(N, latent)`` -> image ``(N, C, size, size)``."""
    from torch import nn

    start, _ = plan(config["size"])
    maps = widths(config)
    layers = [
        nn.Linear(config["latent"], maps[0] * start * start, bias=False),
        nn.BatchNorm1d(maps[0] * start * start),
        nn.ReLU(),
        nn.Unflatten(1, (maps[0], start, start)),  # (N, maps[0], start, start)
    ]
    for wide, narrow in pairwise(maps):  # each step doubles the side
        layers += [
            nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(narrow),
            nn.ReLU(),
        ]
    layers += [
        nn.ConvTranspose2d(maps[-1], config["channels"], 4, stride=2, padding=1),
        nn.Tanh(),  # (N, C, size, size) in [-1, 1]
    ]
    return nn.Sequential(*layers)


def build_discriminator(config):
    """The DCGAN discriminator: image ``(N, C, size, size)`` -> logit ``(N, 1)``."""
    from torch import nn

    start, _ = plan(config["size"])
    maps = widths(config)[::-1]  # narrowest first
    layers = [
        nn.Conv2d(config["channels"], maps[0], 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
    ]
    for narrow, wide in pairwise(maps):  # each step halves the side
        layers += [
            nn.Conv2d(narrow, wide, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(wide),
            nn.LeakyReLU(0.2),
        ]
    layers += [nn.Flatten(), nn.Linear(maps[-1] * start * start, 1)]
    return nn.Sequential(*layers)


def _init_weights(module):
    """DCGAN's initialisation: normal(0, 0.02) convolutions, BN scale near 1."""
    from torch import nn

    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# -- sampling --------------------------------------------------------------


def latents(count, dim, seed):
    """Return ``count`` latent vectors, shape ``(count, dim)``, float32.

    Row ``i`` depends only on ``seed`` and ``i``: numpy's generator fills the
    array in order, so the first rows of a larger draw equal a smaller draw.
    """
    return np.random.default_rng(seed).standard_normal((count, dim), dtype=np.float32)


def generate(bundle, z):
    """Run the generator on latents ``z``; return float32 images in [-1, 1].

    The shape is ``(N, C, H, W)`` whatever the framework (the Keras output is
    transposed), so callers render it with ``channels_first=True``.
    The latents run in batches of exactly :data:`CHUNK` (the last one padded),
    so an image does not depend on how many others are drawn with it.
    """
    z = np.asarray(z, dtype=np.float32)
    count = len(z)
    padded = np.zeros((-(-count // CHUNK) * CHUNK, z.shape[1]), dtype=np.float32)
    padded[:count] = z
    if bundle.framework == "keras":
        from ipyllmapps.models import gan_keras

        return gan_keras.generate(bundle.model, padded)[:count]
    return _forward(bundle.model, padded)[:count]


def _forward(generator, z):
    import torch

    weight = next(generator.parameters())
    generator.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(z), CHUNK):
            batch = torch.from_numpy(z[start : start + CHUNK]).to(
                weight.device, weight.dtype
            )
            outputs.append(generator(batch).float().cpu().numpy())
    return np.concatenate(outputs)


def sample(bundle, count, seed):
    """Draw ``count`` images with ``seed``; return float32 images in [-1, 1]."""
    return generate(bundle, latents(count, bundle.config["latent"], seed))


def interpolate(a, b, t):
    """Spherical interpolation between latents ``a`` and ``b`` at ``t`` in [0, 1].

    Gaussian latents live near a sphere; walking along it instead of the
    straight line keeps the in-between points as likely as the ends.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    mixed = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return mixed.astype(np.float32)


def describe(config):
    """A short description like ``28x28 grey`` or ``32x32 colour``."""
    kind = "grey" if config["channels"] == 1 else "colour"
    return f"{config['size']}x{config['size']} {kind}"


# -- training data ---------------------------------------------------------


def load_data(spec, size=None):
    """Load training images as float32 ``(N, C, H, W)`` in [-1, 1].

    Parameters
    ----------
    spec : str
        ``digits`` (scikit-learn's 8x8 digits scaled to 28x28), ``fashion-mnist``
        (Debian's ``dataset-fashion-mnist``), a folder of images, or an ``.npz``
        file holding an array of images.
    size : int, optional
        Side of the images: 28 (default for digits, Fashion-MNIST and ``.npz``
        files of 28x28 images), 32 (default for folders) or 64.
    """
    if size is not None and size not in SIZES:
        raise UserError(f"`--size {size}` is not supported: use one of {SIZES}.")
    if spec == "digits":
        return _digits(size or 28)
    if spec == "fashion-mnist":
        return _fashion_mnist(size or 28)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _folder(path, size or 32)
    if path.suffix == ".npz" and path.is_file():
        return _npz(path, size)
    raise UserError(
        f"`--data {spec}` is not a data set: use `digits`, `fashion-mnist`, a folder "
        "of images or a `.npz` file of images."
    )


def _digits(size):
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    return _scaled(images[..., None], size)


def _fashion_mnist(size):
    path = FASHION_DIR / "train-images-idx3-ubyte.gz"
    if not path.is_file():
        raise UserError(
            "Fashion-MNIST is not installed: "
            "`sudo apt-get install dataset-fashion-mnist` "
            "(Debian / Ubuntu), or use `--data digits`."
        )
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols, 1)
    return _scaled(images.astype(np.float32) / 255.0, size)


def _folder(path, size):
    from PIL import Image, ImageOps

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(
            f"`--data {path}` holds no images: put `.png` or `.jpg` files in it."
        )
    pictures = []
    for file in files:
        try:
            with Image.open(file) as picture:
                pictures.append(ImageOps.exif_transpose(picture).convert("RGB"))
        except OSError:
            log.warning("skipping %s: not an image PIL can read", file)
    if not pictures:
        raise UserError(f"`--data {path}` holds no image that can be read.")
    grey = all(_is_grey(np.asarray(p)) for p in pictures)
    images = []
    for picture in pictures:
        square = ImageOps.fit(picture, (size, size), Image.Resampling.LANCZOS)
        images.append(np.asarray(square.convert("L") if grey else square))
    array = np.stack(images).astype(np.float32) / 255.0
    if grey:
        array = array[..., None]
    return _to_range(array)


def _is_grey(pixels):
    return bool(
        np.all(pixels[..., 0] == pixels[..., 1])
        and np.all(pixels[..., 1] == pixels[..., 2])
    )


def _npz(path, size):
    with np.load(path) as archive:
        names = [n for n in ("images", "x", "x_train", "arr_0") if n in archive.files]
        name = names[0] if names else archive.files[0]
        images = archive[name]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise UserError(
            f"`{path}`: `{name}` has shape {images.shape}; save images as "
            "`np.savez(path, images=array)` with shape (N, H, W) or (N, H, W, C)."
        )
    if images.shape[-1] not in (1, 3) and images.shape[1] in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # channels-first -> channels-last
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    else:
        images = images.astype(np.float32)
        if images.min() < 0:  # already in [-1, 1]
            images = (images + 1.0) / 2.0
    side = images.shape[1]
    return _scaled(images, size or (side if side in SIZES else 28))


def _scaled(images, size):
    """Resize ``(N, H, W, C)`` images in [0, 1] to ``size`` and move to [-1, 1]."""
    height, width = images.shape[1:3]
    if (height, width) != (size, size):
        rows, cols = _resize_matrix(height, size), _resize_matrix(width, size)
        # bicubic resampling is separable: resized = rows @ image @ cols.T
        images = np.clip(np.einsum("ah,nhwc,bw->nabc", rows, images, cols), 0.0, 1.0)
    return _to_range(images.astype(np.float32))


def _resize_matrix(length, size):
    """The ``(size, length)`` matrix of PIL's bicubic resampling along one axis."""
    from PIL import Image

    matrix = np.empty((size, length), np.float32)
    for j in range(length):
        basis = np.zeros((length, 1), np.float32)
        basis[j] = 1.0
        column = Image.fromarray(basis, mode="F").resize(
            (1, size), Image.Resampling.BICUBIC
        )
        matrix[:, j] = np.asarray(column)[:, 0]
    return matrix


def _to_range(images):
    """``(N, H, W, C)`` in [0, 1] -> ``(N, C, H, W)`` in [-1, 1]."""
    return np.ascontiguousarray(
        images.transpose(0, 3, 1, 2) * 2.0 - 1.0, dtype=np.float32
    )


# -- training --------------------------------------------------------------


def steps_per_epoch(count, batch_size, steps=None):
    """Batches in one epoch: the whole data set once, or ``steps`` if fewer."""
    whole = max(1, count // batch_size)
    return min(whole, steps) if steps else whole


def new_config(data, *, latent=100, width=32, name="gan", source="", backend="torch"):
    """The configuration of a generator for ``data`` (``(N, C, H, W)``)."""
    return {
        "latent": int(latent),
        "channels": int(data.shape[1]),
        "size": int(data.shape[2]),
        "width": int(width),
        "data": source,
        "name": name,
        "backend": backend,
        "epochs": 0,
    }


def train(
    data,
    config,
    *,
    epochs,
    batch_size=64,
    lr=2e-4,
    steps=None,
    device="cpu",
    seed=0,
    on_step=None,
    on_epoch=None,
):
    """Train a DCGAN on ``data`` and return ``(GanBundle, FitResult)``.

    Parameters
    ----------
    data : numpy.ndarray
        Float32 images ``(N, C, H, W)`` in [-1, 1], from :func:`load_data`.
    config : dict
        From :func:`new_config`.
    steps : int, optional
        Batches per epoch (default: the whole data set once).
    on_step : callable, optional
        ``on_step(g_loss=..., d_loss=...)`` after every batch.
    on_epoch : callable, optional
        ``on_epoch(epoch, metrics, images)`` after every epoch, with the images
        the generator makes from fixed latents (float32 in [-1, 1]).

    Ctrl-C keeps the weights of the last finished epoch.
    """
    import torch

    from ipyllmapps.models.training import fit

    torch.manual_seed(seed)
    generator = build_generator(config).to(device)
    discriminator = build_discriminator(config).to(device)
    generator.apply(_init_weights)
    discriminator.apply(_init_weights)
    bundle = GanBundle(model=generator, config=config)
    betas = (0.5, 0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    images = torch.from_numpy(data)
    order = torch.Generator().manual_seed(seed)
    fixed = latents(CHUNK, config["latent"], seed=0)
    per_epoch = steps_per_epoch(len(images), batch_size, steps)

    def run_epoch(epoch):
        generator.train()
        discriminator.train()
        started = time.monotonic()
        perm = torch.randperm(len(images), generator=order)
        totals = np.zeros(2)
        for step in range(per_epoch):
            index = perm[step * batch_size : (step + 1) * batch_size]
            if len(index) < 2:  # batch norm needs two samples
                index = perm[:batch_size]
            real = images[index].to(device)
            z = torch.randn(len(real), config["latent"], device=device)
            fake = generator(z)

            # discriminator: real -> 0.9 (one-sided label smoothing), fake -> 0
            opt_d.zero_grad(set_to_none=True)
            d_real = discriminator(real)
            d_fake = discriminator(fake.detach())
            d_loss = loss_fn(d_real, torch.full_like(d_real, 0.9)) + loss_fn(
                d_fake, torch.zeros_like(d_fake)
            )
            d_loss.backward()
            opt_d.step()

            # generator: make the discriminator say "real"
            opt_g.zero_grad(set_to_none=True)
            d_out = discriminator(fake)
            g_loss = loss_fn(d_out, torch.ones_like(d_out))
            g_loss.backward()
            opt_g.step()

            values = (g_loss.item(), d_loss.item())
            totals += values
            if on_step is not None:
                on_step(g_loss=values[0], d_loss=values[1])
        config["epochs"] = epoch
        metrics = {
            "g_loss": totals[0] / per_epoch,
            "d_loss": totals[1] / per_epoch,
            "seconds": time.monotonic() - started,
        }
        if on_epoch is not None:
            on_epoch(epoch, metrics, generate(bundle, fixed))
        return metrics

    result = fit([generator, discriminator], epochs, run_epoch)
    config["epochs"] = len(result.epochs)
    return bundle, result
