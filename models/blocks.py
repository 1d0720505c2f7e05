"""Shared building blocks for every model family.

Written once and reused by HRM, TRM, HRM-LM and the baselines:
RMSNorm (no learned weight, computed in float32), rotary position embeddings
(GPT-NeoX rotate-half), SwiGLU, attention through
``scaled_dot_product_attention`` (flash-attn only when installed and on CUDA),
a post-norm Transformer block, a token-axis MLP mixer and a
``ReasoningModule`` (add the injection, then run the layers).

Parameter names follow the reference repositories (``qkv_proj``, ``o_proj``,
``gate_up_proj``, ``down_proj``) so official checkpoints map onto them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

try:  # optional backend, only usable on CUDA
    from flash_attn import flash_attn_func as _flash_attn_func  # type: ignore
except Exception:  # pragma: no cover - not installable on CPU machines
    _flash_attn_func = None


def trunc_normal_(t: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """Truncated normal at +-2 sigma, rescaled so the result has standard deviation ``std``.

    A plain truncation at 2 sigma shrinks the std by ~0.88; the reference models
    correct for this so that ``std`` is the real standard deviation.
    """
    # std of a standard normal truncated to [-2, 2]
    a, b = -2.0, 2.0
    z = (math.erf(b / math.sqrt(2)) - math.erf(a / math.sqrt(2))) / 2
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    var = 1 + (a * pdf(a) - b * pdf(b)) / z - ((pdf(a) - pdf(b)) / z) ** 2
    with torch.no_grad():
        nn.init.trunc_normal_(t, mean=0.0, std=1.0, a=a, b=b)
        t.mul_(std / math.sqrt(var))
    return t


def swiglu_width(hidden: int, expansion: float, multiple: int = 256) -> int:
    """Inner width of SwiGLU: ``round(expansion * hidden * 2/3)`` rounded up to ``multiple``."""
    inner = round(expansion * hidden * 2 / 3)
    return -(-inner // multiple) * multiple


class CastedLinear(nn.Linear):
    """Linear layer with truncated-normal init (std 1/sqrt(fan_in)), no bias by default.

    Weights are cast to the input dtype at call time so bf16 autocast and
    float32 storage coexist.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        trunc_normal_(self.weight, std=1.0 / math.sqrt(in_features))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without a learned weight, computed in float32, returned in the input dtype."""
    dtype = x.dtype
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return x32.to(dtype)


class RotaryEmbedding(nn.Module):
    """GPT-NeoX style rotary tables ``cos``/``sin`` of shape [seq_len, head_dim] (not saved)."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        t = torch.arange(max_len, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        if seq_len > self.cos.shape[0]:
            raise ValueError(f"sequence length {seq_len} exceeds the rotary table ({self.cos.shape[0]})")
        return self.cos[:seq_len], self.sin[:seq_len]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [B, L, H, Dh] by the tables [L, Dh], in float32."""
    dtype = x.dtype
    x32 = x.float()
    cos, sin = cos[:, None, :], sin[:, None, :]
    return (x32 * cos + _rotate_half(x32) * sin).to(dtype)


class Attention(nn.Module):
    """Multi-head self-attention with fused ``qkv_proj`` (rows Q, K, V) and ``o_proj``.

    Uses ``scaled_dot_product_attention``; flash-attn is used instead only when
    ``backend="flash"`` (or ``"auto"``) and it is importable and the input is on CUDA.
    When ``pattern_hook`` is set (by ``PuzzleModel.record_attention``, for one call at a
    time) the pattern ``softmax(Q K^T / sqrt(d))`` [B, heads, query, key] is computed
    explicitly and passed through it (a returned tensor replaces the pattern); the
    default path (``pattern_hook = None``) is untouched.
    """

    pattern_hook: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __init__(self, hidden: int, num_heads: int, causal: bool = False, backend: str = "auto"):
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by num_heads {num_heads}")
        self.hidden, self.num_heads, self.head_dim = hidden, num_heads, hidden // num_heads
        self.causal = causal
        self.backend = backend
        self.qkv_proj = CastedLinear(hidden, 3 * hidden)
        self.o_proj = CastedLinear(hidden, hidden)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, L, _ = x.shape
        qkv = self.qkv_proj(x).view(B, L, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)  # each [B, L, H, Dh]
        if rotary is not None:
            cos, sin = rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        use_flash = (
            self.backend in ("auto", "flash")
            and x.is_cuda
            and _flash_attn_func is not None
            and x.dtype in (torch.float16, torch.bfloat16)
        )
        if self.pattern_hook is not None:  # opt-in: the explicit pattern, for this call only
            qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            scores = (qh.float() @ kh.float().transpose(-1, -2)) / math.sqrt(self.head_dim)
            if self.causal:
                scores = scores.masked_fill(torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            pattern = self.pattern_hook(torch.softmax(scores, dim=-1))
            out = (pattern.to(vh.dtype) @ vh).transpose(1, 2)
        elif use_flash:  # pragma: no cover - needs CUDA + flash-attn
            out = _flash_attn_func(q, k, v, causal=self.causal)
        else:
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=self.causal
            ).transpose(1, 2)
        return self.o_proj(out.reshape(B, L, self.hidden))


class SwiGLU(nn.Module):
    """``down_proj(silu(gate) * up)`` where ``gate_up_proj`` yields [gate, up] halves."""

    def __init__(self, hidden: int, expansion: float, multiple: int = 256):
        super().__init__()
        inner = swiglu_width(hidden, expansion, multiple)
        self.gate_up_proj = CastedLinear(hidden, 2 * inner)
        self.down_proj = CastedLinear(inner, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class TransformerBlock(nn.Module):
    """Post-norm block: ``h = norm(h + mix(h)); h = norm(h + swiglu(h))``.

    Token mixing is self-attention (``self_attn``) or, with ``mlp_t=True``, a
    SwiGLU over the sequence axis (``mlp_t``, the MLP-mixer variant of TRM);
    like TRM, the ``mlp_t`` residual is normalised over the token axis.
    """

    def __init__(
        self,
        hidden: int,
        num_heads: int,
        expansion: float,
        seq_len: int | None = None,
        mlp_t: bool = False,
        causal: bool = False,
        eps: float = 1e-5,
        attn_backend: str = "auto",
    ):
        super().__init__()
        self.eps = eps
        self.mlp_t_enabled = mlp_t
        if mlp_t:
            if seq_len is None:
                raise ValueError("mlp_t token mixing needs a fixed seq_len")
            if causal:
                raise ValueError("mlp_t token mixing is non-causal; use attention for language models")
            # the token MLP's width is tied to the sequence length, as in TRM
            self.mlp_t = SwiGLU(seq_len, expansion)
        else:
            self.self_attn = Attention(hidden, num_heads, causal=causal, backend=attn_backend)
        self.mlp = SwiGLU(hidden, expansion)

    def forward(self, h: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.mlp_t_enabled:
            # as in TRM: mix and normalise in the transposed [B, D, L] layout, so this
            # residual is RMS-normalised over the token axis, not the channel axis
            t = h.transpose(1, 2)
            h = rms_norm(t + self.mlp_t(t), self.eps).transpose(1, 2)
        else:
            h = rms_norm(h + self.self_attn(h, rotary), self.eps)
        h = rms_norm(h + self.mlp(h), self.eps)
        return h


class ReasoningModule(nn.Module):
    """A stack of blocks applied after adding an injection: ``layers(h + injection)``.

    This is the HRM/TRM recurrent unit: ``z_L <- L(z_L, z_H + x)`` is
    ``L_level(z_L, z_H + x)``.
    """

    def __init__(self, blocks: list[TransformerBlock]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)

    def forward(
        self,
        hidden: torch.Tensor,
        injection: torch.Tensor | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        h = hidden if injection is None else hidden + injection
        for layer in self.layers:
            h = layer(h, rotary)
        return h


class Embedding(nn.Module):
    """Token embedding with truncated-normal init; stored as ``embedding_weight`` (reference key name)."""

    def __init__(self, num: int, dim: int, init_std: float):
        super().__init__()
        self.embedding_weight = nn.Parameter(trunc_normal_(torch.empty(num, dim), std=init_std))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.embedding_weight)
