"""The launchers: they pass shellcheck, print their usage without args, and drive stub gcloud/srun.

The stubs stand first on PATH and append each call, one JSON object a line, to a log. The gcloud
stub plays a TPU VM of two workers, each a directory used as its HOME: `scp --worker=all` copies
the archive into every home and `ssh --worker=all --command=CMD` runs CMD with bash in every home,
where python3 is a stub too, so the remote script (unpack, install, train, log) runs for real.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, 'launch', '*.sh')))
TPU = os.path.join(ROOT, 'launch', 'tpu.sh')
SLURM = os.path.join(ROOT, 'launch', 'slurm.sh')
# main.py flags as a user types them: one needing no quoting, one with spaces, quotes and a $.
FLAGS = ['--config.num_train_steps=5', """--config.name=it's a "quoted" $HOME run"""]
WORKERS = 2

_RECORD = """\
import json, os, sys
def record(**extra):
  with open(os.environ['STUB_LOG'], 'a') as f:
    f.write(json.dumps(dict(argv=[os.path.basename(sys.argv[0]), *sys.argv[1:]],
                            cwd=os.getcwd(), **extra)) + '\\n')
"""

# gcloud compute tpus tpu-vm {describe,create,scp,ssh}: a VM of WORKERS homes under STUB_WORKERS.
_GCLOUD = """
import shutil, subprocess
record()
args = sys.argv[1:]
assert args[:3] == ['compute', 'tpus', 'tpu-vm'], args
verb, rest = args[3], args[4:]
if verb == 'describe':
  sys.exit(0 if os.environ['STUB_VM_EXISTS'] == '1' else 1)
if verb == 'create':
  sys.exit(0)
root = os.environ['STUB_WORKERS']
homes = sorted(os.path.join(root, w) for w in os.listdir(root))
if '--worker=all' not in rest:
  homes = homes[:1]
positional = [a for a in rest if not a.startswith('--')]
if verb == 'scp':
  src, dst = positional
  for home in homes:
    shutil.copy(src, os.path.join(home, dst.split(':', 1)[1]))
  sys.exit(0)
assert verb == 'ssh', verb
[command] = [a.split('=', 1)[1] for a in rest if a.startswith('--command=')]
rcs = []
for i, home in enumerate(homes):
  env = dict(os.environ, HOME=home, STUB_WORKER=str(i),
             PATH=os.environ['STUB_REMOTE_BIN'] + os.pathsep + os.environ['PATH'])
  rcs.append(subprocess.run(['bash', '-c', command], env=env, cwd=home).returncode)
sys.exit(max(rcs))
"""

# python3 on a worker: records `-m pip ...`; as main.py it prints a line and exits STUB_TRAIN_RC.
_PYTHON3 = """
record(worker=os.environ['STUB_WORKER'])
if sys.argv[1:2] == ['main.py']:
  print('worker', os.environ['STUB_WORKER'], 'trained')
  sys.exit(int(os.environ['STUB_TRAIN_RC']))
"""


def _stub(bindir, name, body):
  path = bindir / name
  path.write_text(f'#!{sys.executable}\n{_RECORD}{body}')
  path.chmod(0o755)


def _calls(log):
  return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_launchers_exist():
  assert [os.path.basename(s) for s in SCRIPTS] == ['slurm.sh', 'tpu.sh']


@pytest.mark.parametrize('script', SCRIPTS, ids=os.path.basename)
def test_usage_without_arguments(script):
  out = subprocess.run(['bash', script], capture_output=True, text=True, timeout=30)
  assert out.returncode == 2
  assert 'main.py' in out.stdout
  assert all(line.startswith('#') for line in out.stdout.splitlines()), out.stdout


def test_shellcheck_clean():
  assert shutil.which('shellcheck'), 'shellcheck is missing: apt-get install shellcheck'
  out = subprocess.run(['shellcheck', *SCRIPTS], capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stdout


def _run_tpu(tmp_path, vm_exists, train_rc=0):
  bindir, remote_bin, tmp = tmp_path / 'bin', tmp_path / 'remote_bin', tmp_path / 'tmp'
  for d in (bindir, remote_bin, tmp):
    d.mkdir()
  homes = [tmp_path / 'workers' / str(i) for i in range(WORKERS)]
  for home in homes:
    home.mkdir(parents=True)
  _stub(bindir, 'gcloud', _GCLOUD)
  _stub(remote_bin, 'python3', _PYTHON3)
  for name in ('pip', 'pip3', 'python'):  # Nothing real gets installed or run if these are used.
    _stub(remote_bin, name, 'record(worker=os.environ["STUB_WORKER"])\nsys.exit(1)\n')
  log = tmp_path / 'calls.jsonl'
  env = dict(os.environ, PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}', STUB_LOG=str(log),
             STUB_VM_EXISTS=str(int(vm_exists)), STUB_WORKERS=str(tmp_path / 'workers'),
             STUB_REMOTE_BIN=str(remote_bin), STUB_TRAIN_RC=str(train_rc), TMPDIR=str(tmp))
  env.pop('TPU_VERSION', None)
  out = subprocess.run(
      ['bash', TPU, 'fp-test', 'us-central2-b', 'v4-16', 'configs/cifar100.py',
       'gs://bucket/run 1', *FLAGS],
      capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
  assert os.listdir(tmp) == []  # The archive is removed.
  return out, _calls(log), homes


@pytest.mark.parametrize('vm_exists', [False, True], ids=['new_vm', 'existing_vm'])
def test_tpu_creates_only_a_missing_vm_and_trains_on_all_workers(tmp_path, vm_exists):
  out, calls, homes = _run_tpu(tmp_path, vm_exists)
  assert out.returncode == 0, out.stderr
  gcloud = [c['argv'][4:] for c in calls if c['argv'][0] == 'gcloud']
  zone = '--zone=us-central2-b'
  assert gcloud[0] == ['describe', 'fp-test', zone]
  creates = [] if vm_exists else [
      ['create', 'fp-test', zone, '--accelerator-type=v4-16', '--version=tpu-ubuntu2204-base']]
  assert [g for g in gcloud if g[0] == 'create'] == creates
  assert [g[0] for g in gcloud] == ['describe', *(c[0] for c in creates), 'scp', 'ssh']
  scp, ssh = gcloud[-2], gcloud[-1]
  assert scp[2:] == ['fp-test:freqprior.tar.gz', zone, '--worker=all']
  assert ssh[1:4] == ['fp-test', zone, '--worker=all']
  command = ssh[4]
  assert command.startswith('--command=')
  for part in ('main.py', '--multihost', '--config=configs/cifar100.py',
               '--config.num_train_steps=5', '> ~/freqprior.log'):
    assert part in command

  # What ran on each worker, in that worker's own unpacked copy of HEAD.
  head_main = subprocess.run(['git', '-C', ROOT, 'show', 'HEAD:main.py'], capture_output=True,
                             text=True, check=True).stdout
  remote = [c for c in calls if c['argv'][0] != 'gcloud']
  for i, home in enumerate(homes):
    checkout = str(home / 'freqprior')
    assert (home / 'freqprior' / 'main.py').read_text() == head_main
    assert [c['argv'] for c in remote if c['worker'] == str(i)] == [
        ['python3', '-m', 'pip', 'install', '-q', '-U', 'jax[tpu]'],
        ['python3', '-m', 'pip', 'install', '-q', '-e', '.'],
        ['python3', 'main.py', '--config=configs/cifar100.py', '--workdir=gs://bucket/run 1',
         '--multihost', *FLAGS]]
    assert {c['cwd'] for c in remote if c['worker'] == str(i)} == {checkout}
    assert (home / 'freqprior.log').read_text() == f'worker {i} trained\n'
    assert f'worker {i} trained' in out.stdout


def test_tpu_fails_when_training_fails(tmp_path):
  out, _, homes = _run_tpu(tmp_path, vm_exists=True, train_rc=3)
  assert out.returncode != 0
  for i, home in enumerate(homes):
    assert (home / 'freqprior.log').exists()
    assert f'worker {i} trained' in out.stdout  # The tail of the log is shown.


def _run_slurm(tmp_path, cwd):
  bindir = tmp_path / 'bin'
  bindir.mkdir()
  _stub(bindir, 'srun', 'record()\n')
  log = tmp_path / 'calls.jsonl'
  env = dict(os.environ, PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}', STUB_LOG=str(log),
             SLURM_SUBMIT_DIR=str(cwd))
  out = subprocess.run(['bash', SLURM, 'configs/cifar100.py', '/shared/runs/x y', *FLAGS],
                       capture_output=True, text=True, timeout=30, env=env, cwd=cwd)
  return out, _calls(log)


def test_slurm_runs_main_on_every_task_with_a_log_each(tmp_path):
  checkout = tmp_path / 'checkout'
  checkout.mkdir()
  (checkout / 'main.py').write_text('')
  out, calls = _run_slurm(tmp_path, checkout)
  assert out.returncode == 0, out.stderr
  assert calls == [dict(
      argv=['srun', '--kill-on-bad-exit=1', '--output=logs/freqprior-%j-%t.log',
            'python', 'main.py', '--config=configs/cifar100.py', '--workdir=/shared/runs/x y',
            '--multihost', *FLAGS],
      cwd=str(checkout))]
  assert (checkout / 'logs').is_dir()


def test_slurm_refuses_to_run_outside_the_checkout(tmp_path):
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  out, calls = _run_slurm(tmp_path, elsewhere)
  assert out.returncode == 2
  assert 'main.py' in out.stderr
  assert calls == []
  assert not (elsewhere / 'logs').exists()
