"""The epoch loop shared by every fine-tuning and GAN training run."""

import copy
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ipyllmapps.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a training run did: metrics per finished epoch, and whether it stopped."""

    epochs: list = field(default_factory=list)  # one dict of metrics per epoch
    interrupted: bool = False

    @property
    def last(self):
        return self.epochs[-1] if self.epochs else {}


def fit(modules, epochs, run_epoch):
    """Run ``run_epoch(epoch)`` for each epoch; Ctrl-C keeps the last finished one.

    Parameters
    ----------
    modules : list of torch.nn.Module
        The modules being trained. Their weights are snapshotted after every
        finished epoch, so an interrupt mid-epoch restores a consistent model.
    epochs : int
    run_epoch : callable
        Trains one epoch (numbered from 1) and returns its metrics as a dict.

    Returns
    -------
    FitResult
    """
    result = FitResult()
    saved = [copy.deepcopy(m.state_dict()) for m in modules]
    try:
        for epoch in range(1, epochs + 1):
            result.epochs.append(run_epoch(epoch))
            saved = [copy.deepcopy(m.state_dict()) for m in modules]
    except KeyboardInterrupt:
        log.info("training interrupted after %d finished epoch(s)", len(result.epochs))
        result.interrupted = True
        for module, state in zip(modules, saved):
            module.load_state_dict(state)
    finally:
        for module in modules:
            module.eval()
    return result


def check_folder(folder, flag="--save"):
    """Refuse a folder that cannot be created or written, before any training.

    Folders made to try it are removed again, so nothing is left behind.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(
            f"`{flag} {folder}` is a file, not a folder: give a folder, like "
            f"`{flag} ./my-model`."
        )
    made = []
    try:
        for level in reversed([folder, *folder.parents]):
            if not level.exists():
                level.mkdir()
                made.append(level)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(
            f"`{flag} {folder}` cannot be created or written "
            f"({exc.strerror or type(exc).__name__}): give a folder you can "
            f"write, like `{flag} ./my-model`."
        ) from None
    finally:
        for level in reversed(made):
            level.rmdir()
