"""File I/O every package shares: atomic writes (files and directories), JSON, HTML, hashing.

Atomic writes go to a temporary file beside the target, then ``os.replace``:
readers never see half a file, a failed write leaves no temporary file, and
the result gets the permissions a plain ``open`` would give (``mkstemp`` makes
0600 files, too strict for datasets, traces, figures and reports meant to be shared).
A JSON file that does not parse raises one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], fsync: bool = False, mkdir: bool = True) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory, which replaces ``path``.

    ``fsync`` flushes the data to disk before the rename; ``mkdir`` creates missing parent directories.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # after writing: some writers (safetensors) keep mkstemp's 0600
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = False, mkdir: bool = True) -> Path:
    """``atomic_write`` of a UTF-8 text file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), fsync=fsync, mkdir=mkdir)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False, mkdir: bool = True) -> Path:
    """``atomic_write`` of raw bytes."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), fsync=fsync, mkdir=mkdir)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None,
    fsync: bool = False, mkdir: bool = True,
) -> Path:
    """``atomic_write`` of ``obj`` as JSON (``indent``, ``default`` as in ``json.dumps``) plus a final newline."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default) + "\n", fsync=fsync, mkdir=mkdir)


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the finished directory ``tmp`` to ``final``, replacing an older ``final`` (moved aside, then deleted)."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None) -> Any:
    """The JSON value in ``path``; text that does not parse raises ``error("<where>: not valid JSON (...)")``, one line.

    ``where`` names the file in the message (default: the path). A missing file raises ``FileNotFoundError``.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a UTF-8 BOM is ignored
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{where or path}: not valid JSON ({' '.join(str(e).split())})") from None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


PLOTLY_MODES = ("file", "cdn", "inline")
PLOTLY_JS = "plotly.min.js"


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


__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_write_json", "replace_dir", "read_json",
           "file_sha256", "write_html", "file_mode", "plotly_js_tag", "write_plotly_js",
           "PLOTLY_MODES"]
