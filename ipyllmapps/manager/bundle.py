"""What a loader hands the manager: the model and what is needed to run it."""

from dataclasses import dataclass, fields
from typing import Any


@dataclass(eq=False)
class Bundle:
    """A loaded model with its companions (tokenizer, processor, labels...).

    Each application subclasses this dataclass with the fields it needs. The
    manager finds the weights by looking at the fields: every torch module and
    every Keras model among them is counted, moved and released. A bundle whose
    weights live elsewhere (CTranslate2, for one) sets ``framework`` and
    ``nbytes`` itself.
    """

    model: Any
    framework: str = "torch"
    nbytes: int = 0  # measured by the manager for torch and Keras models
    num_parameters: int = 0

    def weights(self):
        """Return the objects that hold this bundle's weights."""
        found = []
        for field in fields(self):
            value = getattr(self, field.name)
            if _is_torch_module(value) or _is_keras_model(value):
                found.append(value)
        return found

    def to(self, device):
        """Move every torch module of the bundle to ``device``."""
        for module in self.weights():
            if _is_torch_module(module):
                module.to(device)

    def close(self):
        """Drop the references this bundle holds (called on unload)."""
        for field in fields(self):
            setattr(self, field.name, None)


def _is_torch_module(value):
    torch = _loaded("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _is_keras_model(value):
    keras = _loaded("keras")
    return keras is not None and isinstance(value, keras.Model)


def _loaded(name):
    """Return a module only if something already imported it."""
    import sys

    return sys.modules.get(name)
