"""The reference sampler: the whole model on the whole image for every subpixel it draws.

One full backbone forward per subpixel (categorical head) or per pixel (logistic mixture head,
whose channels then follow from the pixel's mixture parameters), inside a `lax` loop over rows
and pixels. The head is evaluated at the drawn pixel only; it is per-pixel, so this is the same.
"""
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from freqprior.models import guidance
from freqprior.sampling import draws


def sample(model, labels_B: Optional[jnp.ndarray], keys_B: jax.Array, temperature: jnp.ndarray,
           image_shape: tuple[int, int, int], on_row: Optional[Callable] = None,
           tokens_BT: Optional[jnp.ndarray] = None, guidance_scale: float = 1.0) -> jnp.ndarray:
  """-> uint8 [B, H, W, C]. Call inside `model.apply(..., method=...)`; `on_row(i)` runs on the
  host after each row (progress). tokens_BT: the prompts of a text model. guidance_scale != 1:
  a batch from `guidance.with_unconditional_half`, drawn by `guidance.draw_guided_pixel`."""
  height, width, channels = image_shape
  batch = keys_B.shape[0]
  head = model.output_head

  def pixel_step(i, j, images_BHWC):
    def features_fn(pixel_BC):
      with_pixel = images_BHWC.at[:, i, j].set(pixel_BC.astype(jnp.uint8))
      return model.features(with_pixel, labels_B, tokens_BT=tokens_BT)[:, i, j]

    noise = draws.pixel_noise(head, keys_B, i * width + j)
    if guidance_scale == 1.0:
      pixel_BC = draws.draw_pixel(head, features_fn, noise, temperature, batch)
    else:
      pixel_BC = guidance.draw_guided_pixel(head, features_fn, noise, temperature, batch,
                                            guidance_scale)
    return images_BHWC.at[:, i, j].set(pixel_BC.astype(jnp.uint8))

  def row_step(i, images_BHWC):
    images_BHWC = jax.lax.fori_loop(0, width, lambda j, x: pixel_step(i, j, x), images_BHWC)
    if on_row is not None:
      jax.debug.callback(on_row, i)
    return images_BHWC

  images_BHWC = jnp.zeros((batch, height, width, channels), jnp.uint8)
  return jax.lax.fori_loop(0, height, row_step, images_BHWC)
