"""Training configuration: one plain dataclass, serialised next to every checkpoint.

A config file (YAML or JSON) holds a dict with the fields below; ``base:``
names another config file (relative to this one) whose values are merged in
first, so an ablation arm is a few lines on top of a base config (a ``model``
mapping with a different ``family`` replaces the base's model instead). Command-line
overrides are dotted ``key=value`` pairs (``optim.lr=3e-4``, ``cgar.pdc=true``,
``model.hidden_size=64``) whose values are parsed as YAML scalars/lists.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from common.untrusted import parse_yaml, read_json, safe_load_yaml
from models.config import CONFIG_CLASSES, ConfigError, config_from_dict, numeric_strings

TASK_NAMES = ("sudoku", "maze", "arc", "text")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``lr * lr_min_ratio``."""

    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    warmup_steps: int = 0
    lr_min_ratio: float = 1.0  # 1.0 = constant after warm-up (the HRM/TRM recipe)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping (the norm is still checked)
    puzzle_emb_lr: float | None = None  # None: same as lr
    puzzle_emb_weight_decay: float | None = None  # None: same as weight_decay


@dataclass
class CGARConfig:
    """CGAR (arXiv 2511.08653): progressive depth curriculum + hierarchical supervision weighting."""

    pdc: bool = False  # progressive depth curriculum (training only)
    hsw: bool = False  # hierarchical supervision weighting
    hsw_lambda: float = 0.7
    hsw_form: str = "paper"  # "paper": w_t = lambda^(t-1)/Z per row; "code": batch loss * lambda^mean(steps)


@dataclass
class TrainConfig:
    """Everything a training run needs besides its output directory."""

    model: dict[str, Any] = field(default_factory=lambda: {"family": "trm"})
    task: dict[str, Any] = field(default_factory=lambda: {"name": "sudoku", "data": None})
    batch_size: int = 32  # global batch (split evenly over DDP ranks)
    steps: int = 0  # optimiser steps; 0 = derive from epochs
    epochs: float = 0.0  # passes over the training groups (HRM convention), used when steps == 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema_decay: float = 0.999  # 0 disables EMA; evaluation and model.safetensors use EMA weights
    loss: str = "stablemax"  # "stablemax" | "softmax"
    halting: str = "auto"  # "auto" | "act_q" (HRM Q-learning) | "bce" (TRM) | "none"
    q_loss_weight: float = 0.5
    cgar: CGARConfig = field(default_factory=CGARConfig)
    eval_interval: int = 0  # steps between evaluations (0: only at the end)
    eval_n: int = 0  # test examples (puzzles) or windows (text) per evaluation; 0 = all / 64 windows
    eval_batch_size: int = 0  # 0 = batch_size
    ckpt_interval: int = 0  # steps between checkpoints (`last` + `step_N`); 0: only at evals and the end
    keep_step_ckpts: bool = True  # also keep a `step_N` copy at every ckpt_interval
    log_interval: int = 10
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    dtype: str = "float32"  # "float32" | "bf16" (autocast; weights stay float32)
    compile: bool = False  # torch.compile the segment / pass function
    max_failures: int = 3  # consecutive divergences (non-finite loss/grad) before aborting
    tensorboard: bool = False  # also write TensorBoard events when tensorboard is installed
    inject_nan_steps: list[int] = field(default_factory=list)  # testing aid: poison the loss at these steps (a step listed k times fails k attempts)

    # ----- (de)serialisation ------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"a training config must be a mapping, got {type(d).__name__}")
        d = {k: v for k, v in d.items() if k != "base"}
        kwargs = _fields_from(cls, d, "")
        kwargs["optim"] = OptimConfig(**_fields_from(OptimConfig, d.get("optim") or {}, "optim."))
        kwargs["cgar"] = CGARConfig(**_fields_from(CGARConfig, d.get("cgar") or {}, "cgar."))
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    # ----- checks -------------------------------------------------------------
    def validate(self) -> None:
        if not isinstance(self.model, dict) or "family" not in self.model:
            raise ConfigError("model must be a mapping with a 'family' field")
        self.model = yaml_numbers(self.model)
        config_from_dict(dict(self.model))  # raises ConfigError on unknown/bad fields (types, ranges, memory)
        if not isinstance(self.task, dict) or self.task.get("name") not in TASK_NAMES:
            raise ConfigError(f"task.name must be one of {', '.join(TASK_NAMES)}, got {self.task.get('name') if isinstance(self.task, dict) else self.task!r}")
        check_family(self.model, self.task["name"])
        if self.task.get("data") is None:
            raise ConfigError("task.data must be a dataset directory or a generator spec {generate: ...}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps < 0 or self.epochs < 0 or (self.steps == 0 and self.epochs == 0):
            raise ConfigError("set steps > 0 or epochs > 0")
        if self.loss not in ("stablemax", "softmax"):
            raise ConfigError(f"loss must be stablemax or softmax, not {self.loss!r}")
        if self.halting not in ("auto", "act_q", "bce", "none"):
            raise ConfigError(f"halting must be auto, act_q, bce or none, not {self.halting!r}")
        if self.dtype not in ("float32", "bf16"):
            raise ConfigError(f"dtype must be float32 or bf16, not {self.dtype!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        o = self.optim
        if o.lr <= 0 or not 0 <= o.lr_min_ratio <= 1 or o.warmup_steps < 0 or o.grad_clip < 0:
            raise ConfigError("optim needs lr > 0, 0 <= lr_min_ratio <= 1, warmup_steps >= 0, grad_clip >= 0")
        if self.cgar.hsw_form not in ("paper", "code"):
            raise ConfigError(f"cgar.hsw_form must be paper or code, not {self.cgar.hsw_form!r}")
        if not 0 < self.cgar.hsw_lambda <= 1:
            raise ConfigError(f"cgar.hsw_lambda must be in (0, 1], got {self.cgar.hsw_lambda}")
        if self.max_failures < 1:
            raise ConfigError(f"max_failures must be >= 1, got {self.max_failures}")
        for name in ("eval_interval", "eval_n", "eval_batch_size", "ckpt_interval", "log_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name, hi in TRAIN_BOUNDS.items():
            if getattr(self, name) > hi:
                raise ConfigError(f"{name} must be <= {hi:g}, got {getattr(self, name)!r}")

    def resolved_halting(self) -> str:
        """``halting`` with ``auto`` resolved from the model family."""
        if self.halting != "auto":
            return self.halting
        fam = self.model.get("family")
        if fam == "hrm":
            return "act_q"
        if fam == "trm":
            return "bce"
        return "none"


TRAIN_BOUNDS = {"batch_size": 1 << 20, "steps": 1e10, "epochs": 1e7, "max_failures": 1000, "eval_n": 1 << 31,
                "eval_batch_size": 1 << 20, "log_interval": 1e10, "eval_interval": 1e10, "ckpt_interval": 1e10}


def yaml_numbers(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` with numeric strings in numeric fields made numbers (PyYAML reads ``1e-5`` as a string)."""
    cls = CONFIG_CLASSES.get(model.get("family"))
    return model if cls is None else numeric_strings(cls, model)


PUZZLE_FAMILIES = ("hrm", "trm", "unitf", "transformer")
LM_FAMILIES = ("hrm_lm", "unitf", "transformer")


def check_family(model: dict[str, Any], task: str) -> None:
    """Text needs HRM-LM or a causal baseline; puzzles need a non-causal puzzle model."""
    fam = model.get("family")
    if task == "text":
        if fam not in LM_FAMILIES or (fam != "hrm_lm" and not model.get("causal", False)):
            raise ConfigError(f"task 'text' needs an hrm_lm model or a causal unitf/transformer (model.causal: true), got {fam!r}")
    elif fam not in PUZZLE_FAMILIES or model.get("causal", False):
        raise ConfigError(f"task {task!r} needs a non-causal puzzle model (hrm, trm, unitf, transformer), got {fam!r}")


def _fields_from(cls: type, d: dict[str, Any], prefix: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping")
    nested = {"optim", "cgar"} if cls is TrainConfig else set()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown training config field(s): {', '.join(prefix + u for u in unknown)}")
    hints = typing.get_type_hints(cls)
    return {k: _coerce(v, hints[k], prefix + k) for k, v in d.items() if k not in nested}


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Check a scalar against its declared type; numeric strings such as YAML's ``3e-4`` become numbers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {value!r}")
        return value
    base = hint
    if origin in (typing.Union, types.UnionType):  # Optional[X]
        if value is None:
            return None
        base = next(a for a in args if a is not type(None))
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if base in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(num):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        if base is int:
            if num != int(num):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            return int(num)
        return num
    if base is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [_coerce(v, typing.get_args(hint)[0], name) for v in value]
    return value


# ----- files and overrides ------------------------------------------------------
def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML/JSON config, resolving ``base:`` chains (paths relative to the including file)."""
    p = Path(path).resolve()
    if p in _seen:
        raise ConfigError(f"config {p} includes itself through 'base:'")
    if not p.is_file():
        raise ConfigError(f"config file not found: {path}")
    d = read_json(p, ConfigError, f"config {path}") if p.suffix == ".json" else safe_load_yaml(p, ConfigError, f"config {path}")
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"config {path} must hold a mapping at top level")
    base = d.pop("base", None)
    if base is None:
        return d
    parent = read_config_file(p.parent / base, (*_seen, p))
    return deep_merge(parent, d)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``; nested mappings merge, everything else replaces.

    A mapping that names a different ``family`` than the one it overrides
    replaces it whole (another model family shares no fields).
    """
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and v.get("family", out[k].get("family")) == out[k].get("family"):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a copy of ``d``."""
    out = json.loads(json.dumps(d))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = parse_yaml(raw, ConfigError, f"override {key.strip()[:60]!r}") if raw.strip() else ""
        except ConfigError as e:
            if "too large or too deep" in str(e) or "larger than" in str(e):
                raise
            value = raw  # not YAML: the text itself
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def load_train_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> TrainConfig:
    """Config file (or ``base`` dict) + overrides -> validated ``TrainConfig``."""
    d = read_config_file(path) if path is not None else dict(base or {})
    return TrainConfig.from_dict(apply_overrides(d, overrides or []))
