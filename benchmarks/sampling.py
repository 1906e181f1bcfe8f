"""Sampling speed: `naive` (a full forward pass per subpixel / pixel) vs `cached` (incremental).

Both methods sample the same freshly initialised model and batch (same labels, seed and
temperature) through `freqprior.sample.generate`; each is run once to compile, then timed on a
second run. Models: configs/digits.py as shipped (8x8x1, categorical head) and a 32x32x3 model,
configs/cifar100.py (logistic mixture head) narrowed so that the naive run takes a few minutes
on 2 CPU cores, with a full-width frequency prior in every block rather than the config's
sparse placement (float32; sizes below, printed with the results).

  python benchmarks/sampling.py [--cifar_width=32 --cifar_blocks=4 --cifar_batch=8]
                                [--digits_batch=16] [--models=digits,cifar32]

Prints one JSON line per model, then a final line
{"digits": {"naive_s", "cached_s", ...}, "cifar32": {...}, "speedup": cifar32 naive/cached}.
Target: speedup >= 30 on CPU. Measured on the 2 CPU cores, otherwise idle (load ~1.2), 16
digits and 8 32x32x3 images, identical images from both methods: digits naive 0.357 s, cached
0.032 s (11.2x); 32x32x3 (width 32, 4 blocks, 449k parameters, 9 MB of caches) naive 42.2 s,
cached 0.316 s (133x). The whole script takes about 3 minutes. On a GPU, float32 products run
in TF32 unless JAX_DEFAULT_MATMUL_PRECISION=highest, and the two methods' images then differ.
"""
import json
import math
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import cifar100  # pylint: disable=g-import-not-at-top
from configs import digits  # pylint: disable=g-import-not-at-top
from freqprior import models  # pylint: disable=g-import-not-at-top
from freqprior import sample  # pylint: disable=g-import-not-at-top
from freqprior.sampling import cached  # pylint: disable=g-import-not-at-top

_CIFAR_WIDTH = flags.DEFINE_integer('cifar_width', 32, 'Stack width of the 32x32x3 model.')
_CIFAR_BLOCKS = flags.DEFINE_integer('cifar_blocks', 4, 'Gated blocks of the 32x32x3 model.')
_CIFAR_BATCH = flags.DEFINE_integer('cifar_batch', 8, 'Images per batch, 32x32x3 model.')
_DIGITS_BATCH = flags.DEFINE_integer('digits_batch', 16, 'Images per batch, digits model.')
_MODELS = flags.DEFINE_list('models', ['digits', 'cifar32'], 'Which models to time.')


def model_configs():
  digits_config = digits.get_config()
  digits_config.sample.batch_size = _DIGITS_BATCH.value
  cifar = cifar100.get_config()
  cifar.model.update(width=_CIFAR_WIDTH.value, num_blocks=_CIFAR_BLOCKS.value,
                     head_width=_CIFAR_WIDTH.value, dtype='float32', dropout=0.0,
                     prior_blocks='all', prior_channels=0)  # the most prior work per pixel
  cifar.sample.batch_size = _CIFAR_BATCH.value
  return {'digits': digits_config, 'cifar32': cifar}


def cache_bytes(config, params, batch: int) -> int:
  """Size of the cached sampler's per-layer caches for one batch."""
  model = models.build_model(config)
  size, channels = config.dataset.image_size, config.dataset.channels

  def state(m):
    cond_BD, _ = cached.capture(m, None, (size, size, channels), batch)
    stepper = cached.Stepper(m.settings, m.variables['params']['backbone'], cond_BD,
                             (size, size, channels))
    return stepper.init_state(batch)

  shapes = jax.eval_shape(lambda p: model.apply({'params': p}, method=state), params)
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def time_model(name: str, config) -> dict:
  batch = config.sample.batch_size
  config.sample.num_images = batch
  params = models.init_params(models.build_model(config), config, jax.random.key(0))
  labels = np.arange(batch, dtype=np.int32) % config.dataset.num_classes
  m = config.model
  result = {'image': [config.dataset.image_size] * 2 + [config.dataset.channels],
            'head': m.head, 'width': m.width, 'num_blocks': m.num_blocks,
            'head_width': m.head_width, 'prior_blocks': m.prior_blocks,
            'params': sum(math.prod(x.shape) for x in jax.tree.leaves(params)),
            'batch': batch, 'cache_mb': round(cache_bytes(config, params, batch) / 2 ** 20, 2),
            'device': jax.devices()[0].device_kind}
  images = {}
  for method in ('cached', 'naive'):
    start = time.perf_counter()
    sample.generate(params, config, labels, jax.random.key(1), method=method)
    result[f'{method}_first_call_s'] = round(time.perf_counter() - start, 3)  # + compilation
    start = time.perf_counter()
    images[method] = sample.generate(params, config, labels, jax.random.key(1), method=method)
    result[f'{method}_s'] = round(time.perf_counter() - start, 3)
    print(f'{name} {method}: {result[f"{method}_s"]} s', file=sys.stderr, flush=True)
  same = np.all(images['naive'] == images['cached'], axis=(1, 2, 3))
  result['identical_images'] = float(same.mean())
  result['speedup'] = round(result['naive_s'] / result['cached_s'], 1)
  print(json.dumps({name: result}), flush=True)
  return result


def main(argv):
  del argv
  configs = model_configs()
  results = {name: time_model(name, configs[name]) for name in _MODELS.value}
  summary = {name: {k: r[k] for k in ('naive_s', 'cached_s', 'speedup', 'identical_images')}
             for name, r in results.items()}
  if 'cifar32' in results:
    summary['speedup'] = results['cifar32']['speedup']
  summary['load_average'] = os.getloadavg()[0]
  print(json.dumps(summary), flush=True)


if __name__ == '__main__':
  app.run(main)
