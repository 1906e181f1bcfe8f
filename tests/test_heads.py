"""Likelihood heads: normalised per subpixel, exact 8 bits/dim at zero logits, stable edges."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior import models
from freqprior.models import heads
from tests.conftest import tiny_config


@pytest.mark.parametrize('head', ['categorical', 'logistic_mixture'])
@pytest.mark.parametrize('rgb', [False, True])
def test_probabilities_of_the_256_values_sum_to_one(head, rgb):
  """For a subpixel (i, j, c), sum over its 256 values of p(x_c | x_<c, earlier pixels) = 1."""
  config = tiny_config(rgb=rgb, head=head, size=4)
  log_prob = models.build_log_prob(config, seed=1)
  channels = config.dataset.channels
  image = np.random.RandomState(0).randint(0, 256, (4, 4, channels)).astype(np.uint8)
  for i, j, c in [(0, 0, 0), (2, 1, channels - 1), (3, 3, channels // 2)]:
    batch = np.repeat(image[None], 256, axis=0)
    batch[:, i, j, c] = np.arange(256)
    logp = np.asarray(log_prob(batch, np.full((256,), 3)))[:, i, j, c]
    np.testing.assert_allclose(jax.nn.logsumexp(logp), 0.0, atol=2e-5)


def test_zero_logits_give_exactly_8_bits_per_dim():
  config = tiny_config(rgb=True, head='categorical')
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(0))
  params['output_head'] = jax.tree.map(jnp.zeros_like, params['output_head'])
  images = np.random.RandomState(0).randint(0, 256, (3, 8, 8, 3)).astype(np.uint8)
  log_probs = model.apply({'params': params}, images, jnp.array([0, 1, 2]))
  np.testing.assert_array_equal(log_probs, np.float32(-np.log(256.0)))  # every subpixel
  np.testing.assert_allclose(models.bits_per_dim(log_probs), 8.0, rtol=0, atol=1e-6)


def test_logistic_bins_finite_with_finite_gradients_for_extreme_parameters():
  x = jnp.array([-1.0, 1.0, 0.0, -1.0 + 2 / 255, 1.0 - 2 / 255])[:, None, None]
  mean = jnp.array([-1e4, -3.0, 0.0, 3.0, 1e4])[None, :, None]
  log_scale = jnp.array([-7.0, 0.0, 3.0])[None, None, :]

  def total(mean, log_scale):
    return jnp.sum(heads.logistic_bin_log_prob(x, mean, log_scale))

  lp = heads.logistic_bin_log_prob(x, mean, log_scale)
  assert bool(jnp.all(jnp.isfinite(lp))) and bool(jnp.all(lp <= 0))
  grads = jax.grad(total, argnums=(0, 1))(mean, log_scale)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_logistic_bins_telescope_to_one():
  values = jnp.arange(256)
  x = values / 127.5 - 1.0
  for mean, log_scale in [(0.3, -2.0), (-0.99, -7.0), (5.0, 1.0)]:
    total = jnp.sum(jnp.exp(heads.logistic_bin_log_prob(x, mean, log_scale)))
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


def test_mixture_head_gradients_finite_for_extreme_features():
  config = tiny_config(head='logistic_mixture', rgb=True)
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(0))
  images = np.random.RandomState(0).randint(0, 256, (2, 8, 8, 3)).astype(np.uint8)
  images[0, :2] = 0
  images[1, :2] = 255

  def loss(head_params):
    features = 1e3 * jnp.sign(jnp.sin(jnp.arange(8 * 8 * 16))).reshape(1, 8, 8, 16)
    head = heads.LogisticMixtureHead(3, 3, 16)
    return -jnp.sum(head.apply({'params': head_params}, jnp.repeat(features, 2, 0), images))

  value, grads = jax.value_and_grad(loss)(params['output_head'])
  assert np.isfinite(float(value))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
