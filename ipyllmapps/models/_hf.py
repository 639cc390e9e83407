"""Loading Hugging Face models by hub id or folder, with one-line errors."""

import os
from pathlib import Path

from ipyllmapps.errors import UserError
from ipyllmapps.models import BUNDLED


def torch_dtype(dtype):
    """The torch dtype named by an ipyllmapps dtype string."""
    import torch

    return {"auto": torch.float32, "float32": torch.float32,
            "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


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
        return cls.from_pretrained(source, local_files_only=offline or _hub_offline(),
                                   **kwargs)
    except (OSError, ValueError) as exc:
        if local.exists():
            raise UserError(f"`{source}` is not a model folder that {task} can load: "
                            f"{_first_line(exc)}") from None
        raise UserError(not_found_message(source, task)) from None


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
