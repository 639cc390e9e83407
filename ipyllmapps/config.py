"""Settings, changed with ``%config LLMApps.<name> = value``."""

import re

from traitlets import Bool, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_DTYPES = ("auto", "float32", "float16", "bfloat16")


class LLMApps(Configurable):
    """Settings of the ipyllmapps magics and of the kernel's model manager."""

    device = Unicode(
        "auto",
        help="Device for new models: `auto` (the GPU when there is one), `cpu`, "
        "`cuda` or `cuda:N`.",
    ).tag(config=True)
    dtype = Unicode(
        "auto",
        help="Weight dtype for new models: `auto` (float32 on CPU, float16 on a "
        "GPU), `float32`, `float16` or `bfloat16`.",
    ).tag(config=True)
    budget = Unicode(
        "auto",
        help="Memory that loaded models may take on one device, like `6GB`; "
        "`auto` is `budget_fraction` of the memory free when the manager starts.",
    ).tag(config=True)
    budget_fraction = Float(
        0.8, help="Share of free device memory used when `budget` is `auto`."
    ).tag(config=True)
    models_per_task = Int(
        1,
        help="Unpinned models kept per application: switching a cell to another "
        "model frees the previous one first, so peak memory stays one model. "
        "0 keeps them all, up to the budget.",
    ).tag(config=True)
    offline = Bool(
        False,
        help="Never contact the model hub: load only bundled models, local "
        "folders and the local hub cache.",
    ).tag(config=True)
    full_tracebacks = Bool(
        False,
        help="Show full tracebacks for user mistakes instead of one line.",
    ).tag(config=True)
    instructor_mode = Bool(
        False, help="Hide the reveal buttons of `%ask` and `%quiz` question cards."
    ).tag(config=True)
    language = Unicode("en", help="Language of the question bank: `en` or `zh`.").tag(
        config=True
    )
    classify_model = Unicode("sentiment", help="Default model of `%%classify`.").tag(
        config=True
    )
    image_model = Unicode("imagenet", help="Default model of `%classify_image`.").tag(
        config=True
    )
    asr_model = Unicode("whisper-tiny.en", help="Default model of `%transcribe`.").tag(
        config=True
    )
    gan_model = Unicode("digits-dcgan", help="Default generator of `%gan_sample`.").tag(
        config=True
    )
    chat_model = Unicode(
        "smollm2", help="Default model of `%%chat` and `%generate`."
    ).tag(config=True)

    @validate("device")
    def _check_device(self, proposal):
        value = proposal["value"].strip().lower()
        if not _DEVICE.match(value):
            raise TraitError(
                f"`{proposal['value']}` is not a device: use `auto`, `cpu`, "
                "`cuda` or `cuda:0`."
            )
        return value

    @validate("dtype")
    def _check_dtype(self, proposal):
        value = proposal["value"].strip().lower()
        if value not in _DTYPES:
            raise TraitError(
                f"`{proposal['value']}` is not a dtype: use one of "
                f"{', '.join(_DTYPES)}."
            )
        return value

    @validate("budget")
    def _check_budget(self, proposal):
        from ipyllmapps.errors import UserError, parse_size

        value = proposal["value"].strip()
        if value.lower() != "auto":
            try:
                parse_size(value)
            except UserError as exc:
                raise TraitError(str(exc)) from None
        return value

    @validate("budget_fraction")
    def _check_fraction(self, proposal):
        if not 0 < proposal["value"] <= 1:
            raise TraitError("`budget_fraction` must be between 0 and 1, like `0.8`.")
        return proposal["value"]

    @validate("models_per_task")
    def _check_models_per_task(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(
                "`models_per_task` must be 0 (no limit) or more, like `1`."
            )
        return proposal["value"]

    @validate("classify_model", "image_model", "asr_model", "gan_model", "chat_model")
    def _check_model(self, proposal):
        value = proposal["value"].strip()
        if not value:
            raise TraitError(
                f"`{proposal['trait'].name}` needs a model: a bundled name like "
                f"`{proposal['trait'].default_value}`, a folder or a hub id."
            )
        return value

    @validate("language")
    def _check_language(self, proposal):
        value = proposal["value"].strip().lower()
        if value not in ("en", "zh"):
            raise TraitError(
                f"`{proposal['value']}` is not a language: use `en` or `zh`."
            )
        return value
