"""``%%classify`` / ``%classify`` label texts; ``%finetune classify`` trains a model."""

from pathlib import Path

from IPython.core.magic import line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import (
    AppMagics,
    check_count,
    check_rate,
    check_variable_name,
    parse,
)
from ipyllmapps.models.classify import TEMPLATE

_ENCODERS = ("minilm", "sentiment")  # models whose zero-shot path is MiniLM's


@magics_class
class ClassifyMagics(AppMagics):
    """The ``%classify`` line magic and the ``%%classify`` cell magic."""

    @magic_arguments()
    @argument("text", nargs="*", help="with `%%classify`: the text to classify")
    @argument(
        "-m",
        "--model",
        help="`sentiment` (default), a hub id, a local folder, "
        "or the name given to `%%finetune classify`",
    )
    @argument(
        "--labels",
        help="comma-separated labels for zero-shot classification, "
        "like `sports,politics,technology`",
    )
    @argument(
        "--template",
        default=TEMPLATE,
        help=f"how a zero-shot label is described (default: `{TEMPLATE}`)",
    )
    @argument(
        "-k",
        "--top-k",
        type=int,
        help="labels kept and shown per text (default: all kept, five shown)",
    )
    @argument(
        "--multi-label",
        action="store_true",
        help="score each label on its own instead of sharing one probability",
    )
    @argument("--batch-size", type=int, default=32, help="texts per forward pass")
    @argument(
        "-o",
        "--out",
        help="store the records (text, label, score, scores, "
        "truncated) in this variable",
    )
    @no_var_expand
    @line_cell_magic
    @user_errors
    def classify(self, line, cell=None):
        """Classify each non-empty line of the cell (or the line's text).

        The default model, ``sentiment``, works offline: MiniLM with a head
        trained on human-rated sentences (positive / negative). ``--labels``
        picks among your own labels without training (zero-shot); ``-m``
        takes any sequence-classification model, by hub id, folder or the
        name of a model fine-tuned in this kernel. Texts longer than the
        model accepts are cut to its limit and marked ``truncated``. Blank
        lines are skipped. Text is never expanded: ``{x}`` and ``$x`` stay
        as typed.

        Examples
        --------
        ::

            %%classify
            What a wonderful day, I loved every minute.
            The service was slow and the food was cold.

            %classify "This film was a waste of time"

            %%classify --labels sports,politics,technology -o topics
            The striker scored twice in the final minutes.
            Parliament passed the budget after a long debate.

            %%classify -m distilbert-base-uncased-finetuned-sst-2-english -k 2
            I would watch it again.
        """
        args = parse(self.classify, line)
        if args is None:
            return
        texts = _texts(args, cell)
        check_count(args.batch_size, "--batch-size", "32")
        if args.top_k is not None:
            check_count(args.top_k, "-k", "2")
        labels = _labels(args.labels) if args.labels is not None else None
        _check_template(args.template)

        records, title = self._run(args, texts, labels)
        self.store(args.out, records)
        from ipyllmapps.widgets.classify import ClassifyView

        ClassifyView(records, top_k=args.top_k, title=title).show()

    def _run(self, args, texts, labels):
        """Classify with the model the flags name; return records and a title."""
        from ipyllmapps.models import classify as model

        options = dict(
            batch_size=args.batch_size, multi_label=args.multi_label, top_k=args.top_k
        )
        if labels is not None and (args.model is None or args.model in _ENCODERS):
            embedder = self.manager.load("minilm", "embed").bundle
            records = model.zero_shot(
                embedder, texts, labels, template=args.template, **options
            )
            return records, "zero-shot (MiniLM): " + ", ".join(labels)

        loaded = self.manager.load(
            args.model or self.config_obj.classify_model, "classify"
        )
        if labels is None:
            return model.classify(loaded.bundle, texts, **options), loaded.name
        if not model.is_nli(loaded.bundle):
            raise UserError(
                f"`-m {args.model}` is not an NLI model (its labels are "
                f"{', '.join(loaded.bundle.labels)}), so it cannot take `--labels`: "
                "drop `-m` for MiniLM zero-shot, or name an NLI model such as "
                "`facebook/bart-large-mnli`."
            )
        records = model.nli_zero_shot(
            loaded.bundle, texts, labels, template=args.template, **options
        )
        return records, f"zero-shot ({loaded.name}): " + ", ".join(labels)


@magic_arguments(name="finetune classify")
@argument(
    "--data", required=True, help="a .csv, .tsv or .jsonl file of texts and labels"
)
@argument("--text-col", default="text", help="column of the texts (default: text)")
@argument("--label-col", default="label", help="column of the labels (default: label)")
@argument(
    "--base",
    default="minilm",
    help="model to start from: `minilm` (default), "
    "a BERT-family hub id or a local folder",
)
@argument(
    "--epochs", type=int, default=3, help="passes over the training rows (default: 3)"
)
@argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
@argument("--batch-size", type=int, default=16, help="rows per step (default: 16)")
@argument(
    "--eval-split",
    type=float,
    default=0.2,
    help="share of rows held out to measure accuracy (default: 0.2)",
)
@argument(
    "--name",
    help="name to serve it under (default: the data file's name + `-classifier`)",
)
@argument(
    "--seed",
    type=int,
    default=0,
    help="random seed of the new head, dropout and shuffling (default: 0)",
)
@argument("--save", help="folder to write the model to; `-m FOLDER` loads it back")
@argument("-o", "--out", help="store the per-epoch metrics in this variable")
def finetune(magics, line):
    """Fine-tune a whole BERT-family classifier on labelled texts.

    The base model's encoder gets a new head for the labels found in the
    file; every weight is trained, with a progress bar and live loss and
    accuracy curves. The held-out accuracy is shown at the end and the model
    is registered so that ``%%classify -m NAME`` uses it at once. Ctrl-C
    stops cleanly and keeps the last finished epoch.

    Examples
    --------
    ::

        %finetune classify --data reviews.csv --epochs 3 --name reviews
        %finetune classify --data tweets.jsonl --text-col tweet --label-col mood
        %finetune classify --data news.tsv --base ./my-bert --save ./news-model
    """
    args = parse(finetune, line)
    if args is None:
        return
    check_count(args.epochs, "--epochs", "3")
    check_count(args.batch_size, "--batch-size", "16")
    check_rate(args.lr, "--lr", "1e-4")
    if not 0 <= args.eval_split < 1:
        raise UserError(
            f"`--eval-split {args.eval_split}` must be in [0, 1): try "
            "`--eval-split 0.2`."
        )
    name = args.name or f"{Path(args.data).stem}-classifier"
    if not name.strip():
        raise UserError("`--name` is empty: try `--name mine`.")
    if args.out:
        check_variable_name(args.out)  # before training, not after

    from ipyllmapps.models import classify as model
    from ipyllmapps.models.training import check_folder
    from ipyllmapps.widgets.training import TrainingView

    if args.save:
        check_folder(args.save)
    texts, labels = model.read_table(args.data, args.text_col, args.label_col)
    train_texts, train_labels, eval_texts, eval_labels = model.split(
        texts, labels, args.eval_split, seed=args.seed
    )
    label_set = sorted(set(labels))
    device = magics.manager.resolve_device(None)
    bundle = model.prepare_finetune(
        args.base,
        label_set,
        device=device,
        offline=magics.config_obj.offline,
        seed=args.seed,
    )
    steps = -(-len(train_texts) // args.batch_size) * args.epochs
    view = TrainingView(
        f"%finetune classify {args.base} on {Path(args.data).name}: "
        f"{len(train_texts)} rows, {len(label_set)} labels",
        steps,
    ).show()
    result = model.train(
        bundle,
        train_texts,
        train_labels,
        eval_texts,
        eval_labels,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        on_step=view.step,
        on_epoch=view.epoch,
        seed=args.seed,
    )
    history = [dict(epoch=i, **m) for i, m in enumerate(result.epochs, 1)]
    if not result.epochs:
        magics.store(args.out, history)
        view.finish("stopped before the first epoch finished; nothing was kept.")
        return

    magics.manager.register(name, bundle, "classify", source=f"finetuned:{name}")
    magics.store(args.out, history)
    parts = [
        f"{len(result.epochs)} epoch(s)"
        + (" (stopped: kept the last finished epoch)" if result.interrupted else "")
    ]
    if eval_texts:
        parts.append(
            f"held-out accuracy {result.last['accuracy']:.3f} on {len(eval_texts)} rows"
        )
    parts.append(f"use it with `%%classify -m {name}`")
    if args.save:
        parts.append(f"saved to {model.save(bundle, args.save)}")
    view.finish(" · ".join(parts))


def _texts(args, cell):
    if cell is None:
        text = " ".join(args.text).strip()
        if not text:
            raise UserError(
                '`%classify` needs a text: `%classify "What a lovely day"`, '
                "or use `%%classify` with one text per line."
            )
        return [text]
    if args.text:
        raise UserError(
            "`%%classify` takes its texts from the cell, one per line: move "
            f"`{' '.join(args.text)}` into the cell body."
        )
    texts = [row.strip() for row in cell.splitlines() if row.strip()]
    if not texts:
        raise UserError(
            "The `%%classify` cell has no text (only blank lines): write one "
            "text per line under `%%classify`."
        )
    return texts


def _labels(text):
    labels = list(
        dict.fromkeys(part.strip() for part in text.split(",") if part.strip())
    )
    if len(labels) < 2:
        raise UserError(
            f"`--labels {text}` needs at least two labels, separated by commas: "
            "`--labels sports,politics,technology`."
        )
    return labels


def _check_template(template):
    try:
        usable = "{}" in template and template.format("x") != template
    except (IndexError, KeyError, ValueError):
        usable = False
    if not usable:
        raise UserError(
            f"`--template {template}` needs one `{{}}` where the label goes and no "
            'other braces: `--template "This review is {}."`.'
        )
