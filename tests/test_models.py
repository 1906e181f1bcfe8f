"""The public likelihood API and its input checks."""
import importlib
import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import cifar100, digits
from freqprior import mesh as mesh_lib
from freqprior import models
from freqprior.models import pixelcnn
from freqprior import state as state_lib
from freqprior import validate
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


SHIPPED = ['digits', 'digits_text', 'mnist', 'cifar100', 'cifar100_text', 'imagenet32',
           'imagenet64', 'coco']


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_configs_build_the_model_their_docstring_states(name):
  """Parameter count and prior placement as the config's 'Model:' line says (abstractly: no
  compute), and the config passes validation."""
  module = importlib.import_module(f'configs.{name}')
  config = module.get_config()
  stated = re.search(r'Model: +([\d.]+)([KM]) parameters, the frequency prior in blocks '
                     r'([\d, ]+)\.', module.__doc__)
  assert stated, f'configs/{name}.py docstring lacks its Model: line'
  model = models.build_model(config)
  params = jax.eval_shape(lambda rng: models.init_params(model, config, rng), jax.random.key(0))
  count = sum(p.size for p in jax.tree.leaves(params))
  expected = float(stated[1]) * {'K': 1e3, 'M': 1e6}[stated[2]]
  assert abs(count - expected) <= 0.005 * expected, (count, expected)
  blocks = {int(b) for b in stated[3].split(',')}
  per_block = jax.eval_shape(lambda p: pixelcnn.block_params(p, model.settings), params['backbone'])
  for stack in ('v', 'h'):
    found = {int(k[len(stack) + 6:]) for k in per_block if k.startswith(f'{stack}_prior')}
    assert found == blocks == set(model.settings.prior_blocks), (stack, found, blocks)
  validate.check(config, 'train', devices=jax.devices()[:1], num_processes=1)


def _shardings_on_8_devices():
  """Run as `python tests/test_models.py` with 8 fake devices: for each shipped config, the
  fraction of parameter elements its mesh shards, and the unsharded large parameters."""
  result = {}
  for name in SHIPPED:
    config = importlib.import_module(f'configs.{name}').get_config()
    model = models.build_model(config)
    abstract = state_lib.abstract_state(model, config, state_lib.make_optimizer(config))
    shardings = mesh_lib.state_shardings(abstract, mesh_lib.make_mesh(config), config)
    leaves = zip(jax.tree.leaves(abstract.params), jax.tree.leaves(shardings.params))
    sizes = [(p.size, s.is_fully_replicated) for p, s in leaves]
    large = [replicated for size, replicated in sizes if size >= config.mesh.fsdp_min_size]
    result[name] = {'fsdp': config.mesh.fsdp,
                    'sharded': sum(n for n, r in sizes if not r) / sum(n for n, _ in sizes),
                    'large_replicated': sum(large)}
  print(json.dumps(result))


def test_fsdp_configs_shard_their_large_parameters_on_8_devices():
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='8', PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, __file__], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert any(r['fsdp'] for r in result.values())
  for name, r in result.items():
    if r['fsdp']:
      assert r['large_replicated'] == 0 and r['sharded'] > 0.95, (name, r)
    else:
      assert r['sharded'] == 0, (name, r)


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


if __name__ == '__main__':
  _shardings_on_8_devices()
