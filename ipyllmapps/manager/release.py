"""Finding and dropping references to a model that the package does not own.

When a model is unloaded, IPython may still hold it: in the output cache
(``Out``, ``_``, ``__``, ``_N``) after a cell echoed it, or in the frames of the
last traceback after a forward pass failed. Both are cleared here, but only
where they actually reach the model.
"""

import sys
import traceback


def owned_ids(entry):
    """Return the ids of every object that belongs to a loaded model."""
    bundle = entry.bundle
    ids = {id(entry), id(bundle)}
    if bundle is None:
        return ids
    for holder in bundle.weights():
        ids.add(id(holder))
        if hasattr(holder, "modules"):
            ids.update(id(m) for m in holder.modules())
            ids.update(id(t) for t in holder.parameters())
            ids.update(id(t) for t in holder.buffers())
    return ids


def scrub_output_cache(shell, ids):
    """Remove output-cache entries (``Out[n]``, ``_``, ``_n``...) that hold a model.

    IPython keeps each in several places: ``Out`` / ``_oh``, the user namespace,
    its hidden copy (``user_ns_hidden``) and the display hook's own attributes.
    All are cleared together; ``_``, ``__`` and ``___`` become ``""`` in every
    place at once, so IPython goes on updating them after the next result.
    """
    if shell is None:
        return
    user_ns, hidden = shell.user_ns, shell.user_ns_hidden
    outputs = user_ns.get("_oh", user_ns.get("Out", {}))
    for number, value in list(outputs.items()):
        if _reaches(value, ids):
            del outputs[number]
            for namespace in (user_ns, hidden):
                namespace.pop(f"_{number}", None)
    displayhook = getattr(shell, "displayhook", None)
    for name in ("_", "__", "___"):
        held = [user_ns.get(name), hidden.get(name), getattr(displayhook, name, None)]
        if any(_reaches(value, ids) for value in held):
            for namespace in (user_ns, hidden):
                if name in namespace:
                    namespace[name] = ""
            if displayhook is not None:
                setattr(displayhook, name, "")


def scrub_tracebacks(shell, ids):
    """Forget the last traceback when any of its frames holds a model.

    Clearing the frames' locals is not enough: a frame also keeps its closure
    cells (torch's hooks keep the module that way), so the traceback itself is
    dropped, from ``sys`` and from IPython's traceback printer. ``%debug`` then
    has nothing to inspect for that error, which held an unloaded model anyway.
    """
    exc = getattr(sys, "last_value", None) or getattr(sys, "last_exc", None)
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    tracebacks = [e.__traceback__ for e in chain if e.__traceback__ is not None]
    last_tb = getattr(sys, "last_traceback", None)
    if last_tb is not None:
        tracebacks.append(last_tb)
    if not any(_frames_reach(tb, ids) for tb in tracebacks):
        return
    for tb in tracebacks:
        traceback.clear_frames(tb)
    for e in chain:
        e.__traceback__ = None
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    printer = getattr(shell, "InteractiveTB", None)
    if printer is not None and getattr(printer, "tb", None) is not None:
        printer.tb = None


def _frames_reach(tb, ids):
    while tb is not None:
        frame = tb.tb_frame
        if any(_reaches(value, ids) for value in frame.f_locals.values()):
            return True
        tb = tb.tb_next
    return False


def _reaches(value, ids, depth=2):
    """Whether ``value`` is, or directly contains, an object in ``ids``."""
    if value is None:
        return False
    if id(value) in ids:
        return True
    if depth == 0:
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_reaches(v, ids, depth - 1) for v in value)
    if isinstance(value, dict):
        return any(_reaches(v, ids, depth - 1) for v in value.values())
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and not isinstance(value, type):
        return any(_reaches(v, ids, depth - 1) for v in attrs.values())
    return False


def names_holding(user_ns, ids):
    """Names in the user's namespace that still reach a model after unload."""
    return sorted(
        name
        for name, value in user_ns.items()
        if not name.startswith("_")
        and name not in ("In", "Out")
        and _reaches(value, ids)
    )
