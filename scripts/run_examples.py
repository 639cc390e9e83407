"""Execute example notebooks in a real kernel, offline, and export them to HTML.

Usage::

    python scripts/run_examples.py examples/quickstart.ipynb [more.ipynb ...]
        [--out examples/out] [--quick] [--timeout 900]

Each notebook runs top to bottom in a fresh ``python3`` kernel of this
interpreter, with ``HF_HUB_OFFLINE=1``. The executed notebook and an HTML export
(without widget state, so what shows is the text / HTML / PNG fallback every
ipyllmapps output carries, readable offline) are written to ``--out``. ``--quick`` sets
``IPYLLMAPPS_QUICK=1`` so that training cells run only a few steps. The exit
status is non-zero if any cell raised or printed an error.
"""

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("examples/out"))
    parser.add_argument("--quick", action="store_true", help="cut training short")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)

    os.environ["HF_HUB_OFFLINE"] = "1"
    if args.quick:
        os.environ["IPYLLMAPPS_QUICK"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)
    failures = [
        path
        for path in args.notebooks
        if not run_notebook(path, args.out, args.timeout)
    ]
    if failures:
        print("failed: " + ", ".join(map(str, failures)), file=sys.stderr)
        return 1
    return 0


def run_notebook(path, out_dir, timeout):
    """Execute one notebook; write it and its HTML export; return success."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    ok = True
    try:
        client.execute()
    except CellExecutionError as exc:
        print(f"{path}: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        ok = False
    errors = error_outputs(notebook)
    for message in errors:
        print(f"{path}: error output: {message}", file=sys.stderr)
    ok = ok and not errors

    executed = out_dir / path.name
    nbformat.write(notebook, executed)
    executed.with_suffix(".html").write_text(export_html(notebook), encoding="utf-8")
    seconds = time.monotonic() - started
    print(
        f"{path}: {'ok' if ok else 'FAILED'} in {seconds:.0f}s -> {executed}, "
        f"{executed.with_suffix('.html')}"
    )
    return ok


def export_html(notebook):
    """HTML of the notebook without widget state: each output's fallback shows.

    The widget state would make the page fetch the widget manager's JavaScript
    from the web; the fallbacks read offline and in any browser.
    """
    import copy

    from nbconvert import HTMLExporter

    static = copy.deepcopy(notebook)
    static.metadata.pop("widgets", None)
    html, _ = HTMLExporter().from_notebook_node(static)
    return html


def error_outputs(notebook):
    """Messages of every error output, and of stderr lines that report errors."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"{output['ename']}: {output['evalue']}")
            elif output.get("name") == "stderr" and "UsageError" in output.get(
                "text", ""
            ):
                found.append(output["text"].strip())
    return found


if __name__ == "__main__":
    sys.exit(main())
