"""Training-pipeline throughput (read, decode, flip, batch) over a CIFAR-shaped ArrayRecord dataset.

The script writes its own dataset twice: 32x32x3 crops of the two photos that ship with
scikit-learn, 100 labels, as TFDS ArrayRecord (1) with raw pixels, the format of digits and of
everything `freqprior.data.prepare` writes, and (2) PNG-encoded, the format of tfds `cifar100`
and `imagenet_resized`. Then it times `freqprior.data.train_iterator` on each with
`configs/cifar100.py` settings (overridable below).

  python benchmarks/data.py [--num_examples=20000] [--seconds=10] [--batch_size=64]
                            [--worker_count=0] [--read_threads=2]

Prints a final JSON line with `images_per_s` (raw pixels) and `png_images_per_s`, plus images per
CPU-second of this process (a figure that other load on the machine does not change) and the
1-minute load average. Target: >= 20,000 images/s on 2 CPU cores.
"""
import io
import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from sklearn import datasets as sk_datasets
import tensorflow_datasets as tfds

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import cifar100  # pylint: disable=g-import-not-at-top
from freqprior import data  # pylint: disable=g-import-not-at-top
from freqprior.data import writer  # pylint: disable=g-import-not-at-top

_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', 20_000, 'Training images to write.')
_SECONDS = flags.DEFINE_float('seconds', 10.0, 'How long to time the iterator.')
_WARMUP_SECONDS = flags.DEFINE_float('warmup_seconds', 5.0, 'Untimed iteration first.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', None, 'Default: configs/cifar100.py.')
_WORKER_COUNT = flags.DEFINE_integer('worker_count', None, 'Default: configs/cifar100.py.')
_READ_THREADS = flags.DEFINE_integer('read_threads', None, 'Default: configs/common.py.')


def _crops(num: int, png: bool, seed: int = 0):
  """Random 32x32 crops, at random scales, of scikit-learn's sample photos (uint8 or PNG)."""
  photos = [Image.fromarray(p) for p in sk_datasets.load_sample_images().images]
  rng = np.random.default_rng(seed)
  for i in range(num):
    photo = photos[i % len(photos)]
    side = int(rng.integers(32, 160))
    left = int(rng.integers(0, photo.width - side))
    top = int(rng.integers(0, photo.height - side))
    crop = photo.resize((32, 32), Image.Resampling.BILINEAR, (left, top, left + side, top + side))
    buffer = io.BytesIO()
    if png:
      crop.save(buffer, format='PNG')
    yield i, {'image': buffer.getvalue() if png else np.asarray(crop), 'label': i % 100}


def _images_per_s(data_dir: str, png: bool) -> tuple[float, float, float, dict]:
  """(write seconds, images/s, images per CPU-second, config) for one storage format."""
  name = 'bench_png' if png else 'bench_raw'
  features = tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(32, 32, 3)) if png else writer.image_feature((32, 32, 3)),
      'label': tfds.features.ClassLabel(num_classes=100),
  })
  start = time.perf_counter()
  writer.write_dataset(os.path.join(data_dir, name), features,
                       {'train': _crops(_NUM_EXAMPLES.value, png),
                        'test': _crops(64, png, seed=1)},
                       description='Benchmark data: crops of scikit-learn sample photos.')
  write_s = time.perf_counter() - start

  config = cifar100.get_config()
  config.dataset.name = f'folder:{name}'
  config.dataset.data_dir = data_dir
  config.dataset.validation_examples = 0
  for key, flag in (('batch_size', _BATCH_SIZE), ('dataset.worker_count', _WORKER_COUNT),
                    ('dataset.read_threads', _READ_THREADS)):
    if flag.value is not None:
      config.update_from_flattened_dict({key: flag.value})

  iterator = data.train_iterator(config)
  start = time.perf_counter()
  while time.perf_counter() - start < _WARMUP_SECONDS.value:  # Start workers, warm page cache.
    next(iterator)
  images, start, cpu_start = 0, time.perf_counter(), time.process_time()
  while time.perf_counter() - start < _SECONDS.value:
    images += next(iterator)['image'].shape[0]
  per_s = images / (time.perf_counter() - start)
  per_cpu_s = images / (time.process_time() - cpu_start)  # This process's threads only.
  return write_s, per_s, per_cpu_s, config


def main(argv):
  del argv
  data_dir = tempfile.mkdtemp(prefix='freqprior_bench_')
  try:
    write_s, raw_per_s, raw_per_cpu_s, config = _images_per_s(data_dir, png=False)
    png_write_s, png_per_s, png_per_cpu_s, _ = _images_per_s(data_dir, png=True)
  finally:
    shutil.rmtree(data_dir)
  print(json.dumps({
      'images_per_s': round(raw_per_s), 'png_images_per_s': round(png_per_s),
      # Load-independent: images per CPU-second of this process (meaningless with workers).
      'images_per_cpu_s': round(raw_per_cpu_s), 'png_images_per_cpu_s': round(png_per_cpu_s),
      'load_average_1m': round(os.getloadavg()[0], 1),
      'batch_size': config.batch_size, 'worker_count': config.dataset.worker_count,
      'read_threads': config.dataset.read_threads,
      'num_examples': _NUM_EXAMPLES.value, 'seconds': _SECONDS.value,
      'write_s': round(write_s, 1), 'png_write_s': round(png_write_s, 1),
      'cpu_count': os.cpu_count(),
  }))


if __name__ == '__main__':
  app.run(main)
