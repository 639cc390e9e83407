"""GAN views: a grid of samples and the latent explorer.

Both receive PNG bytes and callables from the magic; nothing here touches the
generator itself.
"""

import random

import ipywidgets as w

from ipyllmapps.widgets._base import escape, run_guarded, show

MAX_SEED = 2**31 - 1


def show_grid(png, text):
    """Display a grid of samples (PNG bytes) with a PNG and text fallback."""
    caption = w.HTML(f"<span style='font-size:12px'>{escape(text)}</span>")
    image = w.Image(value=png, format="png")
    show(w.VBox([image, caption]), text, png=png)


class LatentExplorer:
    """Walk between two latent points of a generator.

    Parameters
    ----------
    render : callable
        ``render(seed_a, seed_b, t)`` returns ``(point_png, path_png)``: the
        image at fraction ``t`` of the way from seed ``a``'s latent to seed
        ``b``'s, and a strip of images along the whole path.
    seed_a, seed_b : int
        The two latent points to start from.
    title : str
        What is being explored, shown above the controls.
    """

    def __init__(self, render, seed_a, seed_b, title):
        self._render = render
        self._busy = False
        self.title = title
        self.seed_a = w.BoundedIntText(
            value=seed_a,
            min=0,
            max=MAX_SEED,
            description="seed A",
            layout=w.Layout(width="180px"),
        )
        self.seed_b = w.BoundedIntText(
            value=seed_b,
            min=0,
            max=MAX_SEED,
            description="seed B",
            layout=w.Layout(width="180px"),
        )
        self.t = w.FloatSlider(
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            description="A → B",
            continuous_update=True,
            readout_format=".2f",
        )
        self.resample = w.Button(
            description="Re-sample", icon="refresh", tooltip="pick two new random seeds"
        )
        self.point = w.Image(format="png", layout=w.Layout(width="168px"))
        self.path = w.Image(format="png")
        self.output = w.Output()
        for control in (self.seed_a, self.seed_b, self.t):
            control.observe(self._handle_change, names="value")
        self.resample.on_click(self._handle_resample)
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{escape(title)}</b>"),
                w.HBox([self.seed_a, self.seed_b, self.resample]),
                self.t,
                w.HBox([self.point, self.path]),
                self.output,
            ]
        )
        self._redraw()

    def show(self):
        """Display the explorer; the path strip is the saved notebook's fallback."""
        text = (
            f"{self.title}: seed {self.seed_a.value} → seed {self.seed_b.value}, "
            f"t = {self.t.value:.2f}"
        )
        show(self.widget, text, png=bytes(self.path.value))
        return self

    def _redraw(self):
        point, path = self._render(self.seed_a.value, self.seed_b.value, self.t.value)
        self.point.value = point
        self.path.value = path

    def _handle_change(self, _change):
        if not self._busy:
            run_guarded(self.output, self.resample, self._redraw)

    def _handle_resample(self, _button):
        self._busy = True
        try:
            self.seed_a.value = random.randint(0, MAX_SEED)
            self.seed_b.value = random.randint(0, MAX_SEED)
        finally:
            self._busy = False
        run_guarded(self.output, self.resample, self._redraw)
