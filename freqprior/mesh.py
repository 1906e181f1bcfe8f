"""Processes, the device mesh, and how parameters and batches are laid out on it.

The mesh has axes ('data', 'fsdp') by default. Batches are split over every mesh axis (with
FSDP each 'fsdp' shard also takes its own slice of the batch, as in ZeRO-3); parameters are
replicated, or with `config.mesh.fsdp` each is split along its largest divisible dimension over
'fsdp' (those under `config.mesh.fsdp_min_size` elements stay replicated).
"""
import math
from typing import Any, Optional

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np

from freqprior import errors


def initialize_processes(coordinator_address: Optional[str] = None,
                         num_processes: Optional[int] = None,
                         process_id: Optional[int] = None) -> None:
  """jax.distributed.initialize(); None values come from the environment (TPU pod, SLURM,
  JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)."""
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  # On stdout of every process (the run's other lines come from process 0 only), so each
  # worker's log says which process wrote it.
  print(f'process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} '
        f'local of {jax.device_count()} devices', flush=True)


def mesh_shape(shape: tuple[int, ...], num_devices: int) -> tuple[int, ...]:
  """Replaces a single -1 in `shape` by what fills `num_devices`."""
  shape = tuple(int(s) for s in shape)
  known = math.prod(s for s in shape if s != -1)
  if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise errors.ConfigError(f'config.mesh.shape={shape}: use positive sizes and at most one -1')
  if shape.count(-1) == 1:
    if num_devices % known:
      raise errors.ConfigError(f'config.mesh.shape={shape} cannot cover {num_devices} devices')
    shape = tuple(num_devices // known if s == -1 else s for s in shape)
  if math.prod(shape) != num_devices:
    raise errors.ConfigError(f'config.mesh.shape={shape} needs {math.prod(shape)} devices; this '
                             f'run has {num_devices}')
  return shape


def make_mesh(config: ml_collections.ConfigDict, devices=None) -> Mesh:
  """The mesh `config.mesh` describes, over `devices` (default: all of them)."""
  devices = jax.devices() if devices is None else list(devices)
  axes = tuple(config.mesh.axes)
  shape = mesh_shape(tuple(config.mesh.shape), len(devices))
  if len(shape) != len(axes) or 'data' not in axes:
    raise errors.ConfigError(f'config.mesh.axes={axes} must name each of the {len(shape)} axes in '
                             "config.mesh.shape and include 'data'")
  if config.mesh.fsdp and 'fsdp' not in axes:
    raise errors.ConfigError("config.mesh.fsdp=True needs an 'fsdp' axis in config.mesh.axes")
  return jax.make_mesh(shape, axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes),
                       devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over all mesh axes."""
  return NamedSharding(mesh, P(mesh.axis_names))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def param_spec(shape: tuple[int, ...], fsdp_size: int, min_size: int) -> P:
  """Splits the largest dimension divisible by `fsdp_size` over 'fsdp'; else replicates."""
  if fsdp_size <= 1 or math.prod(shape) < min_size:
    return P()
  for dim in np.argsort(shape)[::-1]:
    if shape[dim] % fsdp_size == 0:
      return P(*(('fsdp' if d == dim else None) for d in range(len(shape))))
  return P()


def state_shardings(abstract_state: Any, mesh: Mesh, config: ml_collections.ConfigDict) -> Any:
  """NamedShardings for every leaf of a train state (scalars and small arrays replicated)."""
  fsdp_size = mesh.shape['fsdp'] if config.mesh.fsdp else 1
  spec = lambda x: param_spec(x.shape, fsdp_size, config.mesh.fsdp_min_size)
  return jax.tree.map(lambda x: NamedSharding(mesh, spec(x)), abstract_state)
