"""Sampling with the batch split over a 4-device mesh gives the images of one device."""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _subprocess_main():
  import jax  # pylint: disable=g-import-not-at-top
  from freqprior import models, sample  # pylint: disable=g-import-not-at-top
  from tests.conftest import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config(rgb=True, head='logistic_mixture', size=6)
  config.sample.batch_size = 6  # padded to 8: two images per device
  params = models.init_params(models.build_model(config), config, jax.random.key(0))
  labels = np.arange(10, dtype=np.int32)
  one_device = sample.generate(params, config, labels, jax.random.key(2))
  mesh = jax.make_mesh((4,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  replicated = jax.device_put(params,
                              jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  result = {'devices': jax.device_count(), 'one_device': one_device.tolist()}
  for method in ('cached', 'naive'):
    result[method] = sample.generate(replicated, config, labels, jax.random.key(2),
                                     method=method).tolist()
  print(json.dumps(result))


def test_sharded_sampling_matches_one_device():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, __file__], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['devices'] == 4
  one_device = np.asarray(result['one_device'])
  assert one_device.shape == (10, 6, 6, 3) and len(np.unique(one_device)) > 100
  np.testing.assert_array_equal(result['cached'], one_device)
  np.testing.assert_array_equal(result['naive'], one_device)


if __name__ == '__main__':
  _subprocess_main()
