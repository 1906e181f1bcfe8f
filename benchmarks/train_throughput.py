"""Train-step throughput of the real sharded step, frequency prior on vs off, measured alternately.

  python benchmarks/train_throughput.py [--steps=10] [--rounds=6] [--full] [--batch_size=N]
      [--models=digits,cifar100,imagenet64] [--dtypes=float32,bfloat16] [--placements]

Without --full on a CPU host, batch and width are scaled down (the sizes are in the output);
on an accelerator (or with --full) the shipped configs run at full size, and bfloat16 vs
float32 and MFU against the chip's peak are reported too. The last line is JSON with
`prior_overhead` = (step time with prior / without) - 1 for the cifar100 config.
--placements adds `placements`: the cifar100 config's overhead with the prior placed and
parameterized otherwise (every block, every other block, full width or a 1/3-width bottleneck,
the implicit kernel), all timed alternately in one run.
"""
import argparse
import json
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, '.')
from configs import cifar100, digits, imagenet64  # pylint: disable=g-import-not-at-top
from freqprior import models, train  # pylint: disable=g-import-not-at-top

PEAK_BF16_FLOPS = {'TPU v4': 275e12, 'TPU v5 lite': 197e12, 'TPU v5p': 459e12,
                   'NVIDIA H100': 989e12, 'NVIDIA H200': 989e12, 'NVIDIA A100': 312e12}
# The shipped placement scaled down with the depth and width: the prior in the last block of
# every four, filtering a 1/3-width projection.
CPU_SIZES = {'digits': dict(batch_size=64),
             'cifar100': dict(batch_size=8, width=48, num_blocks=4, prior_blocks='3',
                              prior_channels=16),
             'imagenet64': dict(batch_size=2, width=32, num_blocks=4, prior_blocks='3',
                                prior_channels=10)}


def build_config(module, name: str, prior: bool, dtype: str, full: bool, batch_size: int = 0):
  """The shipped config, scaled down unless `full`; `batch_size` (if set) overrides the batch."""
  config = module.get_config()
  if not full:
    sizes = dict(CPU_SIZES[name])
    config.batch_size = sizes.pop('batch_size')
    config.model.update(head_width=sizes.get('width', config.model.head_width), **sizes)
  config.batch_size = batch_size or config.batch_size
  config.model.frequency_prior = prior
  config.model.dtype = dtype
  config.mesh.shape = (-1, 1)
  return config


class Runner:
  """A compiled train step on random data, ready to time."""

  def __init__(self, config):
    self.setup = train.Setup.create(config)
    self.state = self.setup.init_state()
    size, channels = config.dataset.image_size, config.dataset.channels
    rng = np.random.default_rng(0)
    self.batch = self.setup.global_batch({
        'image': rng.integers(0, 256, (config.batch_size, size, size, channels), np.uint8),
        'label': rng.integers(0, config.dataset.num_classes, config.batch_size).astype(np.int32),
    }, train.TRAIN_KEYS)
    self.batch_size = config.batch_size
    self.time(2)  # compile and warm up
    model, params = self.setup.model, self.state.params
    images, labels = models.dummy_inputs(config, 1)
    forward = jax.jit(lambda p, x, y: model.apply({'params': p}, x, y))
    # XLA's cost analysis of the lowered (not yet compiled) program: backend-independent, so
    # convolutions that a GPU compiles to library calls are still counted.
    cost = forward.lower(params, images, labels).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    self.forward_flops = float(cost.get('flops', 0.0))
    self.num_params = sum(p.size for p in jax.tree.leaves(params))

  def time(self, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
      start = time.perf_counter()
      self.state, metrics = self.setup.train_step(self.state, self.batch)
      jax.block_until_ready((self.state, metrics))
      times.append(time.perf_counter() - start)
    return times


def alternating_medians(runners: dict, steps: int, rounds: int) -> dict:
  """Median step time of each runner, timed in turn for `rounds` rounds (drift hits all)."""
  times = {name: [] for name in runners}
  for _ in range(rounds):
    for name, runner in runners.items():
      times[name] += runner.time(steps)
  return {name: statistics.median(t) for name, t in times.items()}


def placement_overheads(steps: int, rounds: int, full: bool,
                        batch_size: int = 0) -> dict[str, float]:
  """cifar100's prior_overhead for each placement / parameterization the model supports."""
  base = build_config(cifar100, 'cifar100', True, 'float32', full, batch_size)
  blocks = base.model.num_blocks
  every_other = ','.join(str(i) for i in range(1, blocks, 2))
  variants = {'none': dict(frequency_prior=False), 'shipped': {},
              'shipped_full_width': dict(prior_channels=0),
              'shipped_implicit': dict(prior_kernel='implicit'),
              'every_other_bottleneck': dict(prior_blocks=every_other),
              'every_block_bottleneck': dict(prior_blocks='all'),
              'every_block_full_width': dict(prior_blocks='all', prior_channels=0)}
  runners = {}
  for name, update in variants.items():
    config = base.copy_and_resolve_references()
    config.model.update(**update)
    runners[name] = Runner(config)
  medians = alternating_medians(runners, steps, rounds)
  none = medians.pop('none')
  return {name: median / none - 1 for name, median in medians.items()}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--rounds', type=int, default=6)
  parser.add_argument('--full', action='store_true')
  parser.add_argument('--batch_size', type=int, default=0, help='overrides every model\'s batch '
                      '(e.g. --full --batch_size=8: full-size models at a CPU-sized batch)')
  parser.add_argument('--models', default='digits,cifar100,imagenet64')
  parser.add_argument('--placements', action='store_true')
  parser.add_argument('--dtypes', default='', help='default: float32,bfloat16 on an '
                      'accelerator, float32 on CPU')
  args = parser.parse_args()
  device = jax.devices()[0]
  accelerator = device.platform != 'cpu'
  full = args.full or accelerator
  dtypes = (args.dtypes.split(',') if args.dtypes
            else ['float32', 'bfloat16'] if accelerator else ['float32'])
  modules = {'digits': digits, 'cifar100': cifar100, 'imagenet64': imagenet64}
  results = {}
  for name in args.models.split(','):
    module = modules[name]
    for dtype in dtypes:
      runners = {prior: Runner(build_config(module, name, prior, dtype, full, args.batch_size))
                 for prior in (True, False)}
      medians = alternating_medians(runners, args.steps, args.rounds)
      entry = {}
      for prior, runner in runners.items():
        median = medians[prior]
        key = 'prior' if prior else 'no_prior'
        entry[key] = {'median_step_s': median, 'images_per_s': runner.batch_size / median,
                      'forward_gflops_per_image': runner.forward_flops / 1e9,
                      'params': runner.num_params}
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if device.device_kind.startswith(k)),
                    None)
        if peak:  # training ~ 3x the forward pass
          entry[key]['mfu'] = 3 * runner.forward_flops * runner.batch_size / median / peak
      entry['prior_overhead'] = (entry['prior']['median_step_s']
                                 / entry['no_prior']['median_step_s'] - 1)
      config = build_config(module, name, True, dtype, full, args.batch_size)
      entry['sizes'] = {'batch_size': config.batch_size, 'width': config.model.width,
                        'num_blocks': config.model.num_blocks,
                        'image_size': config.dataset.image_size}
      results[f'{name}_{dtype}'] = entry
      print(name, dtype, json.dumps(entry), flush=True)
  summary = {'device': device.device_kind, 'num_devices': jax.device_count(),
             'full_size': full, 'steps_per_round': args.steps, 'rounds': args.rounds,
             'prior_overhead': next((results[k]['prior_overhead'] for k in
                                     ('cifar100_float32', 'cifar100_bfloat16') if k in results),
                                    None),
             'results': results}
  if args.placements:
    summary['placements'] = placement_overheads(args.steps, args.rounds, full, args.batch_size)
  print(json.dumps(summary))


if __name__ == '__main__':
  main()
