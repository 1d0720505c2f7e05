"""What every puzzle model (HRM, TRM, UniTF, Transformer) shares.

Input embedding as in the reference HRM/TRM: token embedding (init std
1/sqrt(D)), an optional per-puzzle embedding prepended as prefix tokens,
optional learned positions (added, then scaled by 1/sqrt(2)), everything
multiplied by sqrt(D). ``lm_head`` decodes states (prefix dropped), ``q_head``
reads the first position and gives (halt, continue) logits in float32.

A model runs in *segments* (ACT / deep-supervision steps). ``segment`` takes
the carried states and returns detached new states plus a ``SegmentOutput``;
``forward`` is evaluation semantics: fresh states, every segment, no early
halting, logits of the last segment.

Each recurrent family has one step function, ``cycle`` (HRM: one H-cycle,
``L_cycles`` fast updates then one slow update; TRM: one latent recursion;
UniTF: one pass of the shared stack). ``segment`` is ``cycles_per_segment``
calls of it between the input embedding and the heads, ``iter_segments`` runs
segments from fresh (or given) states, and the stability step maps, guess
scaling, the tracer and causal attribution all call these same functions
(``cycle(..., seg=None)`` is the pure map, without hook points). Subclasses
implement ``state_names``, ``init_states``, ``step_hook_names`` and ``cycle``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import CastedLinear, Embedding, RotaryEmbedding
from .config import PuzzleConfig
from .grad import carry, grad_if, in_full_graph
from .hook_names import act_name
from .hooks import HookedModel


@dataclass
class SegmentOutput:
    logits: torch.Tensor  # [B, seq_len, vocab] answer logits (prefix dropped)
    q_halt: torch.Tensor  # [B] float32 halting logit (halt when > 0 / > q_continue)
    q_continue: torch.Tensor  # [B] float32 continue logit (HRM's Q-learning target)


class PuzzleEmbedding(nn.Module):
    """Per-puzzle embedding table, zero-initialised (reference key ``puzzle_emb.weights``)."""

    def __init__(self, num_ids: int, ndim: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_ids, ndim))

    def forward(self, puzzle_ids: torch.Tensor) -> torch.Tensor:
        return self.weights[puzzle_ids]


class PuzzleModel(HookedModel):
    """Base class of the puzzle families; see module docstring."""

    cfg: PuzzleConfig
    logits_decode_answer = True  # the logits hook is ``decode`` of the answer state (``finish_segment``)

    def __init__(self, cfg: PuzzleConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        D = cfg.hidden_size
        self.embed_scale = math.sqrt(D)
        self.embed_tokens = Embedding(cfg.vocab_size, D, init_std=1.0 / self.embed_scale)
        self.lm_head = CastedLinear(D, cfg.vocab_size)
        self.q_head = CastedLinear(D, 2, bias=True)
        with torch.no_grad():  # halting starts "never halt": weight 0, bias -5
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        self.prefix_len = cfg.prefix_len
        if cfg.puzzle_emb_ndim > 0:
            self.puzzle_emb = PuzzleEmbedding(cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim)
        self.total_len = cfg.seq_len + self.prefix_len
        if cfg.pos_encodings == "rope":
            self.rotary = RotaryEmbedding(D // cfg.num_heads, self.total_len, base=cfg.rope_theta)
        elif cfg.pos_encodings == "learned":
            self.embed_pos = Embedding(self.total_len, D, init_std=1.0 / self.embed_scale)

    # ----- input / output -------------------------------------------------
    def check_inputs(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> None:
        """Raise a one-line ``ValueError`` for inputs the model cannot read."""
        if inputs.dim() != 2 or inputs.shape[1] != self.cfg.seq_len:
            raise ValueError(
                f"inputs must have shape [batch, {self.cfg.seq_len}], got {list(inputs.shape)}"
            )
        if inputs.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
            raise ValueError(f"inputs must be integer token ids, got dtype {inputs.dtype}")
        if inputs.numel() and (int(inputs.min()) < 0 or int(inputs.max()) >= self.cfg.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size}), got [{int(inputs.min())}, {int(inputs.max())}]")
        if puzzle_ids is not None and puzzle_ids.shape != inputs.shape[:1]:
            raise ValueError(f"puzzle_ids must have shape [{inputs.shape[0]}], got {list(puzzle_ids.shape)}")
        if puzzle_ids is not None and self.prefix_len and puzzle_ids.numel():
            n_ids = self.cfg.num_puzzle_identifiers
            if puzzle_ids.is_floating_point() or int(puzzle_ids.min()) < 0 or int(puzzle_ids.max()) >= n_ids:
                raise ValueError(f"puzzle_ids must be integers in [0, {n_ids}), got {puzzle_ids.tolist()[:8]}")

    def embed(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token (+ puzzle prefix, + learned position) embedding times sqrt(D): [B, prefix+L, D]."""
        x = self.embed_tokens(inputs.long())
        if self.prefix_len:
            B, D = inputs.shape[0], self.cfg.hidden_size
            if puzzle_ids is None:
                puzzle_ids = torch.zeros(B, dtype=torch.long, device=inputs.device)
            pe = self.puzzle_emb(puzzle_ids.long())
            pad = self.prefix_len * D - pe.shape[-1]
            if pad > 0:
                pe = torch.nn.functional.pad(pe, (0, pad))
            x = torch.cat((pe.view(B, self.prefix_len, D).to(x.dtype), x), dim=1)
        if self.cfg.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.embedding_weight.to(x.dtype))
        return self.embed_scale * x

    def rotary_tables(self, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Rotary (cos, sin) tables for ``length`` positions (default the whole prefix + sequence)."""
        if self.cfg.pos_encodings != "rope":
            return None
        return self.rotary(self.total_len if length is None else length)

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Answer logits from any state [B, prefix+L, D] (the per-step "logit lens")."""
        return self.lm_head(state)[:, self.prefix_len:]

    def halt_logits(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_halt, q_continue) in float32 from position 0 of the answer-carrying state."""
        q = self.q_head(state[:, 0]).float()
        return q[..., 0], q[..., 1]

    # ----- recurrence -----------------------------------------------------
    state_names: tuple[str, ...] = ()
    answer_state: str = ""  # which state ``decode``/``halt_logits`` read at the end of a segment

    def init_states(self, batch_size: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def step_hook_names(self, seg: int) -> list[str]:
        """Hook names one segment emits (states per step), excluding the segment-level ones.

        HRM and TRM also take ``cycles`` (the names of a segment run deeper or shallower than the config)."""
        raise NotImplementedError

    def expand_inits(
        self, inits: dict[str, torch.Tensor], batch_size: int, device: torch.device | None = None, length: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Fixed start vectors [D] as fresh states [B, length (default total_len), D], one per name."""
        shape = (batch_size, self.total_len if length is None else length, self.cfg.hidden_size)
        return {name: v.to(device).expand(shape).clone() for name, v in inits.items()}

    def cycle_hook_names(
        self, seg: int, keys: tuple[str, str], inner: str, outer: str, cycles: tuple[int, int] | None = None
    ) -> list[str]:
        """``seg{s}.hook_x``, then per outer cycle i the ``L_cycles`` inner hooks and the outer one.

        ``keys`` name the outer and inner cycle indices, ``inner``/``outer`` the states
        (HRM: ``("h", "l")``, ``"z_L"``, ``"z_H"`` give ``seg{s}.h{i}.l{j}.hook_z_L`` and ``seg{s}.h{i}.hook_z_H``);
        ``cycles`` overrides the config's (H_cycles, L_cycles).
        """
        H, L = cycles or (self.cfg.H_cycles, self.cfg.L_cycles)
        ko, ki = keys
        rec = self.recording_attention
        n_in, n_out = (len(self.attention_modules(m)) for m in self.step_modules) if rec else (0, 0)
        names = [act_name("x", seg=seg)]
        for i in range(H):
            for j in range(L):
                names += [act_name("pattern", seg=seg, **{ko: i, ki: j}, layer=k) for k in range(n_in)]
                names.append(act_name(inner, seg=seg, **{ko: i, ki: j}))
            names += [act_name("pattern", seg=seg, **{ko: i}, layer=k) for k in range(n_out)]
            names.append(act_name(outer, seg=seg, **{ko: i}))
        return names

    # ----- attention patterns (opt-in) ----------------------------------------
    step_modules: tuple[str, str] = ("L_level", "L_level")  # (inner step, outer step) module attribute names

    @property
    def recording_attention(self) -> bool:
        return bool(self.__dict__.get("_record_attention", False))

    def attention_modules(self, name: str) -> list[nn.Module]:
        """The ``Attention`` of every layer of the stack ``name`` (none for ``mlp_t`` token mixing)."""
        stack = getattr(self, name)
        return [layer.self_attn for layer in stack.layers if hasattr(layer, "self_attn")]

    def record_attention(self, on: bool = True) -> None:
        """Add (``on``) or remove the hook points ``...layer{k}.hook_pattern`` [B, heads, query, key] of every step.

        Off by default: the hook grid, the forward (SDPA) and traces are then exactly as without
        this option. On, each attention layer computes its pattern explicitly for that call.
        """
        if on and not any(self.attention_modules(m) for m in self.step_modules):
            raise ValueError(f"{self.cfg.family} model has no attention layers (token mixing is mlp_t)")
        n = getattr(self, "_hooked_segments", 0)
        if on and not self.recording_attention:
            self.__dict__["_record_attention"] = True
            self.setup_hooks(name for s in range(n) for name in self.step_hook_names(s))
        elif not on and self.recording_attention:
            self.__dict__["_record_attention"] = False
            self.remove_hook_points(lambda name: name.endswith(".hook_pattern"))

    def run_step_module(self, which: int, where: dict[str, int] | None, *args: torch.Tensor) -> torch.Tensor:
        """``self.<step_modules[which]>(*args)``; with ``record_attention`` each layer's pattern goes
        through ``<where>.layer{k}.hook_pattern`` (``where=None``: the pure map, no hook points)."""
        module = getattr(self, self.step_modules[which])
        if not self.recording_attention or where is None:
            return module(*args)
        attns = self.attention_modules(self.step_modules[which])
        for k, attn in enumerate(attns):
            attn.pattern_hook = (lambda p, _n=act_name("pattern", **where, layer=k): self.hook(_n, p))
        try:
            return module(*args)
        finally:
            for attn in attns:
                attn.pattern_hook = None

    def segment_hook_names(self, seg: int) -> list[str]:
        return [*self.step_hook_names(seg), act_name("logits", seg=seg), act_name("q", seg=seg)]

    def ensure_segment_hooks(self, n_segments: int) -> None:
        """Make sure hook points exist for segments 0..n_segments-1 (idempotent)."""
        self._extend_hook_grid("_hooked_segments", n_segments, self.segment_hook_names)

    def ensure_cycle_hooks(self, seg: int, cycles: tuple[int, int] | None) -> None:
        """Hook points for segment ``seg`` run at ``cycles`` deeper than the config (e.g. a test-time depth sweep)."""
        if cycles and (cycles[0] > self.cfg.H_cycles or cycles[1] > self.cfg.L_cycles):
            self.setup_hooks(self.step_hook_names(seg, cycles))

    def _hooks_for_call(self, args: tuple, kwargs: dict) -> None:
        """Create hook points for a ``forward(inputs, puzzle_ids, n_segments)`` call before hooks attach,
        so filters such as ``"seg12.*"`` match segments past halt_max_steps."""
        n = kwargs.get("n_segments", args[2] if len(args) > 2 else None)
        if isinstance(n, int) and n > 0:
            self.ensure_segment_hooks(n)

    # ----- the step function ----------------------------------------------------
    @property
    def cycles_per_segment(self) -> int:
        """How many ``cycle`` calls make one segment at the config's depth."""
        return self.cfg.H_cycles

    def cycle(
        self,
        states: dict[str, torch.Tensor],
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        seg: int | None = None,
        i: int = 0,
        grad: str = "all",
        inner: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """One outer cycle of the recurrence on the embedded input ``x``: the model's step function.

        ``seg``/``i`` name the hook points the updates pass through (``seg=None``: none, the pure
        map); ``grad`` is "all" (every update in the graph), "none", or "last" (only the final
        inner and outer update); ``inner`` overrides the number of inner updates.
        """
        raise NotImplementedError(f"{self.cfg.family} models have no recurrent step function")

    def cycle_grad(self, i: int, n_cycles: int) -> str:
        """Which updates of cycle ``i`` of ``n_cycles`` are in the graph (``cycle``'s ``grad``)."""
        mode = getattr(self.cfg, "grad_mode", "full_bptt")
        if mode == "full_bptt" or in_full_graph(self):
            return "all"
        if i < n_cycles - 1:
            return "none"
        return "last" if mode == "one_step" else "all"

    def two_level_update(self, fast: torch.Tensor, slow: torch.Tensor, x: torch.Tensor, rotary, names: tuple[str, str],
                         keys: tuple[str, str], seg: int | None, i: int, grad: str, n: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` updates of the inner (fast) state from (fast, slow + x) by ``step_modules[0]``, then one update of
        the outer (slow) state from (slow, fast) by ``step_modules[1]``: HRM's H-cycle and TRM's latent recursion.

        ``names`` (inner, outer) and ``keys`` (outer index, inner index) name the hook points, as in
        ``cycle_hook_names``; returns (slow, fast)."""
        inner, outer = names
        ko, ki = keys
        for j in range(n):
            where = None if seg is None else {"seg": seg, ko: i, ki: j}
            with grad_if(grad == "all" or (grad == "last" and j == n - 1)):
                fast = self.step_hook(inner, self.run_step_module(0, where, fast, slow + x, rotary), seg, **{ko: i, ki: j})
        with grad_if(grad != "none"):
            where = None if seg is None else {"seg": seg, ko: i}
            slow = self.step_hook(outer, self.run_step_module(1, where, slow, fast, rotary), seg, **{ko: i})
        return slow, fast

    def step_hook(self, state: str, value: torch.Tensor, seg: int | None, /, **where: int) -> torch.Tensor:
        """``value`` through the hook point of ``state`` at ``seg``/``where`` (untouched when ``seg`` is None)."""
        return value if seg is None else self.hook(act_name(state, seg=seg, **where), value)

    def segment(
        self,
        states: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        seg: int = 0,
        cycles: tuple[int, int] | None = None,
    ) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        """One ACT segment: ``H_cycles`` calls of ``cycle``; ``cycles`` overrides (H_cycles, L_cycles)."""
        n_outer, n_inner = cycles or (self.cfg.H_cycles, self.cfg.L_cycles)
        self.ensure_segment_hooks(seg + 1)  # hook points for a segment past halt_max_steps
        self.ensure_cycle_hooks(seg, cycles)
        rotary = self.rotary_tables()
        x = self.hook(act_name("x", seg=seg), self.embed(inputs, puzzle_ids))
        states = {name: states[name] for name in self.state_names}
        for i in range(n_outer):
            states = self.cycle(states, x, rotary, seg, i, self.cycle_grad(i, n_outer), n_inner)
        return self.finish_segment(states, seg)

    def finish_segment(self, states: dict[str, torch.Tensor], seg: int) -> tuple[dict[str, torch.Tensor], SegmentOutput]:
        """Heads on the answer state, segment hooks, detached carry: the common end of ``segment``."""
        answer = states[self.answer_state]
        logits = self.hook(act_name("logits", seg=seg), self.decode(answer))
        q = self.hook(act_name("q", seg=seg), torch.stack(self.halt_logits(answer), dim=-1))
        out = SegmentOutput(logits=logits, q_halt=q[..., 0], q_continue=q[..., 1])
        return carry(states, self), out

    # ----- running segments ----------------------------------------------------
    def fresh_states(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's own starting states for a batch of ``inputs`` [B, L]."""
        return self.init_states(inputs.shape[0], inputs.device)

    def iter_segments(
        self,
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        n_segments: int | None = None,
        states: dict[str, torch.Tensor] | None = None,
        between: Callable[[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
        start: int = 0,
    ) -> Iterator[tuple[int, dict[str, torch.Tensor], SegmentOutput]]:
        """Run segments ``start``..n-1 (n defaults to halt_max_steps) from ``states`` (default
        ``fresh_states``), yielding ``(seg, carried states, output)`` after each, without early halting.

        ``between(s, states)`` may replace the carry before segment ``s`` > ``start`` (e.g. latent
        noise); ``start`` > 0 resumes from the carry that entered segment ``start`` (hook names keep
        their segment numbers).
        """
        self.check_inputs(inputs, puzzle_ids)
        n = self.cfg.halt_max_steps if n_segments is None else n_segments
        if n < 1:
            raise ValueError(f"n_segments must be >= 1, got {n}")
        if not 0 <= start < n:
            raise ValueError(f"start must lie in [0, {n}), got {start}")
        self.ensure_segment_hooks(n)
        if states is None:
            states = self.fresh_states(inputs)
        for s in range(start, n):
            if between is not None and s > start:
                states = between(s, states)
            states, out = self.segment(states, inputs, puzzle_ids, seg=s)
            yield s, states, out

    def forward(
        self,
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor | None = None,
        n_segments: int | None = None,
    ) -> torch.Tensor:
        """Evaluation semantics: fresh states, ``n_segments`` (default halt_max_steps) segments, last logits."""
        out = None
        for _, _, out in self.iter_segments(inputs, puzzle_ids, n_segments):
            pass
        return out.logits
