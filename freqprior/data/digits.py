"""The embedded default: scikit-learn's 1,797 8x8 handwritten digits, stored once as TFDS ArrayRecord.

Pixel values 0..16 become round(v * 255 / 16); the last 297 images are the test split. No network:
the images ship inside scikit-learn. Built with the same writer as `freqprior.data.prepare`.
"""
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from freqprior.data import writer

NAME = 'sklearn_digits'
NUM_TEST = 297


def images_and_labels() -> tuple[np.ndarray, np.ndarray]:
  """All 1,797 digits: uint8 images [N, 8, 8, 1] in 0..255 and int labels [N]."""
  # Imported here: scikit-learn takes 1.5 s to import and is only needed to build the dataset.
  from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
  digits = sk_datasets.load_digits()
  images_NHW = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)
  return images_NHW[..., None], digits.target.astype(np.int64)


def write(output: epath.Path, train_indices, test_indices) -> None:
  """Writes the digits at `train_indices` / `test_indices` as a TFDS ArrayRecord dataset."""
  images_NHW1, labels_N = images_and_labels()
  features = tfds.features.FeaturesDict({
      'image': writer.image_feature((8, 8, 1)),
      'label': tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
  })

  def examples(indices):
    for i in indices:
      yield int(i), {'image': images_NHW1[i], 'label': labels_N[i]}

  writer.write_dataset(
      output, features, {'train': examples(train_indices), 'test': examples(test_indices)},
      description='scikit-learn load_digits(), 8x8 grey, values scaled to 0..255.')


def ensure_built(data_dir: str) -> epath.Path:
  """Returns `data_dir/sklearn_digits`, writing it first if it is not there."""

  def write_all(output: epath.Path) -> None:
    num_images = len(images_and_labels()[1])
    write(output, range(num_images - NUM_TEST), range(num_images - NUM_TEST, num_images))

  return writer.build_once(data_dir, NAME, write_all)
