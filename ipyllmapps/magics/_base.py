"""What every magics class shares: the settings, the manager, storing results."""

import keyword
import re
import shlex

from IPython.core.magic import Magics, magics_class

from ipyllmapps.errors import UserError


@magics_class
class AppMagics(Magics):
    """Base class of the ipyllmapps magics.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell
    extension : ipyllmapps._extension.Extension
        Gives the settings (``config_obj``) and the model manager.
    """

    def __init__(self, shell, extension):
        super().__init__(shell)
        self.extension = extension

    @property
    def config_obj(self):
        return self.extension.config

    @property
    def manager(self):
        return self.extension.manager

    def store(self, name, records):
        """Put ``records`` in the user's variable ``name`` (a DataFrame with pandas)."""
        if not name:
            return
        check_variable_name(name)
        self.shell.user_ns[name] = as_table(records)


def check_variable_name(name):
    """Refuse an ``-o`` name that is not a variable a user could read back."""
    if not name.isidentifier() or keyword.iskeyword(name) or name in _IPYTHON_NAMES:
        raise UserError(
            f"`-o {name}` is not a variable name you can use: try `-o results`."
        )


_IPYTHON_NAMES = {
    "In",
    "Out",
    "get_ipython",
    "exit",
    "quit",
    "_",
    "__",
    "___",
    "_i",
    "_ii",
    "_iii",
    "_oh",
    "_ih",
    "_dh",
}


def check_count(value, flag, example):
    """Refuse a count below 1 (epochs, batch size, top-k...); ``None`` is unset."""
    if value is not None and value < 1:
        raise UserError(f"`{flag} {value}` must be at least 1: try `{flag} {example}`.")


def check_rate(value, flag, example):
    """Refuse a learning rate outside (0, 1], NaN and infinity included."""
    if value is not None and not 0 < value <= 1:
        raise UserError(
            f"`{flag} {value:g}` must be above 0 and at most 1: try `{flag} {example}`."
        )


def as_table(records):
    """Return records as a pandas DataFrame when pandas is installed."""
    try:
        import pandas
    except ImportError:
        return list(records)
    return pandas.DataFrame(list(records))


def parse(magic_function, line):
    """Parse a magic's line with its ``magic_arguments``, as one-line errors.

    A stray quote, an unknown flag or a missing value raise :class:`UserError`
    naming the problem and the magic's usage; ``--help`` prints the magic's
    documentation and returns ``None``.
    """
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise UserError(
            f"{exc} in `{line.strip()}`: close the quote or remove it."
        ) from None
    if wants_help(line):
        print(magic_function.__doc__)
        return None
    try:
        return magic_function.parser.parse_args(tokens)
    except Exception as exc:  # argparse's UsageError
        raise UserError(f"{exc}. Usage: `{usage_line(magic_function)}`") from None


def wants_help(line):
    """Whether ``-h`` / ``--help`` stands in the line as a flag (not quoted text)."""
    return re.search(r"(^|\s)(-h|--help)(\s|$)", line) is not None


def usage_line(magic_function):
    """The ``%magic [-flags] ...`` usage line IPython adds to a magic's docstring."""
    for text in (magic_function.__doc__ or "").splitlines():
        if text.strip().startswith("%"):
            return " ".join(text.split())
    return magic_function.__name__
