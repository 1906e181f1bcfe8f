"""Steps/s of the whole training loop (data, step, metrics, logging) through main.py.

  python benchmarks/train_loop.py [--config=configs/digits.py --steps=400 --rounds=2]

Runs `main.py` for --steps steps per round (evaluation and sample grids only at the end) and
reads the steps/s of its progress lines (stdout, every --log_every steps); the first interval
(compilation) is dropped.
Prints one JSON line: the median steps/s of each round and over all rounds.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

flags.DEFINE_string('config', 'configs/digits.py', 'Config file.')
flags.DEFINE_integer('steps', 400, 'Training steps per round.')
flags.DEFINE_integer('log_every', 25, 'Steps between logged steps/s values.')
flags.DEFINE_integer('rounds', 2, 'Rounds.')
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_round() -> list[float]:
  with tempfile.TemporaryDirectory() as workdir:
    out = subprocess.run(
        [sys.executable, 'main.py', f'--config={FLAGS.config}', f'--workdir={workdir}',
         f'--config.num_train_steps={FLAGS.steps}', f'--config.log_every_steps={FLAGS.log_every}',
         f'--config.eval_every_steps={FLAGS.steps}', f'--config.checkpoint_every_steps={FLAGS.steps}',
         '--config.eval.samples=False'],
        cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT),
        capture_output=True, text=True, check=True)
  rates = [float(x) for x in re.findall(r'^step .*  ([0-9.]+) steps/s  ETA', out.stdout, re.M)]
  return rates[1:]


def main(argv):
  del argv
  rounds = [one_round() for _ in range(FLAGS.rounds)]
  print(json.dumps({'config': FLAGS.config, 'steps': FLAGS.steps,
                    'median_steps_per_s_by_round': [round(statistics.median(r), 2) for r in rounds],
                    'median_steps_per_s': round(statistics.median(sum(rounds, [])), 2)}))


if __name__ == '__main__':
  app.run(main)
