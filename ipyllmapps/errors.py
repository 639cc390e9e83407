"""User-facing errors: one line that says what was wrong and what to type.

A :class:`UserError` raised anywhere below a magic is turned into IPython's
``UsageError`` by :func:`user_errors`, which IPython prints as a single line with
no traceback. The conversion happens outside the ``except`` block, so the new
exception carries no ``__context__``: nothing in ``sys.last_value`` keeps the
frames (and the tensors they reference) of the failed call alive.
"""

import functools
import math
import traceback


class UserError(Exception):
    """A mistake the user can fix; the message names the fix."""


def user_errors(method):
    """Decorate a magic method so that a :class:`UserError` prints one line.

    With ``%config LLMApps.full_tracebacks = True`` the original exception
    propagates with its traceback instead.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except UserError as exc:
            if self.config_obj.full_tracebacks:
                raise
            message = str(exc)
            _drop_frames(exc)
        from IPython.core.error import UsageError

        raise UsageError(message)

    return wrapper


def _drop_frames(exc):
    """Clear the locals of the frames an exception passed through."""
    while exc is not None:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__


def parse_size(text):
    """Parse ``"6GB"``, ``"512MB"``, ``"1.5GiB"`` or a byte count into bytes.

    Examples
    --------
    >>> parse_size("512MB")
    536870912
    """
    units = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    cleaned = str(text).strip().upper().replace("IB", "").rstrip("B").replace(" ", "")
    number = cleaned.rstrip("KMGT")
    unit = cleaned[len(number) :]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0) or unit not in units:
        raise UserError(
            f"`{text}` is not a memory size: write a positive size like `6GB`, "
            "`512MB` or `1.5GiB`."
        )
    return int(value * units[unit])


def format_size(nbytes):
    """Format a byte count for people: ``1.5 GB``, ``340 MB``, ``12 KB``."""
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
