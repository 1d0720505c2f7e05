"""Tiny looped language models written for the generic tracer's tests (plain PyTorch, random weights).

* ``TinyUniversalTransformer``: one shared pre-norm block applied ``steps`` times (with a per-step
  timestep embedding), then a final LayerNorm and a head: the Universal Transformer layout.
* ``TinyOuro``: an Ouro-style looped LM: a shared stack of layers (each returning a ``(hidden, None)``
  tuple as transformers layers do) applied up to ``ut_steps`` times, an RMSNorm after every pass and an
  exit gate ``Linear(d, 1)`` read after it; with ``exit_threshold`` the loop stops once the cumulative exit
  probability ``1 - prod(1 - sigmoid(g_t))`` at the last position reaches it for every row (early exit);
  each row's logits read its state at its own exit step. ``last_steps`` holds how many passes the last
  forward ran, ``row_steps`` [B] each row's exit step.

* ``TinyHuginn``: a Huginn-style recurrent-depth LM with Huginn's module names and a random initial state.

Each model has ``hand_states(tokens)``: the loop written out again from its own submodules, to check the
tracer's states against an independent computation.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """A causal pre-norm transformer block: attention and MLP with residuals."""

    def __init__(self, d: int, heads: int, tuple_out: bool = False):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.tuple_out = tuple_out

    def forward(self, x: torch.Tensor):
        L = x.shape[1]
        mask = torch.triu(torch.ones(L, L, dtype=torch.bool, device=x.device), 1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return (x, None) if self.tuple_out else x


class TinyUniversalTransformer(nn.Module):
    """Embedding, one shared block applied ``steps`` times, final norm, head."""

    def __init__(self, vocab: int = 40, d: int = 32, heads: int = 2, steps: int = 4, max_len: int = 64):
        super().__init__()
        self.steps = steps
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.step_emb = nn.Embedding(steps, d)
        self.block = Block(d, heads)
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def embed_input(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))[None]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed_input(tokens)
        for t in range(self.steps):
            x = self.block(x + self.step_emb.weight[t])
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def hand_states(self, tokens: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(inputs, outputs) of every block call, recomputed."""
        x, ins, outs = self.embed_input(tokens), [], []
        for t in range(self.steps):
            ins.append(x + self.step_emb.weight[t])
            x = self.block(ins[-1])
            outs.append(x)
        return ins, outs


class _Inner(nn.Module):
    """Ouro's ``model``: ``embed_tokens``, ``layers``, ``norm``, ``early_exit_gate``."""

    def __init__(self, vocab: int, d: int, heads: int, n_layers: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Block(d, heads, tuple_out=True) for _ in range(n_layers)])
        self.norm = nn.RMSNorm(d)
        self.early_exit_gate = nn.Linear(d, 1)


class TinyOuro(nn.Module):
    """An Ouro-style looped LM: the shared stack ``model.layers`` applied up to ``ut_steps`` times."""

    def __init__(self, vocab: int = 40, d: int = 32, heads: int = 2, n_layers: int = 2, ut_steps: int = 4,
                 exit_threshold: float | None = None):
        super().__init__()
        self.model = _Inner(vocab, d, heads, n_layers)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.ut_steps, self.exit_threshold = ut_steps, exit_threshold
        self.last_steps = 0

    def exit_cdf(self, h: torch.Tensor, cdf: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.model.early_exit_gate(h[:, -1])).squeeze(-1)
        return cdf + (1 - cdf) * p

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.model.embed_tokens(tokens)
        B = tokens.shape[0]
        cdf = torch.zeros(B, device=tokens.device)
        out = h  # per row: the state at the row's exit step (Ouro reads each row where it exits)
        self.row_steps = torch.zeros(B, dtype=torch.long)
        for t in range(self.ut_steps):
            for layer in self.model.layers:
                h = layer(h)[0]
            h = self.model.norm(h)
            cdf = self.exit_cdf(h, cdf)
            self.last_steps = t + 1
            live = self.row_steps == 0  # rows that had not exited before this step
            out = torch.where(live[:, None, None], h, out)
            if self.exit_threshold is not None:
                self.row_steps[live & (cdf >= self.exit_threshold).cpu()] = t + 1
                if bool((self.row_steps > 0).all()):
                    break
        self.row_steps[self.row_steps == 0] = self.last_steps
        return self.lm_head(out)

    @torch.no_grad()
    def hand_states(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The state after every pass (the norm's output), recomputed, stopping where ``forward`` does."""
        h, out = self.model.embed_tokens(tokens), []
        cdf = torch.zeros(tokens.shape[0])
        for _ in range(self.ut_steps):
            for layer in self.model.layers:
                h = layer(h)[0]
            h = self.model.norm(h)
            out.append(h)
            cdf = self.exit_cdf(h, cdf)
            if self.exit_threshold is not None and bool((cdf >= self.exit_threshold).all()):
                break
        return out


class _Transformer(nn.Module):
    """Huginn's ``transformer``: ``wte``, ``prelude``, ``adapter``, ``core_block``, ``coda``, ``ln_f``."""

    def __init__(self, vocab: int, d: int, heads: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.prelude = nn.ModuleList([Block(d, heads) for _ in range(2)])
        self.adapter = nn.Linear(2 * d, d, bias=False)
        self.core_block = nn.ModuleList([Block(d, heads) for _ in range(4)])
        self.coda = nn.ModuleList([Block(d, heads) for _ in range(2)])
        self.ln_f = nn.RMSNorm(d)


class TinyHuginn(nn.Module):
    """A Huginn-style recurrent-depth LM with Huginn's module names: prelude, then ``num_steps`` times
    ``x = core(adapter(cat[x, e]))`` from a *random* initial state, then coda; ``ln_f`` is used twice (after the
    recurrence and after the coda), ``lm_head`` reads the second."""

    def __init__(self, vocab: int = 40, d: int = 32, heads: int = 2, num_steps: int = 5):
        super().__init__()
        self.transformer = _Transformer(vocab, d, heads)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.num_steps = num_steps

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = self.transformer
        e = t.wte(tokens)
        for block in t.prelude:
            e = block(e)
        x = torch.randn_like(e)  # the random initial state
        for _ in range(self.num_steps):
            x = t.adapter(torch.cat([x, e], -1))
            for block in t.core_block:
                x = block(x)
        x = t.ln_f(x)
        for block in t.coda:
            x = block(x)
        return self.lm_head(t.ln_f(x))

    @torch.no_grad()
    def hand_states(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The core's output at every recurrence step (call ``torch.manual_seed`` first, as before ``forward``)."""
        t = self.transformer
        e = t.wte(tokens)
        for block in t.prelude:
            e = block(e)
        x, out = torch.randn_like(e), []
        for _ in range(self.num_steps):
            x = t.adapter(torch.cat([x, e], -1))
            for block in t.core_block:
                x = block(x)
            out.append(x)
        return out


__all__ = ["Block", "TinyHuginn", "TinyOuro", "TinyUniversalTransformer"]
