"""Text conditioning: a bidirectional transformer prompt encoder, gated fusion and cross-attention.

Text is conditioning only. `GatedFusion` adds a prompt-only vector to every position, and
`CrossAttention` lets each image position attend to the prompt's tokens independently of every
other position, so neither lets a pixel see another pixel. Both accept features of any rank
[B, ..., F] (a whole image, one row or one pixel), as an incremental sampler needs.
"""
from typing import NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from freqprior.models import layers
from freqprior.models import tokenizer


class TextConfig(NamedTuple):
  """Prompt conditioning of a model: mode and the encoder's and cross-attention's shape."""
  mode: str  # 'pooled' (gated fusion in every block) or 'cross_attention'
  width: int = 64
  depth: int = 2
  heads: int = 4
  max_length: int = 64  # tokens, BOS and EOS included
  cross_attention_blocks: tuple[int, ...] = ()
  cross_attention_heads: int = 4


class TextFeatures(NamedTuple):
  tokens_BTD: jnp.ndarray  # per-token features (padding positions hold finite junk)
  mask_BT: jnp.ndarray  # True for BOS, the prompt's bytes and EOS; False for padding
  pooled_BD: jnp.ndarray  # mean of the non-padding token features


def sinusoidal_positions(length: int, width: int) -> jnp.ndarray:
  """The transformer's fixed positional encoding [T, D] (any length, so padding is free)."""
  half = width // 2
  inv_freq = 10000.0 ** (-jnp.arange(half) / max(half, 1))
  angles = jnp.arange(length)[:, None] * inv_freq[None]
  enc = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
  return jnp.pad(enc, ((0, 0), (0, width - 2 * half)))


def key_mask(mask_BT: jnp.ndarray) -> jnp.ndarray:
  """[B, T] padding mask -> [B, 1 head, 1 query, T keys] attention mask."""
  return mask_BT[:, None, None, :]


class EncoderBlock(nn.Module):
  """Pre-LN: x + attention(norm x) over non-padding tokens, then x + MLP(norm x)."""
  num_heads: int
  mlp_ratio: int = 4
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BTD, mask_BT):
    width = x_BTD.shape[-1]
    y_BTD = nn.LayerNorm(dtype=self.dtype, name='norm_attn')(x_BTD)
    x_BTD = x_BTD + nn.MultiHeadDotProductAttention(self.num_heads, dtype=self.dtype, name='attn')(
        y_BTD, y_BTD, mask=key_mask(mask_BT))
    y_BTD = nn.LayerNorm(dtype=self.dtype, name='norm_mlp')(x_BTD)
    y_BTD = nn.gelu(nn.Dense(self.mlp_ratio * width, dtype=self.dtype, name='mlp_in')(y_BTD))
    return x_BTD + nn.Dense(width, dtype=self.dtype, name='mlp_out')(y_BTD)


class TextEncoder(nn.Module):
  """Byte tokens [B, T] -> TextFeatures; bidirectional, so every token sees the whole prompt."""
  width: int = 64
  depth: int = 2
  num_heads: int = 4
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens_BT: jnp.ndarray) -> TextFeatures:
    mask_BT = tokens_BT != tokenizer.PAD
    x_BTD = nn.Embed(tokenizer.VOCAB_SIZE, self.width, dtype=self.dtype, name='embed')(tokens_BT)
    x_BTD = x_BTD + sinusoidal_positions(tokens_BT.shape[1], self.width).astype(self.dtype)
    for i in range(self.depth):
      x_BTD = EncoderBlock(self.num_heads, dtype=self.dtype, name=f'block{i}')(x_BTD, mask_BT)
    x_BTD = nn.LayerNorm(dtype=jnp.float32, name='norm_out')(x_BTD)
    weights_BT1 = mask_BT[..., None].astype(jnp.float32)
    pooled_BD = jnp.sum(x_BTD * weights_BT1, 1) / jnp.maximum(jnp.sum(weights_BT1, 1), 1.0)
    return TextFeatures(x_BTD, mask_BT, pooled_BD)


class GatedFusion(nn.Module):
  """h <- h + sigmoid(W_g e) * (W_v e): a per-channel gate computed from the prompt alone."""
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h_BxF: jnp.ndarray, e_BD: jnp.ndarray) -> jnp.ndarray:
    width = h_BxF.shape[-1]
    gate_BF = nn.sigmoid(nn.Dense(width, dtype=self.dtype, name='gate')(e_BD))
    value_BF = nn.Dense(width, dtype=self.dtype, name='value')(e_BD)
    return h_BxF + layers.expand_to_rank(gate_BF * value_BF, h_BxF.ndim).astype(h_BxF.dtype)


class CrossAttention(nn.Module):
  """h + attention(query = norm h at each position, keys/values = the non-padding text tokens)."""
  num_heads: int = 4
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h_BxF: jnp.ndarray, text: TextFeatures) -> jnp.ndarray:
    batch, width = h_BxF.shape[0], h_BxF.shape[-1]
    q_BNF = nn.LayerNorm(dtype=self.dtype, name='norm')(h_BxF).reshape(batch, -1, width)
    out_BNF = nn.MultiHeadDotProductAttention(
        self.num_heads, dtype=self.dtype, qkv_features=width, out_features=width, name='attn')(
            q_BNF, text.tokens_BTD.astype(self.dtype), mask=key_mask(text.mask_BT))
    return h_BxF + out_BNF.reshape(h_BxF.shape).astype(h_BxF.dtype)
