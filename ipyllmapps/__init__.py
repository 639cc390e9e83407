"""Notebook magics and widgets for the classic applications of large AI models.

Load it in a notebook with ``%load_ext ipyllmapps``. Importing this package is
cheap on purpose: torch, transformers and tensorflow are imported only by the
first magic that needs them.
"""

# The subpackage ipyllmapps.manager is imported first, so that the function
# manager() defined below is what the name means on this package; importing a
# submodule later (``from ipyllmapps.manager import memory``) does not rebind it.
# The subpackage imports nothing heavy.
from ipyllmapps import manager as _manager_package  # noqa: F401

__version__ = "0.1.0"

_running = None  # the running Extension, set by load_ipython_extension


def load_ipython_extension(ipython):
    """Register the magics and create this kernel's model manager."""
    global _running
    from ipyllmapps._extension import Extension

    if _running is not None:
        _running.close()
    _running = Extension(ipython)


def unload_ipython_extension(ipython):
    """Unload every model and unregister the magics."""
    global _running
    if _running is not None:
        _running.close()
        _running = None


def manager():
    """Return this kernel's :class:`~ipyllmapps.manager.ModelManager`.

    Examples
    --------
    >>> import ipyllmapps
    >>> ipyllmapps.manager().list()  # doctest: +SKIP
    """
    from ipyllmapps.errors import UserError

    if _running is None:
        raise UserError("ipyllmapps is not loaded: run `%load_ext ipyllmapps` first.")
    return _running.manager


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "ipyllmapps"}]
