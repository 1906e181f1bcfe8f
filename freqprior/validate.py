"""Checks a config before anything is built, read or written.

A value that cannot work is a `ConfigError` naming the setting and the fix; a setting that would
silently do nothing on this run is an error too, or, where the run is still what the user asked
for, one logged warning.
"""
import math
from typing import Optional

from absl import logging
import jax
import ml_collections

from freqprior import errors
from freqprior import mesh as mesh_lib
from freqprior import models
from freqprior import sample_options
from freqprior.data import sources

MODES = ('train', 'eval', 'sample')


def _require(ok: bool, message: str) -> None:
  if not ok:
    raise errors.ConfigError(message)


def _positive(config: ml_collections.ConfigDict, *keys: str) -> None:
  for key in keys:
    value = config
    for part in key.split('.'):
      value = value[part]
    _require(isinstance(value, int) and value > 0,
             f'config.{key}={value!r} must be a positive integer')


def _fraction(value: float, key: str) -> None:
  _require(0.0 <= value < 1.0, f'config.{key}={value} must lie in [0, 1)')


def check(config: ml_collections.ConfigDict, mode: str = 'train',
          devices: Optional[list] = None, num_processes: Optional[int] = None) -> None:
  """Raises ConfigError for any setting that cannot work for `mode` on these devices."""
  _require(mode in MODES, f'--mode={mode!r} must be one of {MODES}')
  devices = jax.devices() if devices is None else devices
  num_processes = jax.process_count() if num_processes is None else num_processes
  _positive(config, 'num_train_steps', 'batch_size', 'eval_every_steps', 'checkpoint_every_steps',
            'log_every_steps', 'keep_checkpoints', 'eval.batch_size', 'dataset.image_size',
            'dataset.read_threads', 'model.width', 'model.num_blocks', 'model.head_width',
            'model.num_mixtures', 'sample.num_images', 'sample.batch_size')
  d, m, o = config.dataset, config.model, config.optim
  _require(d.channels in (1, 3), f'config.dataset.channels={d.channels} must be 1 or 3')
  _require(d.worker_count >= 0, f'config.dataset.worker_count={d.worker_count} must be >= 0')
  _require(d.validation_examples >= 0,
           f'config.dataset.validation_examples={d.validation_examples} must be >= 0')
  _require(not m.class_conditional or d.num_classes > 0,
           f'config.dataset.num_classes={d.num_classes} must be positive for a class-conditional '
           'model (or set config.model.class_conditional=False)')
  _require(0 <= m.prior_channels, f'config.model.prior_channels={m.prior_channels} must be >= 0 '
           '(0: filter all config.model.width channels)')
  for key in ('dropout', 'cond_dropout', 'input_corruption'):
    _fraction(m[key], f'model.{key}')
  _fraction(o.ema_decay, 'optim.ema_decay')
  _require(o.learning_rate > 0, f'config.optim.learning_rate={o.learning_rate} must be positive')
  _require(o.warmup_steps >= 0, f'config.optim.warmup_steps={o.warmup_steps} must be >= 0')
  _require(o.weight_decay >= 0, f'config.optim.weight_decay={o.weight_decay} must be >= 0')
  _require(o.grad_clip > 0, f'config.optim.grad_clip={o.grad_clip} must be positive')
  _require(config.eval.split in sources.SPLITS,
           f'config.eval.split={config.eval.split!r} must be one of {sources.SPLITS}')
  _require(config.eval.checkpoint in ('latest', 'best'),
           f"config.eval.checkpoint={config.eval.checkpoint!r} must be 'latest' or 'best'")
  _require(config.eval.split != 'validation' or d.validation_examples > 0,
           "config.eval.split='validation' needs config.dataset.validation_examples > 0")
  models.build_model(config)  # dtype, head, prior and cross-attention blocks, text settings
  _check_layout(config, devices, num_processes)
  _warn_no_ops(config, len(devices))
  if mode == 'sample' or config.eval.samples:
    sample_options.check_options(config)
    sample_options.parse_labels(config)
    sample_options.parse_prompts(config, config.sample.num_images)
    sample_options.check_guidance(config)
    if mode != 'sample':  # sampling checks the checkpoint's own config.model.cond_dropout
      sample_options.check_null_condition(config, m.cond_dropout)


def _check_layout(config: ml_collections.ConfigDict, devices: list, num_processes: int) -> None:
  mesh = mesh_lib.make_mesh(config, devices)
  for key, value in (('batch_size', config.batch_size),
                     ('eval.batch_size', config.eval.batch_size)):
    divisor = math.lcm(mesh.size, num_processes)
    _require(value % divisor == 0,
             f'config.{key}={value} must be a multiple of {divisor}: the batch is split over the '
             f'{mesh.size} devices of the mesh {dict(mesh.shape)} and {num_processes} '
             f'process(es); try --config.{key}={max(divisor, value // divisor * divisor)}')


def _warn_no_ops(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """One warning for each setting that cannot take effect on this run."""
  m = config.model
  if config.mesh.fsdp and num_devices > 1:
    shape = mesh_lib.mesh_shape(tuple(config.mesh.shape), num_devices)
    fsdp_size = shape[tuple(config.mesh.axes).index('fsdp')]
    if fsdp_size == 1:
      logging.warning(
          "config.mesh.fsdp=True shards nothing: the 'fsdp' axis of the mesh %s over %d devices "
          "has size 1. Put the devices on it, e.g. --config.mesh.shape='(1, -1)'.",
          dict(zip(config.mesh.axes, shape)), num_devices)
  if m.text != 'cross_attention' and m.cross_attention_blocks != 'all':
    logging.warning("config.model.cross_attention_blocks=%r has no effect: config.model.text=%r "
                    "is not 'cross_attention'.", m.cross_attention_blocks, m.text)
  if m.cond_dropout > 0 and not m.class_conditional and m.text == 'none':
    logging.warning('config.model.cond_dropout=%s has no effect on a model without labels or '
                    'prompts.', m.cond_dropout)
