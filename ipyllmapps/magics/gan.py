"""``%gan_sample`` and ``%gan_train``: draw images from a GAN, train a DCGAN."""

import secrets
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

MAX_SAMPLES = 1024
MAX_SEED = 2**31 - 1
PATH_STEPS = 8  # images in the latent explorer's path strip


@magics_class
class GanMagics(AppMagics):
    """The ``%gan_sample`` and ``%gan_train`` magics."""

    @magic_arguments()
    @argument(
        "count",
        nargs="?",
        type=int,
        default=16,
        help="how many images to draw (default: 16)",
    )
    @argument(
        "-m",
        "--model",
        help="generator: `digits-dcgan` (bundled), a name from `%%gan_train`, "
        "a `.safetensors` or a `.keras` file (default: LLMApps.gan_model)",
    )
    @argument(
        "--seed",
        type=int,
        help="random seed; the same seed gives the same images (default: random)",
    )
    @argument("--nrow", type=int, help="images per row of the grid (default: square)")
    @argument("--save", metavar="PATH", help="also write the grid to this PNG file")
    @argument(
        "--explore",
        action="store_true",
        help="show the latent explorer: two seeds and a slider between them",
    )
    @argument(
        "-o",
        "--out",
        metavar="NAME",
        help="store the images in this variable as a list of uint8 arrays",
    )
    @no_var_expand
    @line_magic
    @user_errors
    def gan_sample(self, line):
        """Draw images from a GAN generator and show them as a grid.

        Image ``i`` depends only on the seed and ``i``: ``%gan_sample 1 --seed 1``
        is the first image of ``%gan_sample 16 --seed 1``.

        Examples
        --------
        ::

            %gan_sample                          # 16 digits from the bundled generator
            %gan_sample 64 --seed 0 --nrow 16 --save digits.png
            %gan_sample 8 -m my-gan -o images    # images: list of 28x28 uint8 arrays
            %gan_sample -m generator.keras --seed 3
            %gan_sample --explore                # walk between two latent points
        """
        from ipyllmapps.models import gan, render

        args = parse(self.gan_sample, line)
        if args is None:
            return
        if not 1 <= args.count <= MAX_SAMPLES:
            raise UserError(
                f"`%gan_sample {args.count}`: draw between 1 and {MAX_SAMPLES} images, "
                "like `%gan_sample 16`."
            )
        check_count(args.nrow, "--nrow", "4")
        _check_seed(args.seed)
        if args.out:
            check_variable_name(args.out)
        save = _png_path(args.save) if args.save else None

        entry = self.manager.load(self._source(args.model), "gan")
        bundle = entry.bundle
        seed = secrets.randbelow(MAX_SEED) if args.seed is None else args.seed
        images = render.to_uint8(
            gan.sample(bundle, args.count, seed), channels_first=True
        )
        scale = render.display_scale(bundle.config["size"])
        picture = render.grid(images, nrow=args.nrow, scale=scale)
        if save is not None:
            picture.save(save)

        if args.out:
            self.shell.user_ns[args.out] = images
        text = (
            f"{args.count} sample(s) from `{entry.name}` "
            f"({gan.describe(bundle.config)}), seed {seed}"
        )
        if save is not None:
            text += f", saved to {save}"
        if args.explore:
            self._explore(entry, seed)
        else:
            from ipyllmapps.widgets.gan import show_grid

            show_grid(render.png_bytes(picture), text)

    @magic_arguments()
    @argument(
        "--data",
        default="digits",
        help="`digits` (default), `fashion-mnist`, a folder of images or FILE.npz",
    )
    @argument("--epochs", type=int, default=5, help="passes over the data (default: 5)")
    @argument(
        "--batch-size", type=int, default=64, help="images per step (default: 64)"
    )
    @argument(
        "--lr", type=float, default=2e-4, help="Adam learning rate (default: 2e-4)"
    )
    @argument("--latent", type=int, default=100, help="latent size (default: 100)")
    @argument(
        "--width",
        type=int,
        default=32,
        help="feature maps of the last generator layer (default: 32)",
    )
    @argument(
        "--size",
        type=int,
        choices=(28, 32, 64),
        help="image side: 28 (default for digits, Fashion-MNIST) or 32 / 64 "
        "(folders of colour images; default 32)",
    )
    @argument("--steps", type=int, help="stop each epoch after this many steps")
    @argument("--seed", type=int, default=0, help="random seed (default: 0)")
    @argument("--name", help="name of the trained generator (default: DATA-gan)")
    @argument(
        "--save",
        metavar="PATH",
        help="write the generator to PATH (.safetensors, or .keras for Keras)",
    )
    @argument(
        "--backend",
        choices=("torch", "keras"),
        default="torch",
        help="train with torch (default) or with Keras 3 on TensorFlow",
    )
    @no_var_expand
    @line_magic
    @user_errors
    def gan_train(self, line):
        """Train a DCGAN, with live losses and a grid of samples every epoch.

        The trained generator is held by the model manager under ``--name``:
        sample it with ``%gan_sample -m NAME``. Ctrl-C (interrupt the kernel)
        keeps the last finished epoch.

        Examples
        --------
        ::

            %gan_train --data digits --epochs 20 --name my-digits
            %gan_sample 16 -m my-digits --seed 0
            %gan_train --data fashion-mnist --epochs 2 --save fashion.safetensors
            %gan_train --data photos/ --size 32 --epochs 50
            %gan_train --data digits --backend keras --save digits.keras
        """
        from ipyllmapps.models import gan, render
        from ipyllmapps.widgets.training import TrainingView

        args = parse(self.gan_train, line)
        if args is None:
            return
        check_count(args.epochs, "--epochs", "5")
        check_count(args.latent, "--latent", "100")
        check_count(args.steps, "--steps", "10")
        if args.batch_size < 2:
            raise UserError(
                f"`--batch-size {args.batch_size}`: batch norm needs at least "
                "2 images a step, like `--batch-size 64`."
            )
        if args.width < 4:
            raise UserError(
                f"`--width {args.width}`: use at least 4, like `--width 32`."
            )
        check_rate(args.lr, "--lr", "2e-4")
        _check_seed(args.seed)
        if args.save:
            _check_save(args.save, args.backend)

        data = gan.load_data(args.data, args.size)
        name = args.name or f"{Path(args.data.rstrip('/')).stem}-gan"
        config = gan.new_config(
            data,
            latent=args.latent,
            width=args.width,
            name=name,
            source=args.data,
            backend=args.backend,
        )
        per_epoch = gan.steps_per_epoch(len(data), args.batch_size, args.steps)
        title = f"DCGAN ({args.backend}) on {args.data}, {gan.describe(config)}"
        view = TrainingView(title, per_epoch * args.epochs).show()
        scale = render.display_scale(config["size"], target=64)

        def on_epoch(epoch, metrics, images):
            pixels = render.to_uint8(images, channels_first=True)
            picture = render.grid(pixels, nrow=4, scale=scale)
            view.show_sample(render.png_bytes(picture))
            view.epoch(epoch)

        if args.backend == "keras":
            from ipyllmapps.models import gan_keras as trainer

            device = {}
        else:
            trainer = gan
            device = {"device": self.manager.resolve_device(None)}
        bundle, result = trainer.train(
            data,
            config,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            steps=args.steps,
            seed=args.seed,
            on_step=view.step,
            on_epoch=on_epoch,
            **device,
        )

        if not result.epochs:
            view.finish("stopped before the first epoch finished; nothing was kept")
            return
        self.manager.register(name, bundle, "gan", source=f"gan_train:{args.data}")
        summary = (
            f"{len(result.epochs)} epoch(s), g_loss {result.last['g_loss']:.3f}, "
            f"d_loss {result.last['d_loss']:.3f}"
        )
        if result.interrupted:
            summary += " (interrupted: the last finished epoch is kept)"
        if args.save:
            summary += f", saved to {gan.save(bundle, args.save)}"
        view.finish(f"{summary}. Sample it: %gan_sample -m {name}")

    def _source(self, model):
        """The generator to load, checked before the manager makes room for it."""
        from ipyllmapps.models import BUNDLED

        source = model or self.config_obj.gan_model
        if (
            source in self.manager
            or source in BUNDLED
            or Path(source).expanduser().is_file()
        ):
            return source
        trained = [r["name"] for r in self.manager.list() if r["task"] == "gan"]
        offer = ", ".join(f"`{n}`" for n in ["digits-dcgan", *trained])
        raise UserError(
            f"No generator `{source}`: use {offer}, a `.safetensors` file written by "
            "`%gan_train --save`, or a `.keras` file."
        )

    def _explore(self, entry, seed):
        from ipyllmapps.models import gan, render
        from ipyllmapps.widgets.gan import LatentExplorer

        bundle = entry.bundle
        dim = bundle.config["latent"]
        scale = render.display_scale(bundle.config["size"])

        def draw(seed_a, seed_b, t):
            a = gan.latents(1, dim, seed_a)[0]
            b = gan.latents(1, dim, seed_b)[0]
            steps = [i / (PATH_STEPS - 1) for i in range(PATH_STEPS)]
            z = [gan.interpolate(a, b, s) for s in [t, *steps]]
            images = render.to_uint8(gan.generate(bundle, z), channels_first=True)
            point = render.grid(images[:1], pad=0, scale=2 * scale)
            path = render.grid(images[1:], nrow=PATH_STEPS, scale=scale)
            return render.png_bytes(point), render.png_bytes(path)

        title = f"Latent explorer: `{entry.name}` ({gan.describe(bundle.config)})"
        LatentExplorer(draw, seed, (seed + 1) % MAX_SEED, title).show()


def _check_seed(seed):
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UserError(
            f"`--seed {seed}`: use a whole number from 0 to {MAX_SEED}, "
            "like `--seed 1`."
        )


def _png_path(text):
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise UserError(f"`--save {text}` writes a PNG image: end it in `.png`.")
    if not path.parent.is_dir():
        raise UserError(f"`--save {text}`: the folder `{path.parent}` does not exist.")
    return path


def _check_save(text, backend):
    suffix = ".keras" if backend == "keras" else ".safetensors"
    path = Path(text).expanduser()
    if path.suffix != suffix:
        raise UserError(
            f"`--save {text}`: a {backend} generator is saved as `NAME{suffix}`."
        )
    if not path.parent.is_dir():
        raise UserError(f"`--save {text}`: the folder `{path.parent}` does not exist.")
