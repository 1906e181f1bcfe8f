"""Where the digits demo's test bits go: per image, per kind of pixel, and on impossible values.

  python benchmarks/studies/digits_bits.py [--workdir=/tmp/fp-digits-bits]

Trains configs/digits.py as shipped into --workdir (resuming if it is there), restores the
best-validation EMA parameters and scores the 297 test images: per-image bits/dim percentiles,
the share of the bits and the bits per pixel on background (0), saturated (16) and intermediate
grey levels, and the probability mass the 256-way head leaves on the 239 values the digits never
take. The last line is JSON.
"""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import digits  # pylint: disable=g-import-not-at-top
from freqprior import models, sample, train  # pylint: disable=g-import-not-at-top
from freqprior.data import digits as digits_data  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--workdir', default='/tmp/fp-digits-bits')
  args = parser.parse_args()
  config = digits.get_config()
  config.eval.samples = False
  record = train.train_and_evaluate(config, args.workdir)
  params, step = sample.restore_params(config, args.workdir)
  model = models.build_model(config)
  images_NHWC, labels_N = digits_data.images_and_labels()
  x_NHWC = jnp.asarray(images_NHWC[-digits_data.NUM_TEST:])
  y_N = jnp.asarray(labels_N[-digits_data.NUM_TEST:], jnp.int32)
  logits_NHWCK = model.apply(
      {'params': params}, x_NHWC, y_N,
      method=lambda m, x, y: m.output_head.logits(m.features(x, y), x))
  logp_NHWCK = np.asarray(jax.nn.log_softmax(logits_NHWCK))
  x_NP = np.asarray(x_NHWC).reshape(len(x_NHWC), -1)
  bits_NP = -np.take_along_axis(logp_NHWCK.reshape(*x_NP.shape, -1), x_NP[..., None],
                                -1)[..., 0] / np.log(2)
  kinds = {'background': x_NP == 0, 'saturated': x_NP == 255,
           'intermediate': (x_NP > 0) & (x_NP < 255)}
  levels = np.round(np.arange(17) * 255 / 16).astype(int)
  mass_NP = np.exp(logp_NHWCK[..., levels]).sum(-1).reshape(x_NP.shape)
  per_image = bits_NP.mean(1)
  print(json.dumps({
      'step': int(step), 'test_bpd': float(per_image.mean()), 'eval_record': record,
      'per_image_bpd_percentiles': dict(zip(['10', '50', '90', '99'],
                                            np.percentile(per_image, [10, 50, 90, 99]).tolist())),
      'pixels': {k: {'fraction': float(m.mean()), 'share_of_bits': float(bits_NP[m].sum()
                                                                           / bits_NP.sum()),
                     'bits_per_pixel': float(bits_NP[m].mean())} for k, m in kinds.items()},
      'mass_on_unused_values': float(1 - mass_NP.mean()),
      'bits_per_dim_lost_to_unused_values': float(-np.log2(mass_NP).mean()),
  }))


if __name__ == '__main__':
  main()
