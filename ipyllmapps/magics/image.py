"""``%classify_image`` and ``%finetune image``: image classification."""

import math
from pathlib import Path

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import (
    AppMagics,
    check_count,
    check_rate,
    check_variable_name,
    parse,
)
from ipyllmapps.models import imageio


@magics_class
class ImageMagics(AppMagics):
    """The ``%classify_image`` magic."""

    @magic_arguments()
    @argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="image files, folders, globs, URLs, or names of variables holding "
        "a PIL image, a numpy array or a tensor (or a list of them)",
    )
    @argument(
        "-m",
        "--model",
        help="`imagenet` (default, offline), a torchvision name like `resnet50`, "
        "a fine-tuned model's name, a `.pt` file, or a Hugging Face id or folder",
    )
    @argument("-k", "--top-k", type=int, default=5, help="classes shown per image")
    @argument(
        "-b", "--batch-size", type=int, default=32, help="images per forward pass"
    )
    @argument(
        "--upload",
        action="store_true",
        help="show an upload button that classifies the images dropped on it",
    )
    @argument("--device", help="device to load the model on: cpu, cuda, cuda:N")
    @argument(
        "-o",
        "--out",
        help="store one record per image (source, label, score, top_k) here",
    )
    @no_var_expand
    @line_magic
    @user_errors
    def classify_image(self, line):
        """Classify images and show each with its top-k confidence bars.

        Images are turned into upright RGB first: grey and 16-bit images are
        scaled, CMYK is converted, transparency is composited over white and
        the EXIF orientation is applied. ``{var}`` and ``$var`` are never
        expanded; to classify a variable, give its name.

        Examples
        --------
        ::

            %classify_image cat.jpg
            %classify_image photos/ "shots/*.png" -k 3
            %classify_image img                   # a PIL image, array or tensor
            %classify_image cat.jpg -m resnet50   # torchvision, from the torch cache
            %classify_image test/ -m digits       # a model from %finetune image
            %classify_image --upload
            %classify_image photos/ -o results    # records in a DataFrame
        """
        args = parse(self.classify_image, line)
        if args is None:
            return
        if not args.sources and not args.upload:
            raise UserError(
                "Give images to classify: `%classify_image cat.jpg`, a folder, a "
                "variable name, or `%classify_image --upload`."
            )
        check_count(args.top_k, "-k", "5")
        check_count(args.batch_size, "--batch-size", "32")
        model = args.model or self.config_obj.image_model

        if args.upload:
            from ipyllmapps.widgets.image import UploadClassifier

            self.manager.load(model, "image", device=args.device)  # load errors now
            UploadClassifier(
                lambda files: self._classify(
                    model,
                    args,
                    [(name, imageio.from_bytes(data, name)) for name, data in files],
                )
            ).show()
        if args.sources:
            images = self._read(args.sources)
            self._show(self._classify(model, args, images), args.out)

    def _read(self, sources):
        offline = self.config_obj.offline
        images = []
        for source in sources:
            value = self._variable(source)
            if value is not None:
                images += imageio.read(value, name=source, offline=offline)
            elif source.isidentifier() and not Path(source).exists():
                raise UserError(
                    f"No file, folder or variable `{source}`: check the name, or "
                    "define the variable first."
                )
            else:
                images += imageio.read(source, offline=offline)
        return images

    def _variable(self, source):
        if not source.isidentifier() or Path(source).exists():
            return None
        return self.shell.user_ns.get(source)

    def _classify(self, model, args, images):
        from ipyllmapps.models import image

        loaded = self.manager.load(model, "image", device=args.device)
        records = image.classify(
            loaded.bundle,
            [im for _, im in images],
            top_k=args.top_k,
            batch_size=args.batch_size,
        )
        return [(name, im, record) for (name, im), record in zip(images, records)]

    def _show(self, items, out):
        from ipyllmapps.widgets.image import ImageGrid

        self.store(
            out,
            [
                {
                    "source": name,
                    "label": r["label"],
                    "score": r["score"],
                    "top_k": r["top_k"],
                }
                for name, _, r in items
            ],
        )
        ImageGrid(items).show()


@magic_arguments("finetune image")
@argument(
    "--data",
    required=True,
    help="a folder of class folders, or one with train/ and test/ class folders",
)
@argument(
    "--base",
    default="imagenet",
    help="`imagenet` (EfficientNet-Lite0, default), a torchvision name like "
    "`resnet18`, or a `.pt` file written by `--save`",
)
@argument("--epochs", type=int, default=3, help="passes over the training images")
@argument(
    "--lr",
    type=float,
    help="learning rate (default 1e-3 with --freeze-backbone, else 1e-4)",
)
@argument("--batch-size", type=int, default=32, help="images per training step")
@argument(
    "--image-size",
    type=int,
    help="train and predict at this many pixels (default: the base's, 224)",
)
@argument(
    "--freeze-backbone",
    action="store_true",
    help="train only the new classifier layer on features computed once",
)
@argument("--seed", type=int, default=0, help="seed of the split, order and new layer")
@argument("--name", help="name of the new model (default: the data folder's name)")
@argument("--save", help="also write NAME.pt and NAME.json into this folder")
@argument("-o", "--out", help="store one record per epoch (loss, accuracies) here")
def finetune_image(line):
    """Fine-tune an image classifier on a folder of class folders.

    The data folder holds one folder per class (20% of each held out for
    testing) or ``train/`` and ``test/`` folders with the same class folders.
    The default base, ``imagenet``, is EfficientNet-Lite0 with ImageNet
    weights, available offline; torchvision bases use the weights in the torch
    cache, or start from random weights (said once) when there are none.
    Ctrl-C stops training and keeps the last finished epoch. The model is
    registered under ``--name`` for ``%classify_image -m NAME``.

    Examples
    --------
    ::

        %finetune image --data pets/ --epochs 3 --name pets
        %finetune image --data digits/ --image-size 64 --freeze-backbone --epochs 10
        %finetune image --data pets/ --base resnet18 --save models/
        %classify_image pets/test/cat/ -m pets
    """


def finetune(magics, line):
    """Run ``%finetune image LINE`` for ``magics`` (an :class:`AppMagics`)."""
    from ipyllmapps.models import image
    from ipyllmapps.models.training import check_folder
    from ipyllmapps.widgets.training import TrainingView

    args = parse(finetune_image, line)
    if args is None:
        return
    check_count(args.epochs, "--epochs", "3")
    check_count(args.batch_size, "--batch-size", "32")
    if args.image_size is not None and args.image_size < 16:
        raise UserError(
            f"`--image-size {args.image_size}` is too small: use 32 or more."
        )
    check_rate(args.lr, "--lr", "1e-4")
    name = args.name or Path(args.data).expanduser().resolve().name
    if not name.replace("-", "_").replace(".", "_").isidentifier():
        raise UserError(
            f"`--name {name}` is not a usable model name: use `--name pets`."
        )
    if args.out:
        check_variable_name(args.out)  # before training, not after
    if args.save:
        check_folder(args.save)

    dataset = image.read_folder(args.data, seed=args.seed)
    settings = image.Settings(
        base=args.base,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        freeze_backbone=args.freeze_backbone,
        image_size=args.image_size,
        seed=args.seed,
        device=magics.manager.resolve_device(None),
    )
    batches = math.ceil(len(dataset.train) / args.batch_size)
    steps = args.epochs * batches
    if args.freeze_backbone:
        steps += batches + math.ceil(len(dataset.test) / args.batch_size)
    view = TrainingView(
        f"Fine-tuning {args.base} on {len(dataset.classes)} classes "
        f"({len(dataset.train)} training, {len(dataset.test)} test images; "
        f"{dataset.split})",
        steps,
    ).show()

    result = image.finetune(
        dataset,
        settings,
        offline=magics.config_obj.offline,
        on_step=view.step,
        on_epoch=view.epoch,
    )
    magics.manager.register(
        name, result.bundle, "image", source=f"finetune:{args.data}"
    )
    magics.store(args.out, [{"epoch": i, **m} for i, m in enumerate(result.history, 1)])
    saved = image.save(result.bundle, args.save, name) if args.save else None
    view.finish(_summary(result, name, saved))


def _summary(result, name, saved):
    epochs = len(result.history)
    parts = []
    if result.test_count:
        parts.append(
            f"test accuracy {result.test_accuracy:.1%} on {result.test_count} "
            f"images after {epochs} epoch(s)"
        )
    else:
        parts.append(f"trained {epochs} epoch(s); no test images")
    if result.interrupted:
        parts.append("stopped by Ctrl-C, kept the last finished epoch")
    parts += result.notes
    parts.append(f"registered as `{name}` (`%classify_image IMAGE -m {name}`)")
    if saved is not None:
        parts.append(f"saved to {saved}")
    return "; ".join(parts)
