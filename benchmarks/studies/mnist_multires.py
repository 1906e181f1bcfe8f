"""Should the MNIST network work at more than one resolution? A PixelCNN++-style U-Net of the
gated stacks against configs/mnist.py, on validation at the same wall time.

  python benchmarks/studies/mnist_multires.py [--levels=3] [--blocks_per_level=2]
      [--steps=N] [--seed=0] [--workdir=/tmp/fp-mnist-multires] [--time_only]

The U-Net: `levels` resolutions (28, 14, 7 for 3), `blocks_per_level` gated blocks (vertical,
then horizontal) at each on the way down and again on the way up; the way up adds each level's
down-path features (skips) to the coarser level's output, upsampled by repetition through a
Dense. Everything else is configs/mnist.py's: width, head, dropout, position embedding, the
class context, and the frequency prior on a 16-channel projection after the last full-resolution
block of each path (two priors, as the shipped model has).

Exactly causal by construction, and checked before training (a 12x12 model must show a change
of exactly 0.0 in every earlier subpixel's log-likelihood): at level l the vertical stack at
(i, j) sees image rows < 2^l i, the horizontal stack those and row 2^l i left of column 2^l j.
A stride-2 'down' conv (rows 2i-1, 2i) and a stride-2 'down_right' conv (rows 2i-1, 2i, columns
2j-1, 2j) keep that from level l to l+1; repeating a coarse position over its 2x2 fine positions
keeps it on the way up, since each fine position (2i+a, 2j+b) may see at least what (2i, 2j) does.

First the train-step time of both models (timed alternately, batch 16); `--steps` defaults to
the shipped 2,200 scaled by their ratio, so the U-Net trains for the shipped model's wall time.
Then one training run of the U-Net (samples off: the cached sampler runs the single-resolution
backbone only) and its validation bits/dim at each evaluation, to set against the shipped
config's 1.1252, 1.1028, 1.0931, 1.0890 (docs/RESULTS.md). The last line is JSON.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from unittest import mock

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import mnist  # pylint: disable=g-import-not-at-top
from freqprior import models, train  # pylint: disable=g-import-not-at-top
from freqprior.models import causality, heads  # pylint: disable=g-import-not-at-top
from freqprior.models import layers, pixelcnn  # pylint: disable=g-import-not-at-top
import mnist_budget  # pylint: disable=g-import-not-at-top
import train_throughput  # pylint: disable=g-import-not-at-top


def repeat2(x_BhwF: jnp.ndarray, hw: tuple[int, int]) -> jnp.ndarray:
  """Each coarse position over its 2x2 fine positions, cropped to the fine level's [H, W]."""
  return jnp.repeat(jnp.repeat(x_BhwF, 2, axis=1), 2, axis=2)[:, :hw[0], :hw[1]]


class UNetBackbone(pixelcnn.Backbone):
  """The gated stacks at `levels` resolutions; returns the full-resolution horizontal features."""
  levels: int = 3
  blocks_per_level: int = 2

  def stage(self, v_BHWF, h_BHWF, cond_BD, text, name: str, with_prior: bool, train: bool):
    """blocks_per_level of the model's own gated blocks, the prior after the last if asked."""
    n = self.blocks_per_level
    settings = dataclasses.replace(self.s, num_blocks=n,
                                   prior_blocks=(n - 1,) if with_prior else ())
    return pixelcnn.scanned_groups(settings)(settings, train, name=name)(
        (v_BHWF, h_BHWF), cond_BD, text)[0]

  def down(self, v_BHWF, h_BHWF, level: int):
    """Stride-2 causal convs: the vertical stack's rows 2i-1, 2i; the horizontal's 2x2 up-left."""
    conv = lambda x, kernel, shift, name: nn.Conv(
        self.s.width, kernel, strides=2, padding=layers.causal_padding(kernel, shift),
        dtype=self.s.dtype, name=name)(x)
    return (conv(v_BHWF, (2, 3), 'down', f'down{level}_v'),
            conv(h_BHWF, (2, 2), 'down_right', f'down{level}_h'))

  @nn.compact
  def __call__(self, x_BHWC, labels_B=None, train=False, tokens_BT=None):
    s = self.s
    cond_BD, text, v_BHWF, h_BHWF = self.start_stacks(x_BHWC, labels_B, train, tokens_BT)
    skips = []
    for level in range(self.levels):
      if level:
        v_BHWF, h_BHWF = self.down(v_BHWF, h_BHWF, level)
      v_BHWF, h_BHWF = self.stage(v_BHWF, h_BHWF, cond_BD, text, f'down{level}', level == 0, train)
      skips.append((v_BHWF, h_BHWF))
    for level in reversed(range(self.levels)):
      v_skip, h_skip = skips[level]
      if level < self.levels - 1:
        hw = v_skip.shape[1:3]
        v_BHWF = v_skip + nn.Dense(s.width, dtype=s.dtype, name=f'up{level}_v')(repeat2(v_BHWF, hw))
        h_BHWF = h_skip + nn.Dense(s.width, dtype=s.dtype, name=f'up{level}_h')(repeat2(h_BHWF, hw))
      v_BHWF, h_BHWF = self.stage(v_BHWF, h_BHWF, cond_BD, text, f'up{level}', level == 0, train)
    return nn.elu(nn.LayerNorm(dtype=jnp.float32, name='norm_out')(h_BHWF)).astype(jnp.float32)


class UNetPixelCNN(pixelcnn.PixelCNN):
  """configs/mnist.py's PixelCNN with the U-Net backbone."""
  levels: int = 3
  blocks_per_level: int = 2

  def setup(self):
    super().setup()  # the head; its single-resolution backbone stays unused, without parameters
    self.unet = UNetBackbone(self.settings, levels=self.levels,
                             blocks_per_level=self.blocks_per_level)

  def features(self, images_BHWC, labels_B=None, train=False, tokens_BT=None):
    return self.unet(heads.to_unit_range(images_BHWC), labels_B, train, tokens_BT)


def unet_builder(levels: int, blocks_per_level: int):
  """models.build_model's stand-in: the config's PixelCNN with the U-Net backbone."""
  build = models.build_model

  def build_unet(config):
    shipped = build(config)
    return UNetPixelCNN(shipped.channels, shipped.settings, shipped.head, shipped.head_width,
                        shipped.num_mixtures, levels=levels, blocks_per_level=blocks_per_level)
  return build_unet


def causality_check(builder) -> tuple[float, float]:
  """causality_deviation of a small U-Net (12x12, width 8) on a random grey image."""
  config = mnist.get_config()
  config.dataset.image_size = 12
  config.model.update(width=8, prior_channels=4, head_width=8, dropout=0.0)
  model = builder(config)
  image_HWC = np.random.RandomState(0).randint(0, 256, (12, 12, 1)).astype(np.uint8)
  params = model.init(jax.random.key(0), image_HWC[None], np.zeros((1,), np.int32))['params']
  log_prob = jax.jit(lambda x, y: model.apply({'params': params}, x, y))
  return causality.causality_deviation(log_prob, image_HWC, label=3)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--levels', type=int, default=3)
  parser.add_argument('--blocks_per_level', type=int, default=2)
  parser.add_argument('--steps', type=int, default=0, help='0: the shipped wall time')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workdir', default='/tmp/fp-mnist-multires')
  parser.add_argument('--time_only', action='store_true', help='step times, no training run')
  args = parser.parse_args()
  builder = unet_builder(args.levels, args.blocks_per_level)

  leak, own = causality_check(builder)
  print(f'causality: earlier subpixels change by {leak}, the perturbed one by >= {own:.3g}',
        flush=True)
  if leak != 0.0:
    raise SystemExit('the U-Net is not causal')

  config = mnist.get_config()
  runners = {'shipped': train_throughput.Runner(config)}
  with mock.patch.object(models, 'build_model', builder):
    runners['unet'] = train_throughput.Runner(config)
  step_s = train_throughput.alternating_medians(runners, steps=3, rounds=3)
  result = {'levels': args.levels, 'blocks_per_level': args.blocks_per_level,
            'parameters': {name: r.num_params for name, r in runners.items()},
            'step_s': {name: round(t, 4) for name, t in step_s.items()}}
  shipped_s, unet_s = step_s['shipped'], step_s['unet']
  del runners
  print(result, flush=True)
  if not args.time_only:
    config.num_train_steps = args.steps or int(round(config.num_train_steps * shipped_s / unet_s))
    config.eval_every_steps = config.checkpoint_every_steps = config.num_train_steps // 4
    config.seed = args.seed
    config.eval.samples = False
    workdir = f'{args.workdir}/l{args.levels}_b{args.blocks_per_level}_s{args.seed}'
    start = time.perf_counter()
    with mock.patch.object(models, 'build_model', builder):
      record = train.train_and_evaluate(config, workdir)
    result.update(steps=config.num_train_steps, wall_s=round(time.perf_counter() - start, 1),
                  load_5min=round(os.getloadavg()[1], 2),
                  validation_bpd=mnist_budget.validation_curve(workdir),
                  test_bpd=round(record['bpd'], 4))
  print(json.dumps(result))


if __name__ == '__main__':
  main()
