"""--mode=sample: restores the chosen checkpoint's EMA parameters, writes PNGs; bad input
fails before anything is written."""
import os
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from freqprior import checkpoint as checkpoint_lib
from freqprior import errors
from freqprior import images as images_lib
from freqprior import models
from freqprior import sample
from freqprior import sample_main
from freqprior import state as state_lib
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ['--config.model.width=8', '--config.model.num_blocks=1', '--config.model.head_width=16',
         '--config.model.num_mixtures=3', '--config.model.dropout=0.0']  # = small_config()


def small_config():
  config = tiny_config(width=8, num_blocks=1)
  config.sample.update(num_images=3, batch_size=2, class_label='4,7')
  return config


def save_run(workdir, config, val_bpds: dict[int, float]) -> dict[int, dict]:
  """Checkpoints at the given steps whose EMA parameters differ from the raw ones and from
  step to step; returns the EMA parameters by step."""
  model = models.build_model(config)
  tx = state_lib.make_optimizer(config)
  checkpoints = checkpoint_lib.Checkpoints(str(workdir), config)
  ema = {}
  for step, bpd in val_bpds.items():
    state = state_lib.init_state(model, config, tx, jax.random.key(0))
    ema[step] = models.init_params(model, config, jax.random.key(100 + step))
    checkpoints.save(step, state.replace(ema_params=ema[step]), bpd)
  checkpoints.wait()
  checkpoints.close()
  return ema


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('run')
  return workdir, save_run(workdir, small_config(), {10: 3.0, 20: 2.0, 30: 4.0})


def read_pngs(directory, num_images):
  return np.stack([np.asarray(Image.open(directory / f'{n:04d}.png'))
                   for n in range(num_images)])[..., None]


def test_best_checkpoint_by_default_and_ema_parameters(run):
  workdir, ema = run
  config = small_config()
  directory = sample_main.run(config, str(workdir))
  # The step checkpoint.Checkpoints calls best (lowest validation bits/dim, else the latest).
  best = checkpoint_lib.Checkpoints(str(workdir), config, read_only=True).best_step()
  assert directory == workdir / 'samples' / str(best)
  expected = sample.generate(ema[best], config, np.array([4, 7, 4]), jax.random.key(0))
  np.testing.assert_array_equal(read_pngs(directory, 3), expected)
  grid = np.asarray(Image.open(directory / 'grid.png'))  # greyscale: [H, W]
  np.testing.assert_array_equal(grid, images_lib.image_grid(expected, 2)[..., 0])
  assert grid.shape == (2 * 64 + images_lib.GAP_PIXELS, 2 * 64 + images_lib.GAP_PIXELS)
  images, step = sample.sample_checkpoint(config, str(workdir))  # the notebook function
  assert step == best
  np.testing.assert_array_equal(images, expected)


def test_command_line_step_and_options(run):
  workdir, ema = run
  flags = FLAGS + [
      '--config.sample.step=20',
      '--config.sample.num_images=2', '--config.sample.class_label=9',
      '--config.sample.method=naive', '--config.sample.temperature=0.5']
  out = subprocess.run(
      [sys.executable, 'main.py', '--mode=sample', '--config=configs/digits.py',
       f'--workdir={workdir}', *flags], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT))
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'sampling: 8/8 rows' in out.stderr
  config = small_config()
  config.sample.update(num_images=2, class_label='9')
  expected = sample.generate(ema[20], config, np.array([9, 9]), jax.random.key(0),
                             temperature=0.5)
  np.testing.assert_array_equal(read_pngs(workdir / 'samples' / '20', 2), expected)
  assert sorted(p.name for p in (workdir / 'samples' / '20').iterdir()) == [
      '0000.png', '0001.png', 'grid.png']  # earlier samples of that step replaced


@pytest.mark.parametrize('key,value,error,match', [
    ('sample.class_label', '10', ValueError, 'num_classes'),
    ('sample.num_images', 0, ValueError, 'num_images'),
    ('sample.temperature', -1.0, ValueError, 'temperature'),
    ('sample.method', 'fast', ValueError, 'method'),
    ('sample.step', 15, FileNotFoundError, 'step 15'),
    ('model.width', 16, ValueError, 'differently shaped'),
    ('model.class_conditional', False, ValueError, 'unconditional'),
    ('sample.guidance_scale', 2.0, errors.ConfigError, 'config.model.cond_dropout'),
    ('sample.class_label', '', errors.ConfigError, 'config.model.cond_dropout'),
])
def test_bad_input_writes_nothing(run, key, value, error, match):
  workdir, _ = run
  config = small_config()
  group, name = key.split('.')
  config[group][name] = value
  before = sorted(workdir.rglob('*'))
  with pytest.raises(error, match=match):
    sample_main.run(config, str(workdir))
  assert sorted(workdir.rglob('*')) == before


def test_no_checkpoint(tmp_path):
  workdir = tmp_path / 'empty'
  with pytest.raises(FileNotFoundError, match='No checkpoint'):
    sample_main.run(small_config(), str(workdir))
  assert not workdir.exists()


def test_guidance_needs_a_checkpoint_trained_with_cond_dropout(run, tmp_path):
  """The checkpoint's own config.model.cond_dropout decides, not the one passed to sample."""
  workdir, _ = run  # trained with cond_dropout 0
  config = small_config()
  config.model.cond_dropout = 0.1
  config.sample.update(guidance_scale=2.0, num_images=2)
  with pytest.raises(errors.ConfigError, match=r'config.model.cond_dropout=0 \(checkpoint'):
    sample.sample_checkpoint(config, str(workdir))
  guided_dir = tmp_path / 'guided'
  save_run(guided_dir, config, {5: 1.0})
  images, step = sample.sample_checkpoint(config, str(guided_dir))
  assert step == 5 and images.shape == (2, 8, 8, 1)
