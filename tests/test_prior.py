"""The frequency prior's filter equals a direct masked spatial convolution, and is causal, with
either row DFT (jnp.fft or the matmul DFT)."""
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


# (stack, row DFT): the horizontal filter has no DFT.
FILTERS = [('vertical', 'fft'), ('vertical', 'matmul'), ('horizontal', None)]


def random_taps(rng, stack, size, channels):
  shape = (size, 2 * size - 1, channels) if stack == 'vertical' else (size, channels)
  return rng.randn(*shape).astype(np.float32)


@pytest.mark.parametrize('stack,method', FILTERS)
@pytest.mark.parametrize('size', [5, 8])
def test_filter_equals_direct_convolution(stack, method, size):
  """Within float32 round-off: 1e-5 of the largest output (measured: 1e-7 to 2e-7)."""
  rng = np.random.RandomState(0)
  x = rng.randn(2, size, size, 3).astype(np.float32)
  taps = random_taps(rng, stack, size, 3)
  got = np.asarray(prior.causal_filter(jnp.asarray(x), jnp.asarray(taps), stack, method))
  want = direct_filter(x, taps, stack)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize('size', [4, 7, 32])
def test_matmul_dft_equals_jnp_fft(size):
  """Row spectra, the inverse, and the whole filter agree between the two row DFTs within 1e-6
  of the largest value (float32; measured 1e-7 to 4e-7)."""
  rng = np.random.RandomState(2)
  x = jnp.asarray(rng.randn(2, size, size, 3).astype(np.float32))
  taps = jnp.asarray(random_taps(rng, 'vertical', size, 3)) / size
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
  spectra = {m: np.asarray(prior.row_spectrum(x, m)) for m in ('fft', 'matmul')}
  close(spectra['matmul'], spectra['fft'])
  products = prior.combine_rows(prior.taps_spectrum(taps, size), jnp.asarray(spectra['fft']))
  close(prior.row_signal(products, 'matmul'), prior.row_signal(products, 'fft'))
  close(prior.causal_filter(x, taps, 'vertical', 'matmul'),
        prior.causal_filter(x, taps, 'vertical', 'fft'))


@pytest.mark.parametrize('stack,method', FILTERS)
def test_filter_never_sees_later_positions_even_through_round_off(stack, method):
  """Changing a later input leaves earlier outputs bit-for-bit unchanged."""
  size = 8
  rng = np.random.RandomState(1)
  x = rng.randn(1, size, size, 4).astype(np.float32)
  taps = random_taps(rng, stack, size, 4)
  base = np.asarray(prior.causal_filter(x, taps, stack, method))
  for i, j in [(3, 4), (7, 7), (0, 5)]:
    x2 = x.copy()
    x2[0, i, j] += 100.0
    changed = np.asarray(prior.causal_filter(x2, taps, stack, method))
    # Vertical outputs may use the whole current row; horizontal ones only columns <= j.
    if stack == 'vertical':
      np.testing.assert_array_equal(changed[0, :i], base[0, :i])
    else:
      np.testing.assert_array_equal(changed[0, i, :j], base[0, i, :j])
      np.testing.assert_array_equal(np.delete(changed[0], i, 0), np.delete(base[0], i, 0))
    assert np.abs(changed - base).max() > 1.0  # and the change does reach later outputs


@pytest.mark.parametrize('stack,method', FILTERS)
@pytest.mark.parametrize('mode', ['forward', 'reverse'])
def test_jacobian_is_exactly_zero_from_later_positions(stack, method, mode):
  """d output[i, j] / d input[r, s] is exactly 0 wherever (r, s) is not causal for (i, j), in the
  forward (jvp) and the backward (vjp, what training uses) pass alike."""
  size, channels = 6, 2
  rng = np.random.RandomState(3)
  x = jnp.asarray(rng.randn(1, size, size, channels).astype(np.float32))
  taps = jnp.asarray(random_taps(rng, stack, size, channels))
  jacobian = jax.jacfwd if mode == 'forward' else jax.jacrev
  j_all = np.asarray(jacobian(lambda x: prior.causal_filter(x, taps, stack, method))(x))
  # [i, j, r, s]: the largest magnitude over examples and channels
  j_IJRS = np.abs(j_all[0, :, :, :, 0]).max(axis=(2, -1))
  i, j, r, s = np.meshgrid(*[np.arange(size)] * 4, indexing='ij')
  if stack == 'vertical':
    allowed = r <= i
  else:
    allowed = (r == i) & (s <= j)
  assert np.all(j_IJRS[~allowed] == 0.0)
  assert np.all(j_IJRS[allowed & ((i - r) < size) & (np.abs(j - s) < size)] > 0.0)


def test_one_row_of_the_toeplitz_product_is_the_full_products_row():
  """The sampler's step (combine_rows with `row`) against the full filter's: the Toeplitz rows
  are the same exact copies, the products equal within float32 round-off."""
  size, channels = 6, 3
  rng = np.random.RandomState(4)
  s_KCAY = jnp.asarray(rng.randn(size, channels, 2, size).astype(np.float32))
  t_KCAIR = np.asarray(prior.causal_toeplitz(s_KCAY))
  z_KCRPB = jnp.asarray(rng.randn(size, channels, size, 2, 2).astype(np.float32))
  full = np.asarray(prior.combine_rows(s_KCAY, z_KCRPB))
  for i in range(size):
    row = jnp.int32(i)
    np.testing.assert_array_equal(np.asarray(prior.causal_toeplitz(s_KCAY, row))[..., 0, :],
                                  t_KCAIR[..., i, :])
    np.testing.assert_allclose(np.asarray(prior.combine_rows(s_KCAY, z_KCRPB, row))[:, :, :, 0],
                               full[:, :, :, i], rtol=0, atol=1e-6 * np.abs(full).max())
  assert np.all(t_KCAIR[..., np.triu_indices(size, 1)[0], np.triu_indices(size, 1)[1]] == 0.0)


def test_row_dft_choice():
  assert prior.row_dft_method(8, 'fft') == 'fft'
  expected = prior.ROW_DFT.get(jax.default_backend(), 'fft')
  assert prior.row_dft_method(prior.MATMUL_DFT_MAX_WIDTH) == expected
  assert prior.row_dft_method(prior.MATMUL_DFT_MAX_WIDTH + 1) == 'fft'  # long rows: FFT
  with pytest.raises(ValueError, match='row DFT'):
    prior.row_dft_method(8, 'dct')


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
