"""Show a Plotly figure in a notebook with a static PNG beside it, so it renders on GitHub and nbviewer too.

    from interp.views.static import show
    show(jump_histogram_figure(cs, tr.n_steps))

``show`` emits one output holding both the interactive figure
(``application/vnd.plotly.v1+json``: JupyterLab, VS Code) and a PNG (``image/png``:
GitHub, nbviewer, any viewer without plotly.js). The PNG comes from kaleido (which
drives an installed Chrome/Chromium) and, where kaleido is missing or cannot start a
browser, from a plain matplotlib drawing of the same traces (lines, markers, bars,
histograms, heatmaps).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

_KALEIDO_OK: bool | None = None  # None: not tried yet; False: failed once, use matplotlib from then on


def _kaleido_png(fig: Any, width: int, height: int) -> bytes | None:
    global _KALEIDO_OK
    if _KALEIDO_OK is False:
        return None
    try:
        png = fig.to_image(format="png", width=width, height=height)
    except Exception:  # kaleido not installed, no browser, offline start failure: fall back
        _KALEIDO_OK = False
        return None
    _KALEIDO_OK = True
    return png


def matplotlib_png(fig: Any, width: int = 900, height: int = 500) -> bytes:
    """A plain matplotlib drawing of a Plotly figure's traces (scatter, bar, histogram, heatmap) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    f, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    for tr in fig.data:
        kind, name = tr.type, getattr(tr, "name", None)
        if getattr(tr, "visible", True) is False:
            continue
        if kind in ("scatter", "scattergl"):
            x = np.asarray(tr.x if tr.x is not None else np.arange(len(tr.y)), dtype=object)
            y = np.asarray(tr.y, dtype=object)
            xs = np.array([np.nan if v is None else v for v in x], dtype=float) if x.dtype == object else x
            ys = np.array([np.nan if v is None else v for v in y], dtype=float)
            style = "o" if (tr.mode or "lines") == "markers" else "-"
            ax.plot(xs, ys, style, label=name, markersize=3)
        elif kind == "bar":
            ax.bar(list(tr.x), list(tr.y), label=name, alpha=0.8)
        elif kind == "histogram":
            ax.hist([v for v in tr.x if v is not None], bins=30, label=name, alpha=0.6)
        elif kind == "heatmap":
            ax.imshow(np.array(tr.z, dtype=float), aspect="auto", cmap="viridis")
    title = fig.layout.title.text if fig.layout.title and fig.layout.title.text else ""
    ax.set_title(title.split("<br>")[0][:100], fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    f.tight_layout()
    f.savefig(buf, format="png")
    plt.close(f)
    return buf.getvalue()


def static_png(fig: Any, width: int = 900, height: int | None = None) -> bytes:
    """A PNG of ``fig``: kaleido when it works here, else a matplotlib drawing of its traces."""
    height = int(height or fig.layout.height or 500)
    return _kaleido_png(fig, width, height) or matplotlib_png(fig, width, height)


def show(fig: Any, width: int = 900, height: int | None = None) -> None:
    """Display ``fig`` in a notebook as the interactive figure plus a static PNG, in one output."""
    from IPython.display import display

    png = static_png(fig, width, height)
    bundle = {
        "application/vnd.plotly.v1+json": {**json.loads(fig.to_json()), "config": {"displaylogo": False}},
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/plain": f"<plotly figure: {len(fig.data)} trace(s); a static PNG for viewers without plotly.js>",
    }
    display(bundle, raw=True)


__all__ = ["show", "static_png", "matplotlib_png"]
