"""grain pipelines: training batches from any step, and exact-coverage eval batches.

Both shuffle and batch record *indices* with `grain.MapDataset` into global batches, then each
process reads and decodes only its rows of them (training: about 256 examples per read call, cut
into batches by grain's rebatching). Every global batch is a pure function of the seed, the split
and the step: the same on any number of hosts, devices, reader threads or worker processes, so a
run resumes from its step alone, also on another topology.
"""
import dataclasses

import grain
import jax
import ml_collections
import numpy as np

from freqprior.data import decode
from freqprior.data import sources


# Records fetched per read call: array_record starts a thread pool per call, so small calls cost.
_READ_EXAMPLES = 256


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  return (jax.process_index() if process_index is None else process_index,
          jax.process_count() if process_count is None else process_count)


def _rows(batch_size: int, key: str, rows: tuple[int, int] | None, process_index: int | None,
          process_count: int | None) -> tuple[int, int]:
  """This process's rows [start, stop) of a global batch: `rows`, else the process's equal
  contiguous block."""
  if batch_size <= 0:
    raise sources.DataError(f'{key}={batch_size} must be positive.')
  if rows is None:
    process_index, process_count = _process(process_index, process_count)
    if batch_size % process_count:
      raise sources.DataError(f'{key}={batch_size} is not divisible by the {process_count} '
                              'processes.')
    per_host = batch_size // process_count
    rows = (process_index * per_host, (process_index + 1) * per_host)
  start, stop = rows
  if not 0 <= start < stop <= batch_size:
    raise ValueError(f'rows {rows} do not lie in a global batch of {batch_size}')
  return start, stop


@dataclasses.dataclass(frozen=True)
class _Loader:
  """Reads, decodes and augments records (picklable for grain workers)."""
  source: object
  dataset: sources.Dataset
  seed: int
  train: bool
  random_flip: bool

  def load(self, indices_N: np.ndarray, draws_N: np.ndarray) -> dict[str, np.ndarray]:
    """draws_N: [N, 2] uniforms per example (flip, caption pick), fixed by its global position."""
    images_NHWC, labels_N, stored_captions = decode.read_batch(
        self.source, indices_N, self.dataset.image_shape, self.dataset.raw_pixels)
    bad = (labels_N < 0) | (labels_N >= max(self.dataset.num_classes, 1))
    if bad.any():
      raise decode.CorruptRecordError(
          f'Label {labels_N[bad][0]} of record {indices_N[bad][0]} is out of range for '
          f'{self.dataset.num_classes} classes.')
    if self.train and self.random_flip:
      flip_N = draws_N[:, 0] < 0.5
      images_NHWC[flip_N] = images_NHWC[flip_N, :, ::-1]
    if not self.dataset.has_stored_captions:  # a class dataset: its class's caption variants
      stored_captions = [self.dataset.class_captions[label] for label in labels_N]
    if not all(stored_captions):
      empty = indices_N[[not c for c in stored_captions]][0]
      raise decode.CorruptRecordError(f'Record {empty} has no captions.')
    # Training picks a random caption of each example (per epoch), evaluation the first.
    picks_N = ((draws_N[:, 1] * [len(c) for c in stored_captions]).astype(int)
               if self.train else np.zeros(len(indices_N), int))
    captions_N = np.array([c[k] for c, k in zip(stored_captions, picks_N)], dtype=object)
    return {'image': images_NHWC, 'label': labels_N.astype(np.int32), 'caption': captions_N}


@dataclasses.dataclass(frozen=True)
class _Rows:
  start: int
  stop: int

  def __call__(self, indices_B: np.ndarray) -> np.ndarray:
    return indices_B[self.start:self.stop]


@dataclasses.dataclass(frozen=True)
class _TrainSteps:
  """Loads this process's rows of `len(indices_KR)` consecutive global batches at once."""
  loader: _Loader
  rows: _Rows
  batch_size: int  # global
  first_step: int
  steps_per_read: int

  def __call__(self, read: int, indices_KR: np.ndarray) -> dict[str, np.ndarray]:
    first = self.first_step + read * self.steps_per_read
    # Per-example randomness is drawn for the whole global batch of each step and cut to this
    # process's rows, so it does not depend on how many processes read the batch.
    draws_KR2 = np.stack([np.random.default_rng((self.loader.seed, first + k)).random(
        (self.batch_size, 2))[self.rows.start:self.rows.stop] for k in range(len(indices_KR))])
    return self.loader.load(indices_KR.reshape(-1), draws_KR2.reshape(-1, 2))


@dataclasses.dataclass(frozen=True)
class _EvalBatch:
  loader: _Loader
  indices_N: np.ndarray
  batch_size: int  # global
  rows: _Rows

  def __call__(self, batch_index: int) -> dict[str, np.ndarray]:
    positions_R = batch_index * self.batch_size + np.arange(self.rows.start, self.rows.stop)
    mask_R = positions_R < len(self.indices_N)
    # Padding repeats the split's first example (a real record) and is masked out.
    indices_R = self.indices_N[np.where(mask_R, positions_R, 0)]
    batch = self.loader.load(indices_R, np.zeros((len(indices_R), 2)))
    batch['mask'] = mask_R
    return batch


def _read_options(config: ml_collections.ConfigDict) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=config.dataset.read_threads, prefetch_buffer_size=4)


def train_iterator(config: ml_collections.ConfigDict, *, seed: int | None = None,
                   start_step: int = 0, rows: tuple[int, int] | None = None,
                   process_index: int | None = None, process_count: int | None = None):
  """Endless training batches from step `start_step` on: this process's `rows` of each global
  batch, {'image' uint8 [R, H, W, C], 'label' int32 [R], 'caption' [R]}.

  Global batch t holds examples t*B .. (t+1)*B - 1 of the training split's record order,
  reshuffled every epoch (B = config.batch_size): a pure function of the seed (config.seed
  unless given), the split and t, whatever the number of processes, devices or grain workers
  (`config.dataset.worker_count`). So a run resumes from its step alone, on any topology.
  `rows` defaults to the process's equal contiguous block of the global batch.
  """
  batch_size = config.batch_size
  start, stop = _rows(batch_size, 'config.batch_size', rows, process_index, process_count)
  if start_step < 0:
    raise ValueError(f'start_step must be >= 0, got {start_step}')
  dataset = sources.open_dataset(config)
  source, indices_N = dataset.records('train')
  if len(indices_N) < batch_size:
    raise sources.DataError(f'config.batch_size={batch_size} exceeds the {len(indices_N)} '
                            'training examples.')
  seed = config.seed if seed is None else seed
  loader = _Loader(source, dataset, seed, train=True, random_flip=config.dataset.random_flip)
  steps_per_read = max(1, _READ_EXAMPLES // (stop - start))
  global_batches = (grain.MapDataset.source(indices_N).seed(seed).shuffle().repeat()
                    .batch(batch_size, drop_remainder=True))
  reads = (global_batches[start_step:].map(_Rows(start, stop))
           .batch(steps_per_read, drop_remainder=True)
           .map_with_index(_TrainSteps(loader, _Rows(start, stop), batch_size, start_step,
                                       steps_per_read)))
  stream = reads.to_iter_dataset(_read_options(config))
  if config.dataset.worker_count:
    stream = stream.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=config.dataset.worker_count))
  return iter(grain.experimental.RebatchIterDataset(stream, stop - start, drop_remainder=True))


def eval_batches(config: ml_collections.ConfigDict, split: str = 'test',
                 batch_size: int | None = None, *, rows: tuple[int, int] | None = None,
                 process_index: int | None = None, process_count: int | None = None
                 ) -> grain.IterDataset:
  """This process's `rows` of global batches covering `split` exactly once, in stored order,
  plus 'mask' bool [R] (False: padding past the split's end, which repeats its first example).

  `batch_size` is global (default config.eval.batch_size); every process yields the same
  number of batches. Captions are each image's first caption.
  """
  batch_size = config.eval.batch_size if batch_size is None else batch_size
  start, stop = _rows(batch_size, 'config.eval.batch_size', rows, process_index, process_count)
  dataset = sources.open_dataset(config)
  source, indices_N = dataset.records(split)
  loader = _Loader(source, dataset, config.seed, train=False, random_flip=False)
  num_batches = -(-len(indices_N) // batch_size)
  batches = grain.MapDataset.range(num_batches).map(
      _EvalBatch(loader, indices_N, batch_size, _Rows(start, stop)))
  return batches.to_iter_dataset(_read_options(config))
