"""Plotly figures as HTML files, written atomically; plotly.js once per folder so reports work offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, atomic_write_text

PLOTLY_MODES = ("file", "cdn", "inline")
PLOTLY_JS = "plotly.min.js"
# plotly.js's own partial bundle with the cartesian trace types (scatter, heatmap, bar, ...), same version as the
# full bundle plotly.py ships; stored gzip-compressed (0.5 MB instead of 4.8 MB), MIT licence beside it
COMPACT_BUNDLE = Path(__file__).with_name("assets") / "plotly-cartesian-4.1.1.min.js.gz"
COMPACT_JS = "plotly-cartesian.gz.js"


def plotly_js_tag(html_path: str | os.PathLike, mode: str = "file", assets_dir: str | os.PathLike | None = None) -> str:
    """The ``<script>`` tag that loads plotly.js for an HTML file at ``html_path``.

    ``mode="file"`` (the default): plotly.min.js is written once into ``assets_dir``
    (default: the HTML file's folder; a report passes its root so nested folders share
    one copy) unless an identical copy is there, and the tag is a relative
    ``<script src>``: the folder works offline and each HTML file stays small.
    ``"cdn"``: a ``<script src>`` on plotly's CDN (the version installed here; needs a
    network). ``"inline"``: the 4.8 MB bundle inside the page (one file that travels alone).
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if mode not in PLOTLY_MODES:
        raise ValueError(f"plotly.js mode must be one of {', '.join(PLOTLY_MODES)}, got {mode!r}")
    if mode == "inline":
        return f'<script type="text/javascript">{get_plotlyjs()}</script>'
    if mode == "cdn":
        return f'<script type="text/javascript" src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" charset="utf-8"></script>'
    html_dir = Path(html_path).absolute().parent
    target = Path(assets_dir if assets_dir is not None else html_dir).absolute() / PLOTLY_JS
    write_plotly_js(target)
    rel = Path(os.path.relpath(target, html_dir)).as_posix()
    return f'<script type="text/javascript" src="{rel}" charset="utf-8"></script>'


def write_plotly_js(path: str | os.PathLike) -> Path:
    """Write the installed plotly.js bundle to ``path`` unless an identical copy is already there."""
    from plotly.offline import get_plotlyjs

    path = Path(path)
    js = get_plotlyjs().encode("utf-8")
    if path.is_file() and path.stat().st_size == len(js) and path.read_bytes() == js:
        return path
    return atomic_write_bytes(path, js)


def compact_plotly_tag(html_path: str | os.PathLike, assets_dir: str | os.PathLike | None = None) -> str:
    """The ``<script>`` tag of the compact plotly.js for a page that unpacks it itself (the step viewer).

    Writes ``plotly-cartesian.gz.js`` (0.66 MB: plotly.js's cartesian partial bundle, gzip + base64, as
    ``window.__plotlyPacked``) once into ``assets_dir`` (default the page's folder). The page must unpack
    it with the browser's ``DecompressionStream`` before using ``Plotly`` (works offline from ``file://``).
    """
    import base64

    html_dir = Path(html_path).absolute().parent
    target = Path(assets_dir if assets_dir is not None else html_dir).absolute() / COMPACT_JS
    js = ('window.__plotlyPacked="' + base64.b64encode(COMPACT_BUNDLE.read_bytes()).decode("ascii") + '";\n').encode()
    if not (target.is_file() and target.stat().st_size == len(js) and target.read_bytes() == js):
        atomic_write_bytes(target, js)
    rel = Path(os.path.relpath(target, html_dir)).as_posix()
    return f'<script type="text/javascript" src="{rel}" charset="utf-8"></script>'


def write_html(fig: Any, path: str | os.PathLike, post_script: str | None = None, plotly_js: str = "file",
               assets_dir: str | os.PathLike | None = None) -> Path:
    """Write a Plotly figure as an HTML file, atomically; works offline in the default mode.

    ``plotly_js``: ``"file"`` (plotly.min.js once per folder beside the HTML, or in
    ``assets_dir``, loaded by a relative ``<script src>``), ``"cdn"`` or ``"inline"``
    (see :func:`plotly_js_tag`).
    """
    tag = plotly_js_tag(path, plotly_js, assets_dir)
    html = fig.to_html(validate=False, include_plotlyjs=False, full_html=True, auto_play=False, post_script=post_script,
                       config={"responsive": True, "displaylogo": False}, default_height="100%")
    html = html.replace("<body>", "<body>\n    " + tag, 1) if "<body>" in html else tag + html
    return atomic_write_text(path, html)


__all__ = ["PLOTLY_MODES", "PLOTLY_JS", "COMPACT_JS", "plotly_js_tag", "compact_plotly_tag", "write_plotly_js", "write_html"]
