"""Text classification: the bundled sentiment model, zero-shot labels, HF models.

Three ways to classify lines of text, each returning one plain record per
text (``text``, ``label``, ``score``, ``scores``, ``truncated``):

- :func:`classify` runs a loaded classifier: the bundled ``sentiment`` model
  (MiniLM and a logistic head trained by ``scripts/train_sentiment_head.py``)
  or any sequence-classification model by hub id or folder;
- :func:`zero_shot` compares MiniLM vectors of the texts with vectors of
  label descriptions, offline;
- :func:`nli_zero_shot` runs an NLI model through the transformers
  zero-shot pipeline.

Inputs are tokenized once, sorted by length so that each batch pads little,
truncated to the model's limit and marked ``truncated``. Fine-tuning
(:func:`prepare_finetune`, :func:`train`, :func:`save`) trains the whole
network of a BERT-family model with a new head.
"""

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle
from ipyllmapps.models import refuse_other_application
from ipyllmapps.models._hf import from_pretrained, torch_dtype

log = logging.getLogger(__name__)

HEAD_PATH = Path(__file__).resolve().parent.parent / "data" / "sentiment-head.npz"
TEMPLATE = "This text is about {}."
TEMPERATURE = 0.05  # cosine similarities differ by a few hundredths between labels
_NO_LIMIT = 100_000  # tokenizers without a limit report a huge model_max_length


@dataclass(eq=False)
class ClassifierBundle(Bundle):
    """A Hugging Face sequence-classification model and its tokenizer."""

    tokenizer: Any = None
    labels: list = None
    max_tokens: int = 512

    def logits(self, batch):
        return self.model(**batch).logits


@dataclass(eq=False)
class SentimentBundle(Bundle):
    """MiniLM and the bundled logistic head over its mean-pooled sentence vector."""

    tokenizer: Any = None
    head: Any = None
    labels: list = None
    max_tokens: int = 256

    def logits(self, batch):
        return self.head(sentence_vectors(self.model, batch))


def load(source, *, device, dtype, offline):
    """Load ``sentiment`` or any sequence-classification model (hub id or folder)."""
    if source == "sentiment":
        return _load_sentiment(device, dtype)
    if source == "minilm":
        raise UserError(
            "`minilm` is a sentence encoder, not a classifier: add `--labels a,b,c` "
            "for zero-shot labels, or train one with `%finetune classify --data FILE`."
        )
    refuse_other_application(source, "classify")
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = from_pretrained(AutoConfig, source, offline=offline, task="classify")
    architectures = config.architectures or []
    if architectures and not any(
        "ForSequenceClassification" in a for a in architectures
    ):
        raise UserError(
            f"`{source}` is a {architectures[0]} without a classification head: "
            f"fine-tune it first with `%finetune classify --data FILE --base {source}`."
        )
    tokenizer = from_pretrained(AutoTokenizer, source, offline=offline, task="classify")
    model = from_pretrained(
        AutoModelForSequenceClassification,
        source,
        offline=offline,
        task="classify",
        dtype=torch_dtype(dtype),
    )
    model.to(device).eval()
    return ClassifierBundle(
        model=model,
        tokenizer=tokenizer,
        labels=label_names(model),
        max_tokens=model_limit(tokenizer, model.config),
    )


def _load_sentiment(device, dtype):
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ipyllmapps.models.embed import MAX_TOKENS, minilm_path

    path = minilm_path()
    tokenizer = from_pretrained(AutoTokenizer, path, offline=True, task="classify")
    encoder = from_pretrained(
        AutoModel, path, offline=True, task="classify", dtype=torch_dtype(dtype)
    )
    with np.load(HEAD_PATH) as saved:
        weight, bias = saved["weight"], saved["bias"]
        labels = [str(label) for label in saved["labels"]]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])  # 384 -> 2, kept float32
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    encoder.to(device).eval()
    head.to(device).eval()
    limit = min(MAX_TOKENS, model_limit(tokenizer, encoder.config))
    return SentimentBundle(
        model=encoder, tokenizer=tokenizer, head=head, labels=labels, max_tokens=limit
    )


# -- running ---------------------------------------------------------------


def classify(bundle, texts, *, batch_size=32, multi_label=False, top_k=None):
    """Classify each text with a loaded classifier; return one record per text.

    Parameters
    ----------
    bundle : ClassifierBundle or SentimentBundle
    texts : list of str
    batch_size : int
    multi_label : bool
        Score each label on its own (sigmoid) instead of sharing one
        probability between all labels (softmax).
    top_k : int, optional
        Keep this many labels in each record's ``scores`` (default: all).
    """
    import torch

    def forward(batch):
        logits = bundle.logits(batch).float()
        return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)

    encoded, truncated = tokenize(bundle.tokenizer, texts, bundle.max_tokens)
    probs = run_batches(bundle.model, bundle.tokenizer, encoded, batch_size, forward)
    return records(texts, probs, bundle.labels, truncated, top_k, multi_label)


def zero_shot(
    embedder,
    texts,
    labels,
    *,
    template=TEMPLATE,
    temperature=TEMPERATURE,
    multi_label=False,
    batch_size=32,
    top_k=None,
):
    """Pick among ``labels`` by MiniLM cosine similarity to a description of each.

    Each label becomes ``template.format(label)``; the similarities of a text
    to all descriptions, divided by ``temperature``, go through a softmax (or
    one sigmoid per label, centred on the mean similarity, with
    ``multi_label``).
    """
    import torch

    descriptions = [template.format(label) for label in labels]
    encoded, _ = tokenize(embedder.tokenizer, descriptions, embedder.max_tokens)
    label_vectors = run_batches(
        embedder.model,
        embedder.tokenizer,
        encoded,
        batch_size,
        lambda batch: sentence_vectors(embedder.model, batch),
    ).to(next(embedder.model.parameters()).device)  # (labels, dim)

    def forward(batch):
        vectors = sentence_vectors(embedder.model, batch)  # (batch, dim)
        similarity = vectors @ label_vectors.T  # (batch, labels)
        if multi_label:
            centred = similarity - similarity.mean(dim=-1, keepdim=True)
            return torch.sigmoid(centred / temperature)
        return torch.softmax(similarity / temperature, dim=-1)

    encoded, truncated = tokenize(embedder.tokenizer, texts, embedder.max_tokens)
    probs = run_batches(
        embedder.model, embedder.tokenizer, encoded, batch_size, forward
    )
    return records(texts, probs, list(labels), truncated, top_k, multi_label)


def is_nli(bundle):
    """Whether a loaded classifier is an NLI model (it has an entailment label)."""
    labels = [str(label).lower() for label in (getattr(bundle, "labels", None) or [])]
    return isinstance(bundle, ClassifierBundle) and any(
        label.startswith("entail") for label in labels
    )


def nli_zero_shot(
    bundle,
    texts,
    labels,
    *,
    template=TEMPLATE,
    multi_label=False,
    batch_size=32,
    top_k=None,
):
    """Pick among ``labels`` with an NLI model through the zero-shot pipeline."""
    import numpy as np
    from transformers import pipeline

    classifier = pipeline(
        "zero-shot-classification",
        model=bundle.model,
        tokenizer=bundle.tokenizer,
        device=bundle.model.device,
    )
    longest = max(
        len(bundle.tokenizer(template.format(label))["input_ids"]) for label in labels
    )
    _, truncated = tokenize(bundle.tokenizer, texts, bundle.max_tokens - longest)
    outputs = classifier(
        list(texts),
        candidate_labels=list(labels),
        hypothesis_template=template,
        multi_label=multi_label,
        batch_size=batch_size,
    )
    if isinstance(outputs, dict):
        outputs = [outputs]
    probs = np.zeros((len(texts), len(labels)), dtype=np.float32)
    for row, output in zip(probs, outputs):
        for label, score in zip(output["labels"], output["scores"]):
            row[labels.index(label)] = score
    return records(texts, probs, list(labels), truncated, top_k, multi_label)


def tokenize(tokenizer, texts, limit):
    """Token ids of each text, cut to ``limit``, and whether each was cut.

    Returns
    -------
    encoded : dict of str to list of list of int
        ``input_ids`` and the tokenizer's other per-token fields, unpadded.
    truncated : list of bool
    """
    encoded = dict(tokenizer(list(texts), truncation=True, max_length=limit))
    at_limit = [i for i, ids in enumerate(encoded["input_ids"]) if len(ids) >= limit]
    truncated = [False] * len(texts)
    if at_limit:  # only these can have been cut: measure them uncut
        full = tokenizer([texts[i] for i in at_limit], verbose=False)["input_ids"]
        for i, ids in zip(at_limit, full):
            truncated[i] = len(ids) > limit
    return encoded, truncated


def run_batches(model, tokenizer, encoded, batch_size, forward):
    """Run ``forward`` over length-sorted, padded batches; rows in input order.

    Returns a float32 tensor on the CPU with one row per input.
    """
    import torch

    ids = encoded["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    device = next(model.parameters()).device
    out = [None] * len(ids)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = _batch(encoded, index, tokenizer, device)
            result = forward(batch).float().cpu()  # (batch, labels)
            for i, row in zip(index, result):
                out[i] = row
    return torch.stack(out) if out else torch.zeros(0, 0)


def _batch(encoded, rows, tokenizer, device):
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    width = max(len(encoded["input_ids"][i]) for i in rows)
    return {
        key: _pad(
            [encoded[key][i] for i in rows],
            width,
            pad_id if key == "input_ids" else 0,
            left,
        ).to(device)
        for key in ("input_ids", "attention_mask", "token_type_ids")
        if key in encoded
    }


def _pad(rows, width, value, left):
    import torch

    padded = [
        [value] * (width - len(r)) + r if left else r + [value] * (width - len(r))
        for r in rows
    ]
    return torch.tensor(padded, dtype=torch.long)


def sentence_vectors(encoder, batch):
    """Mean-pooled, unit-length sentence vectors of a padded batch, float32."""
    import torch

    hidden = encoder(**batch).last_hidden_state  # (batch, tokens, dim)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, dim)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def records(texts, probs, labels, truncated, top_k, multi_label=False):
    """Turn a probability matrix into one plain record per text."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    keep = len(labels) if top_k is None else max(1, min(top_k, len(labels)))
    result = []
    for text, row, cut in zip(texts, probs, truncated):
        ranked = np.argsort(-row, kind="stable")
        record = {
            "text": text,
            "label": labels[ranked[0]],
            "score": float(row[ranked[0]]),
            "scores": {labels[j]: float(row[j]) for j in ranked[:keep]},
            "truncated": bool(cut),
        }
        if multi_label:
            record["labels"] = [labels[j] for j in ranked if row[j] >= 0.5]
        result.append(record)
    return result


def label_names(model):
    """The model's labels in id order."""
    id2label = getattr(model.config, "id2label", None) or {}
    count = model.config.num_labels
    return [
        str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(count)
    ]


def model_limit(tokenizer, config):
    """The longest input in tokens that both the tokenizer and the model accept."""
    limits = [
        n
        for n in (
            getattr(tokenizer, "model_max_length", None),
            getattr(config, "max_position_embeddings", None),
        )
        if n and n < _NO_LIMIT
    ]
    return min(limits) if limits else 512


# -- fine-tuning -------------------------------------------------------------


def read_table(path, text_col=None, label_col=None):
    """Read texts and labels from a ``.csv``, ``.tsv`` or ``.jsonl`` file.

    ``text_col`` defaults to ``text`` and ``label_col`` to ``label``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(
            f"No file `{path}`: give a .csv, .tsv or .jsonl with `--data FILE`."
        )
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(
                csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            )
    elif suffix in (".jsonl", ".json"):
        rows = _read_jsonl(path)
    else:
        raise UserError(
            f"`{path.name}` is not a .csv, .tsv or .jsonl file: convert it to "
            "one with a `text` and a `label` column."
        )
    if not rows:
        raise UserError(
            f"`{path.name}` has no rows: add one text and its label per row "
            "under the header."
        )
    text_col, label_col = text_col or "text", label_col or "label"
    columns = list(rows[0])
    for flag, name in (("--text-col", text_col), ("--label-col", label_col)):
        if name not in columns:
            listed = ", ".join(f"`{c}`" for c in columns) or "none"
            raise UserError(
                f"`{path.name}` has no column `{name}` (columns: {listed}): "
                f"name the right one with `{flag} NAME`."
            )
    pairs = [
        (str(r[text_col]).strip(), str(r[label_col]).strip())
        for r in rows
        if r.get(text_col) is not None
        and str(r[text_col]).strip()
        and r.get(label_col) is not None
        and str(r[label_col]).strip()
    ]
    if len({label for _, label in pairs}) < 2:
        raise UserError(
            f"`{path.name}` needs at least two different labels in "
            f"`{label_col}` to train a classifier."
        )
    return [t for t, _ in pairs], [label for _, label in pairs]


def _read_jsonl(path):
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise UserError(
                    f"Line {number} of `{path.name}` is not JSON: write one "
                    'object per line, like {"text": ..., "label": ...}.'
                ) from None
    return rows


def split(texts, labels, eval_fraction, seed=0):
    """Shuffle with ``seed`` and hold out ``eval_fraction`` of the rows."""
    import random

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_eval = round(len(order) * eval_fraction)
    if eval_fraction > 0:
        n_eval = min(max(1, n_eval), len(order) - 1)
    held, kept = order[:n_eval], order[n_eval:]
    return (
        [texts[i] for i in kept],
        [labels[i] for i in kept],
        [texts[i] for i in held],
        [labels[i] for i in held],
    )


def prepare_finetune(base, label_set, *, device, offline, seed=0):
    """A classifier with a new head for ``label_set`` on top of ``base``'s encoder.

    ``seed`` seeds torch's global generator, as the transformers Trainer does,
    so that the new head, dropout and shuffling repeat from run to run.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ipyllmapps.models.embed import minilm_path

    path = minilm_path() if base in ("minilm", "sentiment") else base
    tokenizer = from_pretrained(AutoTokenizer, path, offline=offline, task="classify")
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head is new on purpose: no "MISSING" table
    try:
        model = from_pretrained(
            AutoModelForSequenceClassification,
            path,
            offline=offline,
            task="classify",
            num_labels=len(label_set),
            id2label=dict(enumerate(label_set)),
            label2id={label: i for i, label in enumerate(label_set)},
            ignore_mismatched_sizes=True,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    log.info("new %d-label head on %s", len(label_set), base)
    model.to(device)
    limit = model_limit(tokenizer, model.config)
    if base in ("minilm", "sentiment"):
        from ipyllmapps.models.embed import MAX_TOKENS

        limit = min(limit, MAX_TOKENS)
        tokenizer.model_max_length = limit  # so that a saved copy keeps the limit
    return ClassifierBundle(
        model=model, tokenizer=tokenizer, labels=list(label_set), max_tokens=limit
    )


def train(
    bundle,
    texts,
    labels,
    eval_texts,
    eval_labels,
    *,
    epochs,
    lr,
    batch_size,
    on_step=None,
    on_epoch=None,
    seed=0,
):
    """Fine-tune every weight of ``bundle.model``; Ctrl-C keeps the last epoch.

    ``on_step(loss=...)`` is called after every batch and
    ``on_epoch(epoch, **metrics)`` after every epoch (metrics: ``train_loss``,
    and ``eval_loss`` / ``accuracy`` on the held-out rows when there are any).

    Returns
    -------
    ipyllmapps.models.training.FitResult
    """
    import torch

    from ipyllmapps.models.training import fit

    model = bundle.model
    index = {label: i for i, label in enumerate(bundle.labels)}
    encoded, _ = tokenize(bundle.tokenizer, texts, bundle.max_tokens)
    targets = torch.tensor([index[label] for label in labels])
    steps_per_epoch = -(-len(texts) // batch_size)
    total = max(1, steps_per_epoch * epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / total)
    )  # linear decay to zero
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def run_epoch(epoch):
        model.train()
        order = torch.randperm(len(texts), generator=generator).tolist()
        losses = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = _batch(encoded, rows, bundle.tokenizer, device)
            logits = model(**batch).logits.float()
            loss = torch.nn.functional.cross_entropy(logits, targets[rows].to(device))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(loss=loss.item())
        metrics = {"train_loss": sum(losses) / max(1, len(losses))}
        if eval_texts:
            metrics.update(evaluate(bundle, eval_texts, eval_labels, batch_size))
        if on_epoch is not None:
            on_epoch(epoch, **metrics)
        return metrics

    return fit([model], epochs, run_epoch)


def evaluate(bundle, texts, labels, batch_size=32):
    """Loss and accuracy of ``bundle`` on labelled texts."""
    import torch

    bundle.model.eval()
    index = {label: i for i, label in enumerate(bundle.labels)}
    encoded, _ = tokenize(bundle.tokenizer, texts, bundle.max_tokens)
    logits = run_batches(
        bundle.model, bundle.tokenizer, encoded, batch_size, bundle.logits
    )  # (rows, labels)
    targets = torch.tensor([index.get(label, -100) for label in labels])
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100).item()
    accuracy = (logits.argmax(-1) == targets).float().mean().item()
    return {"eval_loss": loss, "accuracy": accuracy}


def save(bundle, folder):
    """Write the classifier and its tokenizer to ``folder`` (``-m FOLDER`` loads it)."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    bundle.model.save_pretrained(folder)
    bundle.tokenizer.save_pretrained(folder)
    return folder
