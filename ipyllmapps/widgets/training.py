"""The live view of a training run: progress, loss and metric curves, samples.

Used by ``%finetune`` and ``%gan_train``. The training loop calls
:meth:`TrainingView.step` after each batch and :meth:`TrainingView.epoch` after
each epoch; the view redraws its plot at most once a second so that drawing
never slows training down. When the run ends, :meth:`TrainingView.finish`
replaces the fallback of the displayed output with the final summary and plot,
so a saved notebook shows the result without widgets.
"""

import io
import time

import ipywidgets as w
from IPython.display import display

from ipyllmapps.widgets._base import _view, escape, png_base64

REDRAW_SECONDS = 1.0


class TrainingView:
    """Progress bar, status line, live curves and an optional sample image.

    Parameters
    ----------
    title : str
        What is being trained, shown above the bar.
    total_steps : int
        Batches in the whole run (all epochs).
    """

    def __init__(self, title, total_steps):
        self.title = title
        self.history = {}  # curve name -> list of (step, value)
        self._step = 0
        self._drawn_at = 0.0
        self.progress = w.IntProgress(
            value=0, min=0, max=max(1, total_steps), layout=w.Layout(width="60%")
        )
        self.status = w.HTML(f"<b>{escape(title)}</b>")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="520px"))
        self.sample = w.Image(format="png", layout=w.Layout(max_width="260px"))
        self.widget = w.VBox(
            [self.status, self.progress, w.HBox([self.plot, self.sample])]
        )
        self._handle = None

    def show(self):
        """Display the view; its fallback is updated by :meth:`finish`."""
        bundle = {"text/plain": f"{self.title}: training…"}
        bundle.update(_view(self.widget))
        self._handle = display(bundle, raw=True, display_id=True)
        return self

    def step(self, **values):
        """Record one finished batch and its values (``loss=0.31``)."""
        self._step += 1
        self.progress.value = min(self._step, self.progress.max)
        for name, value in values.items():
            self.history.setdefault(name, []).append((self._step, float(value)))
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in values.items())
        self.status.value = f"<b>{escape(self.title)}</b> · step {self._step} · {shown}"
        if time.monotonic() - self._drawn_at > REDRAW_SECONDS:
            self._draw()

    def epoch(self, number, **metrics):
        """Record the metrics of a finished epoch (``accuracy=0.91``) and redraw."""
        for name, value in metrics.items():
            self.history.setdefault(name, []).append((self._step, float(value)))
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in metrics.items())
        self.status.value = f"<b>{escape(self.title)}</b> · epoch {number} · {shown}"
        self._draw()

    def show_sample(self, image):
        """Show a sample (PNG bytes or a PIL image), such as a GAN's grid."""
        self.sample.value = image if isinstance(image, bytes) else _png_bytes(image)

    def finish(self, summary):
        """Show the final summary and make it the saved notebook's fallback."""
        self._draw()
        self.progress.bar_style = "success"
        self.status.value = f"<b>{escape(self.title)}</b> · {escape(summary)}"
        if self._handle is not None:
            bundle = {"text/plain": f"{self.title}: {summary}"}
            if self.plot.value:
                bundle["image/png"] = png_base64(bytes(self.plot.value))
            html = f"<p><b>{escape(self.title)}</b>: {escape(summary)}</p>"
            for image in (self.plot.value, self.sample.value):
                if image:
                    html += (
                        f'<img src="data:image/png;base64,'
                        f'{png_base64(bytes(image))}" style="max-width:520px">'
                    )
            bundle["text/html"] = html
            bundle.update(_view(self.widget))
            self._handle.update(bundle, raw=True)

    def _draw(self):
        self._drawn_at = time.monotonic()
        if self.history:
            self.plot.value = plot_curves(self.history)


def plot_curves(history):
    """Draw each curve of ``history`` in its own small panel; return PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(history)
    figure = Figure(figsize=(3.0 * len(names), 2.4), dpi=90)
    FigureCanvasAgg(figure)
    for i, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), i)
        steps, values = zip(*history[name])
        axes.plot(steps, values, marker="o" if len(values) < 30 else None, markersize=3)
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
