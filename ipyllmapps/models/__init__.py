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
    "sentiment": (
        "classify",
        "MiniLM encoder + a sentiment head trained by ipyllmapps",
    ),
    "minilm": ("embed", "all-MiniLM-L6-v2 sentence encoder, 22.7M parameters"),
    "imagenet": (
        "image",
        "EfficientNet-Lite0 trained on ImageNet-1k, 4.65M parameters",
    ),
    "whisper-tiny.en": ("asr", "Whisper tiny.en (CTranslate2) through faster-whisper"),
    "digits-dcgan": ("gan", "DCGAN generator of 28x28 digits trained by ipyllmapps"),
    "smollm2": ("lm", "SmolLM2-135M-Instruct with its chat template"),
}


def loader_for(task):
    """Return the ``load`` function of an application."""
    if task not in LOADERS:
        raise UserError(
            f"`{task}` is not a task: use one of "
            + ", ".join(f"`{t}`" for t in LOADERS)
            + "."
        )
    module_name, function = LOADERS[task].split(":")
    return getattr(importlib.import_module(module_name), function)


# Per task: what its bundled model is called in a message, the magic that uses
# it, and what the task works on with the alias to offer there instead.
_APPLICATIONS = {
    "classify": ("text classifier", "%%classify -m {}", "text", "sentiment"),
    "embed": ("sentence encoder", "%%classify --labels a,b,c", "text", "minilm"),
    "image": ("image model", "%classify_image IMAGE -m {}", "images", "imagenet"),
    "asr": ("speech model", "%transcribe AUDIO -m {}", "speech", "whisper-tiny.en"),
    "gan": ("image generator", "%gan_sample -m {}", "generation", "digits-dcgan"),
    "lm": ("chat model", "%%chat -m {}", "chat", "smollm2"),
}


def refuse_other_application(source, task):
    """Refuse another application's bundled alias, naming the magic that uses it.

    A local file or folder of the same name takes precedence and is left to the
    loader.
    """
    import os

    other = task_of(source)
    if other in (None, task) or other not in _APPLICATIONS:
        return
    if os.path.exists(os.path.expanduser(source)):
        return
    what, magic, _, _ = _APPLICATIONS[other]
    instead = ""
    if task in _APPLICATIONS:
        _, _, works_on, own = _APPLICATIONS[task]
        instead = f", or for {works_on} `-m {own}`"
    raise UserError(
        f"`{source}` is the bundled {what}: use `{magic.format(source)}`{instead}."
    )


def task_of(source):
    """Return the task of a bundled alias, or ``None`` for other sources."""
    return BUNDLED.get(source, (None, None))[0]
