"""Trains, evaluates or samples a freqprior model. The logic lives in the library.

  python main.py --config=configs/digits.py --workdir=/tmp/digits [--mode=train|eval|sample]
      [--config.num_train_steps=500 ...] [--multihost [--coordinator_address=HOST:PORT
      --num_processes=N --process_id=I]] [--verbosity=0]
  python main.py --config=configs/digits.py --mode=show_config [--config.model.width=64 ...]

Running train again on the same workdir resumes from its latest checkpoint. stdout carries the
run's progress and ends with its JSON eval record; libraries' INFO logs appear with
--verbosity=0 (absl's INFO) or higher. show_config prints every config key as the flag that sets
it, with the value it has after the flags given.
"""
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from freqprior import errors
from freqprior import logs
from freqprior import mesh
from freqprior import sample_main
from freqprior import train
from freqprior import validate

config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).', lock_config=True)
flags.DEFINE_string('workdir', None,
                    'Checkpoints, TensorBoard logs, eval results (local or gs://).')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample', 'show_config'],
                  'What to run; show_config prints the config and needs no --workdir.')
flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize(): TPU pod slices, SLURM, '
                  'or the three flags below / JAX_COORDINATOR_ADDRESS etc.')
flags.DEFINE_string('coordinator_address', None, 'HOST:PORT of process 0 (multi-host).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (multi-host).')
flags.DEFINE_integer('process_id', None, 'This process index (multi-host).')
flags.mark_flag_as_required('config')
flags.register_multi_flags_validator(
    ['mode', 'workdir'], lambda f: f['mode'] == 'show_config' or bool(f['workdir']),
    message='--workdir is required (except with --mode=show_config)')
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if FLAGS.mode == 'show_config':
    print('\n'.join(logs.config_flags(FLAGS.config)), flush=True)
    return
  # absl.app.run raises an unset --verbosity to INFO, which would bury the run's own lines
  # under Orbax's, grain's and JAX's; warnings and errors still show.
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  logs.quiet_libraries(FLAGS.verbosity)
  try:
    if FLAGS.multihost or FLAGS.coordinator_address:
      mesh.initialize_processes(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    logging.info('process %d of %d; mode %s', jax.process_index(), jax.process_count(),
                 FLAGS.mode)
    # Each mode validates the config before anything is read or written.
    if FLAGS.mode == 'train':
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif FLAGS.mode == 'eval':
      train.evaluate(FLAGS.config, FLAGS.workdir)
    else:
      validate.check(FLAGS.config, 'sample')
      sample_main.run(FLAGS.config, FLAGS.workdir)
  except errors.UserError as e:  # the user's to fix: one line, no traceback
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
