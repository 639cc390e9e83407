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
    """Remove output-cache entries (``Out[n]``, ``_``, ``_n``...) that hold a model."""
    if shell is None:
        return
    user_ns = shell.user_ns
    outputs = user_ns.get("Out", {})
    for number, value in list(outputs.items()):
        if _reaches(value, ids):
            del outputs[number]
            user_ns.pop(f"_{number}", None)
    for name in ("_", "__", "___"):
        if _reaches(user_ns.get(name), ids):
            user_ns[name] = ""
    displayhook = getattr(shell, "displayhook", None)
    for attr in ("_", "__", "___"):
        if displayhook is not None and _reaches(getattr(displayhook, attr, None), ids):
            setattr(displayhook, attr, "")


def scrub_tracebacks(ids):
    """Clear the frames of the last traceback when any of them holds a model."""
    exc = getattr(sys, "last_value", None) or getattr(sys, "last_exc", None)
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    tracebacks = [e.__traceback__ for e in chain if e.__traceback__ is not None]
    last_tb = getattr(sys, "last_traceback", None)
    if last_tb is not None:
        tracebacks.append(last_tb)
    for tb in tracebacks:
        if _frames_reach(tb, ids):
            traceback.clear_frames(tb)


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
        if not name.startswith("_") and name not in ("In", "Out") and _reaches(value, ids)
    )
