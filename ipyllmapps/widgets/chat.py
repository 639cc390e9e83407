"""The chat view, where a reply streams in, and the views of history and generations.

A reply is produced by a worker thread that iterates over text pieces and
adds each one to :attr:`ChatView.text`, a trait of the view itself: nothing is
printed, so another cell that runs meanwhile shows only its own output. When
the reply ends, the displayed output's fallback is replaced by the whole
exchange, so a saved notebook shows it without widgets.
"""

import threading
import time

import ipywidgets as w
from IPython.display import display
from traitlets import Bool, Unicode, observe

from ipyllmapps.widgets._base import escape, show

_BUBBLE = (
    "padding:6px 10px;border-radius:8px;margin:3px 0;white-space:pre-wrap;"
    "font-size:13px;line-height:1.4;max-width:720px;"
)
_USER = _BUBBLE + "background:#e3f2fd;"
_REPLY = _BUBBLE + "background:#f5f5f5;"
_NOTICE = "color:#b26a00;font-size:12px;"
_STATUS = "color:#757575;font-size:11px;"


class ChatView(w.VBox):
    """One exchange: the user's message and the model's reply as it streams.

    Parameters
    ----------
    model : str
        The model's name, shown as the speaker of the reply.
    message : str
        What the user asked.
    notice : str, optional
        A line shown above the exchange (such as turns dropped from the history).
    on_stop : callable, optional
        Called by the Stop button; generation should end soon after.
    """

    text = Unicode("", help="The reply so far.")
    streaming = Bool(False, help="Whether the reply is still being written.")
    status = Unicode("", help="A line under the reply: speed, or why it stopped.")

    def __init__(self, model, message, notice="", on_stop=None):
        self.model = model
        self.message = message
        self.notice = notice
        self.failure = None
        self.stopped = False
        self._on_stop = on_stop
        self._thread = None
        self._handle = None
        self._reply = w.HTML(_bubble(model, "…", _REPLY))
        self._status = w.HTML()
        self._stop = w.Button(
            description="Stop",
            icon="stop",
            button_style="warning",
            layout=w.Layout(width="80px"),
        )
        self._stop.on_click(self._handle_stop)
        self.output = w.Output()
        children = [
            w.HTML(_bubble("You", message, _USER)),
            self._reply,
            w.HBox([self._stop, self._status]),
            self.output,
        ]
        if notice:
            children.insert(0, w.HTML(f'<div style="{_NOTICE}">{escape(notice)}</div>'))
        super().__init__(children)

    def show(self):
        """Display the view; its text fallback is completed when the reply ends."""
        self._handle = display(self._bundle(), raw=True, display_id=True)
        return self

    def stream(self, pieces, on_done=None):
        """Add each text piece to :attr:`text` from a worker thread.

        Parameters
        ----------
        pieces : iterable of str
            The reply, piece by piece.
        on_done : callable, optional
            ``on_done(text)`` when the reply ends (also when stopped); its
            return value, when a string, becomes the reply shown.
        """
        self.streaming = True
        self._thread = threading.Thread(
            target=self._work,
            args=(pieces, on_done),
            name="ipyllmapps-chat",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait(self):
        """Block until the reply ends; Ctrl-C stops it."""
        if self._thread is None:
            return
        try:
            while self._thread.is_alive():
                self._thread.join(0.1)
        except KeyboardInterrupt:
            self._handle_stop(None)
            self._thread.join()

    def text_fallback(self):
        """The exchange as plain text."""
        lines = [self.notice] if self.notice else []
        lines += [f"You: {self.message}", f"{self.model}: {self.text or '…'}"]
        if self.status:
            lines.append(f"({self.status})")
        return "\n".join(lines)

    def html_fallback(self):
        """The exchange as HTML."""
        parts = (
            [f'<div style="{_NOTICE}">{escape(self.notice)}</div>']
            if self.notice
            else []
        )
        parts += [
            _bubble("You", self.message, _USER),
            _bubble(self.model, self.text or "…", _REPLY),
        ]
        if self.status:
            parts.append(f'<div style="{_STATUS}">{escape(self.status)}</div>')
        return "".join(parts)

    @observe("text")
    def _show_text(self, change):
        self._reply.value = _bubble(self.model, change["new"] or "…", _REPLY)

    @observe("status")
    def _show_status(self, change):
        self._status.value = f'<span style="{_STATUS}">{escape(change["new"])}</span>'

    @observe("streaming")
    def _show_streaming(self, change):
        self._stop.disabled = not change["new"]

    def _handle_stop(self, _button):
        self.stopped = True
        self._stop.disabled = True
        if self._on_stop is not None:
            self._on_stop()

    def _work(self, pieces, on_done):
        started = time.monotonic()
        first = None
        text = ""
        try:
            for piece in pieces:
                if not piece:
                    continue
                first = first or time.monotonic()
                text += piece
                self.text = text
        except (
            Exception
        ) as exc:  # shown under the view; the magic re-raises it in tests
            self.failure = exc
            self.output.append_stderr(f"Error: {exc}\n")
        pieces = None  # drop the generator (and the model it reaches) now
        if on_done is not None and self.failure is None:
            final = on_done(text)
            if isinstance(final, str):
                self.text = text = final
        took = time.monotonic() - started
        wait = f", first words after {first - started:.1f} s" if first else ""
        stopped = "stopped · " if self.stopped else ""
        self.status = f"{stopped}{len(text)} characters in {took:.1f} s{wait}"
        self.streaming = False
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def _bundle(self):
        bundle = {"text/plain": self.text_fallback(), "text/html": self.html_fallback()}
        view = self._repr_mimebundle_()  # its own text/plain is the widget's repr
        bundle.update({k: v for k, v in view.items() if k.startswith("application/")})
        return bundle


def show_history(model, system, turns, note=""):
    """Display a conversation's turns, oldest first."""
    text_lines = [f"Conversation with {model}"]
    html = [f"<b>Conversation with {escape(model)}</b>"]
    if system:
        text_lines.append(f"System: {system}")
        html.append(f'<div style="{_STATUS}">System: {escape(system)}</div>')
    if not turns:
        text_lines.append(note or "(no turns yet: ask something with `%%chat`)")
        html.append(
            f"<p><i>{escape(note or 'No turns yet: ask something with %%chat.')}"
            "</i></p>"
        )
    for turn in turns:
        speaker = "You" if turn["role"] == "user" else model
        style = _USER if turn["role"] == "user" else _REPLY
        text_lines.append(f"{speaker}: {turn['content']}")
        html.append(_bubble(speaker, turn["content"], style))
    html_text = "".join(html)
    show(w.HTML(html_text), "\n".join(text_lines), html=html_text)


def show_note(text):
    """Display one line, such as "the conversation was cleared"."""
    html_text = f'<div style="{_STATUS}">{escape(text)}</div>'
    show(w.HTML(html_text), text, html=html_text)


def show_generations(model, results):
    """Display each prompt with its numbered continuations.

    Parameters
    ----------
    model : str
    results : list of (str, list of str)
        Each prompt and its continuations.
    """
    text_lines, html = [], []
    for prompt, replies in results:
        text_lines.append(f"Prompt: {prompt}")
        html.append(f'<div style="margin-top:6px"><b>{escape(prompt)}</b></div><ol>')
        for number, reply in enumerate(replies, start=1):
            text_lines.append(f"  {number}. {prompt}{reply}")
            html.append(
                f'<li style="white-space:pre-wrap">{escape(prompt)}'
                f'<span style="color:#1565c0">{escape(reply)}</span></li>'
            )
        html.append("</ol>")
    html.append(f'<div style="{_STATUS}">{escape(model)}</div>')
    html_text = "".join(html)
    show(w.HTML(html_text), "\n".join(text_lines), html=html_text)


def _bubble(speaker, text, style):
    return f'<div style="{style}"><b>{escape(speaker)}:</b> {escape(text)}</div>'
