"""grain pipelines: an endless, checkpointable training iterator and exact-coverage eval batches.

Both shuffle, shard and batch record *indices* with `grain.MapDataset`, then read and decode a
block of them at once (training: 256 examples, cut into batches by grain's rebatching), so every
batch is a pure function of the seed and its position: the stream is the same with any number of
reader threads or worker processes, and it resumes exactly from a checkpointed iterator state.
Each process reads a disjoint contiguous block of every split.
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


def _host_block(indices_N: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """The contiguous block of `indices_N` read by this process; blocks differ by at most one."""
  bounds = [len(indices_N) * p // process_count for p in (process_index, process_index + 1)]
  return indices_N[bounds[0]:bounds[1]]


def _per_host(batch_size: int, process_count: int, key: str) -> int:
  if batch_size % process_count:
    raise sources.DataError(f'{key}={batch_size} is not divisible by the {process_count} '
                            'processes.')
  return batch_size // process_count


@dataclasses.dataclass(frozen=True)
class _Loader:
  """Reads, decodes and augments one batch of record indices (picklable for grain workers)."""
  source: object
  dataset: sources.Dataset
  seed: int
  train: bool
  random_flip: bool

  def load(self, indices_B: np.ndarray, batch_position: int) -> dict[str, np.ndarray]:
    images_BHWC, labels_B, stored_captions = decode.read_batch(
        self.source, indices_B, self.dataset.image_shape, self.dataset.raw_pixels)
    bad = (labels_B < 0) | (labels_B >= max(self.dataset.num_classes, 1))
    if bad.any():
      raise decode.CorruptRecordError(
          f'Label {labels_B[bad][0]} of record {indices_B[bad][0]} is out of range for '
          f'{self.dataset.num_classes} classes.')
    rng = np.random.default_rng((self.seed, batch_position))
    if self.train and self.random_flip:
      flip_B = rng.random(len(indices_B)) < 0.5
      images_BHWC[flip_B] = images_BHWC[flip_B, :, ::-1]
    if not self.dataset.has_stored_captions:  # a class dataset: its class's caption variants
      stored_captions = [self.dataset.class_captions[label] for label in labels_B]
    if not all(stored_captions):
      empty = indices_B[[not c for c in stored_captions]][0]
      raise decode.CorruptRecordError(f'Record {empty} has no captions.')
    # Training picks a random caption of each example (per epoch), evaluation the first.
    picks_B = ((rng.random(len(indices_B)) * [len(c) for c in stored_captions]).astype(int)
               if self.train else np.zeros(len(indices_B), int))
    captions_B = np.array([c[k] for c, k in zip(stored_captions, picks_B)], dtype=object)
    return {'image': images_BHWC, 'label': labels_B.astype(np.int32), 'caption': captions_B}


@dataclasses.dataclass(frozen=True)
class _TrainBatch:
  loader: _Loader

  def __call__(self, block_position: int, indices_B: np.ndarray) -> dict[str, np.ndarray]:
    return self.loader.load(indices_B, block_position)


@dataclasses.dataclass(frozen=True)
class _EvalBatch:
  loader: _Loader
  indices_N: np.ndarray
  batch_size: int

  def __call__(self, batch_index: int) -> dict[str, np.ndarray]:
    indices_B = self.indices_N[batch_index * self.batch_size:][:self.batch_size]
    num_real = len(indices_B)
    if num_real:
      padded_B = np.concatenate([indices_B, np.full(self.batch_size - num_real, indices_B[0])])
      batch = self.loader.load(padded_B, batch_index)
    else:  # This process's block is empty: an all-padding batch keeps processes in step.
      height, width, channels = self.loader.dataset.image_shape
      batch = {'image': np.zeros((self.batch_size, height, width, channels), np.uint8),
               'label': np.zeros(self.batch_size, np.int32),
               'caption': np.full(self.batch_size, '', dtype=object)}
    batch['mask'] = np.arange(self.batch_size) < num_real
    return batch


def _read_options(config: ml_collections.ConfigDict) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=config.dataset.read_threads, prefetch_buffer_size=4)


def train_iterator(config: ml_collections.ConfigDict, *, seed: int | None = None,
                   process_index: int | None = None, process_count: int | None = None):
  """Endless per-host training batches: {'image' uint8 [b,H,W,C], 'label' int32 [b], 'caption'}.

  b = config.batch_size // process_count. Reshuffled every epoch, deterministic for the seed
  (config.seed unless given), with `config.dataset.worker_count` grain worker processes.
  The returned grain iterator checkpoints with `grain.checkpoint.CheckpointSave/Restore`.
  """
  process_index, process_count = _process(process_index, process_count)
  batch_size = _per_host(config.batch_size, process_count, 'config.batch_size')
  dataset = sources.open_dataset(config)
  source, indices_N = dataset.records('train')
  host_indices = _host_block(indices_N, process_index, process_count)
  if len(host_indices) < batch_size:
    raise sources.DataError(f'Process {process_index} holds {len(host_indices)} training '
                            f'examples, fewer than its batch of {batch_size}.')
  seed = config.seed if seed is None else seed
  loader = _Loader(source, dataset, seed, train=True, random_flip=config.dataset.random_flip)
  read_size = batch_size * max(1, min(_READ_EXAMPLES, len(host_indices)) // batch_size)
  blocks = (grain.MapDataset.source(host_indices).seed(seed).shuffle().repeat()
            .batch(read_size, drop_remainder=True).map_with_index(_TrainBatch(loader)))
  stream = blocks.to_iter_dataset(_read_options(config))
  if config.dataset.worker_count:
    stream = stream.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=config.dataset.worker_count))
  return iter(grain.experimental.RebatchIterDataset(stream, batch_size, drop_remainder=True))


def eval_batches(config: ml_collections.ConfigDict, split: str = 'test',
                 batch_size: int | None = None, *, process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
  """Per-host batches covering `split` exactly once, plus 'mask' bool [b] (False: padding).

  Every process yields the same number of batches; padded examples repeat the batch's first
  example (or are zeros) and carry mask False. Captions are each image's first caption.
  `batch_size` is per host; by default config.eval.batch_size // process_count.
  """
  process_index, process_count = _process(process_index, process_count)
  if batch_size is None:
    batch_size = _per_host(config.eval.batch_size, process_count, 'config.eval.batch_size')
  dataset = sources.open_dataset(config)
  source, indices_N = dataset.records(split)
  host_indices = _host_block(indices_N, process_index, process_count)
  max_per_host = -(-len(indices_N) // process_count)
  num_batches = -(-max_per_host // batch_size)
  loader = _Loader(source, dataset, config.seed, train=False, random_flip=False)
  batches = grain.MapDataset.range(num_batches).map(_EvalBatch(loader, host_indices, batch_size))
  return batches.to_iter_dataset(_read_options(config))
