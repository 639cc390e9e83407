"""One module per application: load, preprocess, forward, postprocess.

Nothing here imports IPython or ipywidgets; results leave as plain Python.
Each application module exposes ``load(source, *, device, dtype, offline)``
returning a :class:`~ipyllmapps.manager.Bundle`; :data:`LOADERS` names them by
task so that the manager and ``%models load`` can find them without importing
any of them up front.
"""

import importlib

from ipyllmapps.errors import UserError

# task -> "module:function"; a module is imported only when its task is used.
LOADERS = {
    "classify": "ipyllmapps.models.classify:load",
    "embed": "ipyllmapps.models.embed:load",
    "image": "ipyllmapps.models.image:load",
    "asr": "ipyllmapps.models.speech:load",
    "gan": "ipyllmapps.models.gan:load",
    "lm": "ipyllmapps.models.lm:load",
}

# Bundled aliases that work offline: alias -> (task, what it is).
BUNDLED = {
    "sentiment": ("classify", "MiniLM encoder + a sentiment head trained by ipyllmapps"),
    "minilm": ("embed", "all-MiniLM-L6-v2 sentence encoder, 22.7M parameters"),
    "imagenet": ("image", "EfficientNet-Lite0 trained on ImageNet-1k, 4.65M parameters"),
    "whisper-tiny.en": ("asr", "Whisper tiny.en (CTranslate2) through faster-whisper"),
    "digits-dcgan": ("gan", "DCGAN generator of 28x28 digits trained by ipyllmapps"),
    "smollm2": ("lm", "SmolLM2-135M-Instruct with its chat template"),
}


def loader_for(task):
    """Return the ``load`` function of an application."""
    if task not in LOADERS:
        raise UserError(
            f"`{task}` is not a task: use one of {', '.join(f'`{t}`' for t in LOADERS)}."
        )
    module_name, function = LOADERS[task].split(":")
    return getattr(importlib.import_module(module_name), function)


def task_of(source):
    """Return the task of a bundled alias, or ``None`` for other sources."""
    return BUNDLED.get(source, (None, None))[0]
