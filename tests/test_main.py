"""main.py: what a run prints (its own lines on stdout, the JSON record last, no library INFO logs
unless asked), and on bad input clear errors with the workdir's files exactly as they were."""
import hashlib
import json
import os
import re
import struct
import subprocess
import sys

import pytest
from tensorboard.compat.proto import event_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--config.model.width=8', '--config.model.num_blocks=1', '--config.model.head_width=16',
        '--config.batch_size=16', '--config.num_train_steps=2', '--config.eval_every_steps=2',
        '--config.checkpoint_every_steps=2', '--config.log_every_steps=1',
        '--config.eval.samples=False']


def _main(workdir, *flags, config='configs/digits.py', devices=1):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT, JAX_NUM_CPU_DEVICES=str(devices))
  workdir_flag = [] if workdir is None else [f'--workdir={workdir}']
  return subprocess.run([sys.executable, 'main.py', f'--config={config}', *workdir_flag,
                         *TINY, *flags], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


def _summary_tags(workdir) -> set[str]:
  """Every tag in the TensorBoard event files of `workdir` (TFRecords read without TensorFlow:
  8-byte length, 4-byte CRC, the Event proto, 4-byte CRC)."""
  tags = set()
  for name in os.listdir(workdir):
    if name.startswith('events.out.tfevents'):
      with open(os.path.join(workdir, name), 'rb') as f:
        while header := f.read(12):
          data = f.read(struct.unpack('<Q', header[:8])[0])
          f.read(4)
          tags.update(v.tag for v in event_pb2.Event.FromString(data).summary.value)
  return tags


def _snapshot(path) -> dict:
  """Every file and folder under `path` with its size, content hash and mtime."""
  result = {}
  for folder, dirs, files in os.walk(path):
    for name in dirs:
      result[os.path.relpath(os.path.join(folder, name), path)] = 'dir'
    for name in files:
      full = os.path.join(folder, name)
      with open(full, 'rb') as f:
        result[os.path.relpath(full, path)] = (os.path.getsize(full), os.stat(full).st_mtime_ns,
                                               hashlib.sha256(f.read()).hexdigest())
  return result


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, the finished CompletedProcess) of a 2-step run that logs every step, building
  the digits into a fresh data_dir so that its first line is always the first-use notice."""
  workdir = tmp_path_factory.mktemp('trained')
  out = _main(workdir, f'--config.dataset.data_dir={tmp_path_factory.mktemp("data")}')
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir, out


@pytest.fixture
def trained_workdir(trained):
  return trained[0]


def test_a_run_prints_config_model_progress_evals_and_the_record_last(trained):
  workdir, out = trained
  first_use, *lines = out.stdout.strip().splitlines()
  assert re.fullmatch(r'dataset: wrote sklearn_digits to /\S+/sklearn_digits \(first use\)',
                      first_use), first_use
  assert lines[0] == f'config: {workdir / "config.json"} (all keys: --mode=show_config)'
  assert re.fullmatch(r"model: [0-9,]+ parameters; data: digits \(1300 train, 297 test, 200 "
                      r"validation images\); mesh \{'data': 1, 'fsdp': 1\}; starting at step 0 "
                      r"of 2", lines[1]), lines[1]
  progress = r'step {}/2  loss \d+\.\d{{4}}  \d+\.\d{{4}} bits/dim  [0-9.]+ steps/s  ETA \S+'
  assert re.fullmatch(progress.format(1), lines[2]), lines[2]
  assert re.fullmatch(progress.format(2), lines[3]), lines[3]
  assert re.fullmatch(r'step 2 eval: validation \d+\.\d{4} bits/dim, test \d+\.\d{4} bits/dim',
                      lines[4]), lines[4]
  record = json.loads(lines[5])
  assert len(lines) == 6 and record['split'] == 'test' and record['step'] == 2
  saved = json.loads((workdir / 'config.json').read_text())
  assert saved['model']['width'] == 8 and saved['num_train_steps'] == 2


def test_library_info_logs_are_off_by_default(trained):
  _, out = trained
  assert not re.search(r'^I\d{4} ', out.stderr, re.M), out.stderr[-3000:]  # absl INFO lines
  for noise in ('oneDNN', 'absl::InitializeLog', "backend 'tpu'", 'read only', 'read_only'):
    assert noise not in out.stderr, out.stderr[-3000:]


def test_verbosity_brings_the_info_logs_back(trained_workdir):
  out = _main(trained_workdir, '--mode=eval', '--verbosity=0')
  assert out.returncode == 0, out.stderr[-3000:]
  assert re.search(r'^I\d{4} .*checkpoint_manager\.py', out.stderr, re.M), out.stderr[-3000:]
  assert json.loads(out.stdout.strip().splitlines()[-1])['split'] == 'test'


def test_tensorboard_has_one_steps_per_second_series(trained_workdir):
  tags = _summary_tags(trained_workdir)
  assert {'train_loss', 'train_bpd', 'steps_per_s', 'validation_bpd', 'test_bpd'} <= tags, tags
  assert not {t for t in tags if t.startswith('steps_per') and t != 'steps_per_s'}, tags


def test_show_config_prints_every_key_and_needs_no_workdir():
  out = _main(None, '--mode=show_config', '--config.model.width=12')
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.strip().splitlines()
  assert '--config.model.width=12' in lines and '--config.num_train_steps=2' in lines
  assert '--config.dataset.validation_examples=200' in lines  # configs/digits.py's own value
  assert all(line.startswith('--config.') for line in lines)
  out = _main(None)
  assert out.returncode != 0 and '--workdir is required' in out.stderr


def test_unknown_config_key(tmp_path):
  workdir = tmp_path / 'new'
  out = _main(workdir, '--config.model.no_such_key=3')
  assert out.returncode != 0
  assert 'no_such_key' in out.stderr
  assert not workdir.exists()


def test_unknown_dataset(trained_workdir):
  before = _snapshot(trained_workdir)
  out = _main(trained_workdir, '--config.dataset.name=no_such_dataset')
  assert out.returncode != 0
  assert "Unknown dataset name 'no_such_dataset'" in out.stderr.strip().splitlines()[-1]
  assert _snapshot(trained_workdir) == before


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_workdir_of_another_model(trained_workdir, mode):
  before = _snapshot(trained_workdir)
  out = _main(trained_workdir, f'--mode={mode}', '--config.model.width=12')
  assert out.returncode != 0
  last_line = out.stderr.strip().splitlines()[-1]
  assert 'holds a differently shaped model' in last_line, out.stderr[-3000:]
  assert 'model.width: checkpoint 8, config 12' in last_line
  assert _snapshot(trained_workdir) == before


def test_eval_mode_reports_and_writes_json(trained_workdir):
  out = _main(trained_workdir, '--mode=eval')
  assert out.returncode == 0, out.stderr[-3000:]
  last = out.stdout.strip().splitlines()[-1]
  assert last.startswith('{"split": "test", "bpd": ') and '"num_examples": 297' in last
  assert (trained_workdir / 'eval' / 'test_step2.json').read_text().strip() == last


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('keep me')
  out = _main(blocker / 'workdir')
  assert out.returncode != 0
  assert 'is not a writable directory' in out.stderr.strip().splitlines()[-1]
  assert blocker.read_text() == 'keep me'
  if os.geteuid() != 0:  # root writes through permission bits
    readonly = tmp_path / 'readonly'
    readonly.mkdir()
    (readonly / 'keep.txt').write_text('x')
    before = _snapshot(readonly)
    readonly.chmod(0o555)
    out = _main(readonly)
    readonly.chmod(0o755)
    assert out.returncode != 0
    assert 'is not a writable directory' in out.stderr
    assert _snapshot(readonly) == before


def _one_line_error(out) -> str:
  """The user's error: a non-zero exit, no traceback, and the message as stderr's last line."""
  assert out.returncode == 1, out.stderr[-3000:]
  assert 'Traceback' not in out.stderr, out.stderr[-3000:]
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), out.stderr[-3000:]
  return last


@pytest.mark.parametrize('flags,message', [  # more cases: tests/test_validate.py
    (['--config.batch_size=0'], 'config.batch_size=0 must be a positive integer'),
    (['--config.dataset.image_size=16'], '--config.dataset.image_size=8'),
    (['--config.dataset.channels=3'], '--config.dataset.channels=1'),
    (['--config.dataset.num_classes=5'], '--config.dataset.num_classes=10'),
    (['--config.sample.class_label=12', '--mode=sample'], 'config.dataset.num_classes=10'),
    (['--config.sample.class_label=', '--config.eval.samples=True'],
     'config.model.cond_dropout'),
    (['--config.dataset.data_dir=/no/such/dir', '--config.dataset.name=cifar100',
      '--config.dataset.image_size=32', '--config.dataset.channels=3',
      '--config.dataset.num_classes=100'], 'config.dataset.data_dir'),
])
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, flags, message):
  workdir = tmp_path / 'new'
  assert message in _one_line_error(_main(workdir, *flags))
  assert not workdir.exists()


def test_batch_not_divisible_over_the_devices(tmp_path):
  workdir = tmp_path / 'new'
  last = _one_line_error(_main(workdir, '--config.batch_size=15', devices=2))
  assert 'config.batch_size=15 must be a multiple of 2' in last
  assert not workdir.exists()


@pytest.mark.parametrize('mode', ['eval', 'sample'])
def test_empty_workdir(tmp_path, mode):
  workdir = tmp_path / 'empty'
  assert 'No checkpoint in' in _one_line_error(_main(workdir, f'--mode={mode}'))
  assert not workdir.exists()


def test_fsdp_that_shards_nothing_warns_once(tmp_path):
  out = _main(tmp_path / 'run', '--config.mesh.fsdp=True', devices=2)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stderr.count("config.mesh.fsdp=True shards nothing") == 1, out.stderr[-3000:]


def test_mnist_config_trains_at_a_reduced_size(tmp_path):
  workdir = tmp_path / 'mnist'
  out = _main(workdir, '--config.model.prior_blocks=all', '--config.eval.samples=True',
              '--config.sample.num_images=10', '--config.sample.batch_size=10',
              '--config.eval.batch_size=500', '--config.dataset.validation_examples=500',
              f'--config.dataset.data_dir={tmp_path / "data"}', config='configs/mnist.py')
  assert out.returncode == 0, out.stderr[-3000:]
  record = json.loads(out.stdout.strip().splitlines()[-1])
  assert record['split'] == 'test' and record['num_examples'] == 1000 and record['step'] == 2
  assert (workdir / 'eval' / 'samples_step2.png').exists()
