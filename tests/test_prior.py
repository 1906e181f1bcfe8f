"""The frequency prior's filter equals a direct masked spatial convolution, and is causal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior.models import prior


def direct_filter(x_BHWC, taps, stack):
  """Reference: y[i, j] = sum over the causal support of taps[dy, dx] * x[i - dy, j - dx]."""
  _, height, width, _ = x_BHWC.shape
  y = np.zeros(x_BHWC.shape, np.float64)
  for i in range(height):
    for j in range(width):
      for dy in range(height if stack == 'vertical' else 1):
        for dx in range(-(width - 1) if stack == 'vertical' else 0, width):
          if 0 <= i - dy < height and 0 <= j - dx < width:
            tap = taps[dy, dx + width - 1] if stack == 'vertical' else taps[dx]
            y[:, i, j] += tap * x_BHWC[:, i - dy, j - dx]
  return y


@pytest.mark.parametrize('stack', ['vertical', 'horizontal'])
@pytest.mark.parametrize('size', [5, 8])
def test_filter_equals_direct_convolution(stack, size):
  rng = np.random.RandomState(0)
  x = rng.randn(2, size, size, 3).astype(np.float32)
  taps_shape = (size, 2 * size - 1, 3) if stack == 'vertical' else (size, 3)
  taps = rng.randn(*taps_shape).astype(np.float32)
  got = np.asarray(prior.causal_filter(jnp.asarray(x), jnp.asarray(taps), stack))
  want = direct_filter(x, taps, stack)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize('stack', ['vertical', 'horizontal'])
def test_filter_never_sees_later_positions_even_through_round_off(stack):
  """Changing a later input leaves earlier outputs bit-for-bit unchanged."""
  size = 8
  rng = np.random.RandomState(1)
  x = rng.randn(1, size, size, 4).astype(np.float32)
  taps = rng.randn(*((size, 2 * size - 1, 4) if stack == 'vertical' else (size, 4)))
  base = np.asarray(prior.causal_filter(x, taps, stack))
  for i, j in [(3, 4), (7, 7), (0, 5)]:
    x2 = x.copy()
    x2[0, i, j] += 100.0
    changed = np.asarray(prior.causal_filter(x2, taps, stack))
    # Vertical outputs may use the whole current row; horizontal ones only columns <= j.
    if stack == 'vertical':
      np.testing.assert_array_equal(changed[0, :i], base[0, :i])
    else:
      np.testing.assert_array_equal(changed[0, i, :j], base[0, i, :j])
      np.testing.assert_array_equal(np.delete(changed[0], i, 0), np.delete(base[0], i, 0))
    assert np.abs(changed - base).max() > 1.0  # and the change does reach later outputs


@pytest.mark.parametrize('parameterization', ['full', 'implicit'])
def test_frequency_prior_module_runs_in_bfloat16_and_implicit_at_any_resolution(parameterization):
  module = prior.FrequencyPrior('vertical', parameterization, dtype=jnp.bfloat16)
  x = jnp.ones((2, 8, 8, 4), jnp.bfloat16)
  params = module.init(jax.random.key(0), x)
  assert module.apply(params, x).shape == (2, 8, 8, 4)
  if parameterization == 'implicit':  # the same parameters work at another resolution
    assert module.apply(params, jnp.ones((1, 16, 16, 4))).shape == (1, 16, 16, 4)
  if parameterization == 'full':
    assert params['params']['taps']['kernel'].shape == (8, 15, 4)
  assert prior.causal_filter(x, jnp.ones((8, 4), jnp.bfloat16), 'horizontal').dtype == jnp.float32


def test_unknown_parameterization_is_a_clear_error():
  module = prior.FrequencyPrior('vertical', 'wavelet')
  with pytest.raises(ValueError, match='config.model.prior_kernel'):
    module.init(jax.random.key(0), jnp.ones((1, 4, 4, 2)))
