"""One short accelerator run: compile times, train throughput and MFU, prior cost, sampling.

  python benchmarks/device.py            # on a GPU / TPU host: about 8 minutes, no data needed
  python benchmarks/device.py --cpu_smoke  # every part once on tiny sizes (the tests)

On random batches (no network, no datasets), for configs/cifar100.py at full size:
compile seconds of the train step, eval step and cached sampler (benchmarks/compile.py); train
images/s and MFU in float32 and bfloat16 at batch 64 and at the largest batch up to 512 that
fits; prior_overhead at the shipped placement (benchmarks/train_throughput.py); imagenet64
images/s; cached and naive sampling seconds for 16 and 256 32x32x3 images (benchmarks/
sampling.py); the vertical prior filter with each row DFT, jnp.fft and the matmul DFT, at 32x32
and 64x64, batch 64, the matmul DFT at each precision, and their errors against float64
(benchmarks/prior_dft.py). Every part prints as it finishes, with its seconds; the last line is
one JSON record.

--cpu_smoke runs each measurement once, small: one dtype for the compile part, the largest-batch
search at one batch (the runner of the batch-64 part), sampling at one size.
"""
import argparse
import json
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from configs import cifar100, imagenet64  # pylint: disable=g-import-not-at-top
import compile as compile_bench  # pylint: disable=g-import-not-at-top
import prior_dft  # pylint: disable=g-import-not-at-top
import train_throughput  # pylint: disable=g-import-not-at-top
from freqprior.models import prior as prior_lib  # pylint: disable=g-import-not-at-top

SMOKE = dict(width=8, num_blocks=1, head_width=8, prior_channels=4, prior_blocks='0', num_mixtures=2)


def shrink(config, smoke: bool):
  if smoke:
    config.model.update(**SMOKE)
    config.dataset.image_size = 8
  return config


_SMOKE_RUNNERS = {}


def runner(module, dtype: str, batch: int, smoke: bool, prior: bool = True):
  """A train_throughput.Runner; with `smoke` built once per setting (compiles dominate)."""
  key = (module.__name__, dtype, batch, prior)
  if smoke and key in _SMOKE_RUNNERS:
    return _SMOKE_RUNNERS[key]
  config = shrink(module.get_config(), smoke)
  config.model.update(dtype=dtype, frequency_prior=prior)
  config.batch_size = batch
  built = train_throughput.Runner(config)
  if smoke:
    _SMOKE_RUNNERS[key] = built
  return built


def throughput(module, dtype: str, batch: int, smoke: bool) -> dict:
  runner_ = runner(module, dtype, batch, smoke)
  times = runner_.time(3 if smoke else 10)
  step_s = sorted(times)[len(times) // 2]
  entry = {'batch': batch, 'step_s': step_s, 'images_per_s': batch / step_s,
           'forward_gflops_per_image': runner_.forward_flops / 1e9}
  kind = jax.devices()[0].device_kind
  peak = next((v for k, v in train_throughput.PEAK_BF16_FLOPS.items() if kind.startswith(k)),
              None)
  if peak:  # training ~ 3x the forward pass
    entry['mfu'] = 3 * runner_.forward_flops * batch / step_s / peak
  return entry


def prior_overhead(batch: int, smoke: bool) -> float:
  """bfloat16 step time with the shipped prior / without it - 1, timed alternately."""
  runners = {prior: runner(cifar100, 'bfloat16', batch, smoke, prior) for prior in (True, False)}
  medians = train_throughput.alternating_medians(runners, 3 if smoke else 5, 2 if smoke else 4)
  return medians[True] / medians[False] - 1


def largest_batch(dtype: str, smoke: bool, start: int = 64, limit: int = 512) -> dict:
  """The throughput at the largest power-of-two batch up to `limit` that fits in memory."""
  best, batch = None, start
  while batch <= limit:
    try:
      best = throughput(cifar100, dtype, batch, smoke)
    except Exception as e:  # pylint: disable=broad-except
      if 'RESOURCE_EXHAUSTED' not in str(e) and 'out of memory' not in str(e).lower():
        raise
      break
    batch *= 2
  return best


def sampling(smoke: bool) -> dict:
  """Seconds of cached and naive sampling of the cifar100 model for 16 and 256 images."""
  from freqprior import sample, train  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  config = shrink(cifar100.get_config(), smoke)
  config.model.update(dtype='float32', dropout=0.0)
  params = train.Setup.create(config, jax.devices()[:1]).init_state().ema_params
  result = {}
  for num in ((2,) if smoke else (16, 256)):
    config.sample.update(num_images=num, batch_size=num)
    labels = np.arange(num, dtype=np.int32) % config.dataset.num_classes
    for method in ('cached', 'naive'):
      sample.generate(params, config, labels, jax.random.key(1), method=method)  # compile
      start = time.perf_counter()
      sample.generate(params, config, labels, jax.random.key(1), method=method)
      result[f'{method}_{num}_s'] = time.perf_counter() - start
    result[f'speedup_{num}'] = result[f'naive_{num}_s'] / result[f'cached_{num}_s']
  return result


def prior_dft_part(smoke: bool) -> dict:
  """The vertical prior filter, value_and_grad: seconds with each row DFT, seconds and error of
  the matmul DFT at each precision, errors of both against float64 (plus numpy emulations)."""
  channels = 4 if smoke else cifar100.get_config().model.prior_channels
  sizes, batch, rounds = ((8,), 2, 2) if smoke else ((32, 64), 64, 10)
  return {'row_dft': {str(s): prior_lib.row_dft_method(s) for s in sizes},
          'precision': str(prior_lib.precision()), 'batch': batch, 'channels': channels,
          'timings': prior_dft.timings(sizes, batch, channels, rounds),
          'precisions': {str(s): prior_dft.precision_sweep(s, batch, channels, rounds)
                         for s in sizes},
          'accuracy': prior_dft.accuracy(size=8 if smoke else 32)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--cpu_smoke', action='store_true', help='tiny sizes, for the tests')
  args = parser.parse_args()
  smoke = args.cpu_smoke
  start = time.perf_counter()
  result = {'device': jax.devices()[0].device_kind, 'num_devices': jax.device_count(),
            'smoke': smoke}

  def part(name, fn):
    part_start = time.perf_counter()
    result[name] = fn()
    print(name, json.dumps(result[name]), f'({time.perf_counter() - part_start:.1f} s)',
          file=sys.stderr, flush=True)

  for dtype in ('float32', 'bfloat16'):
    if not (smoke and dtype == 'bfloat16'):  # the same code path as float32
      part(f'compile_{dtype}', lambda dtype=dtype: compile_bench.measure(
          shrink(compile_bench.build('cifar100', dtype, 8), smoke)))
    part(f'cifar100_{dtype}_batch64', lambda dtype=dtype: throughput(
        cifar100, dtype, 8 if smoke else 64, smoke))
    part(f'cifar100_{dtype}_largest', lambda dtype=dtype: largest_batch(
        dtype, smoke, 8 if smoke else 128, 8 if smoke else 512))
  part('prior_overhead', lambda: prior_overhead(8 if smoke else 64, smoke))
  part('imagenet64_bfloat16', lambda: throughput(imagenet64, 'bfloat16', 8 if smoke else 64,
                                                 smoke))
  part('sampling', lambda: sampling(smoke))
  part('prior_dft', lambda: prior_dft_part(smoke))
  result['total_s'] = time.perf_counter() - start
  print(json.dumps(result))


if __name__ == '__main__':
  main()
