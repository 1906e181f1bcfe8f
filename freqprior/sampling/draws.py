"""The random draws of one pixel, shared by every sampler so equal inputs give equal images.

Each image has its own key; the noise of pixel (i, j) comes from fold_in(key, i * W + j), so an
image depends only on its key, label and temperature, never on the batch it was drawn in.
Temperature T, for both heads and with or without guidance: subpixel c is drawn from its exact
256-way conditional given everything sampled before it, tempered as p_T(k) = p(k)^(1/T) / Z (T = 0:
the most likely value). Categorical: Gumbel-max, argmax(logits + T * gumbel). Logistic mixture:
the discretized mixture's 256 bin probabilities (mixture weights updated by the pixel's earlier
channels, means shifted by them), softmax(log p / T) inverted at one uniform per channel.
"""
from typing import Callable

import jax
import jax.numpy as jnp

from freqprior.models import heads as heads_lib

FeaturesFn = Callable[[jnp.ndarray], jnp.ndarray]  # pixel so far [B, C] int32 -> features [B, F]


def pixel_noise(head, keys_B: jax.Array, index: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Noise for pixel `index` (= i * W + j) of every image: Gumbel [B, C, 256] (categorical) or
  uniforms [B, C] in [0, 1) (logistic mixture)."""
  keys_B = jax.vmap(jax.random.fold_in, (0, None))(keys_B, index)
  if isinstance(head, heads_lib.CategoricalHead):
    shape = (head.channels, heads_lib.NUM_VALUES)
    return {'gumbel': jax.vmap(lambda k: jax.random.gumbel(k, shape))(keys_B)}
  return {'uniform': jax.vmap(lambda k: jax.random.uniform(k, (head.channels,)))(keys_B)}


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
  # the mixture's parameters see only earlier pixels: one evaluation serves every channel
  params = [p[:, 0, 0] for p in head.mixture_params(features_fn(pixel_BC)[:, None, None])]
  for c in range(head.channels):
    logp_BK = heads_lib.mixture_value_log_probs(*params, pixel_BC, c)
    value_B = heads_lib.draw_from_log_probs(logp_BK, temperature, noise['uniform'][:, c])
    pixel_BC = pixel_BC.at[:, c].set(value_B)
  return pixel_BC
