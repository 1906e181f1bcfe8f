"""Writes examples as a TFDS ArrayRecord dataset, atomically: all or nothing at the output path."""
from collections.abc import Callable, Iterable, Mapping
import contextlib
import io
import os
import re
import uuid

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.dataset_builders import adhoc_builder
from tensorflow_datasets.core.utils import tqdm_utils

VERSION = '1.0.0'
DEFAULT_DATA_DIR = '~/.cache/freqprior'  # where embedded datasets go when data_dir is empty


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


def check_name(output: str | os.PathLike) -> epath.Path:
  """`output` as a path, if its folder name can name a TFDS dataset (else ValueError)."""
  output = epath.Path(output)
  if not re.fullmatch(r'[a-z][a-z0-9_]*', output.name):
    raise ValueError(f'Dataset folder name {output.name!r} must be lowercase letters, digits and '
                     'underscores, starting with a letter (it names the TFDS dataset).')
  return output


def write_dataset(output: str | os.PathLike, features: tfds.features.FeaturesDict,
                  splits: Mapping[str, Iterable[tuple[int | str, dict]]],
                  description: str, ordered: bool = False) -> epath.Path:
  """Writes `splits` to `output/1.0.0/` (TFDS layout; the dataset is named after `output`).

  Records are stored in TFDS's key-hash order, or with `ordered` in ascending order of their
  (int) keys, so that a split carved from the end of one is a chosen set.
  Everything is first written to a temporary sibling folder that is renamed at the end, so a
  failure leaves nothing at `output`. An existing `output` is never overwritten.
  """
  output = check_name(output)
  if output.exists():
    raise FileExistsError(f'{output} already exists; remove it or choose another --output.')
  output.parent.mkdir(parents=True, exist_ok=True)
  staging = output.parent / f'.{output.name}.incomplete-{uuid.uuid4().hex[:8]}'
  try:
    builder = _Builder(name=output.name, version=VERSION, features=features,
                       split_datasets=splits, data_dir=staging, description=description,
                       file_format='array_record', disable_shuffling=ordered)
    builder.download_and_prepare(file_format='array_record')
    (staging / output.name).rename(output)
  finally:
    if staging.exists():
      staging.rmtree()
  return output


def build_once(data_dir: str, name: str, write: Callable[[epath.Path], None]) -> epath.Path:
  """Returns `data_dir/name` (data_dir defaults to DEFAULT_DATA_DIR), calling `write(path)` first
  if it is not there. Concurrent first uses are safe: the first rename wins."""
  output = epath.Path(data_dir or DEFAULT_DATA_DIR).expanduser() / name
  if output.exists():
    return output
  try:
    with _quiet_tfds():
      write(output)
    print(f'dataset: wrote {name} to {output} (first use)', flush=True)
  except OSError:  # Includes FileExistsError.
    if not output.exists():  # Another process finishing first is fine; anything else is not.
      raise
  return output


@contextlib.contextmanager
def _quiet_tfds():
  """Silences TFDS's console output: an embedded dataset takes well under a second to write, and
  TFDS's "Downloading and preparing" lines (printed to stdout) and progress bars would otherwise
  start every first run."""
  was_active = tqdm_utils._active  # pylint: disable=protected-access
  tqdm_utils.display_progress_bar(False)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tqdm_utils.display_progress_bar(was_active)
