"""The ``%models`` table: one row per loaded model, with Unload and Pin buttons."""

import time

import ipywidgets as w

from ipyllmapps.errors import format_size
from ipyllmapps.widgets._base import escape, run_guarded, show

COLUMNS = (
    "name",
    "task",
    "framework",
    "device",
    "dtype",
    "parameters",
    "bytes",
    "last used",
    "pinned",
)


class ModelsTable:
    """A live table of the manager's models.

    Parameters
    ----------
    records : callable
        Returns the current list of model records (``ModelManager.list``).
    unload, pin : callable
        ``unload(name)`` and ``pin(name, pinned)``, called by the row buttons.
    """

    def __init__(self, records, unload, pin):
        self._records = records
        self._unload = unload
        self._pin = pin
        self.rows = w.VBox()
        self.output = w.Output()
        self.widget = w.VBox([self.rows, self.output])
        self.refresh()

    def show(self):
        records = self._records()
        show(self.widget, text_table(records), html=html_table(records))

    def refresh(self):
        """Rebuild the rows from the manager's current state."""
        records = self._records()
        if not records:
            self.rows.children = [w.HTML("<i>No model is loaded.</i>")]
            return
        self.rows.children = [self._row(r) for r in records]

    def _row(self, record):
        unload = w.Button(
            description="Unload", button_style="warning", layout=w.Layout(width="80px")
        )
        pin = w.ToggleButton(
            value=record["pinned"], description="Pin", layout=w.Layout(width="60px")
        )
        unload.on_click(lambda _: self._handle_unload(record["name"], unload))
        pin.observe(
            lambda change: self._handle_pin(record["name"], change["new"], pin),
            names="value",
        )
        label = w.HTML(_row_html(record))
        return w.HBox([label, pin, unload])

    def _handle_unload(self, name, button):
        run_guarded(self.output, button, lambda: self._unload(name))
        self.refresh()

    def _handle_pin(self, name, pinned, toggle):
        run_guarded(self.output, toggle, lambda: self._pin(name, pinned))


def text_table(records):
    """The table as plain text, for viewers without widgets."""
    if not records:
        return "No model is loaded."
    rows = [COLUMNS] + [_cells(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def html_table(records):
    """The table as HTML, for viewers without widgets."""
    if not records:
        return "<p><i>No model is loaded.</i></p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(r)) + "</tr>"
        for r in records
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cells(record):
    return (
        record["name"],
        record["task"],
        record["framework"],
        record["device"],
        record["dtype"],
        f"{record['parameters']:,}",
        format_size(record["bytes"]),
        _ago(record["last_used"]),
        "yes" if record["pinned"] else "",
    )


def _row_html(record):
    cells = _cells(record)
    return (
        f"<b>{escape(cells[0])}</b> &nbsp; {escape(cells[1])} · {escape(cells[2])} · "
        f"{escape(cells[3])} · {escape(cells[4])} · {escape(cells[5])} params · "
        f"{escape(cells[6])} · used {escape(cells[7])}"
    )


def _ago(timestamp):
    seconds = max(0, int(time.time() - timestamp))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"
