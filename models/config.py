"""Model configurations: plain dataclasses that serialise to JSON next to every checkpoint.

``family`` names the model class, so a checkpoint's ``config.json`` alone
rebuilds the model (``models.build_model``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A configuration that cannot describe a valid model."""


# ----------------------------------------------------------------------------- the schema: types, ranges, memory
ATTN_BACKENDS = ("auto", "sdpa", "flash")
MEMORY_ENV = "RECURSE_MAX_MEMORY_GB"
DEFAULT_MAX_MEMORY_GB = 32.0
MAX_MEMORY_GB_CAP = 1e6  # a petabyte: above it the limit is a typo, never a machine

# sane bounds per field (inclusive); anything outside is a typo or a hostile file, never a real model
BOUNDS: dict[str, tuple[float, float]] = {
    "vocab_size": (2, 1 << 20), "seq_len": (1, 1 << 16), "hidden_size": (1, 1 << 14), "num_heads": (1, 1024),
    "expansion": (0.01, 64), "rms_norm_eps": (1e-30, 1.0), "rope_theta": (1e-6, 1e12),
    "num_puzzle_identifiers": (1, 1 << 24), "puzzle_emb_ndim": (0, 1 << 16), "puzzle_emb_len": (0, 1 << 12),
    "halt_max_steps": (1, 1024), "halt_exploration_prob": (0.0, 1.0),
    "H_cycles": (1, 1024), "L_cycles": (1, 1024), "H_layers": (1, 256), "L_layers": (1, 256),
    "num_layers": (1, 256), "depth": (1, 1024), "encoder_layers": (0, 256), "fast_layers": (1, 256),
    "slow_layers": (1, 256), "slow_period": (1, 1024), "slow_updates": (1, 1024), "tbptt_steps": (1, 1 << 20),
    "passes": (1, 1024), "inject_scale_init": (-1e6, 1e6), "fusion_entropy_weight": (0.0, 1e6),
}


def check_field_type(name: str, value: Any, kind: str, where: str = "config") -> Any:
    """``value`` checked against the field's declared type (``int``, ``float``, ``bool``, ``str``); one-line ``ConfigError``.

    Booleans are not numbers here, integers are accepted for floats (returned as float),
    and a float is accepted for an int only when it is integral (``1e3``).
    """
    def bad() -> ConfigError:
        return ConfigError(f"{where}: field {name!r} must be {'a number' if kind in ('int', 'float') else 'a ' + kind}"
                           f"{' (an integer)' if kind == 'int' else ''}, got {type(value).__name__} {str(value)[:60]!r}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == "str":
        if not isinstance(value, str) or len(value) > 256:
            raise bad()
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad()
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: field {name!r} must be finite, got {value!r}")
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise bad()
            value = int(value)
        return value
    return float(value)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def numeric_strings(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with numeric strings in ``cls``'s numeric fields made numbers (PyYAML reads ``1e-5`` as a string)."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    out = dict(d)
    for k, v in d.items():
        if kinds.get(k) in ("int", "float") and isinstance(v, str) and len(v) < 64 and _NUMBER.match(v.strip()):
            num = float(v)
            out[k] = int(num) if kinds[k] == "int" and num.is_integer() else num
    return out


def check_bounds(cfg: Any, where: str = "config") -> None:
    """Every bounded field of ``cfg`` inside ``BOUNDS``; one line naming the first field outside."""
    for name, (lo, hi) in BOUNDS.items():
        if hasattr(cfg, name):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
                raise ConfigError(f"{where}: {name} must be in [{lo:g}, {hi:g}], got {v!r}")


def env_limit(name: str, default: float, cap: float, unit: str) -> float:
    """A positive finite limit from environment variable ``name`` (``default`` when unset, at most ``cap``);
    anything else (inf, nan, garbage, 0) raises :class:`ConfigError` in one line naming ``unit``."""
    raw = os.environ.get(name, "")
    try:
        v = float(raw) if raw.strip() else default
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and 0 < v <= cap):
        raise ConfigError(f"{name} must be a number of {unit} in (0, {cap:g}], got {raw[:40]!r}")
    return v


def max_memory_bytes() -> int:
    """The memory limit for one model (``RECURSE_MAX_MEMORY_GB``, default 32 GB): estimates above it are refused."""
    return int(env_limit(MEMORY_ENV, DEFAULT_MAX_MEMORY_GB, MAX_MEMORY_GB_CAP, "gigabytes") * 1e9)


def estimate_memory(cfg: "BaseConfig", batch_size: int = 1) -> dict[str, int]:
    """Bytes a model of ``cfg`` needs (float32): parameters, the RoPE table, and activations of one forward step.

    Computed from the config alone, before anything is allocated, so absurd
    sizes are refused instead of exhausting memory.
    """
    h = int(cfg.hidden_size)
    L = int(cfg.seq_len) + int(getattr(cfg, "prefix_len", 0) or 0)
    inner = int(cfg.expansion * h * 2 / 3) + 256
    layers = sum(int(getattr(cfg, n, 0) or 0) for n in (
        "H_layers", "L_layers", "num_layers", "encoder_layers", "fast_layers", "slow_layers"))
    per_layer = 4 * h * h + 3 * h * inner
    if getattr(cfg, "mlp_t", False):
        per_layer += 3 * L * (int(cfg.expansion * L * 2 / 3) + 256)
    params = layers * per_layer + 2 * int(cfg.vocab_size) * h + L * h
    params += int(getattr(cfg, "num_puzzle_identifiers", 0)) * int(getattr(cfg, "puzzle_emb_ndim", 0))
    rope = 2 * L * (h // max(1, int(cfg.num_heads))) * 4 if cfg.pos_encodings == "rope" else 0
    heads = int(cfg.num_heads)
    acts = batch_size * (8 * L * max(h, inner) + heads * L * L) * 4
    return {"parameters": params * 4, "rope": rope, "activations": acts, "total": params * 4 + rope + acts}


def check_memory(cfg: "BaseConfig", where: str = "config", batch_size: int = 1) -> dict[str, int]:
    """``estimate_memory`` refused above ``max_memory_bytes()`` with one line (raise the limit with the env var)."""
    est = estimate_memory(cfg, batch_size)
    limit = max_memory_bytes()
    if est["total"] > limit:
        raise ConfigError(
            f"{where}: the model would need about {est['total'] / 1e9:.1f} GB (parameters {est['parameters'] / 1e9:.1f}, "
            f"RoPE {est['rope'] / 1e9:.1f}, activations {est['activations'] / 1e9:.1f}), above the limit of "
            f"{limit / 1e9:.1f} GB; set {MEMORY_ENV} to raise it")
    return est


@dataclass
class BaseConfig:
    family: ClassVar[str] = ""
    vocab_size: int = 11
    seq_len: int = 81
    hidden_size: int = 128
    num_heads: int = 4
    expansion: float = 4.0
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    pos_encodings: str = "rope"  # "rope" | "learned" | "none"
    attn_backend: str = "auto"  # "auto" (flash-attn on CUDA when installed, else SDPA) | "sdpa" | "flash"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["family"] = self.family
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BaseConfig":
        d = dict(d)
        fam = d.pop("family", cls.family)
        if cls.family and fam != cls.family:
            raise ConfigError(f"config is for family {fam!r}, not {cls.family!r}")
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise ConfigError(f"unknown {cls.family} config field(s): {', '.join(str(u)[:40] for u in unknown[:8])}")
        d = {k: check_field_type(k, v, types[k], f"{cls.family} config") for k, v in d.items()}
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Types, ranges and the memory estimate; one-line ``ConfigError`` naming the first bad field."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_field_type(f.name, getattr(self, f.name), str(f.type), f"{self.family} config"))
        check_bounds(self, f"{self.family} config")
        if self.attn_backend not in ATTN_BACKENDS:
            raise ConfigError(f"attn_backend must be one of {', '.join(ATTN_BACKENDS)}, not {self.attn_backend!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.pos_encodings not in ("rope", "learned", "none"):
            raise ConfigError(f"pos_encodings must be rope, learned or none, not {self.pos_encodings!r}")
        if self.vocab_size < 2 or self.seq_len < 1:
            raise ConfigError("vocab_size must be >= 2 and seq_len >= 1")
        check_memory(self, f"{self.family} config")


@dataclass
class PuzzleConfig(BaseConfig):
    """Fields shared by the puzzle models (HRM, TRM, UniTF, Transformer)."""

    num_puzzle_identifiers: int = 1
    puzzle_emb_ndim: int = 0  # 0 disables the per-puzzle embedding
    puzzle_emb_len: int = 0  # prefix tokens; 0 = ceil(puzzle_emb_ndim / hidden_size)
    halt_max_steps: int = 8  # ACT segments (deep-supervision steps); evaluation always runs them all
    halt_exploration_prob: float = 0.1

    @property
    def prefix_len(self) -> int:
        if self.puzzle_emb_len:
            return self.puzzle_emb_len
        return -(-self.puzzle_emb_ndim // self.hidden_size) if self.puzzle_emb_ndim else 0


@dataclass
class HRMConfig(PuzzleConfig):
    family: ClassVar[str] = "hrm"
    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 2
    L_layers: int = 2
    mlp_t: bool = False  # True: TRM's MLP-over-tokens mixer in both modules instead of self-attention (a variant, not the paper's HRM)
    grad_mode: str = "one_step"  # "one_step" | "full_bptt" (seed 000's 2x2 pairs this with TRM as the flat arm)

    def validate(self) -> None:
        super().validate()
        if self.grad_mode not in ("one_step", "full_bptt"):
            raise ConfigError(f"grad_mode must be one_step or full_bptt, not {self.grad_mode!r}")


@dataclass
class TRMConfig(PuzzleConfig):
    family: ClassVar[str] = "trm"
    H_cycles: int = 3  # T: deep-recursion repetitions
    L_cycles: int = 6  # n: latent updates per recursion
    num_layers: int = 2
    mlp_t: bool = True  # MLP over the token axis (MLP-mixer) instead of self-attention
    grad_mode: str = "last_recursion"  # "last_recursion" (TRM) | "one_step" | "full_bptt"

    def validate(self) -> None:
        super().validate()
        if self.grad_mode not in ("last_recursion", "one_step", "full_bptt"):
            raise ConfigError(f"grad_mode must be last_recursion, one_step or full_bptt, not {self.grad_mode!r}")


@dataclass
class UniTFConfig(PuzzleConfig):
    """Universal Transformer: one shared block stack iterated ``depth`` times (flat recurrence)."""

    family: ClassVar[str] = "unitf"
    num_layers: int = 2
    depth: int = 8
    causal: bool = False  # True for the language-model baseline
    halt_max_steps: int = 1


@dataclass
class TransformerConfig(PuzzleConfig):
    """Plain L-layer Transformer (no recurrence), puzzle or causal language model."""

    family: ClassVar[str] = "transformer"
    num_layers: int = 4
    causal: bool = False
    halt_max_steps: int = 1


@dataclass
class HRMLMConfig(BaseConfig):
    """HRM-LM (seed 003): gated Fast/Slow two-speed recurrence over a causal encoder."""

    family: ClassVar[str] = "hrm_lm"
    vocab_size: int = 256
    seq_len: int = 128
    encoder_layers: int = 1
    fast_layers: int = 1
    slow_layers: int = 1
    slow_period: int = 2  # N: the Slow-module fires every N steps
    slow_updates: int = 2  # T: Slow updates per pass, so M = N * T steps
    tbptt_steps: int = 2  # K: gradient flows through the last K steps of each pass
    passes: int = 2  # supervision passes, states detached between them
    inject_scale_init: float = 0.1
    fusion_entropy_weight: float = 0.01

    @property
    def steps_per_pass(self) -> int:
        return self.slow_period * self.slow_updates

    def validate(self) -> None:
        super().validate()
        for name in ("slow_period", "slow_updates", "passes", "fast_layers", "slow_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.encoder_layers < 0:
            raise ConfigError(f"encoder_layers must be >= 0, got {self.encoder_layers}")
        if not 1 <= self.tbptt_steps <= self.steps_per_pass:
            raise ConfigError(f"tbptt_steps K={self.tbptt_steps} must be in [1, M={self.steps_per_pass}]")


CONFIG_CLASSES: dict[str, type[BaseConfig]] = {
    c.family: c for c in (HRMConfig, TRMConfig, UniTFConfig, TransformerConfig, HRMLMConfig)
}


def config_from_dict(d: dict[str, Any]) -> BaseConfig:
    """Rebuild any model config from its ``to_dict()`` form."""
    fam = d.get("family")
    if fam not in CONFIG_CLASSES:
        raise ConfigError(f"unknown model family {fam!r} (expected one of {', '.join(CONFIG_CLASSES)})")
    return CONFIG_CLASSES[fam].from_dict(d)
