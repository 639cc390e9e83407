"""Displaying a widget together with its text, HTML and PNG fallbacks."""

import base64
import html as _html
import io
import traceback

from IPython.display import display


def show(widget, text, html=None, png=None):
    """Display ``widget`` with fallbacks for viewers that cannot run widgets.

    A saved notebook opened on GitHub, nbviewer or after ``nbconvert`` shows the
    richest fallback it can render: ``html``, else the ``png`` (PNG bytes or a
    PIL image), else ``text``.
    """
    bundle = {"text/plain": text}
    if html is not None:
        bundle["text/html"] = html
    if png is not None:
        bundle["image/png"] = png_base64(png)
    if widget is not None:
        bundle.update(_view(widget))
    display(bundle, raw=True)


def _view(widget):
    data = widget._repr_mimebundle_()
    return {k: v for k, v in data.items() if k.startswith("application/vnd.jupyter")}


def png_base64(image):
    """Encode PNG bytes or a PIL image as base64 text for a mime bundle."""
    if not isinstance(image, (bytes, bytearray)):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        image = buffer.getvalue()
    return base64.b64encode(image).decode("ascii")


def escape(text):
    """Escape text for HTML."""
    return _html.escape(str(text))


def bar_html(label, score, width=160):
    """One confidence bar as HTML: the label, a filled bar and the percentage."""
    pct = max(0.0, min(1.0, float(score))) * 100
    return (
        f'<div style="display:flex;align-items:center;gap:6px;font-size:12px">'
        f'<span style="min-width:90px">{escape(label)}</span>'
        f'<span style="display:inline-block;width:{width}px;height:10px;'
        f'background:#e0e0e0;border-radius:2px">'
        f'<span style="display:block;width:{pct:.1f}%;height:100%;'
        f'background:#1976d2;border-radius:2px"></span></span>'
        f"<span>{pct:.1f}%</span></div>"
    )


def run_guarded(output, button, action):
    """Run a button callback, disabling the button while it works.

    Whatever ``action`` prints or displays goes to ``output`` (under a kernel).
    An error it raises replaces what ``output`` shows: a user mistake as one
    line, a bug as its traceback. The error is written into ``output``
    directly, so it lands under this widget whether or not a kernel routes the
    output, never in whatever cell happens to run now.
    """
    from ipyllmapps.errors import UserError

    button.disabled = True
    try:
        with output:
            try:
                action()
            except UserError as exc:
                _show_error(output, f"UsageError: {exc}\n")
            except Exception:
                _show_error(output, traceback.format_exc())
    finally:
        button.disabled = False


def _show_error(output, text):
    output.outputs = ({"output_type": "stream", "name": "stderr", "text": text},)
