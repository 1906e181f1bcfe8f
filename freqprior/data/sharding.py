"""Global batches on the mesh: which rows this process reads, and per-host numpy -> `jax.Array`."""
import jax
import numpy as np


def process_rows(sharding: jax.sharding.Sharding, batch_size: int) -> tuple[int, int]:
  """The rows [start, stop) of a global batch of `batch_size` that this process's devices hold
  under `sharding` (which splits the leading dimension); ValueError if they are not contiguous."""
  spans = set()
  for index in sharding.addressable_devices_indices_map((batch_size,)).values():
    start, stop, _ = index[0].indices(batch_size)
    spans.add((start, stop))
  start, stop = min(s for s, _ in spans), max(s for _, s in spans)
  if sum(b - a for a, b in spans) != stop - start:
    raise ValueError(f'this process holds the rows {sorted(spans)} of a global batch of '
                     f'{batch_size}, not one contiguous block')
  return start, stop


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding,
              batch_size: int) -> dict:
  """Turns each numeric per-host array (this process's `process_rows` of a global batch of
  `batch_size`) into a global `jax.Array` laid out by `sharding`.

  String fields ('caption') cannot live on devices: they stay host-local numpy arrays.
  """
  return {key: value if value.dtype.kind in 'OSU'
          else jax.make_array_from_process_local_data(sharding, value,
                                                      (batch_size, *value.shape[1:]))
          for key, value in batch.items()}
