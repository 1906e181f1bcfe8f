"""Per-host numpy batches -> global `jax.Array`s."""
import jax
import numpy as np


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding) -> dict:
  """Turns each numeric per-host array into a global `jax.Array` laid out by `sharding`.

  The global leading (batch) dimension is the concatenation over processes of the per-host
  batches, via `jax.make_array_from_process_local_data`; use a sharding that splits only that
  dimension, e.g. `NamedSharding(mesh, P('data'))`. String fields ('caption') cannot live on
  devices: they stay host-local numpy arrays, unchanged.
  """
  return {key: value if value.dtype.kind in 'OSU'
          else jax.make_array_from_process_local_data(sharding, value)
          for key, value in batch.items()}
