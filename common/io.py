"""Compatibility names: the file I/O helpers now live in modules with one job each.

``common.atomic`` (atomic file and directory writes), ``common.untrusted``
(bounded readers for configs, manifests, weights), ``common.plotly_html``
(Plotly HTML files), ``common.outputs`` (output folders this tool owns),
``common.hashing`` and ``common.disk_full``. New code imports from those.
"""

from __future__ import annotations

from .atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, file_mode, replace_dir
from .disk_full import DISK_FULL_ERRNOS, is_disk_full
from .hashing import file_sha256
from .outputs import TOOL_MARK, check_replaceable, ensure_out_not_symlink, listed_files
from .plotly_html import PLOTLY_JS, PLOTLY_MODES, plotly_js_tag, write_html, write_plotly_js
from .untrusted import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_SAFETENSORS_HEADER, MAX_YAML_BYTES, MAX_YAML_NODES
from .untrusted import json_depth, read_bytes_limited, read_json, regular_file, safe_load_yaml, safetensors_header

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_write_json", "replace_dir", "read_json",
           "file_sha256", "write_html", "file_mode", "regular_file", "read_bytes_limited", "json_depth", "safe_load_yaml",
           "safetensors_header", "is_disk_full", "ensure_out_not_symlink", "MAX_JSON_BYTES", "TOOL_MARK",
           "listed_files", "check_replaceable",
           "plotly_js_tag", "write_plotly_js", "PLOTLY_MODES", "PLOTLY_JS", "DISK_FULL_ERRNOS", "MAX_JSON_DEPTH",
           "MAX_SAFETENSORS_HEADER", "MAX_YAML_BYTES", "MAX_YAML_NODES"]
