"""File I/O every package shares: atomic writes (files and directories), JSON, HTML, hashing.

Atomic writes go to a temporary file beside the target, then ``os.replace``:
readers never see half a file, a failed write leaves no temporary file, and
the result gets the permissions a plain ``open`` would give (``mkstemp`` makes
0600 files, too strict for datasets, traces, figures and reports meant to be shared).
A JSON file that does not parse raises one line naming the file.

Untrusted inputs (configs, manifests, weights) go through ``regular_file``
first: only regular files of bounded size are read (no FIFO that blocks, no
``/dev/zero`` read until memory runs out); JSON nesting and YAML aliases are
bounded too (``read_json``, ``safe_load_yaml``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import struct
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


MAX_JSON_BYTES = 16 << 20  # configs and manifests are kilobytes; a trace manifest of 10^5 chunks is ~20 MB
MAX_JSON_DEPTH = 64
MAX_YAML_BYTES = 4 << 20
MAX_YAML_NODES = 100_000
MAX_SAFETENSORS_HEADER = 16 << 20  # bytes of a safetensors JSON header (ours hold a few KB)


def regular_file(path: str | os.PathLike, max_bytes: int | None = None, error: type[Exception] = ValueError,
                 where: str | None = None) -> Path:
    """``path`` if it is a regular file (symlinks followed) of at most ``max_bytes``; else ``error`` in one line.

    FIFOs, devices (``/dev/zero``), sockets and directories are refused before
    anything is opened, so a hostile path can neither block nor exhaust memory.
    A missing file raises ``FileNotFoundError``.
    """
    p = Path(path)
    st = os.stat(p)  # FileNotFoundError passes through
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise error(f"{where or p}: is {kind}; only regular files are read")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{where or p}: {st.st_size} bytes is larger than the limit of {max_bytes} bytes")
    return p


def read_bytes_limited(path: str | os.PathLike, max_bytes: int, error: type[Exception] = ValueError,
                       where: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (checked before and while reading)."""
    p = regular_file(path, max_bytes, error, where)
    with open(p, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{where or p}: larger than the limit of {max_bytes} bytes")
    return data


def json_depth(obj: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (iterative: deep values cannot overflow the stack here)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        o, d = todo.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            todo.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None,
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``path``; text that does not parse raises ``error("<where>: not valid JSON (...)")``, one line.

    ``where`` names the file in the message (default: the path). A missing file
    raises ``FileNotFoundError``; a non-regular file, one above ``max_bytes`` or
    JSON nested deeper than ``max_depth`` raises ``error``.
    """
    data = read_bytes_limited(path, max_bytes, error, where)
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{where or path}: not valid JSON ({' '.join(str(e).split())})") from None
    except RecursionError:
        raise error(f"{where or path}: JSON nested too deeply (limit {max_depth})") from None
    if json_depth(obj, max_depth) > max_depth:
        raise error(f"{where or path}: JSON nested too deeply (limit {max_depth})")
    return obj


def safe_load_yaml(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None,
                   max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` of a bounded regular file, refusing alias bombs (more than ``max_nodes`` nodes once expanded)."""
    import yaml

    text = read_bytes_limited(path, max_bytes, error, where).decode("utf-8-sig", errors="replace")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise error(f"{where or path}: not readable YAML ({' '.join(str(e).split())[:200]})") from None
    if node is None:
        return None
    # count nodes as the constructor would expand them (aliases share nodes, so count per visit)
    count, todo = 0, [(node, 0)]
    while todo:
        n, depth = todo.pop()
        count += 1
        if count > max_nodes or depth > MAX_JSON_DEPTH:
            raise error(f"{where or path}: YAML too large or too deep once aliases are expanded "
                        f"(limit {max_nodes} nodes, depth {MAX_JSON_DEPTH})")
        if isinstance(n, yaml.MappingNode):
            todo.extend((x, depth + 1) for kv in n.value for x in kv)
        elif isinstance(n, yaml.SequenceNode):
            todo.extend((x, depth + 1) for x in n.value)
    try:
        return yaml.SafeLoader(text).get_single_data()
    except (yaml.YAMLError, RecursionError) as e:
        raise error(f"{where or path}: not readable YAML ({' '.join(str(e).split())[:200]})") from None


def safetensors_header(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None,
                       max_header: int = MAX_SAFETENSORS_HEADER) -> dict[str, Any]:
    """The JSON header of a safetensors file, read after checking it is a regular file with a bounded header.

    Returns ``{name: {"dtype", "shape", "data_offsets"}}`` plus ``__metadata__`` when present.
    """
    where = where or str(path)
    p = regular_file(path, None, error, where)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise error(f"{where}: is corrupt or truncated (shorter than a safetensors header)")
        n = struct.unpack("<Q", head)[0]
        if n > max_header:
            raise error(f"{where}: is corrupt or truncated, or hostile (safetensors header of {n} bytes, "
                        f"limit {max_header})")
        if n + 8 > size:
            raise error(f"{where}: is corrupt or truncated (safetensors header length {n} runs past the end)")
        raw = f.read(n)
    try:
        hdr = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise error(f"{where}: is corrupt or truncated (safetensors header is not valid JSON)") from None
    if not isinstance(hdr, dict) or json_depth(hdr) > 4:
        raise error(f"{where}: is corrupt or truncated (safetensors header is not a mapping of tensors)")
    return hdr


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DISK_FULL_TEXT = ("no space left", "disk quota", "file too large", "errno 28", "os error 28", "os error 27",
                   "os error 122")


def is_disk_full(e: BaseException) -> bool:
    """Whether ``e`` reports a full disk or a file size limit, also safetensors' own ``SafetensorError``."""
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
        return True
    text = str(e).lower()
    return type(e).__name__ in ("SafetensorError", "OSError", "RuntimeError", "IOError") and any(
        t in text for t in _DISK_FULL_TEXT)


TOOL_MARK = "recurse-interp"  # provenance.json's "tool": marks an output folder this project wrote


def listed_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` as a sorted relative POSIX path (what a provenance ``files`` list records)."""
    r = Path(root)
    return sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file() or p.is_symlink())


def check_replaceable(out: str | os.PathLike, error: type[Exception] = ValueError, what: str = "output") -> bool:
    """Whether ``out`` may be (re)written: it is absent, empty, or holds only files that its own
    ``provenance.json`` (``"tool": TOOL_MARK``) lists as written by this tool. Anything else raises ``error``:
    a symlink, a file, a folder with a foreign file (a user's notebook) or without our marker.
    Returns True when ``out`` holds a previous output."""
    p = ensure_out_not_symlink(out, error)
    if not p.exists():
        return False
    if not p.is_dir():
        raise error(f"refusing to write to {p}: it exists and is not a directory")
    present = listed_files(p)
    if not present:
        return False
    try:
        prov = read_json(p / "provenance.json", error, max_bytes=8 << 20)
    except FileNotFoundError:
        prov = None
    if not (isinstance(prov, dict) and prov.get("tool") == TOOL_MARK and isinstance(prov.get("files"), list)):
        raise error(f"refusing to write to {p}: it is not empty and holds no {what} this tool wrote "
                    "(no provenance.json marker); choose another directory")
    foreign = sorted(set(present) - set(map(str, prov["files"])) - {"provenance.json"})
    if foreign:
        raise error(f"refusing to replace {p}: it holds files this tool did not write "
                    f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); move them or choose another directory")
    return True


def ensure_out_not_symlink(path: str | os.PathLike, error: type[Exception] = ValueError) -> Path:
    """Refuse an output path that is a symbolic link (writing through it would land somewhere else)."""
    p = Path(path)
    if p.is_symlink():
        raise error(f"refusing to write to {p}: it is a symbolic link (pass the real directory)")
    return p


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
           "file_sha256", "write_html", "file_mode", "regular_file", "read_bytes_limited", "json_depth", "safe_load_yaml",
           "safetensors_header", "is_disk_full", "ensure_out_not_symlink", "MAX_JSON_BYTES", "TOOL_MARK",
           "listed_files", "check_replaceable",
           "plotly_js_tag", "write_plotly_js", "PLOTLY_MODES"]
