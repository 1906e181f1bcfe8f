"""Mesh construction, and the sharded train step on 8 fake CPU devices versus one device.

Run as a script (`python tests/test_mesh.py`), this file is the 8-device subprocess: XLA_FLAGS
must be set before jax is imported, so it cannot run inside the pytest process.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config():
  from configs import digits
  config = digits.get_config()
  config.model.width = 8
  config.model.num_blocks = 1
  config.model.head_width = 16
  config.model.dropout = 0.1
  config.batch_size = 16
  config.eval.batch_size = 16
  config.mesh.fsdp_min_size = 0
  config.num_train_steps = 10
  config.optim.warmup_steps = 1  # full learning rate from the second step on
  return config


def run_steps(config, devices, num_steps=3):
  """Trains `num_steps` on fixed random batches; -> (losses, params, ema params, specs)."""
  import jax
  from freqprior import train
  setup = train.Setup.create(config, devices)
  state = setup.init_state()
  rng = np.random.default_rng(0)
  losses = []
  for _ in range(num_steps):
    batch = {'image': rng.integers(0, 256, (config.batch_size, 8, 8, 1), dtype=np.uint8),
             'label': rng.integers(0, 10, config.batch_size).astype(np.int32)}
    state, metrics = setup.train_step(state, setup.global_batch(batch, train.TRAIN_KEYS))
    losses.append(float(metrics.loss.compute()))
  specs = {str(s.spec) for s in jax.tree.leaves(jax.tree.map(lambda x: x.sharding, state.params))}
  return losses, jax.device_get(state.params), jax.device_get(state.ema_params), specs


def _subprocess_main():
  import jax
  config = tiny_config()
  losses_1, params_1, ema_1, _ = run_steps(config, jax.devices()[:1])
  result = {'reference_losses': losses_1}
  for name, shape, fsdp in [('8x1', (8, 1), False), ('4x2_fsdp', (4, 2), True)]:
    config.mesh.shape, config.mesh.fsdp = shape, fsdp
    losses, params, ema, specs = run_steps(config, jax.devices())
    diff = max(float(np.max(np.abs(a - b))) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(params_1)))
    ema_diff = max(float(np.max(np.abs(a - b))) for a, b in
                   zip(jax.tree.leaves(ema), jax.tree.leaves(ema_1)))
    result[name] = {'losses': losses, 'param_diff': diff, 'ema_diff': ema_diff,
                    'specs': sorted(specs)}
  print(json.dumps(result))


def test_mesh_shape_fills_minus_one():
  from freqprior import mesh
  assert mesh.mesh_shape((-1, 1), 8) == (8, 1)
  assert mesh.mesh_shape((4, -1), 8) == (4, 2)
  assert mesh.mesh_shape((2, 4), 8) == (2, 4)
  for bad in [(-1, -1), (3, -1), (2, 2), (0, 8)]:
    with pytest.raises(ValueError, match='config.mesh.shape'):
      mesh.mesh_shape(bad, 8)


def test_param_spec_shards_largest_divisible_dimension():
  from jax.sharding import PartitionSpec as P
  from freqprior import mesh
  assert mesh.param_spec((3, 3, 32, 64), 2, 0) == P(None, None, None, 'fsdp')
  assert mesh.param_spec((3, 3, 32, 63), 2, 0) == P(None, None, 'fsdp', None)
  assert mesh.param_spec((3, 3, 32, 64), 2, 10 ** 6) == P()  # too small: replicated
  assert mesh.param_spec((7,), 2, 0) == P()  # nothing divides: replicated
  assert mesh.param_spec((), 2, 0) == P()


def test_sharded_step_matches_one_device():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, __file__], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  reference = result['reference_losses']
  assert all(np.isfinite(reference)) and reference[0] != reference[-1]
  for name in ('8x1', '4x2_fsdp'):
    np.testing.assert_allclose(result[name]['losses'], reference, rtol=1e-5, err_msg=name)
    assert result[name]['param_diff'] < 1e-5, (name, result[name])
    assert result[name]['ema_diff'] < 1e-5, (name, result[name])
  assert any('fsdp' in spec for spec in result['4x2_fsdp']['specs'])  # FSDP really shards


if __name__ == '__main__':
  _subprocess_main()
