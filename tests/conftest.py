"""Shared test helpers: tiny configs built from the shipped ones."""
import os
import tempfile

# Before jax loads: one persistent compilation cache for this process, the other xdist worker
# and the main.py subprocesses, which compile the same small programs again and again.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), f'freqprior-tests-{os.getuid()}'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import cifar100, digits


# grain's worker processes read absl flags, which only `absl.app.run` parses outside tests.
flags.FLAGS.mark_as_parsed()


# The tiny digits run of the tests that launch main.py to train. Each adds only settings that the
# compiled programs do not depend on (how often it saves and logs, the input pipeline), so the
# programs compile once and the compilation cache serves them to every such run on as many devices.
TINY_RUN_STEPS = 60
TINY_RUN = ['--config.model.width=8', '--config.model.num_blocks=1', '--config.model.head_width=16',
            '--config.model.dropout=0.1', '--config.batch_size=16', '--config.eval.batch_size=64',
            f'--config.num_train_steps={TINY_RUN_STEPS}',
            f'--config.eval_every_steps={TINY_RUN_STEPS}', '--config.eval.samples=False']


def tiny_config(rgb: bool = False, head: str = 'categorical', prior: bool = True,
                size: int = 8, width: int = 16, num_blocks: int = 2, conditional: bool = True):
  config = (cifar100 if rgb else digits).get_config()
  config.dataset.image_size = size
  config.model.update(head=head, frequency_prior=prior, width=width, num_blocks=num_blocks,
                      prior_blocks='all', prior_channels=0, head_width=16, num_mixtures=3,
                      dropout=0.0, dtype='float32', class_conditional=conditional)
  return config
