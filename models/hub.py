"""Hugging Face Hub checkpoints: ``hf:ORG/NAME[@REVISION][:SUBFOLDER]``.

A spec names a Hub repository (optionally a branch, tag or commit, and a
folder inside it). ``resolve_hub`` turns it into a local folder through
``huggingface_hub.snapshot_download``: its cache (``HF_HUB_CACHE``,
``HF_HOME``), ``HF_HUB_OFFLINE`` and revisions are honoured, and only the
files the detected layout needs are fetched. ``detect_layout`` tells the
layouts apart:

    zoo           config.json ("format": "recurse-interp/1") + model.safetensors   -> load_checkpoint
    transformers  config.json with "model_type" ("hrm_text" only)                 -> models.hrm_text
    official      all_config.yaml + one weights file (checkpoint, step_N,
                  *.safetensors, *.pt, *.pth): sapientinc/HRM releases and
                  TRM-repo checkpoints as community uploads publish them           -> load_official

Weights are read as safetensors or through ``torch.load(weights_only=True)``;
code-running pickles are refused with one line (``models.official``). Every
failure (malformed spec, no network and no cache, unknown layout, a
transformers model that is not HRM-Text) is one ``CheckpointError`` line.

Command line::

    python -m models.hub resolve hf:sapientinc/HRM-checkpoint-sudoku-extreme
    python -m models.hub export zoo/trm-sudoku9 out/hub/trm-sudoku9 --repo ORG/trm-sudoku9
    python -m models.hub export run_dir/step_26040 out/hub/trm --seq-len 81     # any format models.official reads
"""

from __future__ import annotations

import json
import sys
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import atomic_dir
from common.outputs import check_replaceable, ensure_out_not_symlink, record_outputs
from common.cli_format import Parser, UsageError, examples, print_error
from common.cli_types import nonempty_str, path_str, positive_int
from common.untrusted import read_json, regular_file

from .checkpoint import CONFIG, FORMAT, WEIGHTS, CheckpointError
from .formats import WEIGHT_CHOICES, find_weights_file
from .step_files import latest_step

PREFIX = "hf:"
OFFICIAL_YAML = "all_config.yaml"
URM_YAML = "config.yaml"  # UbiquantAI/URM writes its training config under this name beside step_N.pt
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model", "generation_config.json")


@dataclass(frozen=True)
class HubSpec:
    """A parsed ``hf:ORG/NAME[@REVISION][:SUBFOLDER]``."""

    repo_id: str
    revision: str | None = None
    subfolder: str | None = None

    def __str__(self) -> str:
        return (PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")
                + (f":{self.subfolder}" if self.subfolder else ""))

    def pattern(self, name: str) -> str:
        """An allow-pattern for ``name`` inside the subfolder."""
        return f"{self.subfolder}/{name}" if self.subfolder else name


@dataclass
class ResolvedHub:
    """Where a spec lives on disk and what it holds."""

    spec: HubSpec
    path: Path  # the (sub)folder with the checkpoint files
    layout: str  # zoo | transformers | official
    commit: str | None = None
    files: list[str] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {"spec": str(self.spec), "repo_id": self.spec.repo_id, "revision": self.spec.revision or "main",
                "subfolder": self.spec.subfolder, "commit": self.commit, "layout": self.layout,
                "path": str(self.path)}


def is_hub_spec(x: Any) -> bool:
    return isinstance(x, str) and x.startswith(PREFIX)


def parse_hub_spec(spec: str) -> HubSpec:
    """Parse ``hf:ORG/NAME[@REVISION][:SUBFOLDER]``; a malformed spec raises one ``CheckpointError`` line."""
    usage = "expected hf:ORG/NAME[@REVISION][:SUBFOLDER]"
    if not is_hub_spec(spec):
        raise CheckpointError(f"{spec!r} is not a Hub spec ({usage})")
    body = spec[len(PREFIX):]
    repo_rev, sep, sub = body.partition(":")
    repo, at, rev = repo_rev.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts) or any(".." in p for p in parts):
        raise CheckpointError(f"bad Hub repository {repo!r} in {spec!r} ({usage})")
    if at and (not _REVISION.fullmatch(rev) or ".." in rev):
        raise CheckpointError(f"bad revision {rev!r} in {spec!r} ({usage}; a branch, tag or commit)")
    subfolder = None
    if sep:
        sub = sub.strip("/")
        pieces = sub.split("/")
        if not sub or "\\" in sub or any(p in ("", ".", "..") for p in pieces):
            raise CheckpointError(f"bad subfolder {sub!r} in {spec!r} ({usage}; a relative folder path)")
        subfolder = sub
    return HubSpec(repo, rev or None, subfolder)


# ----------------------------------------------------------------------------- environment
def hub_cache_dir() -> Path:
    """The Hub cache, read from the environment at call time (``HF_HUB_CACHE``, ``HF_HOME``, XDG)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (huggingface_hub itself reads it once, at import)."""
    v = os.environ.get("HF_HUB_OFFLINE")
    if v is not None:
        return v.strip().upper() in ("1", "ON", "YES", "TRUE")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


# ----------------------------------------------------------------------------- layouts
def _json(path: Path) -> dict[str, Any] | None:
    """A JSON object file (None when missing or not an object); a FIFO, a file over 4 MB, deep nesting or
    text that is not JSON raise a one-line ``CheckpointError``."""
    try:
        d = read_json(path, CheckpointError, max_bytes=4 << 20)
    except FileNotFoundError:
        return None
    return d if isinstance(d, dict) else None


def official_weights(folder: Path) -> Path | None:
    """The weights file of an official-layout folder (``models.formats.find_weights_file``)."""
    return find_weights_file(folder)


def detect_layout(folder: str | os.PathLike, where: str | None = None) -> str:
    """``"zoo"``, ``"transformers"`` or ``"official"`` for a local folder; one-line error otherwise."""
    p = Path(folder)
    where = where or str(p)
    if not p.is_dir():
        raise CheckpointError(f"{where}: not a folder")
    cfg = _json(p / CONFIG) if (p / CONFIG).exists() else None
    if cfg is not None and cfg.get("format") == FORMAT:
        return "zoo"
    if cfg is not None and "model_type" in cfg:
        return "transformers"
    if (p / OFFICIAL_YAML).is_file() or (p / URM_YAML).is_file():
        return "official"
    names = sorted(f.name for f in p.iterdir())[:8]
    raise CheckpointError(
        f"{where}: unknown checkpoint layout (files: {', '.join(names) or 'none'}); expected {CONFIG} + {WEIGHTS} "
        f"(this project), a transformers {CONFIG} with model_type, or {OFFICIAL_YAML} + a weights file (HRM/TRM)"
    )


def is_transformers_dir(path: str | os.PathLike) -> bool:
    """A local folder whose ``config.json`` is a transformers config (has ``model_type``)."""
    p = Path(path)
    cfg = _json(p / CONFIG) if p.is_dir() and (p / CONFIG).is_file() else None
    return cfg is not None and "model_type" in cfg and cfg.get("format") != FORMAT


def _layout_patterns(spec: HubSpec, layout: str, meta: dict[str, Any] | None) -> list[str]:
    if layout == "zoo":
        names = [WEIGHTS, CONFIG, "README.md", "CARD.md", "eval.json"]
    elif layout == "transformers":
        names = [CONFIG, "*.safetensors", "model.safetensors.index.json", *TOKENIZER_FILES]
    else:
        names = [OFFICIAL_YAML, URM_YAML, "checkpoint", "step_*", "*.safetensors", "*.pt", "*.pth", "*.ckpt"]
    return [spec.pattern(n) for n in names]


# ----------------------------------------------------------------------------- resolving
def _download(spec: HubSpec, patterns: list[str], cache_dir: Path, offline: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    check_cache_entries(spec, cache_dir)
    if not sys.stderr.isatty():  # the Hub client's progress bars only on a terminal: an error stays one line
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    try:
        root = _with_time_limit(lambda: snapshot_download(spec.repo_id, revision=spec.revision, cache_dir=str(cache_dir),
                                                          allow_patterns=patterns, local_files_only=offline),
                                CACHE_READ_SECONDS if offline else None, f"{spec}: reading the Hugging Face cache")
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
        raise CheckpointError(f"{spec}: not in the Hugging Face cache {cache_dir} and {why}; "
                              "download it once with network access (or set HF_HOME to a cache that has it)") from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{spec}: revision {spec.revision!r} does not exist on the Hub") from None
    except GatedRepoError:
        raise CheckpointError(f"{spec}: the repository is gated; accept its terms and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{spec}: no such repository on the Hub (or it is private)") from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        line = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{spec}: could not fetch from the Hub ({type(e).__name__}: {line})") from None
    return Path(root)


CACHE_READ_SECONDS = 120.0
"""Offline, resolving a spec only reads small files of the cache: longer than this means something blocks."""


def check_cache_entries(spec: HubSpec, cache_dir: Path) -> None:
    """Refuse, in one line, a cache entry of ``spec`` that is not a folder or a regular file (a FIFO at
    ``refs/main`` would block the Hub client's read forever), or a ref file larger than a commit hash."""
    repo = Path(cache_dir) / ("models--" + spec.repo_id.replace("/", "--"))
    if not repo.is_dir():
        return
    for sub in ("refs", "snapshots"):
        top = repo / sub
        if not top.exists():
            continue
        for f in [top, *top.rglob("*")]:
            try:
                if f.is_dir():
                    continue
                regular_file(f, 1024 if sub == "refs" else None, CheckpointError,
                             f"{spec}: cache entry {f.relative_to(repo)}")
            except FileNotFoundError:  # a dangling snapshot link: the Hub client reports the missing file
                continue


def _with_time_limit(fn: Any, seconds: float | None, what: str) -> Any:
    """``fn()``, or a one-line ``CheckpointError`` when it runs longer than ``seconds`` (None: no limit).

    The call runs in a daemon thread, so a read blocked for good cannot keep the process alive."""
    if seconds is None:
        return fn()
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, daemon=True, name="hub-cache-read")
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise CheckpointError(f"{what} took longer than {seconds:g} s (a blocking file in the cache?); giving up")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _pick_official_online(spec: HubSpec) -> list[str] | None:
    """Online only: list the folder and keep one weights file, so a run folder with many ``step_N`` costs one."""
    try:
        from huggingface_hub import HfApi

        files = HfApi().list_repo_files(spec.repo_id, revision=spec.revision)
    except Exception:  # listing is an optimisation; the pattern download below still works
        return None
    prefix = f"{spec.subfolder}/" if spec.subfolder else ""
    here = [f[len(prefix):] for f in files if f.startswith(prefix) and "/" not in f[len(prefix):]]
    if "checkpoint" in here:
        pick = "checkpoint"
    else:
        pick = latest_step(here)
        if pick is None:
            return None
    return [spec.pattern(OFFICIAL_YAML), spec.pattern(URM_YAML), spec.pattern(pick)]


def resolve_hub(spec: str | HubSpec, cache_dir: str | os.PathLike | None = None,
                offline: bool | None = None) -> ResolvedHub:
    """Fetch (or find in the cache) what ``spec`` needs and return its local folder and layout.

    Two rounds: the small config files first, to learn the layout, then only that layout's files.
    """
    s = parse_hub_spec(spec) if isinstance(spec, str) else spec
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    off = hub_offline() if offline is None else offline
    root = _download(s, [s.pattern(CONFIG), s.pattern(OFFICIAL_YAML), s.pattern(URM_YAML)], cache, off)
    folder = root / s.subfolder if s.subfolder else root
    if not folder.is_dir():
        where = f"no folder {s.subfolder!r}" if s.subfolder else "no files"
        raise CheckpointError(f"{s}: the repository has {where} with {CONFIG} or {OFFICIAL_YAML}")
    layout = detect_layout(folder, where=str(s))
    cfg = _json(folder / CONFIG) if layout == "transformers" else None
    if layout == "transformers":
        check_hrm_text_config(cfg or {}, str(s))
    patterns = (_pick_official_online(s) if layout == "official" and not off else None) \
        or _layout_patterns(s, layout, cfg)
    root = _download(s, patterns, cache, off)
    folder = root / s.subfolder if s.subfolder else root
    return ResolvedHub(s, folder, layout, commit=root.name, files=sorted(f.name for f in folder.iterdir()))


_RESOLVED: dict[tuple[str, str, bool], ResolvedHub] = {}


def local_checkpoint(ckpt: str) -> str:
    """``ckpt`` unchanged, or the local folder an ``hf:`` spec resolves to (memoised per process and cache)."""
    if not is_hub_spec(ckpt):
        return ckpt
    key = (ckpt, str(hub_cache_dir()), hub_offline())
    if key not in _RESOLVED:
        _RESOLVED[key] = resolve_hub(ckpt)
    return str(_RESOLVED[key].path)


# ----------------------------------------------------------------------------- loading
MAX_CONFIG_BYTES = 1 << 20
"""A transformers ``config.json`` is a few kilobytes; one above a megabyte is refused before it is parsed."""

HF_BOUNDS: dict[str, tuple[int, int]] = {
    "vocab_size": (2, 1 << 20), "hidden_size": (1, 1 << 14), "intermediate_size": (1, 1 << 17),
    "num_attention_heads": (1, 1024), "num_key_value_heads": (1, 1024), "head_dim": (1, 4096),
    "num_hidden_layers": (1, 1024), "num_layers_per_stack": (1, 256), "H_cycles": (1, 1024), "L_cycles": (1, 1024),
    "max_position_embeddings": (1, 1 << 20),
}
"""Sane ranges of HRM-Text's size fields (inclusive): outside them a config is a typo or hostile, never a model."""


def check_hrm_text_config(cfg: dict[str, Any], where: str) -> None:
    """An HRM-Text ``config.json`` checked before transformers builds anything: its type, every size field an
    integer inside :data:`HF_BOUNDS`, heads dividing the width, and the memory estimate under the limit."""
    mt = cfg.get("model_type")
    if mt != "hrm_text":
        raise CheckpointError(f"{where}: a transformers model of type {str(mt)[:40]!r}, not HRM-Text (model_type "
                              "'hrm_text'); only HrmTextForCausalLM is supported among transformers models")
    for name, (lo, hi) in HF_BOUNDS.items():
        if name not in cfg or (cfg[name] is None and name in ("num_key_value_heads", "head_dim")):
            continue
        v = cfg[name]
        if isinstance(v, bool) or not isinstance(v, int):
            raise CheckpointError(f"{where}: config.json field {name!r} must be an integer, got "
                                  f"{type(v).__name__} {str(v)[:40]!r}")
        if not lo <= v <= hi:
            raise CheckpointError(f"{where}: config.json field {name!r} must be in [{lo}, {hi}], got {v}")
    h, heads = cfg.get("hidden_size", 1), cfg.get("num_attention_heads", 1)
    if cfg.get("head_dim") is None and h % heads:
        raise CheckpointError(f"{where}: hidden_size {h} is not divisible by num_attention_heads {heads}")
    from .config import MEMORY_ENV, max_memory_bytes

    inner = cfg.get("intermediate_size", 4 * h)
    layers = 2 * cfg.get("num_layers_per_stack", 1) + cfg.get("num_hidden_layers", 0)
    head_dim = cfg.get("head_dim") or h // heads
    n_params = 2 * cfg.get("vocab_size", 2) * h + layers * (4 * h * heads * head_dim + 3 * h * inner)
    est = 4 * n_params + 8 * cfg.get("max_position_embeddings", 1) * head_dim
    if est > max_memory_bytes():
        raise CheckpointError(f"{where}: the model would need about {est / 1e9:.1f} GB for its weights alone, above "
                              f"the limit of {max_memory_bytes() / 1e9:.1f} GB; set {MEMORY_ENV} to raise it")


def read_transformers_config(folder: Path, where: str) -> dict[str, Any]:
    """A transformers ``config.json``, read bounded (a regular file, at most :data:`MAX_CONFIG_BYTES`, depth 64)."""
    cfg = read_json(folder / CONFIG, CheckpointError, f"{where}: {CONFIG}", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: {CONFIG} is not a JSON object")
    return cfg


def load_folder(folder: str | os.PathLike, layout: str | None = None, where: str | None = None,
                **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """Load a local folder of any supported layout; ``kwargs`` go to the layout's loader."""
    p = Path(folder)
    layout = layout or detect_layout(p, where)
    if layout == "zoo":
        from .checkpoint import load_checkpoint

        return load_checkpoint(p, **kwargs)
    if layout == "transformers":
        check_hrm_text_config(read_transformers_config(p, where or str(p)), where or str(p))
        from .hrm_text import load_hrm_text

        return load_hrm_text(p, **kwargs)
    from .official import load_official

    weights = official_weights(p)
    if weights is None:
        raise CheckpointError(f"{where or p}: {OFFICIAL_YAML} but no weights file (checkpoint, step_N, *.safetensors, *.pt)")
    return load_official(weights, **kwargs)  # the YAML beside it: all_config.yaml, else URM's config.yaml


def load_hub(spec: str, cache_dir: str | os.PathLike | None = None, offline: bool | None = None,
             **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``(model in eval mode, meta)`` for an ``hf:`` spec; ``meta["hub"]`` records repo, revision and commit."""
    r = resolve_hub(spec, cache_dir=cache_dir, offline=offline)
    model, meta = load_folder(r.path, r.layout, where=str(r.spec), **kwargs)
    meta = dict(meta)
    meta["hub"] = r.info()
    return model, meta


# ----------------------------------------------------------------------------- export
def model_card(meta: dict[str, Any], n_params: int, repo: str | None, card: str | None,
               evaluation: dict[str, Any] | None) -> str:
    """A Hub model card (README.md with YAML front matter) for a zoo checkpoint."""
    fam = meta["model"].get("family", "?")
    task = (meta.get("task") or {}).get("name", "unknown")
    name = repo or "ORG/NAME"
    lines = [
        "---",
        "library_name: recurse-interp",
        "tags:",
        "- recursive-reasoning",
        f"- {fam}",
        f"- {task}",
        "---",
        "",
        f"# {name.split('/')[-1]}",
        "",
        f"A `{fam}` checkpoint ({n_params:,} parameters, task `{task}`) in the recurse-interp format: "
        f"`{WEIGHTS}` (safetensors, no pickle) and a self-describing `{CONFIG}` (`\"format\": \"{FORMAT}\"`).",
        "",
        "```python",
        "from models.load import load_any",
        f'model, meta = load_any("hf:{name}")',
        "```",
        "",
        "```bash",
        f"interp trace --ckpt hf:{name} --puzzle-file puzzles.sdm" if task != "text"
        else f'interp trace --ckpt hf:{name} --text "def f(x):"',
        "```",
        "",
        "| config | value |",
        "|---|---|",
        *[f"| {k} | `{v}` |" for k, v in sorted(meta["model"].items())],
    ]
    if evaluation:
        lines += ["", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(evaluation.items()) if not isinstance(v, (list, dict))]
    if card:
        lines += ["", "## Training card", "", card.strip()]
    return "\n".join(lines) + "\n"


def _check_export_dst(dst: Path, overwrite: bool) -> None:
    """An export folder must be new or empty, or (``overwrite``) an earlier export whose files are all recorded
    unchanged in its ``provenance.json``: the export replaces the folder whole, so any other file is refused."""
    ensure_out_not_symlink(dst, CheckpointError)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and not overwrite:
        raise CheckpointError(f"{dst} exists and is not empty (pass --overwrite to replace it)")
    check_replaceable(dst, CheckpointError, "export")


def export_zoo(ckpt: str | os.PathLike, out: str | os.PathLike, repo: str | None = None,
               overwrite: bool = False) -> Path:
    """Write a zoo checkpoint as a Hub-ready folder (weights, config, README.md card); atomic, nothing on error."""
    from .checkpoint import load_checkpoint

    src, dst = Path(ckpt), Path(out)
    if repo is not None:
        parse_hub_spec(PREFIX + repo)
    _check_export_dst(dst, overwrite)
    model, meta = load_checkpoint(src)  # validates weights and config before anything is written
    n_params = sum(p.numel() for p in model.parameters())
    card = (src / "CARD.md").read_text() if (src / "CARD.md").is_file() else None
    evaluation = _json(src / "eval.json") if (src / "eval.json").is_file() else None
    with atomic_dir(dst, recoverable=True) as tmp:
        for f in (WEIGHTS, CONFIG, "eval.json"):
            if (src / f).is_file():
                shutil.copy2(src / f, tmp / f)
        (tmp / "README.md").write_text(model_card(meta, n_params, repo, card, evaluation))
        record_outputs(tmp, {"command": "models.hub export"})
    return dst


def export_checkpoint(src: str | os.PathLike, out: str | os.PathLike, repo: str | None = None, overwrite: bool = False,
                      **load_kwargs: Any) -> Path:
    """Write any supported checkpoint as a Hub-ready folder: ``model.safetensors`` + ``config.json`` + README card.

    A zoo checkpoint is copied (``export_zoo``); any other format (reference ``step_N``, ARC Prize verification,
    EqR ``.pth``, URM ``step_N.pt``, Lightning ``model.ckpt``, ...) is loaded with ``models.official`` (``load_kwargs``
    such as ``seq_len=81``, ``weights="raw"``) and converted; where it came from is kept in ``config.json["source"]``.
    Atomic: on any error nothing is written.
    """
    from .checkpoint import save_checkpoint
    from .official import load_official

    s, dst = Path(local_checkpoint(str(src))), Path(out)  # an hf: spec exports from its cached folder
    if s.is_dir() and (s / CONFIG).is_file() and not is_transformers_dir(s):
        if load_kwargs:
            raise CheckpointError(f"{s} is already in our format; {', '.join(sorted(load_kwargs))} do not apply")
        return export_zoo(s, dst, repo, overwrite)
    if repo is not None:
        parse_hub_spec(PREFIX + repo)
    _check_export_dst(dst, overwrite)
    if not s.exists():
        raise CheckpointError(f"checkpoint not found: {s}")
    model, meta = load_official(s, **load_kwargs)  # every check happens before anything is written
    extra = json.loads(json.dumps({"source": meta["source"], "step": meta["step"], "train": meta["train"]}, default=str))
    n_params = sum(p.numel() for p in model.parameters())
    with atomic_dir(dst, recoverable=True) as tmp:
        inner = save_checkpoint(tmp / "checkpoint", model, extra=extra)
        for f in (WEIGHTS, CONFIG):
            os.replace(inner / f, tmp / f)
        inner.rmdir()
        card_meta = {"model": meta["model"], "task": None}
        (tmp / "README.md").write_text(model_card(card_meta, n_params, repo, None, None))
        record_outputs(tmp, {"command": "models.hub export"})
    return dst


# ----------------------------------------------------------------------------- command line
def build_parser() -> Parser:
    """The parser of ``python -m models.hub``."""
    ap = Parser(prog="python -m models.hub", description=__doc__.split("\n\n")[0],
                epilog=examples("python -m models.hub export zoo/trm-sudoku9 out/hub/trm-sudoku9 --repo ORG/trm-sudoku9",
                                "python -m models.hub export tests/fixtures/checkpoint_formats/eqr_trm/eqr.pth out/hub/eqr-trm --seq-len 16"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("resolve", help="fetch (or find in the cache) a spec and print its folder and layout")
    r.add_argument("spec", type=nonempty_str, help="hf:ORG/NAME[@REVISION][:SUBFOLDER]")
    e = sub.add_parser("export", help="write any supported checkpoint as a Hub-ready folder (safetensors + config.json + card)",
                       epilog=examples("python -m models.hub export zoo/trm-sudoku9 out/hub/trm-sudoku9",
                                       "python -m models.hub export tests/fixtures/checkpoint_formats/hrm_step out/hub/hrm --seq-len 16",
                                       "python -m models.hub export tests/fixtures/checkpoint_formats/eqr_trm/eqr.pth out/hub/eqr --seq-len 16 --weights raw"))
    e.add_argument("ckpt", type=path_str, help="a zoo checkpoint directory, any format models.official reads (step_N, *.pth, *.pt, model.ckpt, run dir), "
                                "or an hf: spec of either")
    e.add_argument("out", type=path_str, help="folder to write (upload it with `hf upload ORG/NAME OUT`)")
    e.add_argument("--repo", type=nonempty_str, help="ORG/NAME the folder will be uploaded to (used in the card)")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--weights", choices=WEIGHT_CHOICES, default=None, help="EMA or raw weights where the file holds both (default: EMA)")
    e.add_argument("--seq-len", type=positive_int, default=None, help="sequence length (RoPE checkpoints do not store it)")
    e.add_argument("--config-yaml", type=path_str, default=None, help="the run's training config when it is neither in the file nor beside it")
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.cmd == "resolve":
            print(json.dumps(resolve_hub(args.spec).info(), indent=2))
        else:
            kw = {k: v for k, v in (("weights", args.weights), ("seq_len", args.seq_len), ("config_yaml", args.config_yaml)) if v is not None}
            out = export_checkpoint(args.ckpt, args.out, args.repo, args.overwrite, **kw)
            print(f"wrote {out}; upload with: hf upload {args.repo or 'ORG/NAME'} {out}")
    except (CheckpointError, UsageError, OSError, ValueError) as e:
        return print_error(e)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
