"""Local processes x CPU devices (jax.distributed over localhost, gloo collectives): the same
global batches on any topology; 2 processes x 2 devices train and save through main.py, and one
process with one device restores, evaluates, and resumes a run that 2 processes began."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

from configs import digits
from freqprior import data
from tests.conftest import TINY_RUN, TINY_RUN_STEPS


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HALF = TINY_RUN_STEPS // 2
TINY = [*TINY_RUN, f'--config.checkpoint_every_steps={HALF}', f'--config.log_every_steps={HALF}']


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  return dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES=str(devices),
              JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo', PYTHONPATH=ROOT)


def _main(workdir, *flags, devices, tiny=TINY):
  return [sys.executable, 'main.py', '--config=configs/digits.py', f'--workdir={workdir}',
          *tiny, *flags], _env(devices)


def _two_processes(make_command) -> list[subprocess.Popen]:
  """Starts processes 0 and 1 of a 2-process job; make_command(flags) -> (argv, env)."""
  port = _free_port()
  procs = []
  for process_id in range(2):
    cmd, env = make_command([f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
                             f'--process_id={process_id}'])
    procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  return procs


def _kill_and_show(procs, why: str) -> AssertionError:
  """Kills every process (one left alone may wait forever on the others) with their stderr."""
  for p in procs:
    p.kill()
  return AssertionError('\n'.join(f'{why}; process {i} stderr:\n{err[-2000:]}'
                                   for i, (_, err) in enumerate(p.communicate() for p in procs)))


def _finish(procs, timeout: int) -> list[tuple[str, str]]:
  """Each process's (stdout, stderr) after all exited 0."""
  try:
    outputs = [p.communicate(timeout=timeout) for p in procs]
  except subprocess.TimeoutExpired:
    raise _kill_and_show(procs, f'not finished in {timeout} s') from None
  for p, (_, stderr) in zip(procs, outputs):
    assert p.returncode == 0, stderr[-4000:]
  return outputs


def _last_json(stdout: str) -> dict:
  return json.loads([line for line in stdout.splitlines() if line.startswith('{')][-1])


def test_two_processes_train_then_one_device_evaluates(tmp_path):
  workdir = tmp_path / 'run'
  procs = _two_processes(lambda flags: _main(workdir, *flags, devices=2))
  outputs = _finish(procs, 400)
  assert 'process 1 of 2, 2 local of 4 devices' in outputs[1][0]  # each worker names itself
  trained = _last_json(outputs[0][0])  # only process 0 prints the record
  assert not [line for line in outputs[1][0].splitlines() if line.startswith('{')]
  assert trained['step'] == TINY_RUN_STEPS and trained['num_examples'] == 297
  assert sorted(os.listdir(workdir / 'checkpoints')) == [str(HALF), str(TINY_RUN_STEPS)]

  cmd, env = _main(workdir, '--mode=eval', devices=1)
  out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-4000:]
  evaluated = _last_json(out.stdout)
  assert evaluated['step'] == TINY_RUN_STEPS and evaluated['num_examples'] == 297
  assert abs(evaluated['bpd'] - trained['bpd']) < 1e-4, (evaluated, trained)
  assert json.loads((workdir / 'eval' / f'test_step{TINY_RUN_STEPS}.json').read_text()) == evaluated


def test_global_batches_are_the_same_on_any_topology(tmp_path):
  """The first global train batches and every eval batch, as the mesh holds them, on 1 process
  x 1 device, 1 x 8 devices and 2 processes x 2 devices."""
  config = digits.get_config()
  config.dataset.data_dir = str(tmp_path)
  data.dataset_info(config)  # builds the digits once, before the processes read them
  script = [sys.executable, 'tests/global_batches.py', str(tmp_path), '12']
  records = []
  for devices in (1, 8):
    out = subprocess.run(script, env=_env(devices), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    records.append(_last_json(out.stdout))
  procs = _two_processes(lambda flags: (script + [f.replace('_address', '') for f in flags],
                                        _env(2)))
  outputs = _finish(procs, 300)
  records.append(_last_json(outputs[0][0]))
  assert [(r['processes'], r['devices']) for r in records] == [(1, 1), (1, 8), (2, 4)]
  assert len(records[0]['train']) == 12 and len(records[0]['test']) == 5
  assert len(set(records[0]['train'])) == 12
  for record in records[1:]:
    assert record['train'] == records[0]['train'] and record['test'] == records[0]['test']


RESUME = [*TINY_RUN, '--config.checkpoint_every_steps=5', '--config.log_every_steps=5',
          '--config.dataset.random_flip=True']


def test_two_processes_stopped_then_resumed_on_one_equal_one_uninterrupted(tmp_path):
  straight_dir, stopped_dir = tmp_path / 'straight', tmp_path / 'stopped'
  cmd, env = _main(straight_dir, devices=1, tiny=RESUME)
  straight = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
  procs = _two_processes(lambda flags: _main(stopped_dir, *flags, devices=2, tiny=RESUME))
  deadline = time.time() + 400
  while not (stopped_dir / 'checkpoints' / '5').exists():
    if not all(p.poll() is None for p in procs) or time.time() > deadline:
      raise _kill_and_show(procs, 'exited or timed out before checkpoint 5')
    time.sleep(0.05)
  for p in procs:
    p.send_signal(signal.SIGTERM)
  outputs = _finish(procs, 300)
  assert 'rerun the same command to resume' in outputs[0][1]
  saved = sorted(int(s) for s in os.listdir(stopped_dir / 'checkpoints') if s.isdigit())
  assert 5 <= saved[-1] < TINY_RUN_STEPS, saved

  cmd, env = _main(stopped_dir, devices=1, tiny=RESUME)
  resumed = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'resuming at step {saved[-1]}' in resumed.stdout
  straight_out, straight_err = straight.communicate(timeout=400)
  assert straight.returncode == 0, straight_err[-3000:]
  expected, got = _last_json(straight_out), _last_json(resumed.stdout)
  assert got['step'] == expected['step'] == TINY_RUN_STEPS
  assert abs(got['bpd'] - expected['bpd']) < 1e-4, (got, expected)
