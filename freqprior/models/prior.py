"""The frequency prior: a causal, global, depthwise filter evaluated in the frequency domain.

Vertical stack taps cover offsets (dy, dx) with 0 <= dy < H and |dx| < W (the current row and
every row above, any column); horizontal stack taps cover (0, dx) with 0 <= dx < W (the current
position and those to its left). Both stacks' features are already causal, so filtering them
with such taps keeps every output causal, and the evaluation below keeps that exact: no later
position reaches an earlier output even through float32 round-off (a plain 2H x 2W rfft2 leaks
~1e-7 of every position into every output, ~2e-5 nats in a mixture head's log-likelihoods).
FFTs always run in float32.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from freqprior import errors
from freqprior.models.layers import HIGHEST


def causal_filter(x_BHWC: jnp.ndarray, taps: jnp.ndarray, stack: str) -> jnp.ndarray:
  """Depthwise y[i, j] = sum over causal (dy, dx) of taps[dy, dx] * x[i - dy, j - dx], in float32.

  vertical, taps [H, 2W-1, C] (taps[dy, dx + W - 1]): each row goes through a zero-padded
  rfft of length 2W (so circular is linear and nothing wraps); the rows are then combined in the
  frequency domain by an exactly lower-triangular Toeplitz product over rows, so later rows
  enter with exact zeros, not float32 round-off.
  horizontal, taps [W, C] (taps[dx]): a masked Toeplitz product along the row; an FFT along the
  row would spread round-off from the pixels to the right into every output.
  """
  _, height, width, _ = x_BHWC.shape
  x_BHWC = x_BHWC.astype(jnp.float32)
  taps = taps.astype(jnp.float32)
  if stack == 'vertical':
    t_wcir = toeplitz(vertical_taps_f(taps, width).transpose(1, 2, 0), height)
    x_bcrw = jnp.fft.rfft(x_BHWC.transpose(0, 3, 1, 2), n=2 * width)  # FFT axis last
    # (w, c) as leading batch axes: one small matmul per frequency and channel (3x faster on
    # CPU than the same contraction as an einsum over [B, C, r, w]).
    y_wcib = jnp.matmul(t_wcir, x_bcrw.transpose(3, 1, 2, 0), precision=HIGHEST)
    return jnp.fft.irfft(y_wcib.transpose(3, 1, 2, 0), n=2 * width)[..., :width].transpose(
        0, 2, 3, 1)
  if stack == 'horizontal':
    return jnp.einsum('cjk,bikc->bijc', toeplitz(taps.T, width), x_BHWC, precision=HIGHEST)
  raise ValueError(f'unknown stack {stack!r}')


def vertical_taps_f(taps_HXC: jnp.ndarray, width: int) -> jnp.ndarray:
  """Vertical taps [H, 2W-1, C] -> their rfft over dx taken mod 2W, [H, W+1, C] complex."""
  circular_HXC = jnp.concatenate([taps_HXC[:, width - 1:], jnp.zeros_like(taps_HXC[:, :1]),
                                  taps_HXC[:, :width - 1]], axis=1)  # dx mod 2W
  return jnp.fft.rfft(circular_HXC, axis=1)


def toeplitz(taps_XN: jnp.ndarray, n: int) -> jnp.ndarray:
  """[..., i, r] = taps[..., i - r] for r <= i, exactly 0 otherwise (last axis of taps: the lag).

  One static gather and a mask: a graph of constant size whatever n (its gradient is one
  scatter-add)."""
  lag_NN = np.arange(n)[:, None] - np.arange(n)[None, :]
  gathered = jnp.take(taps_XN, np.maximum(lag_NN, 0), axis=-1)
  return jnp.where(lag_NN >= 0, gathered, jnp.zeros((), taps_XN.dtype))


def tap_offsets(stack: str, height: int, width: int) -> jnp.ndarray:
  """Integer offsets (dy, dx) of the taps, shaped like the taps without channels, plus 2."""
  if stack == 'vertical':
    dy, dx = jnp.meshgrid(jnp.arange(height), jnp.arange(-(width - 1), width), indexing='ij')
  else:
    dx = jnp.arange(width)[None]
    dy = jnp.zeros_like(dx)
  offsets = jnp.stack([dy, dx], axis=-1).astype(jnp.float32)
  return offsets if stack == 'vertical' else offsets[0]


class ImplicitTaps(nn.Module):
  """Taps from a small MLP of the offset times a learned per-channel decay: any resolution."""
  channels: int
  hidden: int = 32
  num_frequencies: int = 8

  @nn.compact
  def __call__(self, offsets_T2: jnp.ndarray) -> jnp.ndarray:
    freqs = math.pi * 2.0 ** -jnp.arange(self.num_frequencies)  # periods 2 .. 2^(F+1) pixels
    angles = offsets_T2[..., None] * freqs  # [..., 2, F]
    feats = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], -1)
    feats = feats.reshape(*offsets_T2.shape[:-1], -1)
    hidden = nn.gelu(nn.Dense(self.hidden, name='hidden')(feats))
    taps = nn.Dense(self.channels, name='out')(hidden)
    rate = nn.softplus(self.param('log_rate', nn.initializers.constant(-1.0), (self.channels,)))
    radius = jnp.sqrt(jnp.sum(offsets_T2 ** 2, -1, keepdims=True))
    return taps * jnp.exp(-rate * radius)


class CausalTaps(nn.Module):
  """The causal taps for an H x W image: [H, 2W-1, C] (vertical) or [W, C] (horizontal)."""
  stack: str  # 'vertical' or 'horizontal'
  parameterization: str = 'full'  # or 'implicit'

  @nn.compact
  def __call__(self, height: int, width: int, channels: int) -> jnp.ndarray:
    if self.parameterization == 'implicit':
      return ImplicitTaps(channels, name='implicit')(tap_offsets(self.stack, height, width))
    if self.parameterization != 'full':
      raise errors.ConfigError("config.model.prior_kernel must be 'full' or 'implicit', got "
                               f'{self.parameterization!r}')
    shape = (height, 2 * width - 1, channels) if self.stack == 'vertical' else (width, channels)
    fan_in = math.prod(shape[:-1])
    return self.param('kernel', nn.initializers.normal(fan_in ** -0.5), shape)


class FrequencyPrior(nn.Module):
  """Pre-norm -> [1x1 reduce] -> causal FFT filter (float32) -> 1x1 'prior prediction'; the
  caller adds it.

  The normalization comes before the filter, on features that are exact and never degenerate:
  normalizing after the FFT would amplify its float32 round-off, which carries a ~1e-7
  relative trace of every position, future ones included.
  """
  stack: str  # 'vertical' or 'horizontal'
  parameterization: str = 'full'  # or 'implicit'
  features: int = 0  # filter a Dense projection to this many channels; 0: the input's channels
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
    _, height, width, channels = x_BHWC.shape
    u_BHWC = nn.LayerNorm(dtype=jnp.float32, name='norm')(x_BHWC.astype(jnp.float32))
    if self.features:
      u_BHWC = nn.Dense(self.features, dtype=jnp.float32, precision=HIGHEST,
                        name='reduce')(u_BHWC)
    taps = CausalTaps(self.stack, self.parameterization, name='taps')(height, width,
                                                                    u_BHWC.shape[-1])
    y_BHWC = causal_filter(u_BHWC, taps, self.stack)
    return nn.Dense(channels, dtype=self.dtype, name='predict')(y_BHWC.astype(self.dtype))
