"""Writes examples as a TFDS ArrayRecord dataset, atomically: all or nothing at the output path."""
from collections.abc import Iterable, Mapping
import os
import re
import uuid

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.dataset_builders import adhoc_builder

VERSION = '1.0.0'


def image_feature(shape_HWC: tuple[int, int, int]) -> tfds.features.Tensor:
  """Images stored as raw uint8 pixels: reading them costs no PNG decode (ArrayRecord's zstd
  still compresses each record)."""
  return tfds.features.Tensor(shape=shape_HWC, dtype=np.uint8,
                              encoding=tfds.features.Encoding.BYTES)


class _Builder(adhoc_builder.AdhocBuilder, skip_registration=True):
  """An AdhocBuilder fed plain Python iterables of (key, example) (no tf.data, no TensorFlow)."""

  # No source file holds checksums or metadata; TFDS's lookup of one needs `importlib_resources`.
  code_path = None

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples_iterator(examples)
            for split, examples in self._split_datasets.items()}


def write_dataset(output: str | os.PathLike, features: tfds.features.FeaturesDict,
                  splits: Mapping[str, Iterable[tuple[int | str, dict]]],
                  description: str) -> epath.Path:
  """Writes `splits` to `output/1.0.0/` (TFDS layout; the dataset is named after `output`).

  Everything is first written to a temporary sibling folder that is renamed at the end, so a
  failure leaves nothing at `output`. An existing `output` is never overwritten.
  """
  output = epath.Path(output)
  if not re.fullmatch(r'[a-z][a-z0-9_]*', output.name):
    raise ValueError(f'Dataset folder name {output.name!r} must be lowercase letters, digits and '
                     'underscores, starting with a letter (it names the TFDS dataset).')
  if output.exists():
    raise FileExistsError(f'{output} already exists; remove it or choose another --output.')
  output.parent.mkdir(parents=True, exist_ok=True)
  staging = output.parent / f'.{output.name}.incomplete-{uuid.uuid4().hex[:8]}'
  try:
    builder = _Builder(name=output.name, version=VERSION, features=features,
                       split_datasets=splits, data_dir=staging, description=description,
                       file_format='array_record')
    builder.download_and_prepare(file_format='array_record')
    (staging / output.name).rename(output)
  finally:
    if staging.exists():
      staging.rmtree()
  return output
