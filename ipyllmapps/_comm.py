"""The kernel side of the JupyterLab sidebar: a comm on ``ipyllmapps.models``.

The sidebar opens a comm to this target and may send only these requests::

    {"action": "list"}
    {"action": "unload", "name": NAME}
    {"action": "pin", "name": NAME}   {"action": "unpin", "name": NAME}
    {"action": "move", "name": NAME, "device": DEVICE}
    {"action": "bank", "lang": "en"}

The kernel answers each with ``{"type": "state", ...}`` (models and devices),
``{"type": "bank", "items": [...]}`` or ``{"type": "error", "message": ...,
"action": ...}`` naming the request that failed, and sends a fresh ``state``
after every change the manager makes, whichever cell or button caused it.
The kernel may also send ``{"type": "insert", "code": ...}``: the button of a
``%ask pN`` card asks the sidebar to insert the solving magic as a new cell.
"""

import logging

from ipyllmapps.errors import UserError

TARGET = "ipyllmapps.models"
log = logging.getLogger(__name__)


class ModelsChannel:
    """Registers the comm target and relays manager changes to open comms."""

    def __init__(self, extension):
        self.extension = extension
        self.comms = []
        self._manager = _comm_manager(extension.shell)
        if self._manager is not None:
            self._manager.register_target(TARGET, self._open)
        self._unsubscribe = extension.manager.subscribe(self._changed)

    def close(self):
        self._unsubscribe()
        for comm in list(self.comms):
            comm.close()
        self.comms.clear()
        if self._manager is not None:
            self._manager.unregister_target(TARGET, self._open)

    def insert_cell(self, code):
        """Ask every open sidebar to insert ``code`` below the active cell.

        Returns whether a sidebar was there to do it.
        """
        for comm in list(self.comms):
            comm.send({"type": "insert", "code": code})
        return bool(self.comms)

    def state(self):
        """The message describing every loaded model and device."""
        manager = self.extension.manager
        return {"type": "state", "models": manager.list(), "devices": manager.devices()}

    def handle(self, request):
        """Answer one request from the sidebar."""
        manager = self.extension.manager
        action = request.get("action")
        try:
            if action == "list":
                return self.state()
            if action == "bank":
                return {"type": "bank", "items": _bank_items(request.get("lang"))}
            name = request.get("name")
            if action == "unload":
                manager.unload(name)
            elif action in ("pin", "unpin"):
                manager.pin(name, action == "pin")
            elif action == "move":
                manager.move(name, request.get("device"))
            else:
                return _error(action, f"unknown request `{action}`")
        except UserError as exc:
            return _error(action, str(exc))
        return self.state()

    def _open(self, comm, open_msg):
        self.comms.append(comm)

        @comm.on_msg
        def _received(msg):
            request = msg["content"]["data"]
            if not isinstance(request, dict):
                request = {}
            try:
                reply = self.handle(request)
            except Exception as exc:  # a bug: keep its traceback, tell the sidebar
                log.exception("ipyllmapps sidebar request %r failed", request)
                reply = _error(request.get("action"), f"{type(exc).__name__}: {exc}")
            comm.send(reply)

        @comm.on_close
        def _closed(msg):
            if comm in self.comms:
                self.comms.remove(comm)

        comm.send(self.state())

    def _changed(self, event, name):
        if not self.comms:
            return
        message = self.state()
        for comm in list(self.comms):
            comm.send(message)


def _comm_manager(shell):
    """The kernel's comm manager, or ``None`` outside a kernel (a plain shell)."""
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        from comm import get_comm_manager
    except ImportError:
        return None
    return get_comm_manager()


def _error(action, message):
    return {"type": "error", "message": message, "action": action}


def _bank_items(lang):
    from ipyllmapps.bank import load_bank

    return [item.summary() for item in load_bank(lang or "en").items]
