"""Shared blocks checked against independent, written-out computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.blocks import (
    Attention,
    CastedLinear,
    Embedding,
    ReasoningModule,
    RotaryEmbedding,
    SwiGLU,
    TransformerBlock,
    apply_rotary,
    rms_norm,
    swiglu_width,
    trunc_normal_,
)


# ----- RMSNorm ----------------------------------------------------------------
def test_rms_norm_matches_hand_formula():
    x = torch.randn(3, 5, 16) * 3.0 + 0.5
    eps = 1e-5
    expected = torch.empty_like(x)
    for idx in range(x.shape[0] * x.shape[1]):
        row = x.view(-1, 16)[idx]
        ms = sum(float(v) ** 2 for v in row) / 16
        expected.view(-1, 16)[idx] = row / math.sqrt(ms + eps)
    torch.testing.assert_close(rms_norm(x, eps), expected, rtol=1e-5, atol=1e-6)


def test_rms_norm_computes_in_float32_and_keeps_dtype():
    x = (torch.randn(4, 64) * 100).to(torch.bfloat16)
    out = rms_norm(x)
    assert out.dtype == torch.bfloat16
    ref = x.double() / torch.sqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-5)
    # one bf16 rounding of the fp32 result, not a bf16 computation
    torch.testing.assert_close(out.double(), ref.to(torch.bfloat16).double(), rtol=0, atol=1e-2)


# ----- rotary -----------------------------------------------------------------
def test_rotary_matches_complex_rotation():
    L, H, Dh, base = 7, 2, 8, 10000.0
    rot = RotaryEmbedding(Dh, max_len=L, base=base)
    cos, sin = rot(L)
    x = torch.randn(2, L, H, Dh, dtype=torch.float64)
    out = apply_rotary(x, cos, sin).double()
    # rotate-half pairs element k with element k + Dh/2 by angle pos * base^(-2k/Dh)
    half = Dh // 2
    pos = torch.arange(L, dtype=torch.float64)[:, None]
    theta = pos * base ** (-2 * torch.arange(half, dtype=torch.float64) / Dh)  # [L, half]
    c = torch.complex(x[..., :half], x[..., half:]) * torch.polar(torch.ones_like(theta), theta)[:, None, :]
    expected = torch.cat((c.real, c.imag), dim=-1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_rotary_preserves_norm_and_rejects_long_sequences():
    rot = RotaryEmbedding(8, max_len=5)
    x = torch.randn(1, 5, 1, 8)
    out = apply_rotary(x, *rot(5))
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    with pytest.raises(ValueError, match="exceeds the rotary table"):
        rot(6)


# ----- attention --------------------------------------------------------------
def _hand_attention(attn: Attention, x: torch.Tensor, causal: bool, rotary=None) -> torch.Tensor:
    B, L, D = x.shape
    H, Dh = attn.num_heads, attn.head_dim
    W = attn.qkv_proj.weight
    q = (x @ W[:D].T).view(B, L, H, Dh)
    k = (x @ W[D : 2 * D].T).view(B, L, H, Dh)
    v = (x @ W[2 * D :].T).view(B, L, H, Dh)
    if rotary is not None:
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
    out = torch.zeros(B, L, H, Dh)
    for b in range(B):
        for h in range(H):
            scores = q[b, :, h] @ k[b, :, h].T / math.sqrt(Dh)
            if causal:
                scores = scores.masked_fill(torch.ones(L, L).triu(1).bool(), float("-inf"))
            out[b, :, h] = torch.softmax(scores, dim=-1) @ v[b, :, h]
    return out.reshape(B, L, D) @ attn.o_proj.weight.T


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("use_rope", [False, True])
def test_attention_matches_hand_written_softmax(causal, use_rope):
    attn = Attention(32, 4, causal=causal)
    x = torch.randn(2, 6, 32)
    rotary = RotaryEmbedding(8, 6)(6) if use_rope else None
    torch.testing.assert_close(attn(x, rotary), _hand_attention(attn, x, causal, rotary), rtol=1e-4, atol=1e-5)


def test_causal_attention_ignores_the_future():
    attn = Attention(32, 4, causal=True)
    x = torch.randn(1, 6, 32)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 2, 32)
    torch.testing.assert_close(attn(x)[:, :4], attn(y)[:, :4])
    assert not torch.allclose(attn(x)[:, 4:], attn(y)[:, 4:])


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="not divisible"):
        Attention(30, 4)


# ----- SwiGLU, init, linear -----------------------------------------------------
def test_swiglu_width_values():
    assert swiglu_width(512, 4) == 1536  # round(512*4*2/3)=1365 -> next multiple of 256
    assert swiglu_width(32, 4) == 256
    assert swiglu_width(384, 4) == 1024
    assert swiglu_width(90, 2, multiple=16) == 128  # 120 -> 128


def test_swiglu_matches_formula():
    m = SwiGLU(32, 4)
    x = torch.randn(3, 32)
    W = m.gate_up_proj.weight
    inner = W.shape[0] // 2
    gate, up = x @ W[:inner].T, x @ W[inner:].T
    expected = (gate * torch.sigmoid(gate) * up) @ m.down_proj.weight.T
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("std", [0.02, 1.0])
def test_trunc_normal_has_requested_std(std):
    t = trunc_normal_(torch.empty(200_000), std=std)
    assert abs(t.std().item() / std - 1) < 0.01
    assert abs(t.mean().item()) < 0.01 * std
    # truncated at 2 sigma of the unscaled normal, whose std is ~0.8796
    assert t.abs().max().item() <= 2 * std / 0.8796 * (1 + 1e-4)


def test_casted_linear_init_and_dtype():
    lin = CastedLinear(256, 512)
    assert lin.bias is None
    assert abs(lin.weight.std().item() * math.sqrt(256) - 1) < 0.03
    x = torch.randn(2, 256, dtype=torch.bfloat16)
    assert lin(x).dtype == torch.bfloat16
    assert lin.weight.dtype == torch.float32


def test_embedding_is_a_lookup():
    emb = Embedding(10, 8, init_std=0.5)
    idx = torch.tensor([[3, 0, 9]])
    torch.testing.assert_close(emb(idx), emb.embedding_weight[idx])


# ----- blocks -----------------------------------------------------------------
@pytest.mark.parametrize("mlp_t", [False, True])
def test_transformer_block_is_post_norm(mlp_t):
    block = TransformerBlock(32, 4, 4.0, seq_len=6, mlp_t=mlp_t)
    h = torch.randn(2, 6, 32) * 5
    out = block(h)
    rms = out.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=0, atol=1e-4)
    # the same thing written out: norm(h + mix(h)), then norm(. + mlp(.)); as in TRM the
    # token-MLP residual is normalised over the token axis (6), attention's over channels (32)
    if mlp_t:
        t = h.transpose(1, 2)
        a = F.rms_norm(t + block.mlp_t(t), (6,), eps=1e-5).transpose(1, 2)
    else:
        a = F.rms_norm(h + block.self_attn(h), (32,), eps=1e-5)
    expected = F.rms_norm(a + block.mlp(a), (32,), eps=1e-5)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_mlp_t_block_needs_seq_len_and_is_not_causal():
    with pytest.raises(ValueError, match="seq_len"):
        TransformerBlock(32, 4, 4.0, mlp_t=True)
    with pytest.raises(ValueError, match="non-causal"):
        TransformerBlock(32, 4, 4.0, seq_len=6, mlp_t=True, causal=True)


def test_reasoning_module_adds_injection_then_runs_layers():
    blocks = [TransformerBlock(32, 4, 2.0) for _ in range(2)]
    module = ReasoningModule(blocks)
    h, inj = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    torch.testing.assert_close(module(h, inj), blocks[1](blocks[0](h + inj)))
    torch.testing.assert_close(module(h), blocks[1](blocks[0](h)))
