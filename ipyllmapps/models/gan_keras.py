"""The DCGAN of :mod:`ipyllmapps.models.gan` in Keras 3, trained on TensorFlow.

``%gan_train --backend keras`` builds the same generator and discriminator
(channels-last) and trains them with ``tf.GradientTape``; ``%gan_sample -m
FILE.keras`` samples a saved Keras generator with whatever backend Keras runs
on. Before TensorFlow touches a GPU, memory growth is switched on for every
GPU, so TensorFlow takes memory as it needs it and torch models keep working
in the same kernel.
"""

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from ipyllmapps.errors import UserError
from ipyllmapps.models.gan import GanBundle, latents, plan, steps_per_epoch, widths

log = logging.getLogger(__name__)

_configured = False


def keras():
    """Import Keras, switching on TensorFlow's memory growth first."""
    global _configured
    if not _configured:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        _memory_growth()
        _configured = True
    try:
        import keras as keras_module
    except ImportError:
        raise UserError(
            "The Keras path needs Keras 3 and TensorFlow: "
            '`pip install "ipyllmapps[keras]"`, or use `--backend torch`.'
        ) from None
    return keras_module


def _memory_growth():
    """Let TensorFlow grow its GPU memory instead of taking it all at start."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU was initialised before this call
            log.warning(
                "TensorFlow already holds %s; memory growth could not be set", gpu.name
            )


def load(path):
    """Load a generator saved as ``.keras``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No file `{path}`: check the path of the `.keras` generator.")
    k = keras()
    try:
        model = k.saving.load_model(str(path), compile=False)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile):
        # Keras says "File not found" for a truncated zip: name the real cause.
        model = None
    shape = tuple(getattr(model, "output_shape", ()) or ())
    if len(shape) != 4 or shape[1] != shape[2] or len(model.input_shape) != 2:
        raise UserError(
            f"`{path}` is not a valid generator file (truncated, or not a model "
            "from latents to square images): write it again with "
            "`%gan_train --backend keras --save NAME.keras`."
        )
    _, size, _, channels = shape
    config = {
        "latent": int(model.input_shape[-1]),
        "channels": int(channels),
        "size": int(size),
        "backend": "keras",
        "name": path.stem,
    }
    return GanBundle(model=model, framework="keras", config=config)


def build_generator(config):
    """The generator: latent ``(N, latent)`` -> image ``(N, size, size, C)``."""
    k = keras()
    layers = k.layers
    start, _ = plan(config["size"])
    maps = widths(config)
    model = k.Sequential(name="generator")
    model.add(k.Input(shape=(config["latent"],)))
    model.add(layers.Dense(maps[0] * start * start, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.ReLU())
    model.add(layers.Reshape((start, start, maps[0])))
    for narrow in maps[1:]:  # each step doubles the side
        model.add(
            layers.Conv2DTranspose(narrow, 4, strides=2, padding="same", use_bias=False)
        )
        model.add(layers.BatchNormalization())
        model.add(layers.ReLU())
    model.add(layers.Conv2DTranspose(config["channels"], 4, strides=2, padding="same"))
    model.add(layers.Activation("tanh"))  # (N, size, size, C) in [-1, 1]
    return model


def build_discriminator(config):
    """The discriminator: image ``(N, size, size, C)`` -> logit ``(N, 1)``."""
    k = keras()
    layers = k.layers
    maps = widths(config)[::-1]
    size = config["size"]
    model = k.Sequential(name="discriminator")
    model.add(k.Input(shape=(size, size, config["channels"])))
    model.add(layers.Conv2D(maps[0], 4, strides=2, padding="same"))
    model.add(layers.LeakyReLU(0.2))
    for wide in maps[1:]:  # each step halves the side
        model.add(layers.Conv2D(wide, 4, strides=2, padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU(0.2))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


def generate(generator, z):
    """Run a Keras generator in inference mode on batches of 16 latents.

    Returns
    -------
    numpy.ndarray
        Float32 images ``(N, C, H, W)``: channels-first, like the torch
        generator's, so that every caller renders one layout.
    """
    from ipyllmapps.models.gan import CHUNK

    outputs = [
        keras().ops.convert_to_numpy(
            generator(z[start : start + CHUNK], training=False)
        )
        for start in range(0, len(z), CHUNK)
    ]
    return np.ascontiguousarray(np.concatenate(outputs).transpose(0, 3, 1, 2))


def train(
    data,
    config,
    *,
    epochs,
    batch_size=64,
    lr=2e-4,
    steps=None,
    seed=0,
    on_step=None,
    on_epoch=None,
):
    """Train the Keras DCGAN on ``data`` (``(N, C, H, W)`` in [-1, 1]).

    Same arguments and result as :func:`ipyllmapps.models.gan.train`; training
    runs on TensorFlow (Keras' default backend).
    """
    k = keras()
    if k.backend.backend() != "tensorflow":
        raise UserError(
            f"`--backend keras` trains with TensorFlow but Keras runs on "
            f"`{k.backend.backend()}`: set `KERAS_BACKEND=tensorflow` before starting "
            "the kernel, or use `--backend torch`."
        )
    import tensorflow as tf

    from ipyllmapps.models.gan import CHUNK
    from ipyllmapps.models.training import fit

    k.utils.set_random_seed(seed)
    generator = build_generator(config)
    discriminator = build_discriminator(config)
    opt_g = k.optimizers.Adam(lr, beta_1=0.5)
    opt_d = k.optimizers.Adam(lr, beta_1=0.5)
    bce = k.losses.BinaryCrossentropy(from_logits=True)
    images = np.ascontiguousarray(data.transpose(0, 2, 3, 1))  # -> channels-last
    rng = np.random.default_rng(seed)
    fixed = latents(CHUNK, config["latent"], seed=0)
    per_epoch = steps_per_epoch(len(images), batch_size, steps)

    @tf.function
    def train_step(real):
        z = tf.random.normal((tf.shape(real)[0], config["latent"]))
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = generator(z, training=True)
            d_real = discriminator(real, training=True)
            d_fake = discriminator(fake, training=True)
            d_loss = bce(tf.fill(tf.shape(d_real), 0.9), d_real) + bce(
                tf.zeros_like(d_fake), d_fake
            )
            g_loss = bce(tf.ones_like(d_fake), d_fake)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        opt_d.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        opt_g.apply_gradients(zip(g_grads, generator.trainable_variables))
        return g_loss, d_loss

    def run_epoch(epoch):
        perm = rng.permutation(len(images))
        totals = np.zeros(2)
        for step in range(per_epoch):
            index = perm[step * batch_size : (step + 1) * batch_size]
            g_loss, d_loss = train_step(tf.constant(images[index]))
            values = (float(g_loss), float(d_loss))
            totals += values
            if on_step is not None:
                on_step(g_loss=values[0], d_loss=values[1])
        config["epochs"] = epoch
        metrics = {"g_loss": totals[0] / per_epoch, "d_loss": totals[1] / per_epoch}
        if on_epoch is not None:
            on_epoch(epoch, metrics, generate(generator, fixed))
        return metrics

    result = fit([_Snapshot(generator), _Snapshot(discriminator)], epochs, run_epoch)
    config["epochs"] = len(result.epochs)
    config["backend"] = "keras"
    return GanBundle(model=generator, framework="keras", config=config), result


class _Snapshot:
    """Gives a Keras model the ``state_dict`` interface that ``fit`` snapshots."""

    def __init__(self, model):
        self.model = model

    def state_dict(self):
        return self.model.get_weights()

    def load_state_dict(self, weights):
        self.model.set_weights(weights)

    def eval(self):
        return self
