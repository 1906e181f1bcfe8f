"""Test data for freqprior.data: mocked TFDS datasets and small generated image trees."""
import contextlib
import json
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from configs import cifar100
from configs import digits


def _getitems(record_keys, generator, serialized=False):
  """tfds 4.9.10's mocked `__getitems__` is installed without `self`; this one needs none."""
  del serialized
  return [generator[key] for key in record_keys]


@contextlib.contextmanager
def mock_tfds(num_examples: int):
  """Random TFDS data for registered datasets (cifar100, imagenet_resized, ...), no files."""
  with tfds.testing.mock_data(num_examples=num_examples,
                              policy=tfds.testing.MockPolicy.USE_CODE), \
       mock.patch.object(mocking, '_getitems', _getitems):
    yield


def digits_config(data_dir, **dataset):
  config = digits.get_config()
  config.dataset.data_dir = str(data_dir)
  config.dataset.update(dataset)
  return config


def mocked_config(name: str, data_dir, **dataset):
  config = cifar100.get_config()
  size, classes = {'cifar100': (32, 100), 'imagenet32': (32, 1000), 'imagenet64': (64, 1000)}[name]
  config.dataset.update(name=name, data_dir=str(data_dir), image_size=size, num_classes=classes,
                        validation_examples=0, random_flip=False,
                        worker_count=0)  # the tfds mock patches this process only
  config.dataset.update(dataset)
  return config


def write_image(path, seed: int, size=(40, 30), fmt='PNG'):
  path.parent.mkdir(parents=True, exist_ok=True)
  pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
  Image.fromarray(pixels).save(path, format=fmt)


def folder_tree(root, classes=('cat', 'dog_breed', 'n01440764'), train_per_class=(3, 2, 4),
                val_per_class=1):
  """root/{train,val}/<class>/<i>.png with distinct random images."""
  seed = 0
  for c, count in zip(classes, train_per_class):
    for split, n in (('train', count), ('val', val_per_class)):
      for i in range(n):
        seed += 1
        write_image(root / split / c / f'{i}.png', seed, fmt='PNG')
  return root


def coco_tree(root, captions_per_image=((3, 1, 2, 2), (1, 2))):
  """root/images/{train,val}2017/*.jpg + root/annotations/captions_{train,val}2017.json."""
  seed = 100
  for split, counts in zip(('train', 'val'), captions_per_image):
    images, annotations = [], []
    for image_id, count in enumerate(counts, start=1):
      name = f'{image_id:012d}.jpg'
      seed += 1
      write_image(root / 'images' / f'{split}2017' / name, seed, size=(48, 32), fmt='JPEG')
      images.append({'id': image_id, 'file_name': name, 'width': 48, 'height': 32})
      annotations += [{'id': 1000 * image_id + k, 'image_id': image_id,
                       'caption': f'{split} image {image_id} caption {k}.'} for k in range(count)]
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / f'captions_{split}2017.json').write_text(
        json.dumps({'images': images, 'annotations': annotations}))
  return root


def take(iterator, n: int) -> list[dict]:
  return [next(iterator) for _ in range(n)]


def image_keys(batches, masked: bool = False) -> list[bytes]:
  """Each (unpadded) image's bytes, for comparing which examples batches hold."""
  keys = []
  for batch in batches:
    keep = batch['mask'] if masked else np.ones(len(batch['image']), bool)
    keys += [image.tobytes() for image in batch['image'][keep]]
  return keys
