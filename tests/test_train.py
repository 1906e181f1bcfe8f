"""A digits run stopped by SIGTERM after its first checkpoint, then rerun (past a checkpoint left
half-written), ends exactly where an uninterrupted run of the same length ends (same parameters,
EMA and eval bits/dim)."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from tests.conftest import TINY_RUN, TINY_RUN_STEPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ['--config=configs/digits.py', *TINY_RUN, '--config.checkpoint_every_steps=10',
         '--config.log_every_steps=10', '--config.dataset.validation_examples=100']


def _command(workdir, *extra):
  return [sys.executable, 'main.py', f'--workdir={workdir}', *FLAGS, *extra]


def _env():
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)


def _record(stdout: str) -> dict:
  return json.loads([line for line in stdout.splitlines() if line.startswith('{')][-1])


def _restore(workdir, step):
  from absl import flags
  from ml_collections import config_flags
  from freqprior import checkpoint, train
  argv = ['test', f'--config={os.path.join(ROOT, "configs", "digits.py")}', *FLAGS[1:]]
  values = flags.FlagValues()  # the run's config, by ml_collections' own flag parser
  config_flags.DEFINE_config_file('config', flag_values=values, sys_argv=argv)
  values(argv)
  config = values.config
  setup = train.Setup.create(config, jax.devices()[:1])
  ckpt = checkpoint.Checkpoints(str(workdir), config, read_only=True)
  state = ckpt.restore(step, setup.abstract_state, setup.state_shardings)
  ckpt.close()
  return jax.device_get(state)


def test_sigterm_then_resume_equals_uninterrupted(tmp_path):
  straight_dir, stopped_dir = tmp_path / 'straight', tmp_path / 'stopped'
  straight = subprocess.Popen(_command(straight_dir), cwd=ROOT, env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  stopped = subprocess.Popen(_command(stopped_dir), cwd=ROOT, env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  deadline = time.time() + 400
  while not (stopped_dir / 'checkpoints' / '10').exists():
    assert stopped.poll() is None and time.time() < deadline, stopped.communicate()[1][-3000:]
    time.sleep(0.05)
  stopped.send_signal(signal.SIGTERM)
  _, stderr = stopped.communicate(timeout=300)
  assert stopped.returncode == 0, stderr[-3000:]
  assert 'rerun the same command to resume' in stderr
  saved = sorted(int(s) for s in os.listdir(stopped_dir / 'checkpoints') if s.isdigit())
  assert 10 <= saved[-1] < TINY_RUN_STEPS, saved  # it stopped early, after saving where it stood
  assert not (stopped_dir / 'eval').exists()
  # As if a later run had been killed while writing its next checkpoint.
  partial = stopped_dir / 'checkpoints' / f'{(saved[-1] // 10 + 1) * 10}.orbax-checkpoint-tmp'
  (partial / 'state').mkdir(parents=True)
  (partial / 'state' / 'half_written').write_bytes(b'\0' * 100)

  resumed = subprocess.run(_command(stopped_dir), cwd=ROOT, env=_env(), text=True,
                           capture_output=True, timeout=400)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'resuming at step {saved[-1]} of {TINY_RUN_STEPS}' in resumed.stdout
  assert not [p for p in os.listdir(stopped_dir / 'checkpoints') if 'tmp' in p]
  straight_out, straight_err = straight.communicate(timeout=400)
  assert straight.returncode == 0, straight_err[-3000:]

  expected, got = _record(straight_out), _record(resumed.stdout)
  assert got['step'] == expected['step'] == TINY_RUN_STEPS
  assert abs(got['bpd'] - expected['bpd']) < 1e-6, (got, expected)
  a, b = _restore(straight_dir, TINY_RUN_STEPS), _restore(stopped_dir, TINY_RUN_STEPS)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
