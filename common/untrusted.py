"""Readers for untrusted inputs (configs, manifests, weights): bounded in size, nesting and kind of file.

Only regular files of bounded size are read (``regular_file``): no FIFO that
blocks, no ``/dev/zero`` read until memory runs out. JSON nesting and YAML
aliases are bounded too (``read_json``, ``safe_load_yaml``). A JSON file that
does not parse raises one line naming the file.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

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


def parse_json(text: str | bytes, error: type[Exception] = ValueError, where: str = "input",
               max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of untrusted text (a file's bytes, a ``--set`` value, a line of a JSONL file).

    Text above ``max_bytes``, text that does not parse and values nested deeper than ``max_depth`` raise
    ``error("<where>: ...")`` in one line (never a ``RecursionError``).
    """
    if len(text) > max_bytes:
        raise error(f"{where}: {len(text)} bytes of JSON is larger than the limit of {max_bytes} bytes")
    try:
        obj = json.loads(text.decode("utf-8-sig") if isinstance(text, bytes) else text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{where}: not valid JSON ({' '.join(str(e).split())})") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply (limit {max_depth})") from None
    if json_depth(obj, max_depth) > max_depth:
        raise error(f"{where}: JSON nested too deeply (limit {max_depth})")
    return obj


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None,
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``path``; text that does not parse raises ``error("<where>: not valid JSON (...)")``, one line.

    ``where`` names the file in the message (default: the path). A missing file
    raises ``FileNotFoundError``; a non-regular file, one above ``max_bytes`` or
    JSON nested deeper than ``max_depth`` raises ``error``.
    """
    data = read_bytes_limited(path, max_bytes, error, where)
    return parse_json(data, error, str(where or path), max_bytes, max_depth)


def parse_yaml(text: str, error: type[Exception] = ValueError, where: str = "input",
               max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` of untrusted text, refusing big text, deep nesting and alias bombs in one line."""
    import yaml

    if len(text) > max_bytes:
        raise error(f"{where}: {len(text)} characters of YAML is larger than the limit of {max_bytes}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise error(f"{where}: not readable YAML ({' '.join(str(e).split())[:200]})") from None
    except RecursionError:
        raise error(f"{where}: YAML too large or too deep (limit depth {MAX_JSON_DEPTH})") from None
    if node is None:
        return None
    # count nodes as the constructor would expand them (aliases share nodes, so count per visit)
    count, todo = 0, [(node, 0)]
    while todo:
        n, depth = todo.pop()
        count += 1
        if count > max_nodes or depth > MAX_JSON_DEPTH:
            raise error(f"{where}: YAML too large or too deep once aliases are expanded "
                        f"(limit {max_nodes} nodes, depth {MAX_JSON_DEPTH})")
        if isinstance(n, yaml.MappingNode):
            todo.extend((x, depth + 1) for kv in n.value for x in kv)
        elif isinstance(n, yaml.SequenceNode):
            todo.extend((x, depth + 1) for x in n.value)
    try:
        return yaml.SafeLoader(text).get_single_data()
    except (yaml.YAMLError, RecursionError) as e:
        raise error(f"{where}: not readable YAML ({' '.join(str(e).split())[:200]})") from None


def safe_load_yaml(path: str | os.PathLike, error: type[Exception] = ValueError, where: str | None = None,
                   max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` of a bounded regular file, refusing alias bombs (more than ``max_nodes`` nodes once expanded)."""
    text = read_bytes_limited(path, max_bytes, error, where).decode("utf-8-sig", errors="replace")
    return parse_yaml(text, error, str(where or path), max_bytes, max_nodes)


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


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_YAML_BYTES", "MAX_YAML_NODES", "MAX_SAFETENSORS_HEADER",
           "regular_file", "read_bytes_limited", "json_depth", "parse_json", "read_json", "parse_yaml",
           "safe_load_yaml", "safetensors_header"]
