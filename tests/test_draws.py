"""One temperature for both heads and both sampling paths: p_T(k) = p(k)^(1/T) / Z of each
subpixel's exact 256-way conditional, drawn alike with and without guidance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior.models import guidance
from freqprior.models import heads
from freqprior.sampling import draws

FEATURES = 8


def bound_head(kind, channels, seed=0):
  """A head with random parameters and features [B, F] for it."""
  module = (heads.CategoricalHead(channels, 16) if kind == 'categorical'
            else heads.LogisticMixtureHead(channels, 4, 16))
  features_BF = jax.random.normal(jax.random.key(seed), (6, FEATURES))
  pixel_B11C = jnp.zeros((6, 1, 1, channels), jnp.uint8)
  params = module.init(jax.random.key(seed + 1), features_BF[:, None, None], pixel_B11C)
  if kind != 'categorical':  # log-scales near -3 rather than 0: mass inside, not on the edges
    out = params['params']['out']
    bias_JM = out['bias'].reshape(-1, module.num_mixtures).at[1 + channels:1 + 2 * channels].add(-3)
    params = {'params': dict(params['params'], out=dict(out, bias=bias_JM.reshape(-1)))}
  return module, params, features_BF


@pytest.mark.parametrize('kind', ['categorical', 'logistic_mixture'])
@pytest.mark.parametrize('channels', [1, 3])
def test_guided_draws_with_equal_halves_are_the_unguided_draws(kind, channels):
  """Conditional half = unconditional half: the guided distribution is the unguided one, so at
  scale 1 + 1e-6 (the guided code path) the same noise gives the same pixels at every T."""
  module, params, features_BF = bound_head(kind, channels)
  batch = features_BF.shape[0]
  keys_B = jax.random.split(jax.random.key(2), batch)
  doubled_keys = jnp.concatenate([keys_B, keys_B])
  doubled_BF = jnp.concatenate([features_BF, features_BF])

  def unguided(params, index, temperature):
    head = module.bind(params)
    noise = draws.pixel_noise(head, keys_B, index)
    return draws.draw_pixel(head, lambda _: features_BF, noise, temperature, batch)

  def guided(params, index, temperature, scale):
    head = module.bind(params)
    noise = draws.pixel_noise(head, doubled_keys, index)
    return guidance.draw_guided_pixel(head, lambda _: doubled_BF, noise, temperature, 2 * batch,
                                      scale)

  unguided = jax.jit(unguided)
  guided = jax.jit(guided, static_argnums=3)
  for temperature in (0.0, 0.5, 1.0, 1.7):
    t = jnp.float32(temperature)
    drawn = np.stack([unguided(params, index, t) for index in range(20)])
    for scale in (1.0, 1.0 + 1e-6):
      both = np.stack([guided(params, index, t, scale) for index in range(20)])
      np.testing.assert_array_equal(both[:, :batch], drawn, err_msg=f'T={temperature} s={scale}')
      np.testing.assert_array_equal(both[:, batch:], drawn)
    assert temperature == 0 or len(np.unique(drawn)) > 5  # real draws, not one value


@pytest.mark.parametrize('channels', [1, 3])
def test_mixture_value_log_probs_are_the_heads_likelihood(channels):
  """The 256-way distribution the samplers draw from is exp of the head's own per-subpixel
  log-likelihood at each candidate value, and sums to 1."""
  module, params, features_BF = bound_head('logistic_mixture', channels, seed=3)
  features_BF = features_BF.at[0].multiply(30.0)  # extreme scales and means
  head = module.bind(params)
  mixture = [p[:, 0, 0] for p in head.mixture_params(features_BF[:, None, None])]
  pixel_BC = jnp.asarray(np.random.RandomState(0).randint(0, 256, (6, channels)), jnp.int32)
  pixel_BC = pixel_BC.at[1].set(0).at[2].set(255)  # edge bins as earlier channels
  apply = lambda f, x: module.apply(params, f, x)
  for c in range(channels):
    logp_BK = heads.mixture_value_log_probs(*mixture, pixel_BC, c)
    expected_BK = guidance.subpixel_log_probs(apply, features_BF, pixel_BC, c)
    np.testing.assert_allclose(np.exp(logp_BK), np.exp(expected_BK), rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.exp(logp_BK).sum(-1), 1.0, atol=1e-5)
    later = pixel_BC.at[:, c:].set(7)
    np.testing.assert_array_equal(heads.mixture_value_log_probs(*mixture, later, c), logp_BK)


def test_mixture_draws_follow_the_tempered_distribution():
  """20000 draws of one RGB pixel: channel 0's values, and channel 1's, which the sampler draws
  given channel 0, have the CDFs of p_T (T = 1 and 0.5) to 0.02."""
  module, params, features_BF = bound_head('logistic_mixture', 3, seed=5)
  n = 20000
  head = module.bind(params)
  one_BF = features_BF[:1]
  mixture = [p[:, 0, 0] for p in head.mixture_params(one_BF[:, None, None])]
  keys_N = jax.random.split(jax.random.key(9), n)
  noise = draws.pixel_noise(head, keys_N, 0)
  for temperature in (1.0, 0.5):
    drawn_NC = np.asarray(draws.draw_pixel(head, lambda _: jnp.repeat(one_BF, n, 0), noise,
                                           jnp.float32(temperature), n))
    tempered = lambda logp: jax.nn.softmax(logp / temperature, axis=-1)
    p0_K = tempered(heads.mixture_value_log_probs(*mixture, jnp.zeros((1, 3), jnp.int32), 0))[0]
    every_r_KC = jnp.zeros((256, 3), jnp.int32).at[:, 0].set(jnp.arange(256))
    many = [jnp.repeat(p, 256, 0) for p in mixture]
    p1_given_r_KK = tempered(heads.mixture_value_log_probs(*many, every_r_KC, 1))
    p1_K = p0_K @ p1_given_r_KK
    for c, p_K in ((0, p0_K), (1, p1_K)):
      empirical_K = np.bincount(drawn_NC[:, c], minlength=256) / n
      gap = np.abs(np.cumsum(empirical_K) - np.cumsum(np.asarray(p_K))).max()
      assert gap < 0.02, (temperature, c, gap)


def test_draw_from_log_probs_greedy_and_edges():
  logp_BK = jnp.log(jnp.zeros((3, 256)).at[0, 17].set(0.7).at[0, 200].set(0.3)
                    .at[1, 0].set(1.0).at[2, 255].set(1.0))
  for u in (0.0, 0.5, 1.0 - 2 ** -24):
    uniform_B = jnp.full((3,), u)
    drawn = heads.draw_from_log_probs(logp_BK, jnp.float32(1.0), uniform_B)
    np.testing.assert_array_equal(drawn, [17 if u < 0.7 else 200, 0, 255])
    np.testing.assert_array_equal(heads.draw_from_log_probs(logp_BK, jnp.float32(0.0), uniform_B),
                                  [17, 0, 255])
