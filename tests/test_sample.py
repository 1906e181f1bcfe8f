"""Samplers: cached == naive draw for draw, both follow the model's own conditionals, options."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior import models
from freqprior import sample
from freqprior.models import heads as heads_lib
from freqprior.models import layers
from freqprior.models import pixelcnn
from tests import sampling_helpers
from tests.conftest import tiny_config

NUM_IMAGES = 8
BF16_RTOL = 1e-2  # measured 1.1e-3 of the features' scale (float32: 2.6e-7 against 1e-5)
LABELS = np.arange(NUM_IMAGES, dtype=np.int32)
CASES = {  # each head with the prior off and on, grayscale and RGB, class-conditional
    'gray-categorical': dict(rgb=False, head='categorical', prior=False),
    'rgb-categorical-prior': dict(rgb=True, head='categorical', prior=True),
    'rgb-mixture': dict(rgb=True, head='logistic_mixture', prior=False),
    'gray-mixture-prior': dict(rgb=False, head='logistic_mixture', prior=True),
    # the large configs' placement: the prior in some blocks only, behind a bottleneck
    'gray-categorical-prior-last-bottleneck': dict(rgb=False, head='categorical', prior=True,
                                                   prior_channels=4, prior_blocks='last'),
    'gray-categorical-prior-position': dict(rgb=False, head='categorical', prior=True,
                                            position_embedding=True),
}


def make_case(name):
  options = dict(CASES[name])
  prior_channels = options.pop('prior_channels', 0)
  prior_blocks = options.pop('prior_blocks', 'all')
  position_embedding = options.pop('position_embedding', False)
  config = tiny_config(size=6, **options)
  config.model.prior_channels = prior_channels
  config.model.prior_blocks = prior_blocks
  config.model.position_embedding = position_embedding
  config.sample.num_images = config.sample.batch_size = NUM_IMAGES
  params = models.init_params(models.build_model(config), config, jax.random.key(7))
  if position_embedding:  # zero at init: make them matter, so the sampler's slices are checked
    params = randomize_position_embeddings(params, jax.random.key(11))
  return config, params


def randomize_position_embeddings(params, key):
  backbone = dict(params['backbone'])
  for k, name in zip(jax.random.split(key), ('v_pos', 'h_pos')):
    backbone[name] = jax.random.normal(k, backbone[name].shape, backbone[name].dtype)
  return dict(params, backbone=backbone)


def model_outputs(config, params, images, labels):
  """The full model on sampled images: categorical logits [N,H,W,C,256], or mixture params
  with the channel means conditioned on the images' earlier channels."""
  model = models.build_model(config)

  def run(m, images, labels):
    features = m.features(images, labels)
    if config.model.head == 'categorical':
      return m.output_head.logits(features, images)
    logit_pi, means, log_scales, coeffs = m.output_head.mixture_params(features)
    means = m.output_head.conditional_means(means, coeffs, heads_lib.to_unit_range(images))
    return logit_pi, means, log_scales

  return jax.jit(lambda p, x, y: model.apply({'params': p}, x, y, method=run))(
      params, images, labels)


@pytest.fixture(scope='module', params=list(CASES))
def case(request):
  config, params = make_case(request.param)
  draws = {method: sample.generate(params, config, LABELS, jax.random.key(3), method=method)
           for method in ('naive', 'cached')}
  return request.param, config, params, draws


def test_cached_equals_naive(case):
  name, config, _, draws = case
  naive, cached = draws['naive'], draws['cached']
  size, channels = config.dataset.image_size, config.dataset.channels
  assert naive.shape == (NUM_IMAGES, size, size, channels) and naive.dtype == np.uint8
  sampling_helpers.assert_same_draws(cached, naive)
  assert len({image.tobytes() for image in cached}) == NUM_IMAGES  # real, distinct samples
  assert 20 < cached.std() and 0 < cached.mean() < 255


def test_cached_features_match_the_full_model(case):
  """Teacher-forced on the naive draws: every position's cached features are the full model's,
  up to float32 round-off (a wrong cache or a leak from the future is O(1))."""
  _, config, params, draws = case
  full, stepped = sampling_helpers.cached_features(models.build_model(config), params,
                                                   draws['naive'], LABELS)
  sampling_helpers.assert_features_match(full, stepped, rtol=1e-5)


@pytest.mark.parametrize('name', ['rgb-categorical-prior', 'gray-mixture-prior'])
def test_bfloat16_cached_sampler_is_the_bfloat16_model(name):
  """In bfloat16 the two samplers round differently: features agree to bfloat16 precision, and
  draws stay identical until one lands near a tie."""
  config, _ = make_case(name)
  config.model.dtype = 'bfloat16'
  params = models.init_params(models.build_model(config), config, jax.random.key(7))
  draws = {method: sample.generate(params, config, LABELS, jax.random.key(3), method=method)
           for method in ('naive', 'cached')}
  full, stepped = sampling_helpers.cached_features(models.build_model(config), params,
                                                   draws['naive'], LABELS)
  sampling_helpers.assert_features_match(full, stepped, rtol=BF16_RTOL)
  sampling_helpers.assert_same_draws(draws['cached'], draws['naive'], min_identical=0.5)


def test_greedy_samples_are_the_models_argmax(case):
  """Temperature 0: every subpixel is the most likely of the 256 values under the model's own
  conditional given the sampled past (for the mixture: its exact bin probabilities, with the
  weights updated by the pixel's earlier channels), recomputed by one full forward pass."""
  _, config, params, _ = case
  images = sample.generate(params, config, LABELS, jax.random.key(0), temperature=0.0)
  np.testing.assert_array_equal(
      images, sample.generate(params, config, LABELS, jax.random.key(1), method='naive',
                              temperature=0.0))
  if config.model.head == 'categorical':
    np.testing.assert_array_equal(np.argmax(model_outputs(config, params, images, LABELS), -1),
                                  images)
    return
  channels = config.dataset.channels

  def conditionals(m, images, labels):
    """-> log p(x_c = k | sampled past) [256, N, H, W, C] from the head's own likelihood: the
    features see earlier pixels only, and channel c's likelihood does not read channels > c."""
    features = m.features(images, labels)
    scores = lambda c, k: m.output_head(features, images.at[..., c].set(k))[..., c]
    values = jnp.arange(256, dtype=images.dtype)
    return jnp.stack([jax.vmap(lambda k: scores(c, k))(values) for c in range(channels)], -1)

  logp_KNHWC = jax.jit(lambda p, x, y: models.build_model(config).apply(
      {'params': p}, x, y, method=conditionals))(params, images, LABELS)
  np.testing.assert_array_equal(np.argmax(logp_KNHWC, 0), images)


def test_draws_follow_the_models_conditionals():
  """Temperature 1 (categorical): the sampled subpixels' mean log-likelihood matches minus the
  mean entropy of the conditionals they were drawn from; temperature 2 lowers it."""
  config, params = make_case('gray-categorical')  # its sampler is already compiled
  labels = np.resize(LABELS, 192)
  stats = {}
  for temperature in (1.0, 2.0):
    images = sample.generate(params, config, labels, jax.random.key(5), temperature=temperature)
    logp_NHWCK = jax.nn.log_softmax(model_outputs(config, params, images, labels))
    logp = np.take_along_axis(np.asarray(logp_NHWCK), images[..., None].astype(int), -1)
    entropy = -np.sum(np.exp(logp_NHWCK) * logp_NHWCK, -1)
    gap_N = (logp[..., 0] + entropy).reshape(len(images), -1).mean(-1)
    stats[temperature] = gap_N.mean(), gap_N.std() / np.sqrt(len(gap_N))
  mean, stderr = stats[1.0]
  assert abs(mean) < 4 * stderr, stats
  assert stats[2.0][0] < -0.1, stats


@pytest.mark.parametrize('name', sorted(pixelcnn.INPUT_CONVS))
def test_input_conv_windows_are_the_models_receptive_fields(name):
  """The cached sampler slices each input conv's `window` out of the padded image: it must be
  exactly what the model's placed conv reads, and inside the padding."""
  conv, size = pixelcnn.INPUT_CONVS[name], 5
  module = layers.ShiftedConv(1, conv.kernel, conv.shift)
  x_1HW1 = jnp.zeros((1, size, size, 1))
  params = jax.tree.map(jnp.ones_like, module.init(jax.random.key(0), x_1HW1))
  (row, column), (kh, kw) = conv.window, conv.kernel
  top, left, right = pixelcnn.input_padding()
  assert -row <= top and -column <= left and column + kw - 1 <= right
  for i, j in np.ndindex(size, size):
    out = lambda x, i=i, j=j: conv.place(module.apply(params, x))[0, i, j, 0]
    read_HW = np.asarray(jax.grad(out)(x_1HW1))[0, ..., 0] != 0
    expected_HW = np.zeros((size + kh, size + kw), bool)  # room for windows past the edge
    if i >= conv.offset[0] and j >= conv.offset[1]:
      expected_HW[max(i + row, 0):i + row + kh, max(j + column, 0):j + column + kw] = True
    np.testing.assert_array_equal(read_HW, expected_HW[:size, :size], err_msg=f'{(i, j)}')


def test_images_do_not_depend_on_the_batching():
  config, params = make_case('gray-mixture-prior')
  whole = sample.generate(params, config, LABELS[:5], jax.random.key(3))
  config.sample.batch_size = 2
  np.testing.assert_array_equal(sample.generate(params, config, LABELS[:5], jax.random.key(3)),
                                whole)
  other_seed = sample.generate(params, config, LABELS[:5], jax.random.key(4))
  assert np.any(other_seed != whole)


def test_bad_options_are_clear_errors():
  config = tiny_config(size=6)
  params = models.init_params(models.build_model(config), config, jax.random.key(0))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match='temperature'):
    sample.generate(params, config, LABELS, key, temperature=-0.5)
  with pytest.raises(ValueError, match='method'):
    sample.generate(params, config, LABELS, key, method='beam')
  with pytest.raises(ValueError, match='num_classes'):
    sample.generate(params, config, np.array([3, 10]), key)
  with pytest.raises(ValueError, match='at least one image'):
    sample.generate(params, config, np.zeros((0,), np.int32), key)
  unconditional = tiny_config(size=6, conditional=False)
  with pytest.raises(ValueError, match='unconditional'):
    sample.generate(params, unconditional, LABELS, key)
