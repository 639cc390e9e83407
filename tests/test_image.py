"""``%classify_image``, ``%finetune image`` and robust image reading (I1-I3)."""

import json

import numpy as np
import pytest
from IPython.utils.capture import capture_output
from PIL import Image

from tests.conftest import run, usage_error


@pytest.fixture
def tiny(factory):
    """A 10-class ResNet-18 state dict with its sidecar .json."""
    return factory.resnet(arch="resnet18", num_classes=10)


@pytest.fixture
def photo():
    """A small, asymmetric colour photo (scikit-image's cat, cropped)."""
    from skimage import data

    return Image.fromarray(data.chelsea()[:200, :240])


def outputs(ip, source):
    """Run a cell and return the mime bundles it displayed."""
    with capture_output() as captured:
        run(ip, source)
    return [output.data for output in captured.outputs]


def same_answer(a, b, tolerance=1e-4):
    """Whether two records rank the same classes with (nearly) the same scores."""
    return [label for label, _ in a["top_k"]] == [
        label for label, _ in b["top_k"]
    ] and (
        np.allclose(
            [s for _, s in a["top_k"]], [s for _, s in b["top_k"]], atol=tolerance
        )
    )


def records(ip, line, name="res"):
    run(ip, f"{line} -o {name}")
    return ip.user_ns[name].to_dict("records")


def digits_folder(root, classes=(0, 1, 2), per_class=30, test=10, size=16):
    """scikit-learn digits written as PNG class folders under train/ and test/."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for digit in classes:
        images = digits.images[digits.target == digit][:per_class]
        for i, pixels in enumerate(images):
            split = "test" if i < test else "train"
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray((pixels * 255 / 16).astype(np.uint8), "L")
            image.resize((size, size), Image.BILINEAR).save(folder / f"{i}.png")
    return root


# -- I1: grey, 16-bit grey, CMYK ---------------------------------------------


def test_i1_grey_16bit_and_cmyk_files_are_classified(shell, tiny, tmp_path, photo):
    grey = photo.convert("L")
    grey.save(tmp_path / "grey.png")
    deep = np.asarray(grey, dtype=np.uint16) * 257
    Image.fromarray(deep).save(tmp_path / "grey16.png")
    photo.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)

    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    res = records(
        shell,
        f"%classify_image {tmp_path}/grey.png {tmp_path}/grey16.png "
        f"{tmp_path}/cmyk.jpg -m {tiny} -k 3",
    )
    assert [r["source"].rsplit("/", 1)[-1] for r in res] == [
        "grey.png",
        "grey16.png",
        "cmyk.jpg",
    ]
    assert all(len(r["top_k"]) == 3 and 0 < r["score"] <= 1 for r in res)
    # 16-bit grey is scaled to 8 bits, not clipped: the same answer as 8-bit grey
    assert res[0]["top_k"] == res[1]["top_k"]


def test_i1_pixels_convert_to_the_right_rgb(tmp_path):
    from ipyllmapps.models.imageio import read

    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "white16.png")
    Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(tmp_path / "grey16.png")
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=100)
    Image.new("L", (4, 4), 77).save(tmp_path / "grey.png")

    pixel = {p.name: read(p)[0][1].getpixel((1, 1)) for p in tmp_path.iterdir()}
    assert pixel["white16.png"] == (255, 255, 255)
    assert pixel["grey16.png"] == (128, 128, 128)
    assert pixel["grey.png"] == (77, 77, 77)
    red = pixel["red.jpg"]
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


# -- I2: transparency over white -------------------------------------------------


def transparent_images():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 4, 8))
    la = Image.new("LA", (8, 8), (0, 0))
    la.paste((50, 255), (0, 0, 4, 8))
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 4, 8))
    palette.info["transparency"] = 0
    return {"rgba.png": rgba, "la.png": la, "palette.png": palette}


def test_i2_transparency_is_composited_over_white(shell, tiny, tmp_path):
    from ipyllmapps.models.imageio import BACKGROUND, read

    for name, image in transparent_images().items():
        image.save(tmp_path / name)
    assert Image.open(tmp_path / "palette.png").info.get("transparency") == 0

    for name in transparent_images():
        rgb = read(tmp_path / name)[0][1]
        assert rgb.mode == "RGB"
        assert rgb.getpixel((6, 4)) == BACKGROUND == (255, 255, 255), name
        assert rgb.getpixel((1, 4)) != BACKGROUND, name
    res = records(shell, f"%classify_image {tmp_path} -m {tiny}")
    assert sorted(r["source"].rsplit("/", 1)[-1] for r in res) == [
        "la.png",
        "palette.png",
        "rgba.png",
    ]


# -- I3: EXIF orientation ------------------------------------------------------------


def test_i3_exif_orientation_gives_the_same_label_and_an_upright_preview(
    shell, tiny, tmp_path, photo
):
    from ipyllmapps.widgets.image import ImageGrid

    photo.save(tmp_path / "upright.png")
    stored = photo.transpose(Image.Transpose.ROTATE_90)  # pixels lying on their side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    stored.save(tmp_path / "tagged.png", exif=exif)
    stored.save(tmp_path / "sideways.png")

    res = records(
        shell,
        f"%classify_image {tmp_path}/upright.png {tmp_path}/tagged.png "
        f"{tmp_path}/sideways.png -m {tiny}",
    )
    assert res[0]["top_k"] == res[1]["top_k"]
    assert res[0]["top_k"] != res[2]["top_k"]  # the tag really changes the input

    from ipyllmapps.models.imageio import read

    upright, tagged = read(tmp_path / "upright.png"), read(tmp_path / "tagged.png")
    assert tagged[0][1].size == photo.size
    grid = ImageGrid([(n, im, r) for (n, im), r in zip(upright + tagged, res)])
    assert grid.thumbnails[0] == grid.thumbnails[1]


def test_a_file_that_is_not_an_image_is_one_line(shell, tiny, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("these are not pixels")
    line = usage_error(shell, f"%classify_image {tmp_path}/notes.png -m {tiny}", capsys)
    assert "notes.png` is not an image Pillow can read" in line
    assert "give a PNG, JPEG" in line


# -- sources: variables, arrays, tensors, folders, globs -------------------------


def test_variables_hold_pil_images_arrays_tensors_and_lists(shell, tiny, photo):
    import torch

    shell.user_ns.update(
        img=photo,
        arr=np.asarray(photo),
        chw=torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255,
        batch=[photo, photo.convert("L")],
        gan=torch.zeros(2, 3, 8, 8) - 1.0,
    )
    res = records(shell, f"%classify_image img arr chw batch gan -m {tiny} -k 2")
    assert [r["source"] for r in res] == [
        "img",
        "arr",
        "chw",
        "batch[0]",
        "batch[1]",
        "gan[0]",
        "gan[1]",
    ]
    assert same_answer(res[0], res[1]) and same_answer(res[0], res[2])
    assert not same_answer(res[0], res[4])  # grey differs from colour


def test_array_ranges_and_layouts():
    from ipyllmapps.models.imageio import from_array

    assert from_array(np.zeros((3, 5, 7)) - 1)[0].getpixel((0, 0)) == (0, 0, 0)
    assert from_array(np.ones((5, 7, 3)))[0].getpixel((0, 0)) == (255, 255, 255)
    assert from_array(np.ones((5, 7), bool))[0].size == (7, 5)
    assert len(from_array(np.zeros((4, 1, 6, 6), np.uint8))) == 4


def test_folders_and_globs(shell, tiny, tmp_path, photo):
    (tmp_path / "a").mkdir()
    for name in ("x.png", "y.jpg"):
        photo.save(tmp_path / "a" / name)
    (tmp_path / "a" / "readme.txt").write_text("skip me")
    assert len(records(shell, f"%classify_image {tmp_path}/a -m {tiny}")) == 2
    assert len(records(shell, f'%classify_image "{tmp_path}/a/*.png" -m {tiny}')) == 1


@pytest.mark.parametrize(
    "line, message",
    [
        ("%classify_image", "Give images to classify: `%classify_image cat.jpg`"),
        ("%classify_image nothere", "No file, folder or variable `nothere`"),
        (
            "%classify_image missing.png",
            "No file or folder `missing.png`: check the path.",
        ),
        ("%classify_image 'nomatch*.png'", "No file matches `nomatch*.png`"),
        ("%classify_image img -k 0", "`-k 0` must be at least 1: try `-k 5`."),
        ("%classify_image img --bogus", "unrecognized arguments: --bogus"),
        ("%classify_image img -m ./none.pt", "No file or folder `./none.pt`"),
        (
            "%classify_image http://example.com/cat.jpg",
            "Cannot fetch `http://example.com/cat.jpg`: ipyllmapps is offline",
        ),
        (
            "%classify_image img -m resnet18",
            "`resnet18` weights are not in the torch cache",
        ),
        ("%classify_image img -m resnet18", "or use `-m imagenet`"),
        (
            "%classify_image img -m no-such-org/model",
            "`no-such-org/model` is not a bundled",
        ),
    ],
)
def test_mistakes_are_one_line(
    shell, capsys, photo, tmp_path, monkeypatch, line, message
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    shell.user_ns["img"] = photo
    assert message in usage_error(shell, line, capsys)


@pytest.mark.parametrize(
    "setup, line, expected",
    [
        (
            "emptyarr = np.zeros((0, 0, 3))",
            "%classify_image emptyarr",
            "`emptyarr` is empty (shape (0, 0, 3)): give an image with pixels, "
            "like an HxWx3 array.",
        ),
        (
            "nobatch = np.zeros((0, 3, 8, 8), np.uint8)",
            "%classify_image nobatch",
            "`nobatch` is empty (shape (0, 3, 8, 8)): give an image with pixels, "
            "like an HxWx3 array.",
        ),
        (
            "nanarr = np.full((8, 8, 3), np.nan)",
            "%classify_image nanarr",
            "`nanarr` holds NaN or infinite values: replace them first, e.g. with "
            "`np.nan_to_num(array)`, or give a real image.",
        ),
        (
            "pics = [np.zeros((8, 8)), np.full((8, 8), np.inf)]",
            "%classify_image pics",
            "`pics[1]` holds NaN or infinite values: replace them first, e.g. with "
            "`np.nan_to_num(array)`, or give a real image.",
        ),
    ],
)
def test_empty_and_non_finite_arrays_are_one_line(shell, capsys, setup, line, expected):
    import ipyllmapps

    run(shell, "import numpy as np; " + setup)
    assert usage_error(shell, line, capsys) == "UsageError: " + expected
    assert len(ipyllmapps.manager()) == 0  # refused before any model was loaded


@pytest.mark.parametrize(
    "alias, expected",
    [
        (
            "sentiment",
            "`sentiment` is the bundled text classifier: use `%%classify -m "
            "sentiment`, or for images `-m imagenet`.",
        ),
        (
            "minilm",
            "`minilm` is the bundled sentence encoder: use `%%classify --labels "
            "a,b,c`, or for images `-m imagenet`.",
        ),
        (
            "whisper-tiny.en",
            "`whisper-tiny.en` is the bundled speech model: use `%transcribe AUDIO "
            "-m whisper-tiny.en`, or for images `-m imagenet`.",
        ),
    ],
)
def test_another_applications_bundled_model_is_named(shell, capsys, alias, expected):
    shell.user_ns["img"] = Image.new("RGB", (8, 8))
    line = usage_error(shell, f"%classify_image img -m {alias}", capsys)
    assert line == "UsageError: " + expected


def test_empty_folder_and_missing_sidecar(shell, capsys, tmp_path, tiny):
    (tmp_path / "empty").mkdir()
    line = usage_error(shell, f"%classify_image {tmp_path}/empty", capsys)
    assert "holds no image files" in line
    tiny.with_suffix(".json").unlink()
    shell.user_ns["img"] = Image.new("RGB", (8, 8))
    line = usage_error(shell, f"%classify_image img -m {tiny}", capsys)
    assert "has no sidecar `tiny-resnet.json` naming its architecture" in line


# -- models: state-dict files, torchvision by name, Hugging Face ---------------------


def test_state_dict_file_with_sidecar_loads_once(shell, tiny, photo):
    import ipyllmapps

    shell.user_ns["img"] = photo

    manager = ipyllmapps.manager()
    first = records(shell, f"%classify_image img -m {tiny}")
    again = records(shell, f"%classify_image img -m {tiny}")
    assert first == again and first[0]["label"].startswith("class")
    assert manager.load_count == 1
    assert manager.list()[0]["task"] == "image"


def test_torchvision_name_reads_weights_from_the_torch_cache(
    shell, factory, tmp_path, monkeypatch, photo
):
    import torch

    from ipyllmapps.models.image import imagenet_labels

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    built = factory.resnet(name="r18.pt", arch="resnet18", num_classes=1000, seed=3)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(built.read_bytes())

    shell.user_ns["img"] = photo
    res = records(shell, "%classify_image img -m resnet18 -k 3")
    assert res[0]["label"] in imagenet_labels()
    # the same weights through the sidecar path give the same answer
    built.with_suffix(".json").write_text(
        json.dumps(
            {"arch": "resnet18", "num_classes": 1000, "labels": imagenet_labels()}
        )
    )
    same = records(shell, f"%classify_image img -m {built} -k 3")
    assert same[0]["label"] == res[0]["label"]
    assert torch.load(built, weights_only=True).keys()


def test_hugging_face_folder(shell, tmp_path, photo):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path / "tiny-vit"
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "ant", 1: "bee", 2: "cat"},
        label2id={"ant": 0, "bee": 1, "cat": 2},
    )
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)

    shell.user_ns["img"] = photo
    res = records(shell, f"%classify_image img -m {folder} -k 3")
    assert sorted(label for label, _ in res[0]["top_k"]) == ["ant", "bee", "cat"]
    assert sum(score for _, score in res[0]["top_k"]) == pytest.approx(1, abs=1e-4)


# -- the widget and its fallbacks --------------------------------------------------


def test_grid_has_widget_html_and_text_fallbacks(shell, tiny, photo):
    shell.user_ns["img"] = photo
    bundles = outputs(shell, f"%classify_image img -m {tiny} -k 2")
    assert len(bundles) == 1
    data = bundles[0]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("img: class")
    assert "; then class" in data["text/plain"]
    assert data["text/html"].count("data:image/jpeg;base64,") == 1
    assert data["text/html"].count("%</span>") == 2  # two confidence bars


def test_upload_classifies_what_is_dropped(shell, tiny, photo, capsys, monkeypatch):
    import datetime
    import io

    NOW = datetime.datetime.now(datetime.timezone.utc)
    from ipyllmapps.widgets.image import UploadClassifier

    shown = []
    monkeypatch.setattr(UploadClassifier, "show", lambda self: shown.append(self))
    run(shell, f"%classify_image --upload -m {tiny} -k 2")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    view = shown[0]
    view.upload.value = (
        {
            "name": "cat.jpg",
            "type": "image/jpeg",
            "size": 1,
            "content": memoryview(buffer.getvalue()),
            "last_modified": NOW,
        },
    )
    assert view.upload.disabled is False
    out = capsys.readouterr().out
    assert "cat.jpg: class" in out and "; then class" in out

    view.upload.value = (
        {
            "name": "bad.png",
            "type": "image/png",
            "size": 1,
            "content": memoryview(b"not an image"),
            "last_modified": NOW,
        },
    )
    errors = [o["text"] for o in view.output.outputs if o.get("name") == "stderr"]
    assert errors == [errors[0]] and errors[0].startswith(
        "UsageError: `bad.png` is not"
    )


# -- fine-tuning --------------------------------------------------------------------


def test_finetune_frozen_backbone_beats_chance_and_registers(shell, tmp_path, photo):
    data = digits_folder(tmp_path / "digits")
    bundles = outputs(
        shell,
        f"%finetune image --data {data} --image-size 32 "
        "--freeze-backbone --epochs 8 --name tinydigits "
        f"--save {tmp_path}/saved -o history",
    )
    history = shell.user_ns["history"]
    assert list(history["epoch"]) == list(range(1, 9))
    assert history["test_accuracy"].iloc[-1] > 0.6  # chance is 1/3
    summary = bundles[-1]["text/plain"]
    assert "test accuracy" in summary and "registered as `tinydigits`" in summary
    assert "image/png" in bundles[-1]  # the loss / accuracy curves

    import ipyllmapps

    assert "tinydigits" in ipyllmapps.manager()
    test_two = sorted((data / "test" / "2").iterdir())[:3]
    paths = " ".join(str(p) for p in test_two)
    res = records(shell, f"%classify_image {paths} -m tinydigits -k 3")
    assert {label for r in res for label, _ in r["top_k"]} == {"0", "1", "2"}

    saved = tmp_path / "saved" / "tinydigits.pt"
    meta = json.loads(saved.with_suffix(".json").read_text())
    assert meta["arch"] == "efficientnet-lite0" and meta["labels"] == ["0", "1", "2"]
    assert meta["preprocess"]["crop"] == 32
    again = records(shell, f"%classify_image {paths} -m {saved} -k 3", name="again")
    assert all(same_answer(a, b) for a, b in zip(again, res))


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("-o 1bad", "`-o 1bad` is not a variable name you can use: try `-o results`."),
        (
            "--save /proc/nope",
            "`--save /proc/nope` cannot be created or written (No such file or "
            "directory): give a folder you can write, like `--save ./my-model`.",
        ),
        (
            "--save {tmp}/afile/models",
            "`--save {tmp}/afile/models` cannot be created or written (Not a "
            "directory): give a folder you can write, like `--save ./my-model`.",
        ),
    ],
)
def test_finetune_checks_out_and_save_before_training(
    shell, capsys, tmp_path, monkeypatch, flags, expected
):
    import ipyllmapps
    from ipyllmapps.models import image

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the flags were checked")

    monkeypatch.setattr(image, "finetune", no_training)
    (tmp_path / "afile").write_text("not a folder")
    data = digits_folder(tmp_path / "d", classes=(0, 1), per_class=4, test=1)
    line = usage_error(
        shell,
        f"%finetune image --data {data} --name ft1 {flags.format(tmp=tmp_path)}",
        capsys,
    )
    assert line == "UsageError: " + expected.format(tmp=tmp_path)
    assert "ft1" not in ipyllmapps.manager() and "1bad" not in shell.user_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d"]


def test_finetune_torchvision_base_without_weights_says_so_once(
    shell, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    data = digits_folder(tmp_path / "digits", classes=(0, 1), per_class=12, test=4)
    with pytest.warns(UserWarning, match="starts from random weights") as caught:
        bundles = outputs(
            shell,
            f"%finetune image --data {data} --base resnet18 "
            "--image-size 32 --epochs 1 --name r18 -o h",
        )
    assert len([w for w in caught if "random weights" in str(w.message)]) == 1
    assert len(shell.user_ns["h"]) == 1
    assert "resnet18 started from random weights" in bundles[-1]["text/plain"]


def test_finetune_ctrl_c_keeps_the_last_finished_epoch(tmp_path):
    from ipyllmapps.models import image

    data = digits_folder(tmp_path / "digits", classes=(0, 1), per_class=10, test=4)
    dataset = image.read_folder(data)

    def stop_in_epoch_two(number, **metrics):
        if number == 2:
            raise KeyboardInterrupt

    settings = image.Settings(
        base="imagenet", epochs=3, image_size=32, freeze_backbone=True
    )
    result = image.finetune(dataset, settings, on_epoch=stop_in_epoch_two)
    assert result.interrupted and len(result.history) == 1
    assert 0 <= result.test_accuracy <= 1 and result.test_count == 8


def test_class_folders_without_train_test_are_split(tmp_path):
    from ipyllmapps.models import image

    data = digits_folder(tmp_path / "d", classes=(3, 4), per_class=10, test=0)
    dataset = image.read_folder(data / "train")
    assert dataset.classes == ["3", "4"]
    assert len(dataset.test) == 4 and len(dataset.train) == 16
    assert not {p for p, _ in dataset.test} & {p for p, _ in dataset.train}


@pytest.mark.parametrize(
    "line, message",
    [
        ("%finetune image", "the following arguments are required: --data"),
        ("%finetune image --data /no/such/dir", "No folder `/no/such/dir`"),
        ("%finetune image --data {one} ", "needs at least 2"),
        (
            "%finetune image --data {data} --epochs 0",
            "`--epochs 0` must be at least 1: try `--epochs 3`.",
        ),
        (
            "%finetune image --data {data} --lr inf",
            "`--lr inf` must be above 0 and at most 1: try `--lr 1e-4`.",
        ),
        ("%finetune image --data {data} --base vgg99", "`--base vgg99` is not a base"),
        (
            "%finetune image --data {data} --image-size 4",
            "`--image-size 4` is too small",
        ),
    ],
)
def test_finetune_mistakes_are_one_line(shell, capsys, tmp_path, line, message):
    data = digits_folder(tmp_path / "d", classes=(0, 1), per_class=4, test=1)
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "only" / "a.png")
    line = line.format(data=data, one=tmp_path / "one")
    assert message in usage_error(shell, line, capsys)


# -- the bundled default (real EfficientNet-Lite0) -------------------------------------


@pytest.mark.real
def test_default_model_names_cat_coffee_and_rocket_offline(shell):
    from skimage import data

    shell.user_ns.update(cat=data.chelsea(), coffee=data.coffee(), rocket=data.rocket())
    res = {
        r["source"]: r["label"]
        for r in records(shell, "%classify_image cat coffee rocket")
    }
    assert res["cat"] in {
        "tabby",
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
    }
    assert res["coffee"] in {"espresso", "cup", "coffee mug"}
    assert res["rocket"] in {"missile", "projectile", "space shuttle"}
