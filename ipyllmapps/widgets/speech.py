"""The ``%transcribe`` result: an audio player, the transcript and its segments.

Each clip is drawn as one HTML block: an ``<audio>`` player holding the 16 kHz
audio the model heard, the full transcript, and one row per segment (or word)
with its start and end time. Clicking a row moves the player to that time and
plays from there; where a viewer strips the click handlers (an untrusted
notebook) the rows still show their times. The text fallback lists the same
transcript and timed segments.
"""

import base64
import io
import wave

import ipywidgets as w

from ipyllmapps.widgets._base import escape, show

MAX_PLAYER_SECONDS = 600  # longer clips get no embedded player (it would be huge)
MAX_FALLBACK_PLAYER_SECONDS = 30  # the saved HTML fallback embeds short clips only
MAX_ROWS = 500  # timed rows drawn per clip; `-o NAME` keeps them all
_SEEK = (
    "var p=this.closest('.ipyllmapps-asr').querySelector('audio');"
    "if(p){{p.currentTime={start};p.play();}}"
)


class TranscriptView:
    """Players and timed transcripts of one or more clips.

    Parameters
    ----------
    clips : list of dict
        Per clip: ``source`` (how the user named it), ``audio`` (float32 mono
        samples or ``None``), ``rate``, and ``result``, the dict that
        :func:`ipyllmapps.models.speech.transcribe` returns.
    title : str, optional
        Shown above the clips, e.g. the model's name.
    """

    def __init__(self, clips, title=None):
        self.clips = list(clips)
        self.title = title
        heading = w.HTML(f"<b>{escape(title)}</b>" if title else "")
        blocks = [w.HTML(clip_html(c, MAX_PLAYER_SECONDS)) for c in self.clips]
        self.widget = w.VBox([heading, *blocks])

    def show(self):
        """Display the view with its text and HTML fallbacks."""
        html = "".join(clip_html(c, MAX_FALLBACK_PLAYER_SECONDS) for c in self.clips)
        if self.title:
            html = f"<b>{escape(self.title)}</b>{html}"
        show(self.widget, text_view(self.clips, self.title), html=html)


class Progress:
    """A progress bar over seconds of audio, as segments arrive.

    Call it as ``progress(seconds_done, seconds_total)``; :meth:`close` removes it.
    """

    def __init__(self, total, label):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=round(total, 1), unit="s", desc=label, leave=False)

    def __call__(self, done, total):
        self.bar.n = round(min(done, total), 1)
        self.bar.refresh()

    def close(self):
        self.bar.close()


def text_view(clips, title=None):
    """The transcripts as plain text, with segment times."""
    lines = [title] if title else []
    for clip in clips:
        result = clip["result"]
        lines.append(f"{clip['source']} ({result['duration']:.1f} s): {result['text']}")
        rows = _rows(result)
        for row in rows[:MAX_ROWS]:
            lines.append(
                f"  [{clock(row['start'])} - {clock(row['end'])}] {row['text']}"
            )
        if len(rows) > MAX_ROWS:
            lines.append(
                f"  ... {len(rows) - MAX_ROWS} more (keep them with `-o NAME`)"
            )
    return "\n".join(lines)


def clip_html(clip, max_player_seconds):
    """One clip as HTML: player (when short enough), transcript, timed rows."""
    result = clip["result"]
    parts = [
        "<div class='ipyllmapps-asr' style='margin:6px 0 10px 0'>",
        f"<div><b>{escape(clip['source'])}</b> "
        f"<span style='color:#666'>{result['duration']:.1f} s</span></div>",
    ]
    audio = clip.get("audio")
    if audio is not None and result["duration"] <= max_player_seconds:
        parts.append(
            f"<audio controls preload='metadata' style='width:100%;max-width:480px' "
            f"src='data:audio/wav;base64,{wav_base64(audio, clip['rate'])}'></audio>"
        )
    parts.append(
        f"<p style='margin:4px 0'>{escape(result['text']) or '<i>(no speech)</i>'}</p>"
    )
    rows = _rows(result)
    for row in rows[:MAX_ROWS]:
        seek = _SEEK.format(start=float(row["start"]))
        span = f"{clock(row['start'])}–{clock(row['end'])}"
        parts.append(
            f"<div onclick=\"{seek}\" title='play from here' "
            "style='cursor:pointer;font-size:12px;padding:1px 0'>"
            f"<code style='color:#1976d2'>{span}</code> {escape(row['text'])}</div>"
        )
    if len(rows) > MAX_ROWS:
        parts.append(
            f"<i>… {len(rows) - MAX_ROWS} more (keep them with "
            "<code>-o NAME</code>)</i>"
        )
    parts.append("</div>")
    return "".join(parts)


def wav_base64(audio, rate):
    """Encode float samples as a 16-bit mono WAV file, base64 text."""
    import numpy as np

    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def clock(seconds):
    """``75.5`` -> ``1:15.5``; hours appear when needed."""
    minutes, secs = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:04.1f}"
    return f"{minutes}:{secs:04.1f}"


def _rows(result):
    """Word rows when word timestamps were asked for, else segment rows."""
    if result.get("words"):
        return [
            {"start": x["start"], "end": x["end"], "text": x["word"]}
            for x in result["words"]
        ]
    return result["segments"]
