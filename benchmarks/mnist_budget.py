"""How MNIST bits/dim falls with the training budget: configs/mnist.py at k times its steps.

  python benchmarks/mnist_budget.py [--budgets=1,2,4] [--seed=0] [--workdir=/tmp/fp-mnist-budget]
      [--set=model.head=logistic_mixture ...]

For each k, configs/mnist.py as shipped but for k x 1,100 steps (the cosine schedule stretched
to the new length; evaluations every 550 steps as shipped): the validation bits/dim at each
evaluation, and for the best-validation checkpoint the bits/dim of the training images it
learned from (the generalisation gap) and of the test split, with the run's wall time and the
load it ran under. `--set` changes a setting of the config (repeatable), for choosing it by
validation at an equal budget. Then a fit of test bits/dim against log2(steps) across the budgets and the
steps it puts at 1.00 bits/dim, if it falls that far. The last line is JSON. About 12 minutes
per 1,100 steps on 2 CPU cores: 84 for the default budgets.
"""
import argparse
import ast
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, '.')
sys.path.insert(0, 'benchmarks')
from configs import mnist  # pylint: disable=g-import-not-at-top
from freqprior import train  # pylint: disable=g-import-not-at-top
import mnist as mnist_benchmark  # pylint: disable=g-import-not-at-top


def validation_curve(workdir: str) -> dict[int, float]:
  """{step: validation bits/dim} from the run's TensorBoard events."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  # only once training is done
  curve = {}
  for path in tf.io.gfile.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'validation_bpd':
          curve[int(event.step)] = round(float(tf.make_ndarray(value.tensor)), 4)
  return dict(sorted(curve.items()))


def override(config, setting: str) -> str:
  """Applies 'a.b=value' to config (a string where the setting is one, else a Python literal);
  -> 'a.b=value'."""
  key, _, text = setting.partition('=')
  *path, leaf = key.split('.')
  node = config
  for name in path:
    node = getattr(node, name)
  value = text if isinstance(getattr(node, leaf), str) else ast.literal_eval(text)
  setattr(node, leaf, value)
  return f'{key}={value}'


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--budgets', default='1,2,4')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workdir', default='/tmp/fp-mnist-budget')
  parser.add_argument('--set', action='append', default=[], help='KEY=VALUE config override')
  args = parser.parse_args()

  runs = []
  for k in [int(b) for b in args.budgets.split(',')]:
    config = mnist.get_config()
    config.num_train_steps *= k
    config.seed = args.seed
    config.eval.samples = False
    settings = [override(config, s) for s in args.set]
    tag = ''.join(f'_{s.replace("/", "-")}' for s in settings)
    workdir = f'{args.workdir}/x{k}_seed{args.seed}{tag}'
    start = time.perf_counter()
    record = train.train_and_evaluate(config, workdir)
    wall_s, load = time.perf_counter() - start, os.getloadavg()[1]
    runs.append({'budget': k, 'steps': config.num_train_steps, 'best_step': record['step'],
                 'test_bpd': round(record['bpd'], 4),
                 'train_bpd': round(mnist_benchmark.split_bpd(config, workdir, 'train')['all'], 4),
                 'validation_bpd': validation_curve(workdir),
                 'wall_s': round(wall_s, 1), 'load_5min': round(load, 2)})
    print(runs[-1], flush=True)

  result = {'settings': settings, 'runs': runs}
  if len(runs) > 1:
    slope, intercept = np.polyfit([np.log2(r['steps']) for r in runs],
                                  [r['test_bpd'] for r in runs], 1)
    result['test_bpd_per_doubling'] = round(float(slope), 4)
    if slope < 0:
      result['steps_at_1.00'] = int(round(2 ** ((1.0 - intercept) / slope)))
  print(json.dumps(result))


if __name__ == '__main__':
  main()
