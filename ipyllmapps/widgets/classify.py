"""The ``%%classify`` result: per line the text, its label and confidence bars.

A summary of counts per label sits on top; its toggle buttons filter the rows
to one label. The same content is the text/plain and HTML fallback, so a
saved notebook shows the labels without widgets.
"""

from collections import Counter

import ipywidgets as w

from ipyllmapps.widgets._base import bar_html, escape, show

MAX_ROWS = 200  # rows drawn in the notebook; `-o NAME` keeps them all
SHOWN_LABELS = 5  # bars per row when `-k` is not given
_ALL = "all"


class ClassifyView:
    """Rows of classified texts with Label-style confidence bars.

    Parameters
    ----------
    records : list of dict
        ``text``, ``label``, ``score``, ``scores`` (label -> score, best first)
        and ``truncated`` per text, as :mod:`ipyllmapps.models.classify` returns.
    top_k : int, optional
        Bars per row (default: up to five).
    title : str, optional
        Shown above the summary, e.g. the model's name.
    """

    def __init__(self, records, top_k=None, title=None):
        self.records = list(records)
        self.top_k = top_k or SHOWN_LABELS
        self.title = title
        counts = summary(self.records)
        options = [(f"{_ALL} ({len(self.records)})", _ALL)]
        options += [(f"{label} ({n})", label) for label, n in counts]
        self.filter = w.ToggleButtons(
            options=options, value=_ALL, style={"button_width": "auto"}
        )
        self.rows = w.HTML(rows_html(self.records, self.top_k))
        self.filter.observe(self._handle_filter, names="value")
        heading = w.HTML(f"<b>{escape(title)}</b>" if title else "")
        self.widget = w.VBox([heading, self.filter, self.rows])

    def show(self):
        """Display the view with its text and HTML fallbacks."""
        show(
            self.widget,
            text_view(self.records, self.top_k, self.title),
            html=html_view(self.records, self.top_k, self.title),
        )

    def _handle_filter(self, change):
        chosen = change["new"]
        shown = [r for r in self.records if chosen == _ALL or r["label"] == chosen]
        self.rows.value = rows_html(shown, self.top_k)


def summary(records):
    """``(label, count)`` pairs, most frequent first."""
    return Counter(r["label"] for r in records).most_common()


def summary_line(records):
    """``positive 3 · negative 2`` for the records."""
    return " · ".join(f"{label} {n}" for label, n in summary(records))


def text_view(records, top_k=None, title=None):
    """The result as plain text: a summary line, then one line per text."""
    top_k = top_k or SHOWN_LABELS
    lines = [title] if title else []
    lines.append(f"{len(records)} line(s): {summary_line(records)}")
    for record in records[:MAX_ROWS]:
        scores = ", ".join(
            f"{label} {score:.2f}"
            for label, score in list(record["scores"].items())[:top_k]
        )
        mark = " [truncated]" if record["truncated"] else ""
        lines.append(
            f"{record['label']:<12} {record['score']:.2f}  "
            f"{_short(record['text'])}{mark}  ({scores})"
        )
    if len(records) > MAX_ROWS:
        lines.append(f"… {len(records) - MAX_ROWS} more (keep them all with `-o NAME`)")
    return "\n".join(lines)


def html_view(records, top_k=None, title=None):
    """The result as HTML: a summary line, then the rows with their bars."""
    head = f"<b>{escape(title)}</b><br>" if title else ""
    counts = escape(f"{len(records)} line(s): {summary_line(records)}")
    return f"<div>{head}<div>{counts}</div>{rows_html(records, top_k)}</div>"


def rows_html(records, top_k=None):
    """One block per record: the text, the top label, then its bars."""
    top_k = top_k or SHOWN_LABELS
    blocks = []
    for record in records[:MAX_ROWS]:
        mark = (
            (
                ' <span style="color:#b26a00" title="longer than the model accepts; '
                'the end was cut">[truncated]</span>'
            )
            if record["truncated"]
            else ""
        )
        bars = "".join(
            bar_html(label, score)
            for label, score in list(record["scores"].items())[:top_k]
        )
        text = escape(_short(record["text"], 160))
        blocks.append(
            '<div style="margin:4px 0;padding:4px 0;border-bottom:1px solid #eee">'
            f'<div style="font-size:13px">{text}{mark}</div>'
            f'<div style="font-size:12px"><b>{escape(record["label"])}</b></div>'
            f"{bars}</div>"
        )
    if len(records) > MAX_ROWS:
        blocks.append(
            f"<div><i>… {len(records) - MAX_ROWS} more (keep them all with "
            "<code>-o NAME</code>)</i></div>"
        )
    return "".join(blocks)


def _short(text, limit=80):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
