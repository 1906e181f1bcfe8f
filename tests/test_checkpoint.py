"""Checkpoints: the training loop, not Orbax's commit thread, asks JAX about preemption."""
import jax.numpy as jnp
from jax.experimental import multihost_utils

from freqprior import checkpoint
from tests.conftest import tiny_config


def test_orbax_learns_of_a_preemption_from_the_loop_and_never_asks_jax(tmp_path, monkeypatch):
  # JAX's sync point keeps the last step asked about by any thread; a stale step from Orbax's
  # commit thread could make processes stop at different steps (see checkpoint._Manager).
  asked = []
  monkeypatch.setattr(multihost_utils, 'reached_preemption_sync_point',
                      lambda step: asked.append(step) or False)
  checkpoints = checkpoint.Checkpoints(str(tmp_path), tiny_config())
  state = {'params': {'w': jnp.arange(3.0)}}
  checkpoints.save(5, state)
  checkpoints.save(9, state, preempted=True)
  checkpoints.wait()
  assert asked == []
  assert checkpoints.manager.all_steps() == [5, 9]
  assert checkpoints.manager.reached_preemption(9) and not checkpoints.manager.reached_preemption(5)
  checkpoints.close()
