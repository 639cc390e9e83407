"""Measuring model and device memory, and giving freed memory back."""

import ctypes
import gc
import sys


def measure(bundle):
    """Return ``(num_parameters, nbytes)`` of the weights a bundle holds.

    Parameters and buffers are counted once per storage, so tied weights are
    not counted twice. Keras weights are counted by their shapes and dtypes.
    """
    params = 0
    nbytes = 0
    seen = set()
    for holder in bundle.weights():
        if hasattr(holder, "named_parameters"):
            for tensor in list(holder.parameters()) + list(holder.buffers()):
                storage = tensor.untyped_storage()
                key = (storage.data_ptr(), tensor.device.type, tensor.device.index)
                if key in seen:
                    continue
                seen.add(key)
                nbytes += storage.nbytes()
            params += sum(p.numel() for p in holder.parameters())
        else:  # a Keras model
            for weight in holder.weights:
                count = 1
                for dim in weight.shape:
                    count *= int(dim)
                nbytes += count * _keras_itemsize(weight.dtype)
                params += count
    return params or bundle.num_parameters, nbytes or bundle.nbytes


def _keras_itemsize(dtype):
    import numpy as np

    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 4


def device_memory(device):
    """Return ``(free, total)`` bytes of a device (``cpu`` or ``cuda:N``)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))
    import psutil

    vm = psutil.virtual_memory()
    return vm.available, vm.total


def process_rss():
    """Resident memory of this process, in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def release_memory():
    """Collect garbage and hand freed memory back to the system and the GPU."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc
            pass
