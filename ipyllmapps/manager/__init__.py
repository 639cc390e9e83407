"""The kernel-side model manager: load once, account memory, evict, release.

One :class:`ModelManager` lives in each kernel, created by ``%load_ext
ipyllmapps`` and reachable as ``ipyllmapps.manager()``. Every magic gets its
models through :meth:`ModelManager.load`, so re-running a cell costs the
forward pass, not a reload.
"""

import logging
import os
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field

from ipyllmapps.config import _DEVICE, _DTYPES
from ipyllmapps.errors import UserError, format_size, parse_size
from ipyllmapps.manager import memory, release
from ipyllmapps.manager.bundle import Bundle

__all__ = ["Bundle", "LoadedModel", "ModelKey", "ModelManager"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelKey:
    """What makes two loads the same model."""

    source: str
    task: str
    device: str
    dtype: str


@dataclass(eq=False, repr=False)
class LoadedModel:
    """One model held by the manager."""

    name: str
    key: ModelKey
    bundle: Bundle
    num_parameters: int
    nbytes: int
    pinned: bool = False
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    loader: object = None  # how to load it again (None for a registered model)

    @property
    def task(self):
        return self.key.task

    @property
    def device(self):
        return self.key.device

    def __repr__(self):
        return (
            f"<LoadedModel {self.name!r}: {self.key.task} on {self.key.device}, "
            f"{format_size(self.nbytes)}>"
        )

    def record(self):
        """Describe this model in plain Python (no reference to the weights)."""
        return {
            "name": self.name,
            "task": self.key.task,
            "source": self.key.source,
            "framework": self.bundle.framework,
            "device": self.key.device,
            "dtype": self.key.dtype,
            "parameters": self.num_parameters,
            "bytes": self.nbytes,
            "last_used": self.last_used,
            "pinned": self.pinned,
        }


class ModelManager:
    """Load-once cache of models with memory accounting and LRU eviction.

    Parameters
    ----------
    config : ipyllmapps.config.LLMApps
        Device, dtype, budget and eviction settings, read at each call.
    shell : IPython.core.interactiveshell.InteractiveShell, optional
        Its output cache is cleared of a model when the model is unloaded.
    """

    def __init__(self, config, shell=None):
        self.config = config
        self.shell = shell
        self.load_count = 0
        self._models = {}  # ModelKey -> LoadedModel
        self._lock = threading.RLock()
        self._key_locks = {}
        self._auto_budget = {}
        self._listeners = []

    # -- loading -----------------------------------------------------------

    def load(
        self,
        source,
        task,
        loader=None,
        *,
        device=None,
        dtype=None,
        name=None,
        estimate=None,
    ):
        """Return the loaded model for ``source``, loading it only the first time.

        Parameters
        ----------
        source : str
            A bundled alias, a name given to a fine-tuned model, a hub id, a
            local folder or file, or a torchvision model name.
        task : str
            The application (``classify``, ``image``, ``asr``, ``gan``, ``lm``...).
        loader : callable, optional
            ``loader(source, device=..., dtype=..., offline=...) -> Bundle``;
            by default the application's own loader.
        estimate : int, optional
            Expected bytes, used to make room before loading.
        """
        source = str(source)
        with self._lock:
            named = self._by_name(source)
            if named is not None and named.key.task == task:
                return self._touch(named)
        device = self.resolve_device(device)
        dtype = self.resolve_dtype(dtype, device)
        key = ModelKey(source, task, device, dtype)

        with self._lock:
            if key in self._models:
                return self._touch(self._models[key])
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a second caller for the same key waits here, then reuses
            with self._lock:
                if key in self._models:
                    return self._touch(self._models[key])
            entry = self._load_new(key, loader, name, estimate)
        self._notify("load", entry.name)
        return entry

    def register(self, name, bundle, task, *, source=None):
        """Hold a model built in this kernel (a fine-tuned one) under ``name``.

        It cannot be loaded again from anywhere, so it starts pinned: neither
        the budget nor ``models_per_task`` evicts it until it is unpinned.
        """
        device = _device_of(bundle) or "cpu"
        # Keyed by name: two models trained on the same data are two models.
        key = ModelKey(f"{source or name} as {name}", task, device, "float32")
        with self._lock:
            old = self._by_name(name)
            if old is not None:
                self._release(old)
            params, nbytes = memory.measure(bundle)
            entry = LoadedModel(name, key, bundle, params, nbytes, pinned=True)
            self._models[key] = entry
        self._notify("load", name)
        return entry

    # -- inspecting --------------------------------------------------------

    def get(self, name):
        """Return the loaded model called ``name``."""
        with self._lock:
            entry = self._by_name(name)
        if entry is None:
            raise UserError(f"No model named `{name}` is loaded: {self._names_hint()}")
        return entry

    def list(self):
        """Return a record per loaded model, most recently used first."""
        with self._lock:
            entries = sorted(self._models.values(), key=lambda e: -e.last_used)
            return [e.record() for e in entries]

    def __contains__(self, name):
        return self._by_name(name) is not None

    def __len__(self):
        return len(self._models)

    def used_bytes(self, device):
        """Bytes the loaded models take on ``device``."""
        with self._lock:
            return sum(
                e.nbytes for e in self._models.values() if e.key.device == device
            )

    def devices(self):
        """Describe each device that holds a model or is the default one."""
        names = {e.key.device for e in self._models.values()}
        names.add(self.resolve_device(None))
        result = []
        for device in sorted(names):
            free, total = memory.device_memory(device)
            result.append(
                {
                    "device": device,
                    "used": self.used_bytes(device),
                    "budget": self.budget_bytes(device),
                    "free": free,
                    "total": total,
                }
            )
        return result

    # -- changing ----------------------------------------------------------

    def unload(self, name):
        """Unload the model called ``name`` and give its memory back."""
        entry = self.get(name)
        with self._lock:
            self._release(entry)
        self._notify("unload", name)

    def unload_all(self):
        """Unload every model, pinned ones included."""
        with self._lock:
            for entry in list(self._models.values()):
                self._release(entry)
        self._notify("unload", None)

    def pin(self, name, pinned=True):
        """Keep ``name`` loaded whatever the budget (``pinned=False`` undoes it)."""
        entry = self.get(name)
        entry.pinned = pinned
        self._notify("pin", name)

    def move(self, name, device):
        """Move a loaded model to another device."""
        entry = self.get(name)
        device = self.resolve_device(device)
        if device == entry.key.device:
            return entry
        if entry.bundle.framework != "torch":
            raise UserError(
                f"`{name}` is a {entry.bundle.framework} model and cannot be moved: "
                f"unload it and load it again with `--device {device}`."
            )
        with self._lock:
            self._check_fits(entry.nbytes, device, entry.key.source)
            self._make_room(device, None, entry.nbytes, keep=entry)
            entry.bundle.to(device)
            del self._models[entry.key]
            entry.key = ModelKey(
                entry.key.source, entry.key.task, device, entry.key.dtype
            )
            self._models[entry.key] = entry
        memory.release_memory()
        self._notify("move", name)
        return entry

    def set_budget(self, size):
        """Set the per-device memory budget (``"6GB"``, ``"auto"`` or bytes)."""
        if str(size).strip().lower() != "auto":
            parse_size(size)  # raises the one-line error
        self.config.budget = str(size)
        with self._lock:
            for device in {e.key.device for e in self._models.values()}:
                self._make_room(device, None, 0)
        self._notify("budget", None)

    def budget_bytes(self, device):
        """The memory budget on ``device`` in bytes."""
        if self.config.budget.lower() != "auto":
            return parse_size(self.config.budget)
        if device not in self._auto_budget:
            free, _ = memory.device_memory(device)
            held = self.used_bytes(device)
            self._auto_budget[device] = int((free + held) * self.config.budget_fraction)
        return self._auto_budget[device]

    def subscribe(self, callback):
        """Call ``callback(event, name)`` after every change; returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    # -- devices -----------------------------------------------------------

    def resolve_device(self, device):
        """Turn ``None`` / ``auto`` / ``cuda`` into a concrete device name."""
        device = (device or self.config.device or "auto").lower()
        if device == "auto":
            return "cuda:0" if _cuda_available() else "cpu"
        if device == "cuda":
            device = "cuda:0"
        if not _DEVICE.match(device):
            raise UserError(
                f"`{device}` is not a device: use `cpu`, `cuda` or `cuda:0`."
            )
        if device.startswith("cuda") and not _cuda_available():
            raise UserError(
                f"`{device}` was asked for but this kernel sees no GPU: "
                "use `--device cpu`."
            )
        return device

    def resolve_dtype(self, dtype, device):
        """Turn ``None`` / ``auto`` into ``float32`` on CPU, ``float16`` on a GPU."""
        dtype = (dtype or self.config.dtype or "auto").lower()
        if dtype not in _DTYPES:
            raise UserError(
                f"`{dtype}` is not a dtype: use one of {', '.join(_DTYPES)}."
            )
        if dtype == "auto":
            return "float16" if device.startswith("cuda") else "float32"
        return dtype

    # -- internals ---------------------------------------------------------

    def _load_new(self, key, loader, name, estimate):
        if loader is None:
            from ipyllmapps.models import loader_for

            loader = loader_for(key.task)
        estimate = estimate or _bytes_on_disk(key.source)
        if estimate:
            self._check_fits(estimate, key.device, key.source)
        # Make room first, so that switching models never holds two at once; but
        # only for a source that is there, so that a typo evicts nothing, and
        # load back what was evicted if the load fails after all.
        evicted = []
        if _exists(key.source, key.task):
            with self._lock:
                evicted = self._make_room(key.device, key.task, estimate or 0)
        try:
            log.debug(
                "loading %s for %s on %s (%s)",
                key.source,
                key.task,
                key.device,
                key.dtype,
            )
            bundle = loader(
                key.source,
                device=key.device,
                dtype=key.dtype,
                offline=self.config.offline,
            )
            params, nbytes = memory.measure(bundle)
            if nbytes > self.budget_bytes(key.device):
                bundle.close()
                del bundle
                memory.release_memory()
                self._check_fits(nbytes, key.device, key.source)
        except BaseException:
            self._restore(evicted)
            raise

        with self._lock:
            entry = LoadedModel(
                self._free_name(name or _default_name(key.source)),
                key,
                bundle,
                params,
                nbytes,
                loader=loader,
            )
            self._models[key] = entry
            self.load_count += 1
            self._make_room(key.device, key.task, 0, keep=entry)
        return entry

    def _restore(self, evicted):
        """Load back models evicted for a load that then failed."""
        for key, loader, name in evicted:
            try:
                bundle = loader(
                    key.source,
                    device=key.device,
                    dtype=key.dtype,
                    offline=self.config.offline,
                )
            except Exception:
                log.warning("could not load %s back after a failed load", name)
                continue
            params, nbytes = memory.measure(bundle)
            with self._lock:
                self._models[key] = LoadedModel(
                    name, key, bundle, params, nbytes, loader=loader
                )
            self._notify("load", name)

    def _check_fits(self, nbytes, device, source):
        budget = self.budget_bytes(device)
        if nbytes > budget:
            raise UserError(
                f"`{source}` needs {format_size(nbytes)} but the budget on {device} is "
                f"{format_size(budget)}: raise it with `%models budget "
                f"{_round_up_gb(nbytes)}GB` or use a smaller model."
            )

    def _make_room(self, device, task, incoming, keep=None):
        """Evict least recently used unpinned models to honour the limits.

        Returns ``(key, loader, name)`` of each evicted model.
        """
        evicted = []
        limit = self.config.models_per_task
        if task is not None and limit > 0:
            same_task = self._evictable(lambda e: e.key.task == task, keep)
            extra = 1 if keep is None else 0  # room for the one being loaded
            for entry in same_task[: max(0, len(same_task) + extra - limit)]:
                evicted.append(
                    self._evict(entry, f"only {limit} `{task}` model(s) are kept")
                )

        budget = self.budget_bytes(device)
        for entry in self._evictable(lambda e: e.key.device == device, keep):
            if self.used_bytes(device) + incoming <= budget:
                break
            evicted.append(
                self._evict(entry, f"the budget on {device} is {format_size(budget)}")
            )
        return evicted

    def _evictable(self, predicate, keep):
        candidates = [
            e
            for e in self._models.values()
            if not e.pinned and e is not keep and predicate(e)
        ]
        return sorted(candidates, key=lambda e: e.last_used)

    def _evict(self, entry, reason):
        log.info("unloading %s: %s", entry.name, reason)
        self._release(entry)
        self._notify("unload", entry.name)
        return entry.key, entry.loader, entry.name

    def _release(self, entry):
        """Drop every reference the package and IPython hold to a model."""
        self._models.pop(entry.key, None)
        self._key_locks.pop(entry.key, None)
        ids = release.owned_ids(entry)
        watchers = [weakref.ref(w) for w in entry.bundle.weights() if _weakrefable(w)]
        release.scrub_output_cache(self.shell, ids)
        release.scrub_tracebacks(self.shell, ids)
        entry.bundle.close()
        memory.release_memory()
        if any(w() is not None for w in watchers) and self.shell is not None:
            names = release.names_holding(self.shell.user_ns, ids)
            if names:
                warnings.warn(
                    f"`{entry.name}` is unloaded but the variable(s) "
                    f"{', '.join(names)} still hold it: `del {names[0]}` frees the "
                    "memory.",
                    stacklevel=3,
                )
        del entry.bundle

    def _touch(self, entry):
        entry.last_used = time.time()
        return entry

    def _by_name(self, name):
        for entry in self._models.values():
            if entry.name == name:
                return entry
        return None

    def _free_name(self, name):
        candidate, n = name, 2
        while self._by_name(candidate) is not None:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def _names_hint(self):
        names = [e.name for e in self._models.values()]
        if not names:
            return "no model is loaded (`%models` lists them)."
        return "loaded are " + ", ".join(f"`{n}`" for n in names) + "."

    def _notify(self, event, name):
        for callback in list(self._listeners):
            try:
                callback(event, name)
            except Exception:  # a listener must never break a load or unload
                log.exception("model manager listener failed")


def _default_name(source):
    name = source.rstrip("/").replace("\\", "/").split("/")[-1]
    for suffix in (".safetensors", ".keras", ".pt", ".pth", ".npz", ".gguf"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or source


def _exists(source, task):
    """Whether ``source`` names something that is there for ``task``: its bundled
    alias, a path, or a hub model in the local cache."""
    from ipyllmapps.models import BUNDLED

    if source in BUNDLED:
        return BUNDLED[source][0] == task
    if os.path.exists(os.path.expanduser(source)):
        return True
    if source.count("/") != 1:
        return False
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    folder = "models--" + source.replace("/", "--")
    return os.path.isdir(os.path.join(constants.HF_HUB_CACHE, folder))


_WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".keras",
    ".gguf",
    ".npz",
    ".onnx",
)


def _bytes_on_disk(source):
    """Size of the weight files at a local path: a lower bound of the model's size."""
    path = os.path.expanduser(source)
    if os.path.isfile(path):
        return os.path.getsize(path) if path.endswith(_WEIGHT_SUFFIXES) else 0
    if not os.path.isdir(path):
        return 0
    return sum(
        entry.stat().st_size
        for entry in os.scandir(path)
        if entry.is_file() and entry.name.endswith(_WEIGHT_SUFFIXES)
    )


def _round_up_gb(nbytes):
    return max(1, -(-nbytes // 2**30))


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _device_of(bundle):
    for module in bundle.weights():
        params = getattr(module, "parameters", None)
        if params is None:
            continue
        for tensor in params():
            device = tensor.device
            return (
                "cpu" if device.type == "cpu" else f"{device.type}:{device.index or 0}"
            )
    return None


def _weakrefable(obj):
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True
