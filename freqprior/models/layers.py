"""Causal convolutions for the gated stacks (PixelCNN++ down / down-right shifts).

A 'down' convolution's output at (i, j) sees rows i-kh+1..i and columns j-(kw-1)/2..j+(kw-1)/2;
a 'down-right' one sees rows i-kh+1..i and columns j-kw+1..j. Composed with `down_shift` /
`right_shift` they give the vertical stack (rows strictly above) and the horizontal stack (rows
above plus the current row to the left) without a blind spot.
"""
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST  # float32 products on every backend (no TF32 / bf16 passes)


def down_shift(x_BHWC: jnp.ndarray) -> jnp.ndarray:
  """Row i receives row i-1; row 0 becomes zeros."""
  return jnp.pad(x_BHWC, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x_BHWC: jnp.ndarray) -> jnp.ndarray:
  """Column j receives column j-1; column 0 becomes zeros."""
  return jnp.pad(x_BHWC, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def causal_padding(kernel: tuple[int, int], shift: str) -> tuple[tuple[int, int], ...]:
  """Zero padding that makes a VALID convolution 'down' or 'down_right' causal."""
  kh, kw = kernel
  if shift == 'down':
    if kw % 2 != 1:
      raise ValueError(f'a down-shifted conv needs an odd kernel width, got {kernel}')
    return ((kh - 1, 0), ((kw - 1) // 2, (kw - 1) // 2))
  if shift == 'down_right':
    return ((kh - 1, 0), (kw - 1, 0))
  raise ValueError(f'unknown shift {shift!r}')


def drawn_flat(init: Callable) -> Callable:
  """`init` drawing [prod(leading dims), last dim], reshaped: the same values (a draw is indexed
  by flat position, and a variance-scaling fan-in multiplies the leading dims either way), but
  XLA:CPU compiles a rank-4 draw about twice as slowly as a rank-2 one (benchmarks/compile.py,
  draw_compile_s), and compiling a model's initialiser is mostly compiling its draws."""
  def init_flat(key, shape, dtype=jnp.float32):
    return init(key, (math.prod(shape[:-1]), shape[-1]), dtype).reshape(shape)
  return init_flat


class ShiftedConv(nn.Module):
  """A convolution masked by padding only on the top (and left) side."""
  features: int
  kernel: tuple[int, int]
  shift: str  # 'down' or 'down_right'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
    return nn.Conv(self.features, self.kernel, padding=causal_padding(self.kernel, self.shift),
                   dtype=self.dtype, kernel_init=drawn_flat(nn.initializers.lecun_normal()),
                   name='conv')(x_BHWC)


def expand_to_rank(e_BF: jnp.ndarray, rank: int) -> jnp.ndarray:
  """[B, F] -> [B, 1, ..., 1, F] of rank `rank`: a per-example vector broadcast over positions."""
  return e_BF.reshape(e_BF.shape[0], *(1,) * (rank - 2), e_BF.shape[-1])
