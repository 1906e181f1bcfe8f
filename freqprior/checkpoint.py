"""Orbax checkpoints of the train state and the model config, in DIR/checkpoints.

The last `config.keep_checkpoints` steps are kept, plus the one with the best validation bits/dim.
Orbax writes each step to a temporary folder and renames it when complete, so a run killed at any
moment resumes from the last complete step. Restoring onto another mesh (or one CPU) passes
`ShapeDtypeStruct` targets carrying the new shardings; a checkpoint of a differently shaped model
is refused before anything is read into memory.
"""
import json
import uuid
from typing import Any, Optional

from absl import logging
from etils import epath
import flax
import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as preservation

from freqprior import errors

VAL_METRIC = 'validation_bpd'


def ensure_writable(workdir: str) -> None:
  """Raises PermissionError with the path if `workdir` cannot be created or written to."""
  path = epath.Path(workdir)
  probe = path / f'.write_probe_{uuid.uuid4().hex}'
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise errors.WorkdirError(f'--workdir={workdir} is not a writable directory: {e}') from e


def model_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """What must match for a checkpoint to fit: the model and image shape keys."""
  d = config.dataset
  return {'model': config.model.to_dict(),
          'dataset': {'image_size': d.image_size, 'channels': d.channels,
                      'num_classes': d.num_classes}}


def _drop_read_only_notice(record) -> bool:
  return not str(record.msg).startswith('Given directory is read only')


class _Manager(ocp.CheckpointManager):
  """A CheckpointManager that learns of a preemption from the training loop.

  JAX's preemption sync point stops every process at the step after the highest step any of them
  last asked about, whichever thread asked. Orbax asks from its commit thread, about the step it
  has just written, which may be steps behind the loop; a preemption that arrived then chose a
  step one process had already passed, and it trained on while the others stopped and waited.
  So the loop is the only caller of the sync point, and passes on what it learnt here.
  """

  preempted_step: Optional[int] = None

  def reached_preemption(self, step: int) -> bool:
    return step == self.preempted_step


class Checkpoints:
  """The CheckpointManager for one workdir, plus the checks and policies around it."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, read_only: bool = False):
    self.directory = epath.Path(workdir) / 'checkpoints'
    self.config = config
    policy = preservation.AnyPreservationPolicy([
        preservation.LatestN(n=config.keep_checkpoints),
        preservation.BestN(get_metric_fn=lambda m: m[VAL_METRIC], reverse=True, n=1,
                           keep_checkpoints_without_metrics=False),
    ])
    # A read-only manager saves nothing (save_interval_steps=0 says so, which Orbax would
    # otherwise warn about), and Orbax's notice that the directory is read only repeats what
    # the caller asked for: both would be a warning on every evaluation.
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, create=not read_only, read_only=read_only,
        save_interval_steps=0 if read_only else 1)
    absl_logger = logging.get_absl_logger()
    absl_logger.addFilter(_drop_read_only_notice)
    try:
      self.manager = _Manager(
          self.directory, options=options,
          item_handlers={'state': ocp.StandardCheckpointHandler(),
                         'model': ocp.JsonCheckpointHandler()})
    finally:
      absl_logger.removeFilter(_drop_read_only_notice)

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def best_step(self) -> Optional[int]:
    """The step with the lowest validation bits/dim; the latest if none recorded one."""
    scored = [(m[VAL_METRIC], s) for s in self.manager.all_steps()
              if (m := self.manager.metrics(s)) and VAL_METRIC in m]
    return min(scored)[1] if scored else self.latest_step()

  def resolve_step(self, step: int, default: str) -> int:
    """`step` if >= 0, else the latest or best (`default`) step; a clear error if absent."""
    steps = self.manager.all_steps()
    if not steps:
      raise errors.MissingError(f'No checkpoint in {self.directory}; train first (python main.py '
                                '--mode=train ...).')
    if step < 0:
      return self.best_step() if default == 'best' else self.latest_step()
    if step not in steps:
      raise errors.MissingError(f'No checkpoint for step {step} in {self.directory}; saved steps: '
                                f'{sorted(steps)}')
    return step

  def saved_signature(self, step: int) -> dict[str, Any]:
    """The `model_signature` of the config that checkpoint `step` was trained with."""
    items = ocp.args.Composite(model=ocp.args.JsonRestore())
    return self.manager.restore(step, args=items)['model']

  def check_compatible(self, step: int, abstract_state: Any) -> None:
    """Raises ConfigError if checkpoint `step` holds a model of another shape or config."""
    saved_signature = self.saved_signature(step)
    metadata = self.manager.item_metadata(step)['state']
    saved = {k: tuple(v.shape) for k, v in
             flax.traverse_util.flatten_dict(dict(metadata['params'])).items()}
    wanted = {k: tuple(v.shape) for k, v in
              flax.traverse_util.flatten_dict(abstract_state.params).items()}
    if saved == wanted:
      return
    problems = [f'{"/".join(k)}: checkpoint {saved.get(k, "absent")}, '
                f'config {wanted.get(k, "absent")}'
                for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    current = model_signature(self.config)
    changed = [f'{group}.{k}: checkpoint {v!r}, config {current[group].get(k)!r}'
               for group, values in saved_signature.items() for k, v in values.items()
               if current.get(group, {}).get(k) != v]
    raise errors.ConfigError(f'The checkpoint at step {step} in {self.directory} holds a '
                             'differently shaped model; nothing was restored. Differing config '
                             f'keys: {"; ".join(changed) or "none"}. Differing parameters '
                             f'({len(problems)}): {"; ".join(problems[:5])}. Use the config it was '
                             'trained with, or another --workdir.')

  def restore(self, step: int, abstract_state: Any, shardings: Any) -> Any:
    """The train state of checkpoint `step` laid out by `shardings`."""
    self.check_compatible(step, abstract_state)
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          abstract_state, shardings)
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    logging.info('restored step %d from %s', step, self.directory)
    return restored['state']

  def save(self, step: int, state: Any, validation_bpd: Optional[float] = None,
           preempted: bool = False) -> None:
    """Saves (asynchronously) unless `step` is already saved; all processes must call it.

    `preempted`: the loop reached its preemption sync point at `step` (Orbax logs it as such).
    """
    if preempted:
      self.manager.preempted_step = step
    if step in self.manager.all_steps():
      return
    metrics = None if validation_bpd is None else {VAL_METRIC: float(validation_bpd)}
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        model=ocp.args.JsonSave(model_signature(self.config))), metrics=metrics, force=True)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def write_json(path: epath.Path, record: dict[str, Any]) -> None:
  """Writes `record` to `path` atomically (temporary file, then rename)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / f'.{path.name}.{uuid.uuid4().hex}'
  tmp.write_text(json.dumps(record) + '\n')
  tmp.replace(path)
