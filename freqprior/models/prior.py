"""The frequency prior: a causal, global, depthwise filter evaluated in the frequency domain.

Vertical stack taps cover offsets (dy, dx) with 0 <= dy < H and |dx| < W (the current row and
every row above, any column); horizontal stack taps cover (0, dx) with 0 <= dx < W (the current
position and those to its left). Both stacks' features are already causal, so filtering them
with such taps keeps every output causal, and the evaluation below keeps that exact: no later
position reaches an earlier output even through float32 round-off (a plain 2H x 2W rfft2 leaks
~1e-7 of every position into every output, ~2e-5 nats in a mixture head's log-likelihoods).

The vertical filter works on real spectra, all in float32: each row's zero-padded length-2W
DFT packed into 2W reals (`row_spectrum`), lower-triangular Toeplitz products over rows per
frequency as real matmuls (`combine_rows`), and back (`row_signal`). The cached sampler calls
the same three functions one row at a time.
"""
import functools
import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from freqprior import errors
from freqprior.models.layers import HIGHEST

# The row DFT per backend, 'fft' (jnp.fft) or 'matmul' (products with constant cos / sin
# matrices, on the MXU / tensor cores), for rows up to MATMUL_DFT_MAX_WIDTH (2W <= 128; longer
# ones use 'fft', whose cost grows as W log W against the matmul's W^2); backends not listed get
# 'fft'. CPU: 'matmul' measured 1.15-1.2x faster than 'fft' (forward and backward, batch 8, 48
# channels, 32x32 and 64x64; benchmarks/prior_dft.py). GPU: cuFFT until a device run of
# benchmarks/device.py, which times both, says otherwise.
ROW_DFT = {'tpu': 'matmul', 'cpu': 'matmul'}
MATMUL_DFT_MAX_WIDTH = 64

# The vertical filter's matmul precision per backend; backends not listed get HIGHEST.
# Causality does not depend on it: later rows meet exact zeros, and products with an exact zero
# stay exactly zero at any precision. CPU computes float32 products whatever the setting. On
# GPU, DEFAULT and HIGH both mean TF32, measured (emulated) at 7e-4 of the largest output, 3000x
# the float32 FFT's 2e-7, so HIGHEST. On TPU, HIGH (bf16x3) measured (emulated) at 8e-6, DEFAULT
# (one bf16 pass) at 5e-3: HIGH costs half the passes of HIGHEST and stays far below the
# bfloat16 rounding (4e-3) the prior's output meets in the shipped configs.
PRECISION = {'tpu': jax.lax.Precision.HIGH}


def row_dft_method(width: int, method: Optional[str] = None) -> str:
  """'fft' or 'matmul' for rows of `width`: `method` if given, else the backend's choice."""
  if method is None:
    method = ROW_DFT.get(jax.default_backend(), 'fft')
    method = method if width <= MATMUL_DFT_MAX_WIDTH else 'fft'
  if method not in ('fft', 'matmul'):
    raise ValueError(f"row DFT method must be 'fft' or 'matmul', got {method!r}")
  return method


def precision(backend: Optional[str] = None) -> jax.lax.Precision:
  """The vertical filter's matmul precision on `backend` (default: JAX's default backend)."""
  return PRECISION.get(backend or jax.default_backend(), HIGHEST)


def causal_filter(x_BHWC: jnp.ndarray, taps: jnp.ndarray, stack: str,
                  method: Optional[str] = None) -> jnp.ndarray:
  """Depthwise y[i, j] = sum over causal (dy, dx) of taps[dy, dx] * x[i - dy, j - dx], in float32.

  vertical, taps [H, 2W-1, C] (taps[dy, dx + W - 1]): each row's spectrum (zero-padded to 2W,
  so circular is linear and nothing wraps), combined over rows by an exactly lower-triangular
  Toeplitz product per frequency, so later rows enter with exact zeros, not float32 round-off;
  `method` overrides the backend's row DFT ('fft' or 'matmul').
  horizontal, taps [W, C] (taps[dx]): a masked Toeplitz product along the row; a DFT along the
  row would spread round-off from the pixels to the right into every output.
  """
  width = x_BHWC.shape[2]
  x_BHWC = x_BHWC.astype(jnp.float32)
  taps = taps.astype(jnp.float32)
  if stack == 'vertical':
    z_KCHPB = row_spectrum(x_BHWC, method)
    return row_signal(combine_rows(taps_spectrum(taps, width), z_KCHPB), method)
  if stack == 'horizontal':
    return jnp.einsum('cjk,bikc->bijc', causal_toeplitz(taps.T), x_BHWC, precision=HIGHEST)
  raise ValueError(f'unknown stack {stack!r}')


# ---- Real spectra. ----------------------------------------------------------------------------
# A row of W reals, zero-padded to 2W, has the rfft X_0 .. X_W with X_0 and X_W real. Its packed
# spectrum [W, 2] (slot k, part p) holds (Re X_k, Im X_k) in slots k >= 1 and (X_0, X_W) in slot
# 0: 2W reals, whole 128-wide tiles for W = 64. With the taps' spectrum packed the same way as
# parts (a, b) and a row's as (u, v), the product is, in slots k >= 1, the complex one
# (a u - b v, a v + b u) and, in slot 0, (a u, b v). `combine_rows` computes the four real
# products by matmuls over rows; `row_signal` adds them up and inverts the DFT.


def _packed_dft(positions: np.ndarray, width: int) -> np.ndarray:
  """[len(positions), 2, W] float64: the packed spectrum of a unit impulse at each position."""
  k_K = np.arange(width)
  phase_NK = np.mod(positions[:, None] * k_K[None], 2 * width)  # exact: integers mod 2W
  angle_NK = np.pi * phase_NK / width
  re_NK, im_NK = np.cos(angle_NK), -np.sin(angle_NK)
  im_NK[:, 0] = np.cos(np.pi * positions)  # slot 0's second part: X_W
  out = np.stack([re_NK, im_NK], axis=1)
  return np.where(np.abs(out) < 1e-12, 0.0, out)  # cos(pi / 2) etc. exactly 0


@functools.lru_cache(maxsize=None)
def forward_dft(width: int) -> np.ndarray:
  """[W, 2, W] float32: a row -> its packed zero-padded length-2W spectrum."""
  return _packed_dft(np.arange(width), width).astype(np.float32)


@functools.lru_cache(maxsize=None)
def taps_dft(width: int) -> np.ndarray:
  """[2W-1, 2, W] float32: taps along dx = -(W-1) .. W-1 -> their packed spectrum."""
  return _packed_dft(np.arange(-(width - 1), width), width).astype(np.float32)


def _inverse_dft(width: int) -> np.ndarray:
  """[2, W, W] float64: a packed spectrum -> the first W samples of its length-2W inverse."""
  n_N, k_K = np.arange(width), np.arange(width)
  angle_KN = np.pi * np.mod(k_K[:, None] * n_N[None], 2 * width) / width
  re_KN, im_KN = 2 * np.cos(angle_KN), -2 * np.sin(angle_KN)  # X_k and X_{2W-k}
  re_KN[0], im_KN[0] = 1.0, np.cos(np.pi * n_N)  # X_0 and X_W appear once
  out = np.stack([re_KN, im_KN]) / (2 * width)
  return np.where(np.abs(out) < 1e-12, 0.0, out)


@functools.lru_cache(maxsize=None)
def products_idft(width: int) -> np.ndarray:
  """[2, 2, W, W] float32: the four products [a | b, u | v] of `combine_rows` -> the first W
  samples of the inverse of their sum (au - bv, av + bu; slot 0: au, bv)."""
  first_KN, second_KN = _inverse_dft(width)
  out = np.stack([np.stack([first_KN, second_KN]), np.stack([second_KN, -first_KN])])
  out[0, 1, 0] = out[1, 0, 0] = 0.0
  out[1, 1, 0] = second_KN[0]
  return out.astype(np.float32)


def row_spectrum(x_BHWC: jnp.ndarray, method: Optional[str] = None) -> jnp.ndarray:
  """[B, H, W, C] -> packed spectra of the rows, [W, C, H, 2, B] float32 (slot, channel, row,
  part, batch: the layout `combine_rows` multiplies)."""
  width = x_BHWC.shape[2]
  if row_dft_method(width, method) == 'matmul':
    return jnp.einsum('bhwc,wpk->kchpb', x_BHWC, forward_dft(width), precision=precision())
  x_f = jnp.fft.rfft(x_BHWC, n=2 * width, axis=2)
  re, im = jnp.real(x_f), jnp.imag(x_f)
  second = jnp.concatenate([re[:, :, width:], im[:, :, 1:width]], axis=2)
  return jnp.stack([re[:, :, :width], second], axis=2).transpose(3, 4, 1, 2, 0)


def row_signal(m_KCAHPB: jnp.ndarray, method: Optional[str] = None) -> jnp.ndarray:
  """The products of `combine_rows` [W, C, 2, H, 2, B] -> the rows whose packed spectra are
  their sums, [B, H, W, C]."""
  width = m_KCAHPB.shape[0]
  if row_dft_method(width, method) == 'matmul':
    return jnp.einsum('kcahpb,apkn->bhnc', m_KCAHPB, products_idft(width),
                      precision=precision())
  m_BHAPKC = m_KCAHPB.transpose(5, 3, 2, 4, 0, 1)
  au, av, bu, bv = (m_BHAPKC[:, :, a, p] for a in range(2) for p in range(2))
  slot0 = (np.arange(width) == 0)[:, None]
  re = jnp.concatenate([au - jnp.where(slot0, 0.0, bv), bv[:, :, :1]], axis=2)
  im = jnp.pad((av + bu)[:, :, 1:], ((0, 0), (0, 0), (1, 1), (0, 0)))
  return jnp.fft.irfft(jax.lax.complex(re, im), n=2 * width, axis=2)[:, :, :width]


def taps_spectrum(taps_HXC: jnp.ndarray, width: int) -> jnp.ndarray:
  """Vertical taps [H, 2W-1, C] -> their packed spectra along dx, [W, C, 2, H] (slot, channel,
  part a / b, dy)."""
  return jnp.einsum('yxc,xpk->kcpy', taps_HXC, taps_dft(width), precision=precision())


def combine_rows(s_KCAY: jnp.ndarray, z_KCRPB: jnp.ndarray,
                 row: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """sum over rows r <= i of (taps' part a or b at dy = i - r) * (row r's part u or v): the four
  products per slot [W, C, 2, H, 2, B] (a | b, output row, u | v, batch), or for output row
  `row` alone [W, C, 2, 1, 2, B] (the sampler's step).

  Per slot and channel one real matmul, a lower-triangular Toeplitz [a; b] (2I x H) times
  [u, v] (H x 2B); `row_signal` then sums the products. A 2x2-block Toeplitz [[a, -b], [b, a]]
  (twice the matrix to build and differentiate) and the 3-product (Gauss) form (three matrices
  for three quarters of the multiplies) measured 4-5x slower on CPU for this step."""
  width, channels, height, _, batch = z_KCRPB.shape
  t_KCAIR = causal_toeplitz(s_KCAY, row)
  m_KCXY = jnp.matmul(t_KCAIR.reshape(width, channels, -1, height),
                      z_KCRPB.reshape(width, channels, height, 2 * batch), precision=precision())
  return m_KCXY.reshape(width, channels, 2, -1, 2, batch)


def causal_toeplitz(s_XN: jnp.ndarray, row: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """[..., i, r] = s[..., i - r] for r <= i, exactly 0 otherwise (last axis of s: the lag);
  with `row` (may be traced) only i = row, [..., 1, r].

  Row i is the window [n-1-i, 2n-1-i) of l = (s reversed, then n zeros); n copies of l laid
  end to end and read with a stride of 2n-1 shift by one per row. Copies only (pad, reshape,
  slice): no gather forward, no scatter backward (there a sum over the copies)."""
  n = s_XN.shape[-1]
  lead = s_XN.shape[:-1]
  l_XL = jnp.pad(jnp.flip(s_XN, -1), [(0, 0)] * len(lead) + [(0, n)])
  if row is not None:
    return jax.lax.dynamic_slice_in_dim(l_XL, n - 1 - row, n, axis=-1)[..., None, :]
  tiled = jnp.broadcast_to(l_XL[..., None, :], (*lead, n, 2 * n)).reshape(*lead, 2 * n * n)
  return tiled[..., :n * (2 * n - 1)].reshape(*lead, n, 2 * n - 1)[..., n - 1:]


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
  """Pre-norm -> [1x1 reduce] -> causal frequency-domain filter (float32) -> 1x1 'prior
  prediction'; the caller adds it.

  The normalization comes before the filter, on features that are exact and never degenerate:
  normalizing after the filter would amplify its round-off.
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
