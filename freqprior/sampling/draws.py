"""The random draws of one pixel, shared by every sampler so equal inputs give equal images.

Each image has its own key; the noise of pixel (i, j) comes from fold_in(key, i * W + j), so an
image depends only on its key, label and temperature, never on the batch it was drawn in.
Categorical: Gumbel-max per subpixel, argmax(logits + T * gumbel) (T = 0: greedy).
Logistic mixture: Gumbel-max over the mixture logits, then one uniform per channel through the
chosen logistic's inverse CDF with its scale times T, rounded to the nearest of the 256 bins.
"""
from typing import Callable

import jax
import jax.numpy as jnp

from freqprior.models import heads as heads_lib

FeaturesFn = Callable[[jnp.ndarray], jnp.ndarray]  # pixel so far [B, C] int32 -> features [B, F]
UNIFORM_EPS = 1e-5  # keeps the logistic's inverse CDF finite


def pixel_noise(head, keys_B: jax.Array, index: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Noise for pixel `index` (= i * W + j) of every image: Gumbel [B, C, 256] (categorical) or
  Gumbel [B, M] and uniforms [B, C] (logistic mixture)."""
  keys_B = jax.vmap(jax.random.fold_in, (0, None))(keys_B, index)
  if isinstance(head, heads_lib.CategoricalHead):
    shape = (head.channels, heads_lib.NUM_VALUES)
    return {'gumbel': jax.vmap(lambda k: jax.random.gumbel(k, shape))(keys_B)}
  mix_keys_B, channel_keys_B = jnp.moveaxis(jax.vmap(jax.random.split)(keys_B), 1, 0)
  gumbel_BM = jax.vmap(lambda k: jax.random.gumbel(k, (head.num_mixtures,)))(mix_keys_B)
  uniform_BC = jax.vmap(lambda k: jax.random.uniform(
      k, (head.channels,), minval=UNIFORM_EPS, maxval=1.0 - UNIFORM_EPS))(channel_keys_B)
  return {'gumbel': gumbel_BM, 'uniform': uniform_BC}


def draw_pixel(head, features_fn: FeaturesFn, noise: dict[str, jnp.ndarray],
               temperature: jnp.ndarray, batch: int) -> jnp.ndarray:
  """Draws one pixel [B, C] int32 of every image, channel by channel, from a bound head.

  `features_fn(pixel_BC)` gives the features of this pixel; a naive sampler runs the whole model
  on the image holding the pixel's channels drawn so far, a cached one returns stored features.
  """
  pixel_BC = jnp.zeros((batch, head.channels), jnp.int32)
  if isinstance(head, heads_lib.CategoricalHead):
    for c in range(head.channels):
      features_B11F = features_fn(pixel_BC)[:, None, None]
      logits_BK = head.logits(features_B11F, pixel_BC[:, None, None])[:, 0, 0, c]
      value_B = jnp.argmax(logits_BK + temperature * noise['gumbel'][:, c], axis=-1)
      pixel_BC = pixel_BC.at[:, c].set(value_B.astype(jnp.int32))
    return pixel_BC
  features_B11F = features_fn(pixel_BC)[:, None, None]
  logit_pi, means, log_scales, coeffs = (p[:, 0, 0] for p in head.mixture_params(features_B11F))
  component_B1 = jnp.argmax(logit_pi + temperature * noise['gumbel'], axis=-1)[:, None]
  pick = lambda p_BM: jnp.take_along_axis(p_BM, component_B1, axis=-1)[:, 0]
  u_BC = noise['uniform']
  for c in range(head.channels):
    x_BC = heads_lib.to_unit_range(pixel_BC)
    mean_B = pick(head.conditional_means(means, coeffs, x_BC)[:, c])
    scale_B = jnp.exp(pick(log_scales[:, c]))
    y_B = mean_B + temperature * scale_B * (jnp.log(u_BC[:, c]) - jnp.log1p(-u_BC[:, c]))
    value_B = jnp.clip(jnp.round((y_B + 1.0) * 127.5), 0, heads_lib.NUM_VALUES - 1)
    pixel_BC = pixel_BC.at[:, c].set(value_B.astype(jnp.int32))
  return pixel_BC
