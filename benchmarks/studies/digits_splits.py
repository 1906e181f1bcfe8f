"""How hard the digits demo's test split is: the demo, as shipped, tested on other writers.

  python benchmarks/studies/digits_splits.py [--splits=shipped,writers0,...]
      [--workdir=/tmp/fp-splits]

scikit-learn's 1,797 digits come from 13 writers (UCI optdigits' test set), stored writer after
writer, so the demo's test split (the last 297 images) is about two writers the model never saw.
TFDS stores the training records in a key-hash order, so the 200 validation images carved from
the end of the stored training split are a random 200 of its images: the same writers as
training. Each split below is written with the digits dataset's own writer as a `folder:`
dataset and trained by `freqprior.train.train_and_evaluate` with configs/digits.py as shipped
(best-validation checkpoint), then scored on its test and validation images:
  shipped       the demo itself (config.dataset.name='digits'): test = images 1500..1796
  writers<k>    test = images 297k..297k+296 (k = 0..4), other writers; training = the rest
  random        test = 297 images drawn at random from all 1,797: the training writers
  shipped_half  the shipped test split, training split = images 0..749 (about half the writers)
  random_half   the random split with a random half of its 1,500 training-split images
`writer_order` checks the stored order: the share of digits whose nearest same-class neighbour
lies within 150 positions (about one writer), against the share a random order would give.
Measured 2026-11-30 on the 2 CPU cores (27 min): test bits/dim shipped 1.712 (validation 1.662),
writers0-4 1.678, 1.765, 1.715, 1.798, 1.662; random 1.656; shipped_half 1.866; random_half
1.725; writer_order 0.59 against 0.17. The last line is JSON.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

from etils import epath
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import digits  # pylint: disable=g-import-not-at-top
from freqprior import data, train  # pylint: disable=g-import-not-at-top
from freqprior.data import digits as digits_data  # pylint: disable=g-import-not-at-top

SPLITS = ('shipped', 'writers0', 'writers1', 'writers2', 'writers3', 'writers4', 'random',
          'shipped_half', 'random_half')


def split_indices(name: str, num: int, num_test: int) -> tuple[np.ndarray, np.ndarray]:
  """(training-split, test) image indices of a named split; validation is carved later."""
  order = np.random.default_rng(0).permutation(num) if name.startswith('random') else (
      np.arange(num))
  if name.startswith('writers'):
    k = int(name[len('writers'):])
    test = order[k * num_test:(k + 1) * num_test]
  else:
    test = order[-num_test:]
  train_ix = order[~np.isin(order, test)]
  if name.endswith('_half'):
    train_ix = train_ix[:len(train_ix) // 2]
  return train_ix, test


def write_split(data_dir: str, name: str) -> str:
  """Writes split `name` as data_dir/digits_<name>, as the digits dataset is written."""
  train_ix, test = split_indices(name, len(digits_data.images_and_labels()[1]),
                                 digits_data.NUM_TEST)
  digits_data.write(epath.Path(data_dir) / f'digits_{name}', train_ix, test)
  return f'folder:digits_{name}'


def writer_order(window: int = 150) -> dict:
  """How often a digit's nearest same-class neighbour (Euclidean) is stored nearby."""
  images_NHWC, labels_N = digits_data.images_and_labels()
  x_NP = images_NHWC.reshape(len(labels_N), -1).astype(np.float32)
  d_NN = ((x_NP[:, None] - x_NP[None]) ** 2).sum(-1)
  d_NN[labels_N[:, None] != labels_N[None]] = np.inf
  np.fill_diagonal(d_NN, np.inf)
  gap_N = np.abs(d_NN.argmin(1) - np.arange(len(labels_N)))
  return {'nearest_within_window': float((gap_N <= window).mean()),
          'random_order': 2 * window / len(labels_N), 'window': window}


def run(name: str, workdir: str, num_train_steps: int) -> dict:
  config = digits.get_config()
  config.num_train_steps = num_train_steps or config.num_train_steps
  config.eval.samples = False
  if name != 'shipped':
    config.dataset.data_dir = f'{workdir}/data'
    config.dataset.name = write_split(config.dataset.data_dir, name)
  run_dir = f'{workdir}/{name}'
  start = time.perf_counter()
  test = train.train_and_evaluate(config, run_dir)
  config.eval.split = 'validation'
  validation = train.evaluate(config, run_dir)
  result = {'test_bpd': test['bpd'], 'validation_bpd': validation['bpd'], 'step': test['step'],
            'train_images': data.dataset_info(config).split_sizes['train'],
            'seconds': round(time.perf_counter() - start)}
  print(name, json.dumps(result), flush=True)
  return result


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--splits', default=','.join(SPLITS))
  parser.add_argument('--workdir', default='/tmp/fp-splits')
  parser.add_argument('--num_train_steps', type=int, default=0, help='0: the config\'s')
  args = parser.parse_args()
  shutil.rmtree(args.workdir, ignore_errors=True)  # fresh runs, not resumed ones
  names = [n for n in args.splits.split(',') if n]
  results = {name: run(name, args.workdir, args.num_train_steps) for name in names}
  summary = {'writer_order': writer_order(), 'splits': results}
  unseen = [r['test_bpd'] for n, r in results.items() if n == 'shipped' or n.startswith('writers')]
  if len(unseen) > 1:
    summary['unseen_writers_test_bpd'] = {
        'mean': statistics.mean(unseen), 'stdev': statistics.stdev(unseen),
        'min': min(unseen), 'max': max(unseen)}
  print(json.dumps(summary))


if __name__ == '__main__':
  main()
