"""Sample quality and the frequency prior's ablation on the embedded digits, on CPU.

  python benchmarks/quality.py [--seeds=3] [--samples_per_class=30] [--workdir=/tmp/fp-quality]
      [--variants=prior,no_prior[,prior_sparse]] [--ablation_only]

1. Ablation: configs/digits.py trained with the prior off, and with it on at (nearly) the same
   parameter count (the prior-off model is widened until the counts match within 2%), for each
   seed; test bits/dim mean and standard deviation. `prior_sparse` adds the 32x32 and 64x64
   configs' placement at this depth: the prior in the last block only, filtering a 1/3-width
   projection.
2. class_accuracy: a scikit-learn classifier trained on the digits training split labels the
   images the (prior-on, seed 0) model samples for each class.
3. prompt_accuracy: the same for configs/digits_text.py prompted "a handwritten digit 0".."9".
The last line is JSON. About 30 minutes on 2 CPU cores.
"""
import argparse
import json
import math
import statistics
import sys

import jax
import numpy as np
from sklearn import datasets as sk_datasets
from sklearn import svm

sys.path.insert(0, '.')
from configs import digits, digits_text  # pylint: disable=g-import-not-at-top
from freqprior import models, sample, train  # pylint: disable=g-import-not-at-top
from freqprior.data import digits as digits_data  # pylint: disable=g-import-not-at-top


def num_params(config) -> int:
  model = models.build_model(config)
  shapes = jax.eval_shape(lambda: models.init_params(model, config, jax.random.key(0)))
  return sum(math.prod(p.shape) for p in jax.tree.leaves(shapes))


def matched_no_prior(config):
  """The prior-off config widened to `config`'s parameter count (within 2%), changing the head
  width as little as possible, and the relative gap."""
  target, head = num_params(config), config.model.head_width
  candidates = []
  for width in range(config.model.width, 2 * config.model.width + 1):
    for head_width in sorted(range(head // 2, 2 * head + 1, 2), key=lambda h: abs(h - head)):
      candidate = config.copy_and_resolve_references()
      candidate.model.update(frequency_prior=False, width=width, head_width=head_width)
      gap = abs(num_params(candidate) - target) / target
      if gap < 0.02:
        candidates.append((abs(head_width - head), gap, width, candidate))
        break
  if not candidates:
    raise ValueError('no prior-off width matches the parameter count within 2%')
  _, gap, _, candidate = min(candidates, key=lambda c: c[:3])
  return candidate, gap


def classifier():
  """An SVM on the digits training split (sklearn's 0..16 pixels), and its test accuracy."""
  data = sk_datasets.load_digits()
  num_train = len(data.target) - digits_data.NUM_TEST
  model = svm.SVC(gamma=0.001).fit(data.data[:num_train], data.target[:num_train])
  return model, float(model.score(data.data[num_train:], data.target[num_train:]))


def recognised(model, images_NHWC: np.ndarray, wanted_N: np.ndarray) -> float:
  features = np.round(images_NHWC.reshape(len(images_NHWC), -1) * 16.0 / 255.0)
  return float(np.mean(model.predict(features) == wanted_N))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--samples_per_class', type=int, default=30)
  parser.add_argument('--workdir', default='/tmp/fp-quality')
  parser.add_argument('--variants', default='prior,no_prior')
  parser.add_argument('--ablation_only', action='store_true', help='skip the sampling accuracies')
  args = parser.parse_args()

  prior_config = digits.get_config()
  no_prior_config, gap = matched_no_prior(prior_config)
  sparse_config = prior_config.copy_and_resolve_references()
  sparse_config.model.update(prior_blocks='last', prior_channels=prior_config.model.width // 3)
  configs = {'prior': prior_config, 'no_prior': no_prior_config, 'prior_sparse': sparse_config}
  variants = args.variants.split(',')
  if unknown := set(variants) - set(configs):
    raise ValueError(f'--variants: unknown {sorted(unknown)}; choose from {sorted(configs)}')
  if 'prior' not in variants and not args.ablation_only:
    raise ValueError('--variants must include prior (the model sampled) unless --ablation_only')
  ablation = {name: [] for name in variants}
  for seed in range(args.seeds):
    for name in variants:
      config = configs[name].copy_and_resolve_references()
      config.seed = seed
      config.eval.samples = False
      record = train.train_and_evaluate(config, f'{args.workdir}/{name}_seed{seed}')
      ablation[name].append(record['bpd'])
      print(name, seed, record, flush=True)

  stats = lambda xs: {'mean': statistics.mean(xs), 'std': statistics.stdev(xs) if len(xs) > 1
                      else 0.0, 'runs': xs}
  result = {
      'device': jax.devices()[0].device_kind,
      'ablation_test_bpd': {name: stats(runs) for name, runs in ablation.items()},
      'params': {**{name: num_params(configs[name]) for name in variants},
                 'relative_gap': gap, 'no_prior_width': no_prior_config.model.width},
  }
  if args.ablation_only:
    print(json.dumps(result))
    return

  svm_model, svm_test_accuracy = classifier()
  n = 10 * args.samples_per_class
  wanted = np.resize(np.arange(10), n)
  config = prior_config.copy_and_resolve_references()
  config.sample.update(num_images=n, batch_size=n, class_label=','.join(map(str, range(10))))
  images, _ = sample.sample_checkpoint(config, f'{args.workdir}/prior_seed0')
  class_accuracy = recognised(svm_model, images, wanted)

  text = digits_text.get_config()
  text.eval.samples = False
  text_record = train.train_and_evaluate(text, f'{args.workdir}/text')
  text.sample.update(num_images=n, batch_size=n,
                     prompt=tuple(f'a handwritten digit {d}' for d in range(10)))
  images, _ = sample.sample_checkpoint(text, f'{args.workdir}/text')
  prompt_accuracy = recognised(svm_model, images, wanted)

  print(json.dumps({
      **result, 'class_accuracy': class_accuracy, 'prompt_accuracy': prompt_accuracy,
      'text_test_bpd': text_record['bpd'], 'classifier_test_accuracy': svm_test_accuracy,
      'samples': n,
  }))


if __name__ == '__main__':
  main()
