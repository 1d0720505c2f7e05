"""Model configurations: plain dataclasses that serialise to JSON next to every checkpoint.

``family`` names the model class, so a checkpoint's ``config.json`` alone
rebuilds the model (``models.build_model``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A configuration that cannot describe a valid model."""


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
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.family} config field(s): {', '.join(unknown)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.pos_encodings not in ("rope", "learned", "none"):
            raise ConfigError(f"pos_encodings must be rope, learned or none, not {self.pos_encodings!r}")
        if self.vocab_size < 2 or self.seq_len < 1:
            raise ConfigError("vocab_size must be >= 2 and seq_len >= 1")


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
