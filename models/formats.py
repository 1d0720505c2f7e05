"""Checkpoint files of the HRM/TRM family: read any of them tensor-only, say which format it is, pick raw or EMA weights.

The public training codes save their weights in different containers:

    reference   sapientinc/HRM, TinyRecursiveModels, the ARC Prize verification runs:
                ``torch.save(model.state_dict())`` -> ``step_N`` / ``checkpoint`` (a bare state dict)
    eqr         locuslab/EqR ``step_N[_id].pth`` / ``eqr.pth``: {step, model, optimizers, carry, rng, numpy,
                python, config, ema: {mu, shadow}, ...}
    urm         UbiquantAI/URM ``step_N.pt``: {step, model_state_dict, optimizer_states, rng_state, ...}
    lightning   PyTorch Lightning ``model.ckpt`` (Kaggle notebooks): {state_dict, epoch, global_step,
                pytorch-lightning_version, hyper_parameters, optimizer_states, ...}
    nested      any other dict holding one state dict (``model`` / ``state_dict``), optionally with an EMA
                copy beside it (``ema``, ``ema_state_dict``, ``state_dict_ema``, ``model_ema``)
    safetensors a ``.safetensors`` state dict

Inside a state dict the names carry the wrappers' prefixes: ``_orig_mod.`` (``torch.compile``),
``module.`` (DDP), ``model.inner.`` (loss head and ACT wrapper), a LightningModule attribute
(``model.``, ``net.``), and EMA copies kept in the same dict under ``ema_model.`` / ``model_ema.`` /
``ema.``. :func:`read_checkpoint_file` removes them, reports them, and refuses in one line a file
that mixes formats (two raw state dicts, keys under different wrapper prefixes).

Every torch file is read with ``torch.load(weights_only=True)``. Full training checkpoints (EqR)
also pickle a few non-weight objects: numpy's RNG state and the reference code's carry dataclasses.
Those, and only those, are read as inert :class:`Placeholder` objects (allow-listed under their
names for this one load; their arguments are stored, nothing of theirs runs). Any other global
is refused with one line.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from common.untrusted import regular_file, safetensors_header

from .checkpoint import CheckpointError
from .step_files import STEP_PATTERN, latest_step

WEIGHT_CHOICES = ("ema", "raw")

# top-level module names of the HRM/TRM family; the parts before the first of them are wrappers
ROOTS = frozenset({"embed_tokens", "embed_pos", "lm_head", "q_head", "puzzle_emb", "H_init", "L_init", "H_level",
                   "L_level", "layers", "init_hidden", "absolute_pos_embedding"})
WRAPPER_PARTS = frozenset({"_orig_mod", "module", "model", "inner", "net"})  # used when no root name is found
EMA_PARTS = frozenset({"ema", "ema_model", "model_ema"})
RAW_KEYS = ("model", "state_dict", "model_state_dict")
EMA_KEYS = ("ema", "ema_state_dict", "state_dict_ema", "model_ema", "ema_model")
CONFIG_KEYS = ("config", "hyper_parameters", "hparams")

# non-weight globals that training checkpoints pickle beside the weights and that we read as placeholders:
# numpy's RNG state (EqR ``numpy``) and the reference code's carry dataclasses (EqR ``carry``)
_PLACEHOLDER_GLOBALS = re.compile(
    r"numpy(\._core|\.core)?\.multiarray\._reconstruct|numpy\.ndarray|numpy\.dtype|numpy\.dtypes\.\w+"
    r"|models\.[\w.]+\.\w*Carry"
)


class Placeholder:
    """Stands in for one pickled object of a foreign class: keeps its arguments and state, runs nothing."""

    global_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.global_name}>"


def placeholder_class(name: str) -> type[Placeholder]:
    """A distinct inert class standing in for the global ``name`` (``module.Qualname``)."""
    return type("Placeholder_" + re.sub(r"\W", "_", name), (Placeholder,), {"global_name": name})


def load_torch_file(path: str | Path) -> tuple[Any, list[str]]:
    """``torch.load(path, weights_only=True)`` on CPU; returns (object, names of globals read as placeholders)."""
    p = Path(path)
    regular_file(p, None, CheckpointError)  # no FIFO or device: they would block or never end
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(p))
    except Exception:  # not a zip checkpoint (legacy pickle): plain weights_only below decides
        needed = []
    stand_ins = [n for n in needed if _PLACEHOLDER_GLOBALS.fullmatch(n)]
    allow = [(placeholder_class(n), n) for n in stand_ins]
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(allow):
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": noise on top of our one-line error
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, ImportError, MemoryError, OverflowError) as e:
        raise CheckpointError(
            f"{p} is not a tensor-only torch.save file (refusing to unpickle objects): {load_reason(e)}"
        ) from None
    return obj, stand_ins


def load_reason(e: BaseException) -> str:
    """The informative sentence of a ``torch.load`` error, without torch's advice to set weights_only=False."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"(Unsupported [^\n]*|Trying to load unsupported [^\n]*)", text)
    if m:
        return re.split(r"(?<=\.)\s", m.group(1).strip())[0][:300]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Check the documentation"))]
    return (useful or [type(e).__name__])[0][:300]


# ----- files ---------------------------------------------------------------------------------
WEIGHT_FILE = re.compile(rf"(checkpoint|{STEP_PATTERN}|.+\.(safetensors|pt|pth|ckpt))")


def find_weights_file(folder: Path) -> Path | None:
    """The weights file of a run folder: ``checkpoint``, the latest ``step_N``, else one ``*.safetensors``
    (preferred) / ``*.pt`` / ``*.pth`` / ``*.ckpt`` file (URM ``step_N.pt`` counts by its step); None if none."""
    files = [f for f in folder.iterdir() if f.is_file() and WEIGHT_FILE.fullmatch(f.name)]
    if (folder / "checkpoint").is_file():
        return folder / "checkpoint"
    latest = latest_step(files, name=lambda f: f.name) or latest_step(files, name=lambda f: re.sub(r"\.(pt|pth)$", "", f.name))
    if latest is not None:
        return latest
    for ext in (".safetensors", ".pt", ".pth", ".ckpt"):
        found = sorted(f for f in files if f.name.endswith(ext))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CheckpointError(f"{folder} holds several {ext} files ({', '.join(f.name for f in found[:4])}); name one of them")
    return None


# ----- state dicts ------------------------------------------------------------------------------
def is_state_dict(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in x.items())


def split_wrapper(key: str) -> tuple[str, str]:
    """``("_orig_mod.model.inner", "lm_head.weight")`` for ``_orig_mod.model.inner.lm_head.weight``."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part in ROOTS:
            return ".".join(parts[:i]), ".".join(parts[i:])
    i = 0
    while i < len(parts) - 1 and parts[i] in WRAPPER_PARTS | EMA_PARTS:
        i += 1
    return ".".join(parts[:i]), ".".join(parts[i:])


def strip_wrappers(sd: dict[str, torch.Tensor], where: str) -> tuple[dict[str, torch.Tensor], str]:
    """Bare names and the one wrapper prefix they shared; keys under different prefixes are refused."""
    groups: dict[str, list[str]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        prefix, name = split_wrapper(key)
        groups.setdefault(prefix, []).append(key)
        if name in out:
            raise CheckpointError(f"{where}: two keys map to {name!r} after removing wrapper prefixes")
        out[name] = value
    if len(groups) > 1:
        shown = ", ".join(f"{len(v)} under {(k + '.') if k else 'no prefix'!r}" for k, v in sorted(groups.items())[:4])
        raise CheckpointError(f"{where} mixes checkpoint formats (or is not an HRM/TRM-family checkpoint): "
                              f"its keys carry different wrapper prefixes ({shown})")
    return out, next(iter(groups), "")


def split_ema_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(raw, EMA) parts of one state dict that keeps an EMA copy under ``ema_model.`` / ``model_ema.`` / ``ema.``."""
    raw, ema = {}, {}
    for k, v in sd.items():
        parts = split_wrapper(k)[0].split(".")
        is_ema = any(p in EMA_PARTS for p in parts)
        if is_ema:
            first = next(i for i, p in enumerate(parts) if p in EMA_PARTS)
            ema[".".join(k.split(".")[first + 1:])] = v
        else:
            raw[k] = v
    return raw, ema


# ----- containers -------------------------------------------------------------------------------
@dataclass
class CheckpointFile:
    """One checkpoint file, read: its format, the chosen weights (bare names) and what else it said."""

    path: Path
    format: str
    state: dict[str, torch.Tensor]
    weights: str  # "raw", "ema" or "only" (the file holds one set of weights)
    available: tuple[str, ...]
    prefix: str  # the wrapper prefix removed, e.g. "_orig_mod.model.inner"
    config: dict[str, Any] | None = None  # a training config stored inside the file (EqR, Lightning)
    step: int | None = None
    placeholders: list[str] = field(default_factory=list)
    ema_keys: int = 0  # tensors taken from the EMA copy (the rest, e.g. buffers, come from the raw weights)

    @property
    def compiled(self) -> bool:
        return "_orig_mod" in self.prefix.split(".")

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for ``meta["source"]["checkpoint"]``."""
        return {"file": str(self.path), "format": self.format, "weights": self.weights, "available_weights": list(self.available),
                "wrapper_prefix": self.prefix + "." if self.prefix else "", "compiled": self.compiled, "step": self.step,
                "ema_tensors": self.ema_keys, "placeholders": self.placeholders, "config_in_file": self.config is not None}


def container_format(obj: dict[str, Any]) -> str:
    """Which training code wrote this top-level dict (see the module docstring)."""
    if "pytorch-lightning_version" in obj or {"state_dict", "global_step", "epoch"} <= set(obj):
        return "lightning"
    if "model_state_dict" in obj:
        return "urm"
    if "model" in obj and ("carry" in obj or "optimizer_lrs" in obj or (isinstance(obj.get("ema"), dict) and "shadow" in obj["ema"])):
        return "eqr"
    return "nested"


def ema_state(obj: Any) -> dict[str, torch.Tensor] | None:
    """An EMA entry as a state dict: a bare one, EqR's ``{mu, shadow}`` or ``{state_dict: ...}``."""
    if is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for k in ("shadow", "state_dict", "module"):
            if is_state_dict(obj.get(k)):
                return obj[k]
    return None


def read_checkpoint_file(path: str | Path, weights: str | None = None) -> CheckpointFile:
    """Read any supported checkpoint file; ``weights`` picks ``"ema"`` or ``"raw"`` where the file has both.

    Default: the EMA weights when there are any (the reference codes evaluate the EMA copy), else the only set.
    """
    p = Path(path)
    if weights is not None and weights not in WEIGHT_CHOICES:
        raise CheckpointError(f"weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}")
    placeholders: list[str] = []
    if p.suffix == ".safetensors":
        regular_file(p, None, CheckpointError)
        safetensors_header(p, CheckpointError)  # bounded header before safetensors parses it
        try:
            obj: Any = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{p} is not a readable safetensors file ({e})") from None
        fmt = "safetensors"
    else:
        obj, placeholders = load_torch_file(p)
        fmt = "reference" if is_state_dict(obj) else None
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{p} does not hold a state dict (a mapping of names to tensors)")
    config = step = None
    if is_state_dict(obj):
        raw_sd, ema_sd = split_ema_keys(obj)
        if not raw_sd:
            raw_sd, ema_sd = ema_sd, {}
    else:
        fmt = container_format(obj)
        raws = [k for k in RAW_KEYS if is_state_dict(obj.get(k))]
        emas = [k for k in EMA_KEYS if ema_state(obj.get(k)) is not None]
        if len(raws) > 1:
            raise CheckpointError(f"{p} mixes checkpoint formats: it holds several state dicts ({', '.join(raws)}); "
                                  "save the one you mean on its own")
        if len(emas) > 1:
            raise CheckpointError(f"{p} mixes checkpoint formats: it holds several EMA copies ({', '.join(emas)})")
        if not raws and not emas:
            found = ", ".join(sorted(map(str, obj))[:8])
            raise CheckpointError(f"{p} does not hold a state dict: no tensors under {', '.join(RAW_KEYS)} (keys: {found})")
        raw_sd = obj[raws[0]] if raws else {}
        raw_sd, inner_ema = split_ema_keys(raw_sd) if raw_sd else ({}, {})
        ema_sd = ema_state(obj[emas[0]]) if emas else inner_ema
        if emas and inner_ema:
            raise CheckpointError(f"{p} mixes checkpoint formats: an EMA copy both beside ({emas[0]}) and inside its state dict")
        for k in CONFIG_KEYS:
            if isinstance(obj.get(k), dict) and isinstance(obj[k].get("arch"), dict):
                config = obj[k]
                break
        s = obj.get("step", obj.get("global_step"))
        step = int(s) if isinstance(s, int) and not isinstance(s, bool) else None
    if step is None:  # step_N, step_N.pt, EqR's step_N_<wandb id>.pth
        m = re.fullmatch(r"step_(\d+)(_[A-Za-z0-9]+)?(\.(pt|pth|ckpt|safetensors))?", p.name)
        step = int(m.group(1)) if m else None
    where = str(p)
    raw, prefix = strip_wrappers(raw_sd, where) if raw_sd else ({}, "")
    ema, ema_prefix = strip_wrappers(ema_sd, where + " (EMA copy)") if ema_sd else ({}, "")
    available = tuple(w for w, sd in (("ema", ema), ("raw", raw)) if sd)
    if weights is not None and len(available) < 2:
        raise CheckpointError(f"{p} holds one set of weights, not EMA and raw side by side; --weights {weights} does not apply")
    choice = weights or available[0]
    if choice == "ema" and raw:
        unknown = sorted(set(ema) - set(raw))
        if unknown:
            raise CheckpointError(f"{p}: the EMA copy has tensors the raw weights lack ({', '.join(unknown[:4])})")
        state = {**raw, **ema}  # EMA covers the trained parameters; buffers (H_init, puzzle_emb) stay raw
    else:
        state = ema if choice == "ema" else raw
    return CheckpointFile(
        path=p, format=fmt or "reference", state=state, weights=choice if len(available) > 1 else "only",
        available=available, prefix=prefix or ema_prefix, config=config, step=step, placeholders=placeholders,
        ema_keys=len(ema) if choice == "ema" else 0,
    )


__all__ = ["CheckpointFile", "find_weights_file", "Placeholder", "WEIGHT_CHOICES", "container_format", "is_state_dict", "load_reason",
           "load_torch_file", "read_checkpoint_file", "split_ema_keys", "split_wrapper", "strip_wrappers"]
