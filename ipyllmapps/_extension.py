"""The running extension: settings, manager, magics and the sidebar's comm."""

import importlib

from ipyllmapps.config import LLMApps
from ipyllmapps.magics import MAGIC_CLASSES
from ipyllmapps.manager import ModelManager


class Extension:
    """Everything ``%load_ext ipyllmapps`` sets up in one kernel.

    ``close()`` (run by ``%unload_ext`` and before ``%reload_ext`` loads a new
    one) unloads every model, unregisters the magics and closes the comm, so a
    reload leaves no duplicate state.
    """

    def __init__(self, shell):
        self.shell = shell
        self.config = LLMApps(parent=shell)
        shell.configurables.append(self.config)
        self.manager = ModelManager(self.config, shell)
        self.magics = [self._magics(path) for path in MAGIC_CLASSES]
        for magics in self.magics:
            shell.register_magics(magics)

        from ipyllmapps import _comm

        self.comm = _comm.ModelsChannel(self)

    def close(self):
        self.comm.close()
        for magics in self.magics:
            if hasattr(magics, "close"):
                magics.close()
        self.manager.unload_all()
        registry = self.shell.magics_manager.magics
        for magics in self.magics:
            for kind, table in magics.magics.items():
                for name in table:
                    registry[kind].pop(name, None)
            self.shell.magics_manager.registry.pop(type(magics).__name__, None)
        if self.config in self.shell.configurables:
            self.shell.configurables.remove(self.config)

    def _magics(self, path):
        module_name, class_name = path.split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(self.shell, self)
