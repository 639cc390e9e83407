"""ipywidgets views of the applications' results. Nothing here imports torch."""
