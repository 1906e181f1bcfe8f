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
  log_scale = jnp.array([-7.0, 0.0, 3.0, 8.0, 20.0, 120.0])[None, None, :]  # no upper clamp

  def total(mean, log_scale):
    return jnp.sum(heads.logistic_bin_log_prob(x, mean, log_scale))

  lp = heads.logistic_bin_log_prob(x, mean, log_scale)
  assert bool(jnp.all(jnp.isfinite(lp))) and bool(jnp.all(lp <= 0))
  grads = jax.grad(total, argnums=(0, 1))(mean, log_scale)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_logistic_bins_telescope_to_one():
  values = jnp.arange(256)
  x = values / 127.5 - 1.0
  for mean, log_scale in [(0.3, -2.0), (-0.99, -7.0), (5.0, 1.0), (0.0, 20.0), (-40.0, 6.0)]:
    total = jnp.sum(jnp.exp(heads.logistic_bin_log_prob(x, mean, log_scale)))
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


def test_huge_scales_give_the_flat_limit():
  """Scale s >> 1: an inner bin holds 2/255 * density(0) = 2/255 / (4 s), each edge bin ~half."""
  x = jnp.array([-1.0, -0.5, 0.0, 1.0])
  for log_scale in (12.0, 20.0, 90.0, 200.0):  # exp(-200) underflows float32
    lp = heads.logistic_bin_log_prob(x, 0.0, log_scale)
    inner = np.log(2 / 255) - np.log(4.0) - log_scale
    edge = -np.logaddexp(0.0, (1 - 1 / 255) * np.exp(-log_scale))  # log sigmoid(-254/255 / s)
    np.testing.assert_allclose(lp, [edge, inner, inner, edge], rtol=1e-6)


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


def reference_bin_log_prob(x, mean, log_scale):
  """float64 log P(bin of x), the PixelCNN++ definition: sigma((x + 1/255 - mu) / s) minus
  sigma((x - 1/255 - mu) / s), edge bins open. Both CDFs are taken in log space on the side of
  the mean where the bin lies, so their difference neither underflows nor cancels."""
  s = np.exp(np.maximum(log_scale, -7.0))  # the lower clamp PixelCNN++ applies
  a, b = (x + 1 / 255 - mean) / s, (x - 1 / 255 - mean) / s
  log_cdf = lambda z: -np.logaddexp(0.0, -z)  # log sigma(z)
  left = a + b <= 0  # sigma(a) - sigma(b) there, else the same as sigma(-b) - sigma(-a)
  hi, lo = np.where(left, a, -b), np.where(left, b, -a)
  middle = log_cdf(hi) + np.log1p(-np.exp(log_cdf(lo) - log_cdf(hi)))
  return np.where(x == -1.0, log_cdf(a), np.where(x == 1.0, log_cdf(-b), middle))


def reference_mixture_log_probs(logit_pi_NM, means_NCM, log_scales_NCM, raw_coeffs_NPM, values_NC):
  """float64 log p(x_c | x_<c): joint per pixel sum_i pi_i prod_c P(x_c | i), G's mean shifted by
  alpha x_R, B's by beta x_R + gamma x_G; conditional = log p(x_0..x_c) - log p(x_0..x_c-1).

  Also returns how far float32 may be off because it holds each mean only to a few ulps: a bin's
  log mass moves by at most |d mu| / s (its derivative is (sigma(a) + sigma(b) - 1) / s), and
  component i's share of d log p(x_0..x_c) is its posterior weight given x_0..x_c.
  """
  x_NC = values_NC / 127.5 - 1.0
  coeffs_NPM = np.tanh(raw_coeffs_NPM)
  means_NCM = means_NCM.copy()
  if x_NC.shape[1] == 3:
    alpha, beta, gamma = coeffs_NPM[:, 0], coeffs_NPM[:, 1], coeffs_NPM[:, 2]
    means_NCM[:, 1] += alpha * x_NC[:, 0, None]
    means_NCM[:, 2] += beta * x_NC[:, 0, None] + gamma * x_NC[:, 1, None]
  lp_NCM = reference_bin_log_prob(x_NC[..., None], means_NCM, log_scales_NCM)
  log_pi_NM = logit_pi_NM - np.logaddexp.reduce(logit_pi_NM, axis=-1, keepdims=True)
  upto_NCM = log_pi_NM[:, None] + np.cumsum(lp_NCM, axis=1)
  joint_NC = np.logaddexp.reduce(upto_NCM, axis=-1)
  logp_NC = joint_NC - np.pad(joint_NC, ((0, 0), (1, 0)))[:, :-1]
  posterior = lambda l_NCM: np.exp(l_NCM - np.logaddexp.reduce(l_NCM, axis=-1, keepdims=True))
  before_NCM = np.concatenate([log_pi_NM[:, None], upto_NCM[:, :-1]], axis=1)
  shift_NCM = 2.0 ** -22 * (1.0 + np.abs(means_NCM)) / np.exp(np.maximum(log_scales_NCM, -7.0))
  slack_NC = np.sum((posterior(upto_NCM) + posterior(before_NCM)) * np.cumsum(shift_NCM, 1), -1)
  return logp_NC, slack_NC


def head_with_given_params(raw_NJM):
  """A LogisticMixtureHead whose mixture_params are raw_NJM (rows as mixture_params splits them)
  at the features it is given: identity weights, features raw + 32 (> 0, so elu passes them)."""
  n, rows, m = raw_NJM.shape
  width = rows * m
  features_NF = (raw_NJM.reshape(n, width) + 32.0).astype(np.float32)
  # raw as float32 sees it: f - 32 is exact in float32 for f in [16, 64] (Sterbenz)
  seen_NJM = features_NF.astype(np.float64).reshape(n, rows, m) - 32.0
  eye = jnp.eye(width, dtype=jnp.float32)
  params = {'hidden': {'kernel': eye, 'bias': jnp.zeros(width)},
            'out': {'kernel': eye, 'bias': jnp.full(width, -32.0)}}
  return params, features_NF[:, None, None], seen_NJM


@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('mixtures', [1, 2, 5])
def test_mixture_head_matches_a_float64_pixelcnnpp_reference(channels, mixtures):
  """Per-subpixel log-likelihoods equal an independent float64 evaluation of the PixelCNN++
  likelihood, for log-scales in [-9, 8] (clamped at -7), means at, next to and beyond the edge
  bins, and pixels in the edge bins."""
  rng = np.random.RandomState(channels * 10 + mixtures)
  n, c, m = 600, channels, mixtures
  values_NC = rng.randint(0, 256, (n, c))
  values_NC = np.where(rng.rand(n, c) < 0.3, rng.choice([0, 1, 254, 255], (n, c)), values_NC)
  edges = np.array([-1.0, -1 + 1 / 255, -1 + 2 / 255, 1.0, 1 - 1 / 255, 1 - 2 / 255, -1.3, 1.3,
                    -3.0, 3.0, -12.0, 12.0])
  means_NCM = np.where(rng.rand(n, c, m) < 0.5, rng.choice(edges, (n, c, m)),
                       rng.uniform(-1.0, 1.0, (n, c, m)))
  near_NCM = values_NC[..., None] / 127.5 - 1.0 + rng.normal(0, 0.01, (n, c, m))
  means_NCM = np.where(rng.rand(n, c, m) < 0.2, near_NCM, means_NCM)
  log_scales_NCM = np.where(rng.rand(n, c, m) < 0.3, rng.choice([-9.0, -7.0, 3.0, 5.0, 8.0],
                                                                (n, c, m)),
                            rng.uniform(-7.0, 8.0, (n, c, m)))
  raw_NJM = np.concatenate([rng.normal(0, 2, (n, 1, m)), means_NCM, log_scales_NCM,
                            rng.normal(0, 1.5, (n, c * (c - 1) // 2, m))], axis=1)
  params, features_N11F, seen_NJM = head_with_given_params(raw_NJM)
  head = heads.LogisticMixtureHead(c, m, raw_NJM.shape[1] * m)
  images_N11C = values_NC.astype(np.uint8)[:, None, None]
  logp_NC = np.asarray(head.apply({'params': params}, features_N11F, images_N11C))[:, 0, 0]
  expected_NC, slack_NC = reference_mixture_log_probs(
      seen_NJM[:, 0], seen_NJM[:, 1:1 + c], seen_NJM[:, 1 + c:1 + 2 * c], seen_NJM[:, 1 + 2 * c:],
      values_NC.astype(np.float64))
  assert np.all(np.isfinite(expected_NC))
  # 1e-4 nats, float32's resolution of large log-likelihoods, and of the means
  tol_NC = 1e-4 + 3e-7 * np.abs(expected_NC) + slack_NC
  worst = np.max(np.abs(logp_NC - expected_NC) / tol_NC)
  assert worst <= 1.0, worst
