"""%gan_sample, %gan_train, the renderer (G1), reproducible sampling (G2), Keras."""

import base64
import io

import numpy as np
import pytest
from IPython.utils.capture import capture_output
from PIL import Image

from tests.conftest import run, usage_error


def _displayed(ip, cell):
    """Run a cell and return the mime bundles it displayed."""
    with capture_output() as captured:
        run(ip, cell)
    return [output.data for output in captured.outputs]


def _png(bundle):
    return Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))


# -- G1: the renderer ----------------------------------------------------------


def test_extremes_render_black_and_white_without_wrapping():
    from ipyllmapps.models.render import grid, to_uint8

    black = to_uint8(np.full((3, 1, 28, 28), -1.0, dtype=np.float32))
    white = to_uint8(np.full((3, 1, 28, 28), 1.0, dtype=np.float32))
    assert [im.shape for im in black] == [(28, 28)] * 3
    assert all(im.dtype == np.uint8 for im in black + white)
    assert all((im == 0).all() for im in black)
    assert all((im == 255).all() for im in white)
    beyond = to_uint8(np.array([[[[-3.0, 1.5, 1.0001, np.nan, -1.0001]]]]))[0]
    assert beyond.tolist() == [[0, 255, 255, 0, 0]]  # saturates, never wraps
    assert np.asarray(grid(white, nrow=3, pad=0)).min() == 255
    assert np.asarray(grid(black, nrow=3, pad=0)).max() == 0


def test_channel_order_is_right_both_ways():
    from ipyllmapps.models.render import to_uint8

    first = np.zeros((2, 3, 5, 7), dtype=np.float32)
    first[:, 0], first[:, 1], first[:, 2] = -1.0, 0.0, 1.0  # red 0, green 128, blue 255
    last = first.transpose(0, 2, 3, 1)
    for batch in (first, last):
        images = to_uint8(batch)
        assert images[0].shape == (5, 7, 3)
        assert images[0][2, 3].tolist() == [0, 128, 255]
    # a 3x3 RGB image is ambiguous; the caller can say which axis is which
    square = np.zeros((1, 3, 3, 3), dtype=np.float32)
    square[:, 0] = 1.0
    assert to_uint8(square, channels_first=True)[0][..., 0].min() == 255
    assert to_uint8(square, channels_first=False)[0][0].tolist() == [[255] * 3] * 3


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels", [3, 4])
def test_tiny_channels_first_red_stays_red(side, channels):
    """Sides of 1-4 look like channel counts: the known layout is passed."""
    from ipyllmapps.models.render import to_uint8

    red = np.full((2, channels, side, side), -1.0, dtype=np.float32)
    red[:, 0] = 1.0
    if channels == 4:
        red[:, 3] = 1.0  # opaque
    expected = [255, 0, 0] + [255] * (channels - 3)
    (image, _) = to_uint8(red, channels_first=True)
    assert image.shape == (side, side, channels)
    assert image.reshape(-1, channels).tolist() == [expected] * side * side
    (image, _) = to_uint8(red.transpose(0, 2, 3, 1), channels_first=False)
    assert image.reshape(-1, channels).tolist() == [expected] * side * side


def test_guessed_layout_prefers_square_images():
    from ipyllmapps.models.render import to_uint8

    red = np.full((1, 3, 4, 4), -1.0, dtype=np.float32)
    red[:, 0] = 1.0
    assert to_uint8(red)[0][1, 2].tolist() == [255, 0, 0]  # not 3x4 RGBA
    assert to_uint8(red.transpose(0, 2, 3, 1))[0][1, 2].tolist() == [255, 0, 0]
    # every reading of (N, 3, 3, 3) is square: the guess is channels-last
    cube = np.zeros((1, 3, 3, 3), dtype=np.float32)
    assert to_uint8(cube)[0].shape == (3, 3, 3)


def test_sample_renders_the_generator_layout(shell, factory, monkeypatch):
    """A 3x3 RGB channels-first output is shown red, not white or grey."""
    from ipyllmapps.models import gan

    path = factory.dcgan_generator()

    def tiny_red(bundle, count, seed):
        images = np.full((count, 3, 3, 3), -1.0, dtype=np.float32)
        images[:, 0] = 1.0
        return images

    monkeypatch.setattr(gan, "sample", tiny_red)
    run(shell, f"%gan_sample 2 -m {path} --seed 0 -o red")
    assert [im[1, 1].tolist() for im in shell.user_ns["red"]] == [[255, 0, 0]] * 2


# -- G2 and sampling -----------------------------------------------------------


def test_one_image_equals_first_of_sixteen(shell, factory):
    path = factory.dcgan_generator()
    run(shell, f"%gan_sample 1 --seed 1 -m {path} -o one")
    run(shell, f"%gan_sample 16 --seed 1 -m {path} -o many")
    one, many = shell.user_ns["one"], shell.user_ns["many"]
    assert len(one) == 1 and len(many) == 16
    assert np.array_equal(one[0], many[0])
    assert not np.array_equal(many[0], many[1])

    from ipyllmapps.models import gan

    bundle = gan.load_safetensors(path)
    alone = gan.sample(bundle, 1, seed=1)
    batch = gan.sample(bundle, 16, seed=1)
    assert np.array_equal(alone[0], batch[0])  # bit for bit, not just after rounding
    assert np.array_equal(gan.latents(1, 16, 1)[0], gan.latents(16, 16, 1)[0])


def test_sample_shows_grid_and_hands_back_uint8_arrays(shell, factory, tmp_path):
    path = factory.dcgan_generator(name="colour.safetensors", size=32, channels=3)
    out = tmp_path / "grid.png"
    shown = _displayed(
        shell, f"%gan_sample 6 -m {path} --seed 2 --nrow 3 -o imgs --save {out}"
    )
    images = shell.user_ns["imgs"]
    assert [im.shape for im in images] == [(32, 32, 3)] * 6
    assert images[0].dtype == np.uint8
    assert "6 sample(s) from `colour` (32x32 colour), seed 2" in shown[0]["text/plain"]
    scale = 3  # 32-pixel images are zoomed to about 96 pixels
    expected = ((3 * 34 + 2) * scale, (2 * 34 + 2) * scale)  # 3 per row, 2 rows
    assert _png(shown[0]).size == expected
    assert Image.open(out).size == expected
    assert "application/vnd.jupyter.widget-view+json" in shown[0]


def test_explore_shows_latent_explorer(shell, factory):
    path = factory.dcgan_generator()
    shown = _displayed(shell, f"%gan_sample --explore -m {path} --seed 4")
    assert "seed 4 → seed 5" in shown[0]["text/plain"]
    assert _png(shown[0]).width > _png(shown[0]).height  # the path strip


def test_latent_explorer_redraws_on_change_and_resample():
    from ipyllmapps.errors import UserError
    from ipyllmapps.widgets.gan import LatentExplorer

    calls = []

    def render(a, b, t):
        calls.append((a, b, t))
        if a == 13:
            raise UserError("thirteen is unlucky")
        return b"point", b"path"

    explorer = LatentExplorer(render, 1, 2, "test")
    assert calls == [(1, 2, 0.5)]
    explorer.t.value = 0.25
    assert calls[-1] == (1, 2, 0.25)
    explorer.resample.click()
    assert len(calls) == 3  # new seeds, one redraw
    assert calls[-1][:2] == (explorer.seed_a.value, explorer.seed_b.value)
    explorer.seed_a.value = 13
    assert "UsageError: thirteen is unlucky" in str(explorer.output.outputs)
    assert not explorer.resample.disabled


def test_interpolation_ends_at_both_points():
    from ipyllmapps.models.gan import interpolate, latents

    a, b = latents(2, 32, seed=0)
    assert np.allclose(interpolate(a, b, 0.0), a, atol=1e-6)
    assert np.allclose(interpolate(a, b, 1.0), b, atol=1e-6)
    middle = interpolate(a, b, 0.5)
    assert abs(np.linalg.norm(middle) - np.linalg.norm(a)) < 0.2 * np.linalg.norm(a)


@pytest.mark.real
def test_bundled_generator_same_seed_same_grid(shell):
    first = _displayed(shell, "%gan_sample 16 --seed 0 -o a")
    _displayed(shell, "%gan_sample 16 --seed 0 -o b")
    _displayed(shell, "%gan_sample 16 --seed 7 -o c")
    a, b, c = (shell.user_ns[n] for n in "abc")
    assert [im.shape for im in a] == [(28, 28)] * 16
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert _png(first[0]).size == ((4 * 30 + 2) * 3,) * 2  # a 4x4 grid
    mean = np.mean([im.mean() for im in a])
    assert 15 < mean < 120  # light strokes on a dark background, like the digits


# -- training ------------------------------------------------------------------


def test_train_shows_losses_and_grid_and_registers(shell, tmp_path):
    path = tmp_path / "mine.safetensors"
    shown = _displayed(
        shell,
        "%gan_train --data digits --epochs 2 --steps 2 --batch-size 16 "
        f"--width 8 --latent 16 --name mine --save {path}",
    )
    final = shown[-1]
    assert "2 epoch(s), g_loss" in final["text/plain"]
    assert _png(final).width > 100  # the loss curves

    import ipyllmapps

    record = next(r for r in ipyllmapps.manager().list() if r["name"] == "mine")
    assert record["task"] == "gan" and record["bytes"] > 0
    run(shell, "%gan_sample 4 -m mine --seed 3 -o trained")
    run(shell, f"%gan_sample 4 -m {path} --seed 3 -o saved")
    assert all(
        np.array_equal(x, y)
        for x, y in zip(shell.user_ns["trained"], shell.user_ns["saved"])
    )


def test_training_data_from_npz_and_folders(tmp_path, monkeypatch):
    from ipyllmapps.errors import UserError
    from ipyllmapps.models import gan

    np.savez(tmp_path / "x.npz", images=np.full((5, 28, 28), 255, dtype=np.uint8))
    data = gan.load_data(str(tmp_path / "x.npz"))
    assert data.shape == (5, 1, 28, 28) and data.min() == 1.0

    colour, grey = tmp_path / "colour", tmp_path / "grey"
    colour.mkdir()
    grey.mkdir()
    for i in range(3):
        Image.new("RGB", (50, 40), (255, 0, i * 100)).save(colour / f"{i}.png")
        Image.new("L", (40, 40), 0).save(grey / f"{i}.jpg")
    data = gan.load_data(str(colour))
    assert data.shape == (3, 3, 32, 32)
    assert data[0, 0].min() > 0.99 and data[0, 1].max() < -0.99  # red stays red
    assert gan.load_data(str(grey), 64).shape == (3, 1, 64, 64)

    monkeypatch.setattr(gan, "FASHION_DIR", tmp_path / "missing")
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        gan.load_data("fashion-mnist")


@pytest.mark.parametrize(
    "line, message",
    [
        ("%gan_sample 0", "draw between 1 and 1024 images"),
        ("%gan_sample two", "invalid int value: 'two'"),
        ("%gan_sample --nrow 0", "`--nrow 0` must be at least 1"),
        ("%gan_sample --seed -1", "`--seed -1`: use a whole number from 0"),
        ("%gan_sample --save grid.jpg", "writes a PNG image: end it in `.png`"),
        ("%gan_sample -o 2x", "`-o 2x` is not a variable name"),
        ("%gan_sample -m nope", "No generator `nope`: use `digits-dcgan`"),
        ("%gan_sample -m model.keras", "No generator `model.keras`"),
        ("%gan_train --data nope", "`--data nope` is not a data set: use `digits`"),
        ("%gan_train --epochs 0", "`--epochs 0` must be at least 1"),
        ("%gan_train --batch-size 1", "batch norm needs at least 2 images"),
        ("%gan_train --save g.pt", "a torch generator is saved as `NAME.safetensors`"),
        ("%gan_train --backend keras --save g.safetensors", "saved as `NAME.keras`"),
        ("%gan_train --backend jax", "invalid choice: 'jax'"),
        ("%gan_train --size 48", "invalid choice: 48"),
        ("%gan_train --lr nan", "`--lr nan` must be above 0 and at most 1"),
        ("%gan_train --lr inf", "`--lr inf` must be above 0 and at most 1"),
        ("%gan_train --lr 0", "`--lr 0` must be above 0 and at most 1"),
        ("%gan_train --seed -1", "`--seed -1`: use a whole number from 0 to"),
        (
            "%gan_sample --seed 99999999999999999999",
            "`--seed 99999999999999999999`: use a whole number from 0 to 2147483647",
        ),
        (
            "%gan_train --save /nonexist/x.safetensors",
            "`--save /nonexist/x.safetensors`: the folder `/nonexist` does not exist.",
        ),
        (
            "%gan_sample --save /nonexist/x.png",
            "`--save /nonexist/x.png`: the folder `/nonexist` does not exist.",
        ),
    ],
)
def test_user_mistakes_are_one_line(shell, capsys, line, message):
    assert message in usage_error(shell, line, capsys)
    assert len(__import__("ipyllmapps").manager()) == 0
    assert not __import__("os").path.exists("/nonexist")


def test_save_to_a_missing_folder_is_refused_before_training(
    shell, tmp_path, capsys, monkeypatch
):
    from ipyllmapps.errors import UserError
    from ipyllmapps.models import gan

    monkeypatch.setattr(gan, "load_data", lambda *a: pytest.fail("data was loaded"))
    target = tmp_path / "missing" / "g.safetensors"
    line = usage_error(shell, f"%gan_train --save {target}", capsys)
    assert f"the folder `{target.parent}` does not exist" in line
    assert not target.parent.exists()
    bundle = gan.GanBundle(model=None, config={})
    with pytest.raises(UserError, match="does not exist"):
        gan.save(bundle, target)  # the Python API does not create it either
    assert not target.parent.exists()


def test_truncated_generator_file_is_one_line(shell, factory, tmp_path, capsys):
    import ipyllmapps

    whole = factory.dcgan_generator().read_bytes()
    kept = factory.dcgan_generator(name="kept.safetensors")
    run(shell, f"%models load {kept} --task gan --name kept")
    for size in (5, 100, len(whole) - 50):
        cut = tmp_path / "trunc.safetensors"
        cut.write_bytes(whole[:size])
        line = usage_error(shell, f"%gan_sample 4 -m {cut}", capsys)
        assert f"`{cut}` is not a valid generator file" in line
        assert "write it again with `%gan_train --save`" in line
    assert [r["name"] for r in ipyllmapps.manager().list()] == ["kept"]


def test_corrupt_keras_file_is_one_line(shell, tmp_path, capsys):
    pytest.importorskip("keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip" * 20)
    line = usage_error(shell, f"%gan_sample 4 -m {bad}", capsys)
    assert f"`{bad}` is not a valid generator file (truncated" in line


def test_failed_sample_keeps_trained_model(shell, factory, capsys):
    path = factory.dcgan_generator()
    run(shell, f"%models load {path} --task gan --name kept")
    usage_error(shell, "%gan_sample -m nope", capsys)

    import ipyllmapps

    assert "kept" in ipyllmapps.manager()


# -- the Keras path -----------------------------------------------------------


def test_keras_trains_samples_and_shares_the_kernel_with_torch(
    shell, factory, tmp_path
):
    pytest.importorskip("tensorflow")
    import ipyllmapps

    path = tmp_path / "g.keras"
    shown = _displayed(
        shell,
        "%gan_train --backend keras --data digits --epochs 1 "
        f"--steps 2 --batch-size 16 --width 8 --latent 16 "
        f"--name kd --save {path}",
    )
    assert "1 epoch(s), g_loss" in shown[-1]["text/plain"]
    record = next(r for r in ipyllmapps.manager().list() if r["name"] == "kd")
    assert record["framework"] == "keras" and record["parameters"] > 1000
    assert record["bytes"] >= 4 * record["parameters"] - 1024

    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        assert tf.config.experimental.get_memory_growth(gpu)

    run(shell, "%gan_sample 3 -m kd --seed 5 -o from_registered")
    run(shell, f"%gan_sample 3 -m {path} --seed 5 -o from_file")
    registered, saved = shell.user_ns["from_registered"], shell.user_ns["from_file"]
    assert [im.shape for im in saved] == [(28, 28)] * 3
    assert all(np.abs(x.astype(int) - y).max() <= 1 for x, y in zip(registered, saved))
    run(shell, f"%gan_sample 1 --seed 5 -m {path} -o one")
    assert np.array_equal(shell.user_ns["one"][0], saved[0])

    torch_path = factory.dcgan_generator()
    run(shell, f"%gan_sample 2 -m {torch_path} --seed 5 -o torch_images")
    assert len(shell.user_ns["torch_images"]) == 2
    run(shell, "%models unload --all")
    assert len(ipyllmapps.manager()) == 0
