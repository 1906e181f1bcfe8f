"""SIGTERM inside the watcher marks the run for a save-and-stop instead of killing it."""
import os
import signal

from freqprior import preemption


def test_sigterm_is_caught_inside_the_block_only():
  before = signal.getsignal(signal.SIGTERM)
  with preemption.PreemptionWatcher() as watcher:
    assert not watcher.reached(1)
    os.kill(os.getpid(), signal.SIGTERM)  # handled before os.kill returns to Python code
    assert watcher.reached(2) and watcher.reached(3)
  assert signal.getsignal(signal.SIGTERM) is before
