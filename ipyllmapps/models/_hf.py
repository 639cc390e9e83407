"""Loading Hugging Face models by hub id or folder, with one-line errors."""

import contextlib
import os
from pathlib import Path

from ipyllmapps.errors import UserError
from ipyllmapps.models import BUNDLED


def torch_dtype(dtype):
    """The torch dtype named by an ipyllmapps dtype string."""
    import torch

    return {
        "auto": torch.float32,
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
    }[dtype]


def from_pretrained(cls, source, *, offline, task, **kwargs):
    """Call ``cls.from_pretrained(source)``, turning "not found" into a UserError.

    With ``offline`` (or ``HF_HUB_OFFLINE=1``) only local folders and the hub
    cache are looked at, so a classroom without internet gets the answer at
    once instead of after network time-outs.
    """
    local = Path(source).expanduser()
    if local.exists():
        source = str(local)
    elif _looks_like_path(source):
        raise UserError(f"No file or folder `{source}`: check the path.")
    try:
        with no_progress_bars():
            return cls.from_pretrained(
                source, local_files_only=offline or _hub_offline(), **kwargs
            )
    except (OSError, ValueError) as exc:
        if local.exists():
            raise UserError(
                f"`{source}` is not a model folder that {task} can load: "
                f"{_first_line(exc)}"
            ) from None
        raise UserError(not_found_message(source, task)) from None


@contextlib.contextmanager
def no_progress_bars():
    """Hide transformers' per-load progress bars for the duration of a load.

    They print to stderr on every load, which in a notebook buries the result;
    the user's own setting is restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def not_found_message(source, task):
    """The one line for a model that is neither bundled, local nor cached."""
    bundled = [alias for alias, (t, _) in BUNDLED.items() if t == task]
    offer = ", ".join(f"`{a}`" for a in bundled) or "a local folder"
    return (
        f"`{source}` is not a bundled model, a local folder, or a hub model in the "
        f"local cache (and the hub cannot be reached): use {offer} or a folder path."
    )


def _looks_like_path(source):
    """A hub id is ``name`` or ``org/name``; anything else path-like is a path."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1


def _hub_offline():
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
