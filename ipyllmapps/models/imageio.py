"""Read images from files, folders, globs, URLs and in-memory values as RGB.

Every image leaves this module as an 8-bit RGB ``PIL.Image``, upright and
opaque, whatever it came in as:

* grey (``L``, ``1``), 16-bit grey (``I;16``, ``I``) and float (``F``) images
  are scaled to 8 bits and repeated over the three channels;
* CMYK, YCbCr, LAB and HSV images are converted by Pillow;
* transparency (``RGBA``, ``LA``, ``PA``, a palette or an ``RGB``/``L`` image
  with a transparent colour) is composited over :data:`BACKGROUND`, white, so
  that a transparent background looks as it does in a browser;
* the EXIF orientation tag is applied (``PIL.ImageOps.exif_transpose``), so a
  photo taken sideways is classified and previewed upright.

Numpy arrays and tensors are read as ``HxW``, ``HxWxC`` or ``CxHxW`` (C of 1,
3 or 4); a 4-d array is a batch of images. ``uint8`` values are 0-255,
``uint16`` values 0-65535, floats 0-1 (or -1-1 when some are negative, as a
GAN generator produces), and booleans black and white.
"""

import glob
import io
import os
from pathlib import Path

from ipyllmapps.errors import UserError

BACKGROUND = (255, 255, 255)  # what transparent pixels become

IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
    ".ico",
    ".jfif",
)
_URL_PREFIXES = ("http://", "https://")
_URL_TIMEOUT_S = 20


def read(source, *, name=None, offline=False):
    """Return ``[(name, image), ...]`` for one source, each image RGB and upright.

    Parameters
    ----------
    source : str, path, PIL.Image, numpy.ndarray, torch.Tensor or list of them
        A file, a folder (its image files, sorted by name), a glob pattern, an
        ``http(s)`` URL, or an in-memory image or list of images.
    name : str, optional
        What to call in-memory images (a variable's name); default ``image``.
    offline : bool
        Refuse URLs with a one-line message instead of trying the network.

    Examples
    --------
    >>> from PIL import Image
    >>> [(name, im.mode) for name, im in read(Image.new("LA", (4, 4)))]
    [('image', 'RGB')]
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise UserError("The list of images is empty: give at least one image.")
        found = []
        for i, item in enumerate(source):
            item_name = _indexed(name or "image", i, len(source))
            found += read(item, name=item_name, offline=offline)
        return found
    if isinstance(source, (str, os.PathLike)):
        return _read_path(str(source), offline)
    return _read_value(source, name or "image")


def to_rgb(image, background=BACKGROUND):
    """Return ``image`` as an upright 8-bit RGB ``PIL.Image``.

    Parameters
    ----------
    image : PIL.Image.Image
    background : tuple of int
        The colour that transparent pixels are composited over.
    """
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")  # palette and tRNS transparency become alpha
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        canvas = Image.new("RGBA", image.size, tuple(background) + (255,))
        image = Image.alpha_composite(canvas, image)
    return image.convert("RGB")


def from_bytes(data, name="upload"):
    """Decode an image file's bytes (an upload) into an RGB image."""
    return _open(io.BytesIO(bytes(data)), name)


def from_array(value, name="The array"):
    """Return a list of RGB images from a numpy array or a tensor.

    An empty array, or one holding NaN or infinite values, is refused with a
    one-line :class:`UserError` that starts with ``name``.
    """
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().float().cpu().numpy()
    array = np.asarray(value)
    if array.size == 0:
        raise UserError(
            f"{name} is empty (shape {tuple(array.shape)}): give an image with "
            "pixels, like an HxWx3 array."
        )
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise UserError(
            f"{name} holds NaN or infinite values: replace them first, e.g. "
            "with `np.nan_to_num(array)`, or give a real image."
        )
    if array.ndim == 4:
        return [_one_from_array(a) for a in array]
    return [_one_from_array(array)]


# -- paths ---------------------------------------------------------------


def _read_path(source, offline):
    if source.startswith(_URL_PREFIXES):
        return [(source, _fetch(source, offline))]
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(
                f"The folder `{source}` holds no image files "
                f"({', '.join(IMAGE_SUFFIXES[:5])}"
                ", ...): give a folder of images or the files themselves."
            )
        return [(str(p), _open(p, str(p))) for p in files]
    if path.is_file():
        return [(str(path), _open(path, str(path)))]
    if glob.has_magic(source):
        files = sorted(glob.glob(os.path.expanduser(source), recursive=True))
        files = [f for f in files if Path(f).is_file()]
        if not files:
            raise UserError(f"No file matches `{source}`: check the pattern.")
        return [(f, _open(f, f)) for f in files]
    raise UserError(f"No file or folder `{source}`: check the path.")


def _open(file, name):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(
            f"`{name}` is not an image Pillow can read ({_reason(exc)}): "
            "give a PNG, JPEG, GIF, BMP, TIFF or WebP file."
        ) from None


def _fetch(url, offline):
    if offline or _network_off():
        raise UserError(
            f"Cannot fetch `{url}`: ipyllmapps is offline; download the image "
            "elsewhere and give its file path."
        )
    from urllib.error import URLError
    from urllib.request import urlopen

    try:
        with urlopen(url, timeout=_URL_TIMEOUT_S) as response:
            data = response.read()
    except (URLError, OSError, ValueError) as exc:
        raise UserError(
            f"Cannot fetch `{url}` ({_reason(exc)}): download it and give its file "
            "path."
        ) from None
    return from_bytes(data, url)


def _network_off():
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


# -- in-memory values ------------------------------------------------------


def _read_value(value, name):
    from PIL import Image

    if isinstance(value, Image.Image):
        return [(name, to_rgb(value))]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        images = from_array(value, f"`{name}`")
        return [(_indexed(name, i, len(images)), im) for i, im in enumerate(images)]
    raise UserError(
        f"A {type(value).__name__} is not an image: give a file, a folder, a PIL "
        "image, a numpy array or a tensor."
    )


def _one_from_array(array):
    import numpy as np
    from PIL import Image

    array = _channels_last(np.asarray(array))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    pixels = _to_uint8(array)
    if pixels.ndim == 2:
        return Image.fromarray(pixels, "L").convert("RGB")
    mode = {3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    return to_rgb(Image.fromarray(pixels, mode))


def _channels_last(array):
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        raise UserError(
            f"An array of shape {tuple(array.shape)} is not an image: give HxW, "
            "HxWxC or CxHxW with C of 1, 3 or 4 (or a batch NxCxHxW)."
        )
    if array.shape[2] in (1, 3, 4):
        return array
    if array.shape[0] in (1, 3, 4):
        return array.transpose(1, 2, 0)
    raise UserError(
        f"An array of shape {tuple(array.shape)} has no colour axis of 1, 3 or 4: "
        "give HxW, HxWxC or CxHxW."
    )


def _to_uint8(array):
    import numpy as np

    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    values = array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(values, 0, 255).astype(np.uint8)
    if values.min() < 0:
        values = (values + 1.0) / 2.0  # -1..1, a generator's range
    if values.max() <= 1.0:
        values = values * 255.0
    return np.clip(values.round(), 0, 255).astype(np.uint8)


def _high_depth_to_l(image):
    """Scale a 16-bit, 32-bit or float grey image to 8-bit ``L``."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 1.0 if values.max() <= 1.0 else 255.0
    else:
        scale = 65535.0 if values.max() <= 65535 else float(values.max())
    pixels = np.clip(values / scale * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "L")


def _indexed(name, i, count):
    return name if count == 1 else f"{name}[{i}]"


def _reason(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
