"""Two local processes x 2 CPU devices (jax.distributed over localhost, gloo collectives) train and
save through main.py; then one process with one device restores the checkpoint and evaluates."""
import json
import os
import socket
import subprocess
import sys



ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--config.model.width=8', '--config.model.num_blocks=1', '--config.model.head_width=16',
        '--config.batch_size=16', '--config.eval.batch_size=64', '--config.num_train_steps=4',
        '--config.eval_every_steps=4', '--config.checkpoint_every_steps=2',
        '--config.log_every_steps=2', '--config.eval.samples=False']


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _main(workdir, *flags, devices):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES=str(devices),
             JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo', PYTHONPATH=ROOT)
  return [sys.executable, 'main.py', '--config=configs/digits.py', f'--workdir={workdir}',
          *TINY, *flags], env


def _last_json(stdout: str) -> dict:
  return json.loads([line for line in stdout.splitlines() if line.startswith('{')][-1])


def test_two_processes_train_then_one_device_evaluates(tmp_path):
  workdir = tmp_path / 'run'
  port = _free_port()
  procs = []
  for process_id in range(2):
    cmd, env = _main(workdir, f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
                     f'--process_id={process_id}', devices=2)
    procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=400) for p in procs]
  for p, (_, stderr) in zip(procs, outputs):
    assert p.returncode == 0, stderr[-4000:]
  assert 'process 1 of 2' in outputs[1][1]
  trained = _last_json(outputs[0][0])  # only process 0 prints the record
  assert not [line for line in outputs[1][0].splitlines() if line.startswith('{')]
  assert trained['step'] == 4 and trained['num_examples'] == 297
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['2', '4']

  cmd, env = _main(workdir, '--mode=eval', devices=1)
  out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-4000:]
  evaluated = _last_json(out.stdout)
  assert evaluated['step'] == 4 and evaluated['num_examples'] == 297
  assert abs(evaluated['bpd'] - trained['bpd']) < 1e-4, (evaluated, trained)
  assert json.loads((workdir / 'eval' / 'test_step4.json').read_text()) == evaluated
