"""The trainer and evaluator: `train_and_evaluate(config, workdir)` and `evaluate(config, workdir)`.

One sharded update step over a device mesh, Orbax checkpoints (resumed automatically), clu metric
writers (TensorBoard in DIR, from process 0), evaluation of the EMA parameters with mask-weighted
bits/dim over whole splits, and a save-then-exit on SIGTERM / preemption.
"""
import dataclasses
import json
import math
import time
from typing import Any, Callable, Optional

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from freqprior import checkpoint as checkpoint_lib
from freqprior import data
from freqprior import errors
from freqprior import images as images_lib
from freqprior import logs
from freqprior import mesh as mesh_lib
from freqprior import metrics as metrics_lib
from freqprior import models
from freqprior import preemption as preemption_lib
from freqprior import sample
from freqprior import sample_options
from freqprior import state as state_lib
from freqprior import validate

TRAIN_KEYS = ('image', 'label')
EVAL_KEYS = ('image', 'label', 'mask')


def uses_text(config: ml_collections.ConfigDict) -> bool:
  """Prompt-conditioned models also get 'tokens' [B, T], tokenized from the batch's captions."""
  return config.model.get('text', 'none') != 'none'


def _model_inputs(batch, config) -> dict[str, Any]:
  return {'tokens_BT': batch['tokens']} if uses_text(config) else {}


# ------------------------------------------------------------------------------------------------
# Update and eval steps (pure functions; jitted with shardings in `Setup`).
# ------------------------------------------------------------------------------------------------
def make_train_step(model, config: ml_collections.ConfigDict,
                    tx: optax.GradientTransformation) -> Callable:
  """(state, batch) -> (state, TrainMetrics): one AdamW update of the mean negative
  log-likelihood (nats per subpixel) plus the EMA update."""
  schedule = state_lib.learning_rate_schedule(config)
  ema_decay = config.optim.ema_decay
  conditional = config.model.class_conditional

  def train_step(state: state_lib.TrainState, batch: dict[str, jax.Array]):
    dropout_rng = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 1),
                                     state.step)
    labels_B = batch['label'] if conditional else None

    def loss_fn(params):
      log_probs_BHWC = model.apply({'params': params}, batch['image'], labels_B, train=True,
                                   rngs={'dropout': dropout_rng}, **_model_inputs(batch, config))
      return -jnp.mean(log_probs_BHWC)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # Polyak EMA, with the usual warm-up so short runs are not dominated by the initialisation.
    decay = jnp.minimum(ema_decay, (1.0 + state.step) / (10.0 + state.step))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=state_lib.ema_update(state.ema_params, params, decay))
    metrics = metrics_lib.TrainMetrics.single_from_model_output(
        loss=loss, bpd=loss / math.log(2.0), grad_norm=optax.tree.norm(grads),
        learning_rate=schedule(state.step))
    return new_state, metrics

  return train_step


def make_eval_step(model, config: ml_collections.ConfigDict) -> Callable:
  """(params, batch) -> MaskedAverage of per-example bits/dim over the real examples."""
  conditional = config.model.class_conditional

  def eval_step(params, batch: dict[str, jax.Array]) -> metrics_lib.MaskedAverage:
    labels_B = batch['label'] if conditional else None
    log_probs_BHWC = model.apply({'params': params}, batch['image'], labels_B, train=False,
                                 **_model_inputs(batch, config))
    return metrics_lib.MaskedAverage.from_model_output(
        values=models.bits_per_dim(log_probs_BHWC), mask=batch['mask'])

  return eval_step


@dataclasses.dataclass
class Setup:
  """Model, optimizer, mesh, shardings and jitted steps for one config on this run's devices."""
  config: ml_collections.ConfigDict
  model: Any
  tx: optax.GradientTransformation
  mesh: jax.sharding.Mesh
  abstract_state: state_lib.TrainState
  state_shardings: state_lib.TrainState
  batch_sharding: jax.sharding.NamedSharding
  train_step: Callable
  eval_step: Callable
  initializer: Callable  # rng -> a fresh TrainState, born sharded

  @classmethod
  def create(cls, config: ml_collections.ConfigDict, devices=None) -> 'Setup':
    model = models.build_model(config)
    tx = state_lib.make_optimizer(config)
    mesh = mesh_lib.make_mesh(config, devices)
    for key in ('batch_size', 'eval.batch_size'):
      value = config.batch_size if key == 'batch_size' else config.eval.batch_size
      if value <= 0 or value % mesh.size:
        raise errors.ConfigError(f'config.{key}={value} must be a positive multiple of the '
                                 f'{mesh.size} devices of the mesh {dict(mesh.shape)}')
    abstract = state_lib.abstract_state(model, config, tx)
    shardings = mesh_lib.state_shardings(abstract, mesh, config)
    batch_sharding = mesh_lib.batch_sharding(mesh)
    replicated = mesh_lib.replicated(mesh)
    text = ('tokens',) if uses_text(config) else ()
    train_batch = {k: batch_sharding for k in TRAIN_KEYS + text}
    eval_batch = {k: batch_sharding for k in EVAL_KEYS + text}
    train_step = jax.jit(make_train_step(model, config, tx),
                         in_shardings=(shardings, train_batch),
                         out_shardings=(shardings, replicated), donate_argnums=0)
    eval_step = jax.jit(make_eval_step(model, config),
                        in_shardings=(shardings.ema_params, eval_batch),
                        out_shardings=replicated)
    initializer = jax.jit(lambda rng: state_lib.init_state(model, config, tx, rng),
                          out_shardings=shardings)
    return cls(config, model, tx, mesh, abstract, shardings, batch_sharding, train_step,
               eval_step, initializer)

  def init_state(self) -> state_lib.TrainState:
    """A fresh state from config.seed, born sharded."""
    return self.initializer(jax.random.fold_in(jax.random.key(self.config.seed), 0))

  def rows(self, batch_size: int) -> tuple[int, int]:
    """The rows of a global batch that this process reads: those its devices hold."""
    return data.process_rows(self.batch_sharding, batch_size)

  def global_batch(self, batch: dict[str, np.ndarray], keys, batch_size: Optional[int] = None
                   ) -> dict[str, jax.Array]:
    """This process's `rows` (numpy) of a global batch of `batch_size` (default: equal blocks
    per process): its `keys` (plus prompt tokens for text models) as global arrays split over
    the mesh."""
    if batch_size is None:
      batch_size = len(batch[keys[0]]) * jax.process_count()
    batch = {k: batch[k] for k in keys + (('caption',) if uses_text(self.config) else ())}
    if uses_text(self.config):
      captions = batch.pop('caption')
      batch['tokens'] = np.asarray(models.prompt_tokens(list(captions), len(captions),
                                                        self.config))
    return data.to_global(batch, self.batch_sharding, batch_size)


def evaluate_split(setup: Setup, params, split: str) -> tuple[float, int]:
  """Mean bits/dim of `params` over every example of `split`, and the number of examples."""
  total = metrics_lib.MaskedAverage.empty()
  size = setup.config.eval.batch_size
  for batch in data.eval_batches(setup.config, split, rows=setup.rows(size)):
    total = total.merge(setup.eval_step(params, setup.global_batch(batch, EVAL_KEYS, size)))
  total = jax.device_get(total)
  return float(total.compute()), int(total.count)


# ------------------------------------------------------------------------------------------------
# Sample grid at each evaluation.
# ------------------------------------------------------------------------------------------------
def write_sample_grid(setup: Setup, params, step: int, writer, workdir: str) -> Optional[str]:
  """Samples config.sample's images from `params`; writes their grid to TensorBoard and, on
  process 0, to DIR/eval/samples_step<step>.png (returned; None without config.eval.samples)."""
  config = setup.config
  if not config.eval.samples:
    return None
  labels = sample_options.parse_labels(config)
  images_NHWC = sample.generate(params, config, labels, jax.random.key(config.sample.seed))
  grid = images_lib.image_grid(images_NHWC, images_lib.grid_columns(len(images_NHWC), labels))
  writer.write_images(step, {'samples': grid[None]})
  path = epath.Path(workdir) / 'eval' / f'samples_step{step}.png'
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    images_lib.write_png(path, grid)
  return str(path)


# ------------------------------------------------------------------------------------------------
# Evaluation of a saved checkpoint (--mode=eval, and the end of training).
# ------------------------------------------------------------------------------------------------
def evaluate(config: ml_collections.ConfigDict, workdir: str,
             setup: Optional[Setup] = None) -> dict[str, Any]:
  """Restores a checkpoint (config.eval.step, or the config.eval.checkpoint one: 'best' by
  validation bits/dim, the latest where no validation was recorded, or 'latest'), evaluates
  its EMA parameters on config.eval.split, prints the JSON record on process 0 and writes it to
  DIR/eval/<split>_step<step>.json."""
  if setup is None:
    validate.check(config, 'eval')
    setup = Setup.create(config)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config, read_only=True)
  step = checkpoints.resolve_step(config.eval.step, config.eval.checkpoint)
  state = checkpoints.restore(step, setup.abstract_state, setup.state_shardings)
  bpd, num_examples = evaluate_split(setup, state.ema_params, config.eval.split)
  record = {'split': config.eval.split, 'bpd': bpd, 'num_examples': num_examples, 'step': step}
  checkpoints.close()
  if jax.process_index() == 0:
    checkpoint_lib.write_json(
        epath.Path(workdir) / 'eval' / f'{config.eval.split}_step{step}.json', record)
  logs.say(json.dumps(record))  # the last line of a run's stdout
  return record


# ------------------------------------------------------------------------------------------------
# Training.
# ------------------------------------------------------------------------------------------------
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Optional[dict]:
  """Trains (resuming from DIR's latest checkpoint), then evaluates on config.eval.split.

  Returns the final eval record, or None when stopped early by SIGTERM / preemption (after
  saving a checkpoint to resume from).
  """
  # ---- Everything that can be rejected is checked before anything is written. ---------------
  validate.check(config, 'train')
  logging.info('process %d/%d, devices %d local / %d global', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  info = data.dataset_info(config)
  expected = (config.dataset.image_size,) * 2 + (config.dataset.channels,)
  if tuple(info.image_shape) != expected:
    raise errors.ConfigError(f'dataset {info.name} yields images {info.image_shape}, but the '
                             f'config says {expected}: set '
                             f'--config.dataset.image_size={info.image_shape[0]} '
                             f'--config.dataset.channels={info.image_shape[2]}')
  if config.model.class_conditional and info.num_classes != config.dataset.num_classes:
    raise errors.ConfigError(f'dataset {info.name} has {info.num_classes} classes: set '
                             f'--config.dataset.num_classes={info.num_classes}')
  has_validation = 'validation' in info.split_sizes
  setup = Setup.create(config)
  checkpoint_lib.ensure_writable(workdir)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config)
  latest = checkpoints.latest_step()
  if latest is not None:
    state = checkpoints.restore(latest, setup.abstract_state, setup.state_shardings)
  else:
    state = setup.init_state()
  step = int(jax.device_get(state.step))
  # Written once the workdir's checkpoints are known to fit this config, so a refused run
  # leaves the config of the run that made them.
  if jax.process_index() == 0:
    config_path = epath.Path(workdir) / 'config.json'
    checkpoint_lib.write_json(config_path, json.loads(config.to_json_best_effort()))
  logs.say(f'config: {epath.Path(workdir) / "config.json"} (all keys: --mode=show_config)')
  # The global batch of each step depends on the seed and the step alone: resuming needs no
  # iterator state, and works on another number of hosts or devices.
  train_iter = data.train_iterator(config, start_step=step, rows=setup.rows(config.batch_size))
  num_params = sum(math.prod(p.shape) for p in jax.tree.leaves(setup.abstract_state.params))
  splits = ', '.join(f'{n} {split}' for split, n in info.split_sizes.items())
  logs.say(f'model: {num_params:,} parameters; data: {info.name} ({splits} images); mesh '
           f'{dict(setup.mesh.shape)}; {"resuming" if latest is not None else "starting"} at '
           f'step {step} of {config.num_train_steps}')

  # ---- Metric writer (process 0 writes TensorBoard). ----------------------------------------
  # Imported here: clu's writers import TensorFlow, which the train step itself does not need
  # (benchmarks time Setup's step on accelerator images without TensorFlow).
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  if latest is None:
    writer.write_hparams({k: str(v) for k, v in config.to_dict().items()
                          if not isinstance(v, dict)})
  all_finite = jax.jit(lambda tree: jnp.all(jnp.asarray(
      [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)])))
  merge = jax.jit(lambda a, b: a.merge(b))

  # ---- Loop: metrics stay on the device and are read only at log steps, after the next step
  # has been dispatched, so the host never waits on the device. --------------------------------
  train_metrics = None  # on the device, summed since the last log step
  to_log = None  # (step, metrics on the device) not yet read
  log_start, log_step = time.perf_counter(), step
  # Seconds spent evaluating and saving since the last log step: not counted in steps/s, which
  # is the training rate the ETA extrapolates.
  paused = 0.0
  preempted = False

  def write_log():
    nonlocal to_log, log_start, log_step, paused
    if to_log is None:
      return
    logged_step, device_metrics = to_log
    to_log = None
    host_metrics = jax.device_get(device_metrics)
    metrics_lib.check_finite(host_metrics, logged_step)
    elapsed = time.perf_counter() - log_start - paused
    steps_per_s = (logged_step - log_step) / max(elapsed, 1e-9)
    computed = {k: float(v) for k, v in host_metrics.compute().items()}
    scalars = {f'train_{k}': v for k, v in computed.items()}
    scalars.update(steps_per_s=steps_per_s, images_per_s=steps_per_s * config.batch_size)
    writer.write_scalars(logged_step, scalars)
    logs.say(logs.progress_line(logged_step, config.num_train_steps, computed['loss'],
                                computed['bpd'], steps_per_s))
    log_start, log_step, paused = time.perf_counter(), logged_step, 0.0

  with preemption_lib.PreemptionWatcher() as preemption:
    while step < config.num_train_steps:
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        batch = setup.global_batch(next(train_iter), TRAIN_KEYS, config.batch_size)
        state, device_metrics = setup.train_step(state, batch)
      train_metrics = device_metrics if train_metrics is None else merge(train_metrics,
                                                                         device_metrics)
      write_log()  # the previous log step's metrics, while this step runs
      step += 1
      is_last = step == config.num_train_steps
      preempted = preemption.reached(step)
      do_eval = step % config.eval_every_steps == 0 or is_last
      do_save = step % config.checkpoint_every_steps == 0 or is_last or preempted or (
          do_eval and has_validation)
      if step % config.log_every_steps == 0 or is_last or preempted:
        to_log, train_metrics = (step, train_metrics), None
      if do_eval or do_save:
        write_log()  # a non-finite loss stops the run here, before anything is saved
      pause_start = time.perf_counter()
      validation_bpd = None
      if do_eval:
        bpds = {}
        if has_validation:
          validation_bpd, _ = evaluate_split(setup, state.ema_params, 'validation')
          bpds['validation'] = validation_bpd
        bpds[config.eval.split], _ = evaluate_split(setup, state.ema_params, config.eval.split)
        writer.write_scalars(step, {f'{split}_bpd': bpd for split, bpd in bpds.items()})
        samples = write_sample_grid(setup, state.ema_params, step, writer, workdir)
        writer.flush()
        logs.say(logs.eval_line(step, bpds, samples))
      if do_save:
        if not bool(all_finite(state.params)):
          raise FloatingPointError(f'Non-finite parameters after step {step}; not saving. '
                                   'Resume from the last checkpoint with a lower learning rate.')
        checkpoints.save(step, state, validation_bpd, preempted)
      paused += time.perf_counter() - pause_start
      if preempted:
        break
    write_log()

  checkpoints.wait()
  checkpoints.close()
  writer.close()
  if preempted:
    logging.warning('Stopped at step %d after a preemption signal; rerun the same command to '
                    'resume.', step)
    return None
  return evaluate(config, workdir, setup)
