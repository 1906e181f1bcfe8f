"""The grouped optimizer is the per-leaf optimizer, with one flat vector per label."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import digits
from freqprior import state as state_lib


def _tree(seed):
  keys = jax.random.split(jax.random.key(seed), 4)
  return {'conv': {'kernel': jax.random.normal(keys[0], (3, 3, 4, 8)),
                   'bias': jax.random.normal(keys[1], (8,))},
          'scale': jax.random.normal(keys[2], (8,)),
          'big': {'kernel': jax.random.normal(keys[3], (64, 128))}}


@pytest.mark.parametrize('fsdp', [False, True])
def test_grouped_matches_per_leaf_adamw(fsdp):
  config = digits.get_config()
  config.mesh.fsdp, config.mesh.fsdp_min_size = fsdp, 4096
  config.optim.update(grad_clip=1.0, weight_decay=0.1)
  tx = state_lib.make_optimizer(config)
  mask = lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)
  reference = optax.chain(
      optax.clip_by_global_norm(1.0),
      optax.adamw(state_lib.learning_rate_schedule(config), weight_decay=0.1, mask=mask))
  params = _tree(0)
  labels = jax.tree.leaves(state_lib._group_labels(config)(params))  # pylint: disable=protected-access
  assert len(set(labels)) == (3 if fsdp else 2)  # 'big' keeps its own label under FSDP
  state, ref_state = tx.init(params), reference.init(params)
  ref_params = params
  for step in range(1, 4):
    grads = jax.tree.map(lambda x: 3.0 * x, _tree(step))
    updates, state = jax.jit(tx.update)(grads, state, params)
    ref_updates, ref_state = reference.update(grads, ref_state, ref_params)
    params = optax.apply_updates(params, updates)
    ref_params = optax.apply_updates(ref_params, ref_updates)
    assert jax.tree.structure(updates) == jax.tree.structure(grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 params, ref_params)
  assert not np.allclose(params['big']['kernel'], _tree(0)['big']['kernel'])


def test_weight_decay_only_on_kernels():
  config = digits.get_config()
  config.optim.update(grad_clip=1e9, weight_decay=0.5)
  tx = state_lib.make_optimizer(config)
  params = _tree(0)
  zeros = jax.tree.map(jnp.zeros_like, params)
  state = tx.init(params)
  for _ in range(2):  # the warm-up's first learning rate is 0
    updates, state = tx.update(zeros, state, params)
  assert np.all(np.asarray(updates['conv']['bias']) == 0)
  assert np.all(np.asarray(updates['scale']) == 0)
  assert np.any(np.asarray(updates['conv']['kernel']) != 0)
