"""How MNIST bits/dim falls with the training budget: configs/mnist.py at k times its steps.

  python benchmarks/mnist_budget.py [--budgets=1,2,4] [--seed=0] [--workdir=/tmp/fp-mnist-budget]
      [--config.model.head=logistic_mixture ...]

For each k, configs/mnist.py as shipped but for k times its steps (the cosine schedule stretched
to the new length; evaluations every 550 steps as shipped): the validation bits/dim at each
evaluation, and for the best-validation checkpoint the bits/dim of the training images it
learned from (the generalisation gap) and of the test split, with the run's wall time and the
load it ran under. `--config.KEY=VALUE` changes a setting as in main.py, for choosing it by
validation at an equal budget. Then a fit of test bits/dim against log2(steps) across the
budgets and the steps it puts at 1.00 bits/dim, if it falls that far. The last line is JSON.
About 15 minutes per 2,200 steps of batch 16 on 2 CPU cores, so about 105 for the default
budgets (7 times that).
"""
import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, '.')
sys.path.insert(0, 'benchmarks')
from configs import mnist  # pylint: disable=g-import-not-at-top
from freqprior import logs, train  # pylint: disable=g-import-not-at-top
import mnist as mnist_benchmark  # pylint: disable=g-import-not-at-top

config_flags.DEFINE_config_file('config', 'configs/mnist.py', 'The config; --config.KEY=VALUE '
                                'changes one setting.')
flags.DEFINE_list('budgets', ['1', '2', '4'], 'Multiples of the config\'s steps, one run each.')
flags.DEFINE_integer('seed', 0, 'config.seed of every run.')
flags.DEFINE_string('workdir', '/tmp/fp-mnist-budget', 'Parent of the runs\' workdirs.')
FLAGS = flags.FLAGS


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


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # as main.py: the runs' lines, not the libraries' INFO
  logs.quiet_libraries(-1)
  # The settings that differ from configs/mnist.py name the runs' workdirs and the result.
  shipped = set(logs.config_flags(mnist.get_config()))
  settings = [f.removeprefix('--config.') for f in logs.config_flags(FLAGS.config)
              if f not in shipped]
  tag = ''.join(f'_{s.replace("/", "-")}' for s in settings)
  runs = []
  for k in [int(b) for b in FLAGS.budgets]:
    config = FLAGS.config.copy_and_resolve_references()
    config.num_train_steps *= k
    config.seed = FLAGS.seed
    config.eval.samples = False
    workdir = f'{FLAGS.workdir}/x{k}_seed{FLAGS.seed}{tag}'
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
  app.run(main)
