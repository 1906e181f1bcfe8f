"""The causality measure itself: it must see a dependence on later subpixels when there is one."""
import numpy as np

from freqprior.models.causality import causality_deviation


def _image():
  return np.random.RandomState(0).randint(0, 256, (4, 4, 3)).astype(np.uint8)


def test_an_exactly_causal_function_measures_zero():
  def cumulative(images, labels=None):  # subpixel k sees subpixels <= k in raster-channel order
    flat = images.reshape(len(images), -1).astype(np.float64)
    return np.cumsum(flat, axis=1).reshape(images.shape)
  leak, own_change = causality_deviation(cumulative, _image(), chunk=7)
  assert leak == 0.0 and own_change > 0


def test_a_one_subpixel_leak_is_found():
  def leaky(images, labels=None):  # every subpixel also sees the last one
    flat = images.reshape(len(images), -1).astype(np.float64)
    out = np.cumsum(flat, axis=1) + 1e-3 * flat[:, -1:]
    return out.reshape(images.shape)
  leak, _ = causality_deviation(leaky, _image(), chunk=7)
  assert leak > 0.1
