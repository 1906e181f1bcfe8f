"""Causality of the whole model: no subpixel's likelihood depends on a later one, no blind spot."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior import models
from freqprior.models import pixelcnn
from freqprior.models.causality import causality_deviation
from tests.conftest import tiny_config

# Exact: an earlier subpixel's log-likelihood is bit-for-bit unchanged (causality_deviation compares
# at equal batch positions, so no GEMM rounding differences enter).
TOLERANCE = 0.0


@pytest.mark.parametrize('prior', [True, False], ids=['prior', 'no_prior'])
@pytest.mark.parametrize('head', ['categorical', 'logistic_mixture'])
@pytest.mark.parametrize('rgb', [False, True], ids=['gray', 'rgb'])
def test_no_subpixel_depends_on_a_later_one(rgb, head, prior):
  config = tiny_config(rgb=rgb, head=head, prior=prior, size=8 if not rgb else 6, num_blocks=3)
  log_prob = models.build_log_prob(config, seed=2)
  size, channels = config.dataset.image_size, config.dataset.channels
  image = np.random.RandomState(3).randint(0, 256, (size, size, channels)).astype(np.uint8)
  leak, own_change = causality_deviation(log_prob, image, label=4)
  assert leak <= TOLERANCE
  assert own_change > 1e-4  # each perturbation does move its own subpixel's likelihood


def test_prior_bottleneck_is_causal():
  config = tiny_config(rgb=True, head='logistic_mixture', size=6, num_blocks=2)
  config.model.prior_channels = 4
  log_prob = models.build_log_prob(config, seed=5)
  image = np.random.RandomState(0).randint(0, 256, (6, 6, 3)).astype(np.uint8)
  leak, own_change = causality_deviation(log_prob, image, label=1)
  assert leak <= TOLERANCE and own_change > 1e-4


def test_position_embedding_is_causal():
  config = tiny_config(size=6, num_blocks=2)
  config.model.position_embedding = True
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(0))
  backbone = dict(params['backbone'])
  for k, name in zip(jax.random.split(jax.random.key(1)), ('v_pos', 'h_pos')):
    assert backbone[name].shape == (6, 6, 16)
    backbone[name] = jax.random.normal(k, backbone[name].shape)  # zero at init
  params = dict(params, backbone=backbone)
  apply = jax.jit(lambda x, y: model.apply({'params': params}, x, y))
  log_prob = lambda images, labels=None: apply(
      jnp.asarray(images), None if labels is None else jnp.asarray(labels, jnp.int32))
  image = np.random.RandomState(0).randint(0, 256, (6, 6, 1)).astype(np.uint8)
  leak, own_change = causality_deviation(log_prob, image, label=3)
  assert leak <= TOLERANCE and own_change > 1e-4
  # The embeddings do change the likelihood (per position).
  plain = models.build_model(config)
  zero = dict(params, backbone=dict(backbone, v_pos=0 * backbone['v_pos'],
                                    h_pos=0 * backbone['h_pos']))
  assert not np.allclose(log_prob(image[None], [3]),
                         plain.apply({'params': zero}, image[None], jnp.array([3])))


def test_input_corruption_is_training_only():
  config = tiny_config(size=6, num_blocks=2)
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(0))
  config.model.input_corruption = 0.3
  corrupting = models.build_model(config)
  images = np.random.RandomState(0).randint(0, 256, (4, 6, 6, 1)).astype(np.uint8)
  labels = jnp.arange(4)
  rngs = {'dropout': jax.random.key(2)}
  np.testing.assert_array_equal(model.apply({'params': params}, images, labels),
                                corrupting.apply({'params': params}, images, labels))
  clean = model.apply({'params': params}, images, labels, train=True, rngs=rngs)
  noisy = corrupting.apply({'params': params}, images, labels, train=True, rngs=rngs)
  assert not np.allclose(clean, noisy)


def test_images_in_a_batch_do_not_interact():
  config = tiny_config(rgb=True, head='logistic_mixture')
  log_prob = models.build_log_prob(config)
  images = np.random.RandomState(0).randint(0, 256, (4, 8, 8, 3)).astype(np.uint8)
  labels = np.array([0, 1, 2, 3])
  base = np.asarray(log_prob(images, labels))
  images[2] = 255 - images[2]
  changed = np.asarray(log_prob(images, labels))
  np.testing.assert_allclose(np.delete(changed, 2, 0), np.delete(base, 2, 0), rtol=0, atol=1e-6)
  assert np.abs(changed[2] - base[2]).max() > 1e-3


def test_labels_change_the_likelihood():
  log_prob = models.build_log_prob(tiny_config())
  images = np.zeros((2, 8, 8, 1), np.uint8)
  logp = np.asarray(log_prob(images, np.array([1, 7])))
  assert np.abs(logp[0] - logp[1]).max() > 1e-4


def feature_dependence(config):
  """|d features(i, j) / d input(i', j')| summed over channels, as [H*W, H*W] (raster order)."""
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(0))
  size = config.dataset.image_size
  x = jax.random.uniform(jax.random.key(1), (1, size, size, 1), minval=-1, maxval=1)

  def features(x_HW):
    f_BHWF = model.apply({'params': params}, x_HW[None, ..., None], jnp.array([1]),
                         method=lambda m, x, y: m.backbone(x, y))
    return jnp.sum(f_BHWF[0] * jnp.linspace(0.5, 1.5, f_BHWF.shape[-1]), -1)

  jac = jax.jit(jax.jacrev(features))(x[0, ..., 0])  # [i, j, i', j']
  return np.abs(np.asarray(jac)).reshape(size * size, size * size)


@pytest.mark.parametrize('prior', [True, False], ids=['prior', 'no_prior'])
def test_receptive_field_is_exactly_the_past(prior):
  """Features at a pixel have zero gradient w.r.t. the pixel itself and all later pixels."""
  config = tiny_config(prior=prior, num_blocks=3)
  dependence = feature_dependence(config)
  future_or_self = np.triu(np.ones_like(dependence, bool))
  assert dependence[future_or_self].max() == 0.0
  assert dependence[~future_or_self].max() > 0.0


@pytest.mark.parametrize('prior,num_blocks', [(False, 7), (True, 1)], ids=['deep', 'prior'])
def test_no_blind_spot(prior, num_blocks):
  """On 8x8, every pixel's features depend on every earlier pixel (deep stack, or one prior)."""
  config = tiny_config(prior=prior, num_blocks=num_blocks)
  dependence = feature_dependence(config)
  past = np.tril(np.ones_like(dependence, bool), k=-1)
  relative = dependence / dependence.max()
  assert relative[past].min() > 1e-7, np.argwhere(past & (relative <= 1e-7))[:5]


def test_block_scan_is_one_scan_in_the_jaxpr_and_straight_line_on_cpu(monkeypatch):
  """XLA:CPU runs convolution gradients inside a while loop an order of magnitude slower, so
  its program unrolls the scanned blocks; the jaxpr keeps one scan (a small graph)."""
  config = tiny_config(num_blocks=4)
  model = models.build_model(config)
  images, labels = models.dummy_inputs(config, 2)
  params = models.init_params(model, config, jax.random.key(0))
  grad = jax.grad(lambda p: model.apply({'params': p}, images, labels).sum())
  assert str(jax.make_jaxpr(grad)(params)).count('scan[') == 2  # forward and its transpose
  lowered = lambda: jax.jit(lambda p: grad(p)).lower(params).as_text()  # traced anew
  assert 'while' not in lowered()
  monkeypatch.setattr(pixelcnn, 'UNROLLED_BACKENDS', ())
  assert 'while' in lowered()


def test_initialisation_keeps_the_loop_and_draws_what_the_unrolled_loop_draws(monkeypatch):
  """Initialising compiles every parameter's draw, so it compiles one group's, looped."""
  config = tiny_config(prior=False, num_blocks=2)
  model = models.build_model(config)
  inputs = models.dummy_inputs(config)
  unrolls = lambda: [eqn.params['unroll'] for eqn in jax.make_jaxpr(
      lambda rng: model.init(rng, *inputs))(jax.random.key(0)).eqns
                     if eqn.primitive.name == 'scan']
  assert unrolls() == [1]
  looped = models.init_params(model, config, jax.random.key(0))  # traced anew at each call
  scanned_groups = pixelcnn.scanned_groups
  monkeypatch.setattr(pixelcnn, 'scanned_groups', lambda s, initializing: scanned_groups(s))
  assert unrolls() == [2]
  unrolled = models.init_params(model, config, jax.random.key(0))
  assert jax.tree.structure(looped) == jax.tree.structure(unrolled)
  for a, b in zip(jax.tree.leaves(looped), jax.tree.leaves(unrolled)):
    np.testing.assert_array_equal(a, b)
