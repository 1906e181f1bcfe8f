"""The public likelihood API and its input checks."""
import importlib

import jax
import numpy as np
import pytest

from configs import cifar100, digits
from freqprior import models
from tests.conftest import tiny_config


@pytest.mark.parametrize('config_module', [digits, cifar100])
def test_build_log_prob_contract(config_module):
  config = config_module.get_config()
  config.model.update(width=8, num_blocks=1, head_width=8, prior_blocks='last', prior_channels=4)
  size, channels = config.dataset.image_size, config.dataset.channels
  log_prob = models.build_log_prob(config, seed=0)
  images = np.random.RandomState(0).randint(0, 256, (2, size, size, channels)).astype(np.uint8)
  out = log_prob(images, np.array([0, 1], np.int32))
  assert out.shape == (2, size, size, channels) and out.dtype == np.float32
  assert np.all(np.asarray(out) <= 0) and np.all(np.isfinite(out))
  unconditional = log_prob(images)  # labels=None: the null label
  assert not np.allclose(unconditional, out)
  np.testing.assert_array_equal(models.build_log_prob(config, seed=0)(images), unconditional)


@pytest.mark.parametrize('name', ['digits', 'digits_text', 'cifar100', 'cifar100_text',
                                  'imagenet32', 'imagenet64', 'coco'])
def test_shipped_configs_build(name):
  """Every shipped model (its prior placement included) initializes, abstractly: no compute."""
  config = importlib.import_module(f'configs.{name}').get_config()
  model = models.build_model(config)
  params = jax.eval_shape(lambda rng: models.init_params(model, config, rng), jax.random.key(0))
  assert sum(p.size for p in jax.tree.leaves(params)) > 0
  if name in ('cifar100', 'imagenet32', 'imagenet64', 'coco'):
    assert 0 < len(model.prior_blocks) < config.model.num_blocks


@pytest.mark.parametrize('size', [8, 16, 64])
def test_square_sizes_from_8_to_64(size):
  config = tiny_config(rgb=True, size=size, width=8, num_blocks=1,
                       head='logistic_mixture')
  images = np.zeros((1, size, size, 3), np.uint8)
  assert models.build_log_prob(config)(images).shape == (1, size, size, 3)


def test_bad_inputs_are_clear_errors():
  config = tiny_config()
  log_prob = models.build_log_prob(config)
  good = np.zeros((2, 8, 8, 1), np.uint8)
  with pytest.raises(ValueError, match='image_size'):
    log_prob(np.zeros((2, 16, 16, 1), np.uint8))
  with pytest.raises(ValueError, match='uint8'):
    log_prob(good.astype(np.float32))
  with pytest.raises(ValueError, match='num_classes'):
    log_prob(good, np.array([0, 10]))
  with pytest.raises(ValueError, match='text'):
    log_prob(good, prompts=['a digit', 'another digit'])
  with pytest.raises(ValueError, match='unconditional'):
    models.build_log_prob(tiny_config(conditional=False))(good, np.array([0, 1]))
  bad_head = tiny_config(head='gaussian')
  with pytest.raises(ValueError, match='config.model.head'):
    models.build_log_prob(bad_head)


def test_prior_block_spec():
  assert models.prior_block_indices('all', 4) == (0, 1, 2, 3)
  assert models.prior_block_indices('last', 4) == (3,)
  assert models.prior_block_indices('2,0', 4) == (0, 2)
  assert models.prior_block_indices('all', 4, enabled=False) == ()
  with pytest.raises(ValueError, match='prior_blocks'):
    models.prior_block_indices('5', 4)
  with pytest.raises(ValueError, match='prior_blocks'):
    models.prior_block_indices('every', 4)
