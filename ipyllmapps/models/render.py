"""Turning generator output in [-1, 1] into uint8 images, grids and PNG bytes.

Works on numpy arrays (and anything ``numpy.asarray`` accepts, such as a CPU
torch tensor), so both the torch and the Keras generators share it and nothing
here imports a deep-learning framework.
"""

import io

import numpy as np

# Channel counts an image may have: grey, grey + alpha, RGB, RGBA.
_CHANNELS = (1, 2, 3, 4)


def to_uint8(batch, channels_first=None):
    """Convert generator output in [-1, 1] to a list of uint8 images.

    Values are mapped linearly (-1 -> 0, +1 -> 255) and clipped before the
    cast, so values outside [-1, 1] saturate instead of wrapping around;
    NaN becomes 0.

    Parameters
    ----------
    batch : array-like
        Shape ``(N, C, H, W)``, ``(N, H, W, C)`` or ``(N, H, W)``.
    channels_first : bool, optional
        Whether the channel axis comes right after the batch axis. Pass it
        whenever the layout is known: the generators of
        :mod:`ipyllmapps.models.gan` always give ``(N, C, H, W)``, so their
        callers pass ``True``. Left out (an array of unknown origin), it is
        guessed from the shape alone: the channel axis is axis 1 or the last
        axis, whichever has 1-4 entries; when both have, the reading that
        gives square images wins, and channels-last when both readings are
        square (a ``(N, 3, 3, 3)`` or ``(N, 4, 4, 4)`` batch), which a tiny
        channels-first batch can only get right by passing ``True``.

    Returns
    -------
    list of numpy.ndarray
        ``H x W`` arrays for one channel, ``H x W x C`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.full((2, 1, 3, 3), -1.0))[0].max()
    0
    """
    array = np.asarray(batch, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise ValueError(
            f"expected a batch of images with 3 or 4 axes, got shape {array.shape}"
        )
    if channels_first is None:
        channels_first = _guess_channels_first(array.shape)
    if channels_first:
        array = array.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    scaled = np.nan_to_num((array + 1.0) * 127.5, nan=0.0) + 0.5
    pixels = np.clip(scaled, 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return list(pixels)


def _guess_channels_first(shape):
    """Guess the layout of an ``(N, ?, ?, ?)`` shape (see :func:`to_uint8`)."""
    _, first, height, last = shape
    last_fits, first_fits = last in _CHANNELS, first in _CHANNELS
    if last_fits and first_fits:
        square_first = height == last  # (N, C, H, W) with H == W
        square_last = first == height  # (N, H, W, C) with H == W
        return square_first and not square_last
    return first_fits and not last_fits


def grid(images, nrow=None, pad=2, scale=1, background=0):
    """Tile uint8 images into one PIL image, ``nrow`` images per row.

    Parameters
    ----------
    images : list of numpy.ndarray
        Same-sized ``H x W`` or ``H x W x C`` uint8 images (from :func:`to_uint8`).
    nrow : int, optional
        Images per row; by default the smallest square that holds them all.
    pad : int
        Pixels between images (before scaling).
    scale : int
        Each pixel becomes a ``scale x scale`` block, so small images stay sharp.
    background : int
        Grey level of the padding.
    """
    from PIL import Image

    if not images:
        raise ValueError("no images to tile")
    count = len(images)
    nrow = max(1, min(nrow or int(np.ceil(np.sqrt(count))), count))
    rows = -(-count // nrow)
    first = images[0]
    height, width = first.shape[:2]
    shape = (rows * (height + pad) + pad, nrow * (width + pad) + pad) + first.shape[2:]
    canvas = np.full(shape, background, dtype=np.uint8)
    for index, image in enumerate(images):
        top = pad + (index // nrow) * (height + pad)
        left = pad + (index % nrow) * (width + pad)
        canvas[top : top + height, left : left + width] = image
    picture = Image.fromarray(canvas)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
        )
    return picture


def display_scale(size, target=96):
    """The integer zoom that shows a ``size``-pixel image at about ``target`` pixels."""
    return max(1, round(target / size))


def png_bytes(picture):
    """Encode a PIL image as PNG bytes."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
