"""The frequency prior where global context matters: configs/mnist.py (28x28) with and without it.

  python benchmarks/mnist.py [--seeds=3] [--variants=prior,no_prior] [--workdir=/tmp/fp-mnist]
      [--samples_per_class=10] [--steps=N] [--guidance_scales=1,2]

For each seed, configs/mnist.py as shipped (`prior`) and with the prior off, widened to the same
parameter count within 2% (`no_prior`), trained for the same steps; for each run the test
bits/dim of its best-validation checkpoint, overall and by row band (top, middle, bottom third
of the image), so a reader can see which pixels the global filter helps, and the run's wall
time (training and evaluations) with the load average it ran under. Then the train-step time
of both variants (timed alternately), and class_accuracy: a logistic regression trained on the
784 pixels of the training split labels `--samples_per_class` class-conditional samples of each
digit from the prior model of seed 0, at each guidance scale. The last line is JSON. 15-20
minutes per run on 2 CPU cores (the prior-off model is the slower).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import jax
import numpy as np
from sklearn import linear_model

sys.path.insert(0, '.')
sys.path.insert(0, 'benchmarks')
from configs import mnist  # pylint: disable=g-import-not-at-top
from freqprior import data, models, sample, train  # pylint: disable=g-import-not-at-top
import quality  # pylint: disable=g-import-not-at-top
import train_throughput  # pylint: disable=g-import-not-at-top

BANDS = {'top': slice(0, 9), 'middle': slice(9, 19), 'bottom': slice(19, 28)}


def split_bpd(config, workdir: str, split: str = 'test') -> dict[str, float]:
  """Bits/dim of the run's best checkpoint (EMA parameters) on `split`: 'all', and each row band."""
  params, _ = sample.restore_params(config, workdir)
  model = models.build_model(config)
  apply = jax.jit(lambda p, x, y: model.apply({'params': p}, x, y))
  nats_H, count = np.zeros(config.dataset.image_size), 0
  for batch in data.eval_batches(config, split):
    logp_BHWC = np.asarray(apply(params, batch['image'], batch['label']))[batch['mask']]
    nats_H -= logp_BHWC.sum(axis=(0, 2, 3))
    count += len(logp_BHWC)
  per_row = config.dataset.image_size * config.dataset.channels * count * math.log(2.0)
  bands = {name: float(nats_H[rows].sum() / (per_row * len(nats_H[rows])))
           for name, rows in BANDS.items()}
  return {'all': float(nats_H.sum() / (per_row * len(nats_H))), **bands}


def class_accuracy(config, workdir: str, per_class: int, scales: list[float]
                   ) -> tuple[dict[str, float], float]:
  """({guidance scale: share of class-conditional samples a pixel classifier labels as asked},
  the classifier's accuracy on the test split)."""
  def pixels(split):
    batches = list(data.eval_batches(config, split))
    images = np.concatenate([b['image'][b['mask']] for b in batches])
    labels = np.concatenate([b['label'][b['mask']] for b in batches])
    return images.reshape(len(images), -1) / 255.0, labels

  classifier = linear_model.LogisticRegression(max_iter=2000).fit(*pixels('train'))
  test_accuracy = float(classifier.score(*pixels('test')))
  config = config.copy_and_resolve_references()
  n = 10 * per_class
  config.sample.update(num_images=n, batch_size=n, class_label=','.join(map(str, range(10))))
  wanted = np.resize(np.arange(10), n)
  shares = {}
  for scale in scales:
    config.sample.guidance_scale = scale
    images, _ = sample.sample_checkpoint(config, workdir)
    shares[str(scale)] = float(np.mean(classifier.predict(images.reshape(n, -1) / 255.0) == wanted))
  return shares, test_accuracy


def step_seconds(configs: dict, rounds: int = 3, steps: int = 3) -> dict[str, float]:
  """Median train-step seconds of each config, timed alternately."""
  runners = {name: train_throughput.Runner(c) for name, c in configs.items()}
  return train_throughput.alternating_medians(runners, steps, rounds)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--first_seed', type=int, default=0)
  parser.add_argument('--variants', default='prior,no_prior')
  parser.add_argument('--workdir', default='/tmp/fp-mnist')
  parser.add_argument('--samples_per_class', type=int, default=10)
  parser.add_argument('--steps', type=int, default=0, help='override num_train_steps')
  parser.add_argument('--guidance_scales', default='',
                      help='class_accuracy at these scales (default: the config\'s)')
  args = parser.parse_args()

  prior_config = mnist.get_config()
  if args.steps:
    prior_config.num_train_steps = args.steps
  no_prior_config, gap = quality.matched_no_prior(prior_config)
  configs = {'prior': prior_config, 'no_prior': no_prior_config}
  variants = args.variants.split(',')
  runs = {name: [] for name in variants}
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    for name in variants:
      config = configs[name].copy_and_resolve_references()
      config.seed = seed
      config.eval.samples = False
      workdir = f'{args.workdir}/{name}_seed{seed}'
      start = time.perf_counter()
      record = train.train_and_evaluate(config, workdir)
      # Training plus its evaluations end to end, and the load it ran under (2 = both cores).
      wall_s, load = time.perf_counter() - start, os.getloadavg()[1]
      runs[name].append({'bpd': record['bpd'], 'step': record['step'],
                         'wall_s': round(wall_s, 1), 'load_5min': round(load, 2),
                         **{band: bpd for band, bpd in split_bpd(config, workdir).items()
                            if band in BANDS}})
      print(name, seed, runs[name][-1], flush=True)

  stats = lambda xs: {'mean': statistics.mean(xs),
                      'std': statistics.stdev(xs) if len(xs) > 1 else 0.0}
  runs = {name: rs for name, rs in runs.items() if rs}
  result = {
      'test_bpd': {name: {**stats([r['bpd'] for r in rs]), 'runs': rs} for name, rs in runs.items()},
      'band_bpd': {name: {band: stats([r[band] for r in rs]) for band in BANDS}
                   for name, rs in runs.items()},
      'params': {name: quality.num_params(configs[name]) for name in configs},
      'relative_gap': gap, 'no_prior_width': no_prior_config.model.width,
      'step_seconds': step_seconds({name: configs[name] for name in variants}),
  }
  if 'prior' in variants and args.first_seed == 0:
    scales = ([float(x) for x in args.guidance_scales.split(',')] if args.guidance_scales
              else [prior_config.sample.guidance_scale])
    accuracy, test_accuracy = class_accuracy(prior_config, f'{args.workdir}/prior_seed0',
                                             args.samples_per_class, scales)
    result.update(class_accuracy=accuracy, classifier_test_accuracy=test_accuracy)
  print(json.dumps(result))


if __name__ == '__main__':
  main()
