"""Graph size and compile time of every shipped config's train step, eval step, initialiser and
sampler.

  python benchmarks/compile.py [--configs=cifar100,imagenet64,...] [--dtypes=float32,bfloat16]
      [--batch_size=8] [--num_blocks=N] [--no_memory]

For each config at full size (batch --batch_size) and compute dtype: the number of jaxpr
equations of the train step (its gradient included; every sub-jaxpr counted, a scanned or
looped body once), seconds to lower it, and XLA compile seconds of the train step, the eval
step, the initialiser and the cached sampler (one image batch of --batch_size). Unless
--no_memory, a subprocess with 8 fake CPU devices reports each config's per-device memory
(`compiled.memory_analysis()`) of the train step on the config's own mesh. --num_blocks
overrides the depth (graph growth with depth). `draw_compile_s`: compile seconds of 20 parameter
draws in rank 2, 3 and 4 (see models/layers.drawn_flat). The last line is JSON.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import time

import flax.linen
import jax
import ml_collections
import numpy as np

sys.path.insert(0, '.')
from freqprior import models, sample, train  # pylint: disable=g-import-not-at-top

SHIPPED = ('digits', 'digits_text', 'mnist', 'cifar100', 'cifar100_text', 'imagenet32',
           'imagenet64', 'coco')


def count_equations(jaxpr) -> int:
  """Equations of a jaxpr and, once each, of the jaxprs in its equations' parameters."""
  total = 0
  for eqn in jaxpr.eqns:
    total += 1
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          total += count_equations(inner)
  return total


def build(name: str, dtype: str, batch_size: int, num_blocks: int = 0):
  config = importlib.import_module(f'configs.{name}').get_config()
  config.model.dtype = dtype
  config.batch_size = config.eval.batch_size = batch_size
  config.sample.update(num_images=batch_size, batch_size=batch_size)
  if num_blocks:  # the config's placements, repeated through the new depth
    for key in ('prior_blocks', 'cross_attention_blocks'):
      spec = config.model[key]
      if spec not in ('all', 'last', 'none'):
        placed = {int(b) for b in spec.split(',')}
        config.model[key] = ','.join(str(b) for b in range(num_blocks)
                                     if b % config.model.num_blocks in placed)
    config.model.num_blocks = num_blocks
  return config


def batch(config, keys):
  size, channels = config.dataset.image_size, config.dataset.channels
  b = config.batch_size
  out = {'image': np.zeros((b, size, size, channels), np.uint8),
         'label': np.zeros(b, np.int32), 'mask': np.ones(b, bool),
         'caption': np.array(['a photo'] * b, dtype=object)}
  return {k: out[k] for k in keys + ('caption',)}


def timed(fn):
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def measure(config) -> dict:
  setup = train.Setup.create(config, jax.devices()[:1])
  state = setup.abstract_state
  train_batch = setup.global_batch(batch(config, train.TRAIN_KEYS), train.TRAIN_KEYS)
  eval_batch = setup.global_batch(batch(config, train.EVAL_KEYS), train.EVAL_KEYS)
  step = train.make_train_step(setup.model, config, setup.tx)
  jaxpr = jax.make_jaxpr(step)(state, train_batch)
  lowered, lower_s = timed(lambda: setup.train_step.lower(state, train_batch))
  _, train_compile_s = timed(lowered.compile)
  eval_lowered = setup.eval_step.lower(state.ema_params, eval_batch)
  _, eval_compile_s = timed(eval_lowered.compile)
  _, init_compile_s = timed(setup.initializer.lower(jax.random.key(0)).compile)
  frozen = ml_collections.FrozenConfigDict({'model': config.model, 'dataset': config.dataset})
  key = jax.random.key(0)
  sampler = sample._compiled(frozen, 'cached', False, jax.random.key_impl(key))  # pylint: disable=protected-access
  keys = np.asarray(jax.random.key_data(jax.random.split(key, config.batch_size)))
  labels = np.zeros(config.batch_size, np.int32) if config.model.class_conditional else None
  tokens = models.prompt_tokens([''] * config.batch_size, config.batch_size, config) if (
      config.model.text != 'none') else None
  sampler_lowered = sampler.lower(state.ema_params, keys, labels, tokens, np.float32(1.0))
  _, sampler_compile_s = timed(sampler_lowered.compile)
  return {'equations': count_equations(jaxpr.jaxpr), 'lower_s': round(lower_s, 2),
          'train_compile_s': round(train_compile_s, 2),
          'eval_compile_s': round(eval_compile_s, 2),
          'init_compile_s': round(init_compile_s, 2),
          'sampler_compile_s': round(sampler_compile_s, 2)}


def draw_compile_seconds(num_draws: int = 20) -> dict:
  """XLA compile seconds of `num_draws` lecun_normal draws of 1,152 values in rank 2, 3 and 4
  (a 3x3x8x16 conv kernel and its flattenings): what an initialiser spends per parameter."""
  init = flax.linen.initializers.lecun_normal()
  result = {}
  for shape in [(72, 16), (9, 8, 16), (3, 3, 8, 16)]:
    draws = jax.jit(lambda key, shape=shape: [init(jax.random.fold_in(key, i), shape)
                                              for i in range(num_draws)])
    _, result[f'rank{len(shape)}'] = timed(draws.lower(jax.random.key(0)).compile)
  return {k: round(v, 2) for k, v in result.items()}


def memory(names, dtypes, batch_size: int) -> dict:
  """Per-device bytes of each train step on the config's own mesh over the 8 devices."""
  result = {}
  for name in names:
    for dtype in dtypes:
      config = build(name, dtype, max(batch_size, 8))
      setup = train.Setup.create(config)
      state = setup.abstract_state
      train_batch = setup.global_batch(batch(config, train.TRAIN_KEYS), train.TRAIN_KEYS)
      stats = setup.train_step.lower(state, train_batch).compile().memory_analysis()
      result[f'{name}/{dtype}'] = {
          'argument_bytes': int(stats.argument_size_in_bytes),
          'temp_bytes': int(stats.temp_size_in_bytes),
          'output_bytes': int(stats.output_size_in_bytes),
          'mesh': dict(setup.mesh.shape)}
  return result


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--configs', default=','.join(SHIPPED))
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--num_blocks', type=int, default=0)
  parser.add_argument('--no_memory', action='store_true')
  parser.add_argument('--memory_only', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()
  names, dtypes = args.configs.split(','), args.dtypes.split(',')
  if args.memory_only:
    print(json.dumps(memory(names, dtypes, args.batch_size)))
    return
  result = {'device': jax.devices()[0].device_kind, 'batch_size': args.batch_size,
            'num_blocks': args.num_blocks or 'shipped', 'draw_compile_s': draw_compile_seconds(),
            'configs': {}}
  for name in names:
    for dtype in dtypes:
      result['configs'][f'{name}/{dtype}'] = measure(
          build(name, dtype, args.batch_size, args.num_blocks))
      print(name, dtype, result['configs'][f'{name}/{dtype}'], flush=True)
  if not args.no_memory:
    env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='8')
    out = subprocess.run([sys.executable, __file__, '--memory_only', f'--configs={args.configs}',
                          f'--dtypes={args.dtypes}', f'--batch_size={args.batch_size}'],
                         env=env, capture_output=True, text=True, check=True)
    result['memory_8_devices'] = json.loads(out.stdout.strip().splitlines()[-1])
  print(json.dumps(result))


if __name__ == '__main__':
  main()
