"""Jupyter-only layer: ipywidgets + bokeh panels, the %cmc magics, the kill-switch side channel."""
