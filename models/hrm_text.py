"""HRM-Text (``transformers``' ``HrmTextForCausalLM``) traced per step, its code unchanged.

``HrmTextModel.forward`` runs, per H-cycle ``i``, ``L_cycles`` calls of its
``L_module`` stack and then one call of its ``H_module`` stack::

    z_H = embedding_scale * embed(tokens);  z_L = z_L_init            # per position, [B, L, D]
    for i in range(H_cycles):
        for j in range(L_cycles):
            z_L = L_module(z_L + z_H)                                  # seg0.h{i}.l{j}.hook_z_L
        z_H = H_module(z_H + z_L)                                      # seg0.h{i}.hook_z_H
    logits = lm_head(z_H)

``HrmTextTraced`` wraps the model without touching its code: PyTorch forward
hooks on the two stacks pass each call's output through a step-named
``HookPoint`` and hand the hook point's result back to the loop (a forward
hook's return value replaces the module output). The recorded tensor is
therefore the very tensor the loop carries on, so the trace is exact by
construction (interventions on a hook point change the run the same way).
The call order is checked at the end of every forward: exactly ``L_cycles``
L-calls before each H-call, ``H_cycles * (L_cycles + 1)`` calls in all.

The step grid uses the puzzle-HRM names (``seg0.h{i}.l{j}.hook_z_L``,
``seg0.h{i}.hook_z_H``), one segment (HRM-Text carries nothing between
forwards) and ``causal=True``, so the tracer, its schema (states ``z_H`` =
slow/answer, ``z_L`` = fast, per position) and every analysis and viewer read
it as a language-model trace like HRM-LM's.

Logit lens: every state is the output of a stack whose last operation is the
model's own final norm (``HrmTextStack.final_norm``); ``decode`` applies the
model's own ``lm_head`` to it, so the lens of the last ``z_H`` is bit-for-bit
the model's logits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from common.untrusted import safetensors_header

from .checkpoint import CheckpointError
from .grad import carry, in_full_graph
from .hook_names import act_name, act_prefix, hook_state
from .hooks import HookedModel

STATE_NAMES = ("z_H", "z_L")


@dataclass
class HrmTextTraceConfig:
    """What the tracer reads from ``model.cfg`` (a view of the transformers config)."""

    vocab_size: int
    hidden_size: int
    seq_len: int  # max_position_embeddings
    num_heads: int
    H_cycles: int
    L_cycles: int
    layers_per_stack: int
    prefix_lm: bool = True
    dtype: str = "float32"
    family: str = "hrm_text"
    causal: bool = True
    halt_max_steps: int = 1  # one forward = one segment (no carry)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hf(cls, c: Any, dtype: torch.dtype) -> "HrmTextTraceConfig":
        return cls(vocab_size=int(c.vocab_size), hidden_size=int(c.hidden_size),
                   seq_len=int(c.max_position_embeddings), num_heads=int(c.num_attention_heads),
                   H_cycles=int(c.H_cycles), L_cycles=int(c.L_cycles),
                   layers_per_stack=int(c.num_layers_per_stack), prefix_lm=bool(c.prefix_lm),
                   dtype=str(dtype).replace("torch.", ""))


class HrmTextTraced(HookedModel):
    """A ``HrmTextForCausalLM`` with step hook points; see the module docstring."""

    state_names = STATE_NAMES
    answer_state = "z_H"
    logits_decode_answer = True  # the logits hook is lm_head of the final z_H, which is what decode computes
    prefix_len = 0

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model
        self.cfg = HrmTextTraceConfig.from_hf(hf_model.config, next(hf_model.parameters()).dtype)
        self._calls: list[str] | None = None
        self._last: dict[str, torch.Tensor] = {}
        self._seg = 0
        self.ensure_segment_hooks(1)
        inner = hf_model.model
        inner.L_module.register_forward_hook(self._stack_hook("L"))
        inner.H_module.register_forward_hook(self._stack_hook("H"))

    # ----- hook grid ------------------------------------------------------
    def step_hook_names(self, seg: int) -> list[str]:
        n = self.cfg.layers_per_stack if self.recording_attention else 0
        names = []
        for i in range(self.cfg.H_cycles):
            for j in range(self.cfg.L_cycles):
                names += [act_name("pattern", seg=seg, h=i, l=j, layer=k) for k in range(n)]
                names.append(act_name("z_L", seg=seg, h=i, l=j))
            names += [act_name("pattern", seg=seg, h=i, layer=k) for k in range(n)]
            names.append(act_name("z_H", seg=seg, h=i))
        return names

    # ----- attention patterns (opt-in) ------------------------------------
    @property
    def recording_attention(self) -> bool:
        return bool(self.__dict__.get("_record_attention", False))

    def record_attention(self, on: bool = True) -> None:
        """Add (``on``) or remove ``...layer{k}.hook_pattern`` [B, heads, query, key] for every step.

        On, the model runs with transformers' eager attention (which returns its weights) and a
        forward hook on each ``HrmTextAttention`` passes them through the step's hook point (read
        only: the weights were already used, so a returned tensor does not change the run). Off
        (the default), the model's own attention implementation and hook grid are restored.
        """
        if on and not self.recording_attention:
            self.__dict__["_attn_impl"] = self.hf.config._attn_implementation
            self.hf.set_attn_implementation("eager")
            inner = self.hf.model
            handles = []
            for which, stack in (("L", inner.L_module), ("H", inner.H_module)):
                for k, layer in enumerate(stack.layers):
                    handles.append(layer.self_attn.register_forward_hook(self._pattern_hook(k)))
            self.__dict__["_attn_handles"] = handles
            self.__dict__["_record_attention"] = True
            self.setup_hooks(n for s in range(getattr(self, "_hooked_segments", 0)) for n in self.step_hook_names(s))
        elif not on and self.recording_attention:
            for h in self.__dict__.pop("_attn_handles", []):
                h.remove()
            self.hf.set_attn_implementation(self.__dict__.pop("_attn_impl"))
            self.__dict__["_record_attention"] = False
            self.remove_hook_points(lambda name: hook_state(name) == "pattern")

    def _pattern_hook(self, layer: int):
        def fn(module: nn.Module, args: tuple, output: Any) -> None:
            calls = self._calls
            if calls is None or not isinstance(output, tuple) or output[1] is None:
                return None
            i, j = divmod(len(calls), self.cfg.L_cycles + 1)  # the stack call this layer belongs to
            where = act_prefix(seg=self._seg, h=i, l=j) if j < self.cfg.L_cycles else act_prefix(seg=self._seg, h=i)
            self.hook(act_name("pattern", where, layer=layer), output[1])
            return None
        return fn

    def segment_hook_names(self, seg: int) -> list[str]:
        return [*self.step_hook_names(seg), act_name("logits", seg=seg)]

    def ensure_segment_hooks(self, n_segments: int) -> None:
        self._extend_hook_grid("_hooked_segments", n_segments, self.segment_hook_names)

    def _stack_hook(self, which: str):
        def fn(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            calls = self._calls
            if calls is None:  # the HF model run directly, not through this wrapper
                return None
            k = len(calls)
            i, j = divmod(k, self.cfg.L_cycles + 1)
            expect = "L" if j < self.cfg.L_cycles else "H"
            calls.append(which)
            if which != expect or i >= self.cfg.H_cycles:
                raise RuntimeError(f"HRM-Text called its stacks in an unexpected order ({''.join(calls)}); "
                                   "the transformers version may have changed the loop")
            name = act_name("z_L", seg=self._seg, h=i, l=j) if which == "L" else act_name("z_H", seg=self._seg, h=i)
            out = self.hook(name, output)
            self._last["z_L" if which == "L" else "z_H"] = out
            return out
        return fn

    # ----- input / output -------------------------------------------------
    def check_inputs(self, tokens: torch.Tensor, puzzle_ids: torch.Tensor | None = None) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] < 1:
            raise ValueError(f"tokens must be a [batch, length] tensor, got {getattr(tokens, 'shape', type(tokens))}")
        if tokens.shape[1] > self.cfg.seq_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_position_embeddings {self.cfg.seq_len}")
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size}), got [{lo}, {hi}]")

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Logit lens: the model's own ``lm_head`` on a state (each state already ends with the stack's final norm).

        The tracer does not decode the final z_H again: ``logits_decode_answer`` lets it take the model's logits.
        """
        return self.hf.lm_head(state)

    def start_states(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loop's starting states for ``tokens``, computed as ``HrmTextModel.forward`` does."""
        inner = self.hf.model
        with torch.no_grad():
            z_H = inner.embed_tokens(tokens.long()) * inner.embedding_scale
            z_L = inner.z_L_init.to(dtype=z_H.dtype, device=z_H.device).expand_as(z_H).contiguous()
        return {"z_H": z_H, "z_L": z_L}

    def fresh_states(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's own starting states for ``tokens`` (as every family has them): ``start_states``."""
        return self.start_states(tokens)

    def init_states(self, batch_size: int, device: Any = None, length: int | None = None) -> dict[str, torch.Tensor]:
        raise ValueError("HRM-Text starts from its input embedding: use start_states(tokens)")

    # ----- running --------------------------------------------------------
    def run(self, tokens: torch.Tensor, seg: int = 0, **hf_kwargs: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One forward of the wrapped model with the step hooks live; returns (final states, logits)."""
        self.check_inputs(tokens)
        self.ensure_segment_hooks(seg + 1)
        calls: list[str] = []
        last: dict[str, torch.Tensor] = {}
        self._calls, self._last, self._seg = calls, last, seg
        inner = self.hf.model
        bp = inner.L_bp_cycles_padded
        if in_full_graph(self):  # every L-cycle in the graph (transformers keeps only L_bp_cycles of them)
            inner.L_bp_cycles_padded = [self.cfg.L_cycles] * self.cfg.H_cycles
        try:
            out = self.hf(input_ids=tokens.long(), use_cache=False, **hf_kwargs)
        finally:
            self._calls = None
            inner.L_bp_cycles_padded = bp
        total = self.cfg.H_cycles * (self.cfg.L_cycles + 1)
        if len(calls) != total:
            raise RuntimeError(f"HRM-Text ran {len(calls)} stack calls, expected {total} (H_cycles x (L_cycles + 1))")
        logits = self.hook(act_name("logits", seg=seg), out.logits)
        return last, logits

    def segment(self, states: dict[str, torch.Tensor], inputs: torch.Tensor, puzzle_ids: Any = None,
                seg: int = 0) -> tuple[dict[str, torch.Tensor], Any]:
        """The tracer's entry point: one forward; ``states`` must be the model's own start (no carry)."""
        start = self.start_states(inputs)
        for k, v in start.items():
            if k not in states or not torch.equal(states[k].to(v.dtype), v):
                raise ValueError("HRM-Text has no carried state: every forward starts from its input embedding "
                                 "and z_L_init, so custom initial states (init_states) cannot be traced")
        last, logits = self.run(inputs, seg)
        return carry(last, self), SimpleNamespace(logits=logits)

    def iter_segments(self, inputs: torch.Tensor, puzzle_ids: Any = None, n_segments: int | None = None,
                      states: dict[str, torch.Tensor] | None = None) -> Iterator[tuple[int, dict[str, torch.Tensor], Any]]:
        """``PuzzleModel.iter_segments``'s call (what the tracer runs): ``segment`` from ``start_states``."""
        states = self.start_states(inputs) if states is None else states
        for s in range(1 if n_segments is None else n_segments):
            states, out = self.segment(states, inputs, puzzle_ids, seg=s)
            yield s, states, out

    def forward(self, tokens: torch.Tensor, **hf_kwargs: Any) -> torch.Tensor:
        """Logits [B, L, vocab] (what ``run_with_cache`` calls; every step hook fires)."""
        return self.run(tokens, 0, **hf_kwargs)[1]


# ----------------------------------------------------------------------------- loading
def default_dtype(device: str | torch.device) -> torch.dtype:
    """float32 on CPU, bfloat16 on an accelerator."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


@contextmanager
def _transformers_log() -> Iterator[list[str]]:
    """Collect transformers' log records (lines) instead of letting its handler print them to stderr."""
    import logging

    from transformers.utils import logging as hf_logging

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(record.getMessage().splitlines())

    root = hf_logging.get_logger()
    keep = Keep(level=logging.WARNING)
    hf_logging.disable_default_handler()
    root.addHandler(keep)
    try:
        yield lines
    finally:
        root.removeHandler(keep)
        hf_logging.enable_default_handler()


def load_hrm_text(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | str | None = None,
                  **_: Any) -> tuple[HrmTextTraced, dict[str, Any]]:
    """A ``save_pretrained`` folder of ``HrmTextForCausalLM`` (safetensors only) -> (traced wrapper, meta)."""
    p = Path(path)
    try:
        from transformers import HrmTextForCausalLM
    except ImportError:
        raise CheckpointError("HRM-Text needs transformers>=5.24 (pip install 'recurse-interp[hub]')") from None
    weights = sorted(p.glob("*.safetensors"))
    if not weights:
        raise CheckpointError(f"{p}: no *.safetensors weights (other formats are not loaded for transformers models)")
    for w in weights:  # a pickle (or anything) named *.safetensors is refused here, before transformers opens it
        safetensors_header(w, CheckpointError, str(w))
    if not sys.stderr.isatty():  # transformers' "Loading weights" bar only on a terminal: errors stay one line
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or default_dtype(device)
    with _transformers_log() as log:  # its load report is kept, not printed: an error stays one line
        try:
            hf = HrmTextForCausalLM.from_pretrained(str(p), dtype=dtype, use_safetensors=True, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - safetensors and transformers raise their own types: one line
            detail = next((" ".join(ln.split()) for ln in log if "MISMATCH" in ln and "ckpt" in ln), None)
            why = f"weights do not match the config: {detail}" if detail else \
                f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
            raise CheckpointError(f"{p}: cannot load HrmTextForCausalLM ({why[:300]})") from None
    for line in [ln for ln in log if ln.strip()][:3]:
        print(f"warning: transformers: {' '.join(line.split())[:200]}", file=sys.stderr)
    hf.to(device).eval()
    model = HrmTextTraced(hf).eval()
    meta = {"format": "transformers", "model": model.cfg.to_dict(), "source": {"path": str(p), "class": "HrmTextForCausalLM"},
            "task": {"name": "text", "tokenizer": "transformers"}}
    return model, meta


def wrap_hrm_text(hf_model: nn.Module) -> HrmTextTraced:
    """Wrap an already built ``HrmTextForCausalLM`` (e.g. a tiny random one) for tracing."""
    return HrmTextTraced(hf_model).eval()


__all__ = ["HrmTextTraced", "HrmTextTraceConfig", "load_hrm_text", "wrap_hrm_text", "default_dtype", "STATE_NAMES"]
