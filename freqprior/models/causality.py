"""Measures how far a likelihood function is from being autoregressive in raster-channel order."""
from typing import Callable, Optional

import numpy as np


def causality_deviation(log_prob: Callable, image_HWC: np.ndarray, label: Optional[int] = None,
                        chunk: int = 256) -> tuple[float, float]:
  """Perturbs each subpixel of one image in turn.

  Returns (max change of any earlier subpixel's log-likelihood, min change of the perturbed
  subpixel's own log-likelihood). The first must be ~0; the second > 0 shows the test has teeth.
  """
  height, width, channels = image_HWC.shape
  n = height * width * channels
  perturbed_NHWC = np.repeat(image_HWC[None], n, axis=0).reshape(n, n)
  perturbed_NHWC[np.arange(n), np.arange(n)] += 128  # uint8 wraps: a large change
  perturbed_NHWC = perturbed_NHWC.reshape(n, height, width, channels)
  # Each perturbed image is compared with the unperturbed one scored at the same batch position
  # in a batch of the same shape: GEMMs may round a batch's remainder columns differently, and
  # that must not pass for (or hide) a dependence on later subpixels.
  rows = []
  for start in range(0, n, chunk):
    batch = perturbed_NHWC[start:start + chunk]
    base = np.repeat(image_HWC[None], len(batch), axis=0)
    batch_labels = None if label is None else np.full((len(batch),), label, np.int32)
    scores = [np.asarray(log_prob(b, batch_labels)).reshape(len(batch), n) for b in (base, batch)]
    rows.append(np.abs(scores[1] - scores[0]))
  change_NN = np.concatenate(rows)  # [perturbed subpixel, scored subpixel]
  earlier = np.tril(np.ones((n, n), bool), k=-1)  # scored index < perturbed index
  return float(change_NN[earlier].max()), float(np.diag(change_NN).min())
