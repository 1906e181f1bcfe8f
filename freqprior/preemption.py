"""When to save and stop: SIGTERM (a preempted VM, `scancel`, `kill`) and JAX's preemption notice.

Multi-process runs use JAX's preemption sync point, so every process stops at the same step; a
single process catches SIGTERM itself (for the length of the `with` block).
"""
import signal

from absl import logging
import jax
from jax.experimental import multihost_utils


class PreemptionWatcher:
  """`reached(step)` turns True at the first step after a preemption signal."""

  def __init__(self):
    self._distributed = jax.process_count() > 1
    self._signalled = False
    self._previous = None

  def __enter__(self):
    if not self._distributed:
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def _on_sigterm(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint, then exiting.')
    self._signalled = True

  def reached(self, step: int) -> bool:
    if self._distributed:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._signalled
