"""What "the cached sampler equals the naive one" means, shared by the sampling tests.

Both samplers compute the same function with differently shaped arrays (one pixel against the
whole image), so their features agree to float round-off, not bit for bit. Teacher-forced on the
same images, the cached features must match the full model's within that round-off; drawn
images are identical until a draw lands within round-off of a tie, which is rare: after such a
draw both continue as valid samples of the model (the teacher-forced check covers every prefix).
"""
import jax
import jax.numpy as jnp
import numpy as np

from freqprior.models import heads as heads_lib
from freqprior.sampling import cached


def cached_features(model, params, images_BHWC, labels_B=None, tokens_BT=None):
  """(the full model's features [B, H, W, F], the cached Stepper's features of the same images
  computed one row / pixel at a time as the sampler does)."""
  _, height, width, channels = images_BHWC.shape

  def run(m, images_BHWC, labels_B, tokens_BT):
    full_BHWF = m.features(images_BHWC, labels_B, tokens_BT=tokens_BT)
    batch = images_BHWC.shape[0]
    cond_BD, text = cached.capture(m, labels_B, (height, width, channels), batch, tokens_BT)
    stepper = cached.Stepper(m.settings, m.variables['params']['backbone'], cond_BD,
                             (height, width, channels), text)
    state = stepper.init_state(batch)
    x_pad = stepper.pad_image(heads_lib.to_unit_range(images_BHWC).astype(stepper.dtype))

    # Loops as the sampler's (traced row and column): unrolled, 36 pixels compile for seconds.
    def row_step(i, carry):
      state, stepped_BHWF = carry
      v_rows, h_above, state = stepper.row(i, x_pad, state)

      def pixel_step(j, carry):
        state, stepped_BHWF = carry
        features_BF, state = stepper.pixel(i, j, x_pad, v_rows, h_above, state)
        return state, stepped_BHWF.at[:, i, j].set(features_BF)

      return jax.lax.fori_loop(0, width, pixel_step, (state, stepped_BHWF))

    stepped_BHWF = jnp.zeros(full_BHWF.shape, jnp.float32)
    return full_BHWF, jax.lax.fori_loop(0, height, row_step, (state, stepped_BHWF))[1]

  return jax.jit(lambda p, *args: model.apply({'params': p}, *args, method=run))(
      params, jnp.asarray(images_BHWC), labels_B, tokens_BT)


def assert_features_match(full_BHWF, stepped_BHWF, rtol: float):
  """Every position's cached features equal the full model's to `rtol` of their scale."""
  full, stepped = np.asarray(full_BHWF, np.float64), np.asarray(stepped_BHWF, np.float64)
  err = np.abs(full - stepped).max()
  assert err <= rtol * np.abs(full).max(), (err, np.abs(full).max())


def assert_same_draws(cached_BHWC, naive_BHWC, min_identical: float = 0.75):
  """At least `min_identical` of the images are identical subpixel for subpixel."""
  cached_BHWC, naive_BHWC = np.asarray(cached_BHWC), np.asarray(naive_BHWC)
  assert cached_BHWC.shape == naive_BHWC.shape and cached_BHWC.dtype == naive_BHWC.dtype
  same_B = np.all(cached_BHWC == naive_BHWC, axis=(1, 2, 3))
  assert same_B.mean() >= min_identical, np.flatnonzero(~same_B)
