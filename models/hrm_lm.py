"""HRM-LM (seed 003): a causal language model with a gated two-speed recurrence.

A causal Transformer encoder reads the tokens once; two recurrent modules then
refine per-position states for ``M = N * T`` steps (N = ``slow_period``,
T = ``slow_updates``). One supervision pass reads::

    e = encoder(sqrt(D) * embed(tokens))                     # hook_encoded
    for m in range(M):                                       # steps < M-K under no_grad (TBPTT)
        c    = fast_in(cat[fast, slow, inject_scale * e])
        cand = fast_net(c)
        g    = sigmoid(fast_gate(cat[fast, cand]))           # pass{p}.step{m}.hook_gate_fast
        fast = (1 - g) * fast + g * cand                     # pass{p}.step{m}.hook_fast
        if (m + 1) % N == 0:                                 # the Slow-module fires T times
            cand = slow_net(slow_in(cat[slow, fast]))        # no token encoding here
            g    = sigmoid(slow_gate(cat[slow, cand]))       # pass{p}.step{m}.hook_gate_slow
            slow = (1 - g) * slow + g * cand                 # pass{p}.step{m}.hook_slow
    w = softmax(fusion(cat[fast, slow, e]) / temperature)    # pass{p}.hook_fusion, [B, L, 3]
    logits = rms_norm(w0*fast + w1*slow + w2*e) @ E^T        # pass{p}.hook_logits (weight-tied)

Pass ``p`` starts from the detached final states of pass ``p - 1``; pass 0
starts from the fixed buffers ``fast_init``/``slow_init``. Every block is
causal and every other operation acts per position, so position ``t`` never
sees tokens after ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.labels import IGNORE_LABEL

from .blocks import CastedLinear, Embedding, ReasoningModule, RotaryEmbedding, TransformerBlock, rms_norm, trunc_normal_
from .config import HRMLMConfig
from .grad import carry, grad_if, in_full_graph
from .hook_names import act_name, act_prefix
from .hooks import HookedModel

STATE_NAMES = ("fast", "slow")
FUSION_SOURCES = ("fast", "slow", "encoded")


@dataclass
class LMPassOutput:
    """What one supervision pass returns."""

    logits: torch.Tensor  # [B, L, vocab]
    fusion_weights: torch.Tensor  # [B, L, 3] softmax weights over (fast, slow, encoded)
    fusion_entropy: torch.Tensor  # scalar: mean entropy (nats) of the fusion weights, differentiable
    states: dict[str, torch.Tensor]  # detached final {"fast", "slow"} [B, L, D], the next pass's start


def _causal_blocks(cfg: HRMLMConfig, n: int) -> list[TransformerBlock]:
    return [
        TransformerBlock(
            cfg.hidden_size, cfg.num_heads, cfg.expansion, causal=True, eps=cfg.rms_norm_eps, attn_backend=cfg.attn_backend
        )
        for _ in range(n)
    ]


class HRMLM(HookedModel):
    """Gated Fast/Slow recurrence over a causal encoder; see the module docstring."""

    state_names = STATE_NAMES
    fusion_sources = FUSION_SOURCES

    def __init__(self, cfg: HRMLMConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        D = cfg.hidden_size
        self.embed_scale = math.sqrt(D)
        self.embed_tokens = Embedding(cfg.vocab_size, D, init_std=1.0 / self.embed_scale)
        if cfg.pos_encodings == "rope":
            self.rotary = RotaryEmbedding(D // cfg.num_heads, cfg.seq_len, base=cfg.rope_theta)
        elif cfg.pos_encodings == "learned":
            self.embed_pos = Embedding(cfg.seq_len, D, init_std=1.0 / self.embed_scale)
        self.encoder = ReasoningModule(_causal_blocks(cfg, cfg.encoder_layers))
        # Fast-module: reads [fast, slow, scaled encoding], GRU-style gate on [fast, candidate]
        self.fast_in = CastedLinear(3 * D, D)
        self.fast_net = ReasoningModule(_causal_blocks(cfg, cfg.fast_layers))
        self.fast_gate = CastedLinear(2 * D, D, bias=True)
        # Slow-module: reads [slow, fast] only, its own gate
        self.slow_in = CastedLinear(2 * D, D)
        self.slow_net = ReasoningModule(_causal_blocks(cfg, cfg.slow_layers))
        self.slow_gate = CastedLinear(2 * D, D, bias=True)
        self.inject_scale = nn.Parameter(torch.tensor(float(cfg.inject_scale_init)))
        # output fusion over (fast, slow, encoded) with a learned temperature exp(log_temperature)
        self.fusion = CastedLinear(3 * D, len(FUSION_SOURCES), bias=True)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        # fixed initial states, never trained (persistent so checkpoints carry them)
        self.register_buffer("fast_init", trunc_normal_(torch.empty(D), std=1.0))
        self.register_buffer("slow_init", trunc_normal_(torch.empty(D), std=1.0))
        self.setup_hooks([act_name("encoded")])
        self.ensure_pass_hooks(cfg.passes)

    # ----- hook grid ------------------------------------------------------
    @property
    def steps_per_pass(self) -> int:
        return self.cfg.steps_per_pass

    def slow_fires(self, step: int) -> bool:
        """True on the steps where the Slow-module updates: ``(m + 1) % N == 0``."""
        return (step + 1) % self.cfg.slow_period == 0

    def pass_hook_names(self, p: int) -> list[str]:
        """Hook names pass ``p`` emits, in firing order."""
        names = []
        for m in range(self.steps_per_pass):
            at = act_prefix(pass_=p, step=m)
            names += [act_name("gate_fast", at), act_name("fast", at)]
            if self.slow_fires(m):
                names += [act_name("gate_slow", at), act_name("slow", at)]
        return names + [act_name("fusion", pass_=p), act_name("logits", pass_=p)]

    def ensure_pass_hooks(self, n_passes: int) -> None:
        """Make sure hook points exist for passes 0..n_passes-1 (idempotent)."""
        self._extend_hook_grid("_hooked_passes", n_passes, self.pass_hook_names)

    def _hooks_for_call(self, args: tuple, kwargs: dict) -> None:
        """Create hook points for a ``forward(tokens, n_passes)`` call before hooks are attached."""
        n = kwargs.get("n_passes", args[1] if len(args) > 1 else None)
        if isinstance(n, int):
            self.ensure_pass_hooks(n)

    # ----- input / output -------------------------------------------------
    def check_inputs(self, tokens: torch.Tensor) -> None:
        """Raise a one-line ``ValueError`` for tokens the model cannot read (shorter than seq_len is fine)."""
        if not isinstance(tokens, torch.Tensor):
            raise ValueError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape [batch, length], got {list(tokens.shape)}")
        B, L = tokens.shape
        if B < 1 or L < 1:
            raise ValueError(f"tokens must hold at least one sequence of at least one token, got {list(tokens.shape)}")
        if L > self.cfg.seq_len:
            raise ValueError(f"sequence length {L} exceeds the model's seq_len {self.cfg.seq_len}")
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size}), got [{lo}, {hi}]")

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token encoding ``e`` [B, L, D]: scaled embedding through the causal encoder (hook_encoded)."""
        L = tokens.shape[1]
        x = self.embed_tokens(tokens.long())
        if self.cfg.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.embedding_weight[:L].to(x.dtype))
        e = self.encoder(self.embed_scale * x, rotary=self.rotary_tables(L))
        return self.hook(act_name("encoded"), e)

    def rotary_tables(self, length: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.rotary(length) if self.cfg.pos_encodings == "rope" else None

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Logit lens for any [..., D] state: ``rms_norm(state) @ E^T`` with the tied embedding ``E``."""
        h = rms_norm(state, self.cfg.rms_norm_eps)
        return F.linear(h, self.embed_tokens.embedding_weight.to(h.dtype))

    @property
    def temperature(self) -> torch.Tensor:
        """Fusion softmax temperature, always positive."""
        return self.log_temperature.exp()

    # ----- recurrence -----------------------------------------------------
    def init_states(self, batch_size: int, length: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """The fixed initial states broadcast to [B, L, D] (fresh tensors, safe to modify)."""
        shape = (batch_size, length, self.cfg.hidden_size)
        return {
            "fast": self.fast_init.to(device).expand(shape).clone(),
            "slow": self.slow_init.to(device).expand(shape).clone(),
        }

    def fresh_states(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's own starting states for a batch of ``tokens`` [B, L] (as every family has them)."""
        return self.init_states(tokens.shape[0], tokens.shape[1], tokens.device)

    def fast_update(self, fast, slow, e, rotary, name: str) -> torch.Tensor:
        """One gated Fast step: context from [fast, slow, inject_scale * e], GRU-style blend."""
        context = self.fast_in(torch.cat((fast, slow, self.inject_scale.to(e.dtype) * e), dim=-1))
        candidate = self.fast_net(context, rotary=rotary)
        g = self.hook(act_name("gate_fast", name), torch.sigmoid(self.fast_gate(torch.cat((fast, candidate), dim=-1))))
        return self.hook(act_name("fast", name), (1 - g) * fast + g * candidate)

    def slow_update(self, slow, fast, rotary, name: str) -> torch.Tensor:
        """One gated Slow step: context from [slow, fast] only (no token encoding)."""
        candidate = self.slow_net(self.slow_in(torch.cat((slow, fast), dim=-1)), rotary=rotary)
        g = self.hook(act_name("gate_slow", name), torch.sigmoid(self.slow_gate(torch.cat((slow, candidate), dim=-1))))
        return self.hook(act_name("slow", name), (1 - g) * slow + g * candidate)

    def fuse(self, fast, slow, e, p: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-position softmax mix of (fast, slow, e) -> (logits, weights [B, L, 3], mean entropy)."""
        sources = torch.stack((fast, slow, e), dim=-2)  # [B, L, 3, D]
        scores = self.fusion(torch.cat((fast, slow, e), dim=-1)).float() / self.temperature
        w = self.hook(act_name("fusion", pass_=p), torch.softmax(scores, dim=-1))
        entropy = -(w * torch.log(w.clamp_min(1e-12))).sum(-1).mean()
        h = (w.to(sources.dtype).unsqueeze(-1) * sources).sum(-2)
        logits = self.hook(act_name("logits", pass_=p), self.decode(h))
        return logits, w, entropy

    def run_pass(self, states: dict[str, torch.Tensor], e: torch.Tensor, p: int = 0) -> LMPassOutput:
        """One supervision pass of M steps; only the last K steps are differentiable (TBPTT)."""
        M, K = self.steps_per_pass, self.cfg.tbptt_steps
        rotary = self.rotary_tables(e.shape[1])
        fast, slow = states["fast"], states["slow"]
        full = in_full_graph(self)
        for m in range(M):
            with grad_if(full or m >= M - K):
                fast = self.fast_update(fast, slow, e, rotary, act_prefix(pass_=p, step=m))
                if self.slow_fires(m):
                    slow = self.slow_update(slow, fast, rotary, act_prefix(pass_=p, step=m))
        logits, w, entropy = self.fuse(fast, slow, e, p)
        return LMPassOutput(logits, w, entropy, carry({"fast": fast, "slow": slow}, self))

    def forward_passes(
        self,
        tokens: torch.Tensor,
        n_passes: int | None = None,
        states: dict[str, torch.Tensor] | None = None,
    ) -> list[LMPassOutput]:
        """Run ``n_passes`` (default cfg.passes) supervision passes; pass p starts from pass p-1's detached states.

        The encoding is computed once and shared by all passes, so sum the
        pass losses and call ``backward`` once (``loss`` does this).
        """
        self.check_inputs(tokens)
        n = self.cfg.passes if n_passes is None else n_passes
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n_passes must be an integer >= 1, got {n!r}")
        B, L = tokens.shape
        if states is None:
            states = self.init_states(B, L, tokens.device)
        else:
            self._check_states(states, (B, L, self.cfg.hidden_size))
            states = carry({k: states[k] for k in STATE_NAMES}, self)
        self.ensure_pass_hooks(n)
        e = self.encode(tokens)
        outputs = []
        for p in range(n):
            out = self.run_pass(states, e, p)
            states = out.states
            outputs.append(out)
        return outputs

    def _check_states(self, states: Any, shape: tuple[int, int, int]) -> None:
        if not isinstance(states, dict) or set(states) != set(STATE_NAMES):
            got = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise ValueError(f"states must be a dict with keys {list(STATE_NAMES)}, got {got}")
        for k in STATE_NAMES:
            if tuple(states[k].shape) != shape:
                raise ValueError(f"state {k!r} must have shape {list(shape)}, got {list(states[k].shape)}")

    def forward(self, tokens: torch.Tensor, n_passes: int | None = None) -> torch.Tensor:
        """Logits [B, L, vocab] of the last pass, from fresh states (what run_with_cache calls)."""
        return self.forward_passes(tokens, n_passes)[-1].logits

    # ----- training objective ---------------------------------------------
    def loss(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        n_passes: int | None = None,
        states: dict[str, torch.Tensor] | None = None,
        ignore_index: int = IGNORE_LABEL,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``mean_p CE_p - fusion_entropy_weight * mean_p H(fusion_p)`` and float metrics.

        Sign choice: the entropy is a *bonus* (high entropy is rewarded, low-entropy
        collapse is penalised). A softmax gate that collapses onto one source passes
        almost no gradient to the other two, and the cheapest collapse is onto the
        encoder output ``e``, which would turn the model into a plain Transformer
        and starve the Fast/Slow recurrence of training signal. The bonus is bounded
        (H <= log 3) and small (default weight 0.01), so the gate can still become
        confident where that lowers the cross-entropy. Use a negative
        ``fusion_entropy_weight`` to push towards confident, low-entropy gates instead.

        ``targets`` [B, L] are next-token ids; ``ignore_index`` positions are skipped.
        """
        if not isinstance(targets, torch.Tensor) or targets.shape != tokens.shape:
            got = list(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets must have the tokens' shape {list(tokens.shape)}, got {got}")
        if targets.dtype.is_floating_point or targets.dtype == torch.bool:
            raise ValueError(f"targets must be integer token ids, got dtype {targets.dtype}")
        V = self.cfg.vocab_size
        valid = targets[targets != ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= V):
            raise ValueError(f"target ids must lie in [0, {V}) or equal {ignore_index}, got [{int(valid.min())}, {int(valid.max())}]")
        outputs = self.forward_passes(tokens, n_passes, states)
        flat_targets = targets.reshape(-1).long()
        ces = [
            F.cross_entropy(o.logits.float().reshape(-1, V), flat_targets, ignore_index=ignore_index) for o in outputs
        ]
        ce = torch.stack(ces).mean()
        entropy = torch.stack([o.fusion_entropy for o in outputs]).mean()
        total = ce - self.cfg.fusion_entropy_weight * entropy
        with torch.no_grad():
            mask = targets != ignore_index
            correct = (outputs[-1].logits.argmax(-1) == targets) & mask
            accuracy = correct.sum().float() / mask.sum().clamp_min(1)
            mean_w = outputs[-1].fusion_weights.float().mean(dim=(0, 1))
        metrics = {
            "loss": float(total.detach()),
            "ce": float(ce.detach()),
            **{f"ce_pass{p}": float(c.detach()) for p, c in enumerate(ces)},
            "fusion_entropy": float(entropy.detach()),
            **{f"fusion_{name}": float(mean_w[k]) for k, name in enumerate(FUSION_SOURCES)},
            "accuracy": float(accuracy),
            "inject_scale": float(self.inject_scale.detach()),
            "temperature": float(self.temperature.detach()),
        }
        return total, metrics


__all__ = ["HRMLM", "HRMLMConfig", "LMPassOutput", "FUSION_SOURCES", "STATE_NAMES"]
