"""`python main.py --mode=sample`: restore a run's checkpoint, sample it, write the PNGs.

  python main.py --mode=sample --config=configs/digits.py --workdir=DIR \
      [--config.sample.num_images=16 --config.sample.class_label=3 --config.sample.method=naive]

restores the best checkpoint of DIR (or `config.sample.step`) with its EMA parameters onto this
machine's devices and writes DIR/samples/<step>/grid.png plus one PNG per image, with a progress
bar on stderr. Every input is checked before anything is restored or written.
"""
import sys

from etils import epath
import jax
import ml_collections

from freqprior import images as images_lib
from freqprior import sample
from freqprior import sample_options


class RowProgress:
  """A one-line text progress bar of image rows done (each device may report a row)."""

  def __init__(self, stream=sys.stderr, width: int = 30):
    self.stream, self.width, self.done = stream, width, 0

  def __call__(self, done: int, total: int) -> None:
    if done <= self.done:
      return
    self.done = done
    filled = self.width * done // total
    self.stream.write(f'\rsampling: {done}/{total} rows [{"#" * filled}'
                      f'{"." * (self.width - filled)}]' + ('\n' if done == total else ''))
    self.stream.flush()


def run(config: ml_collections.ConfigDict, workdir: str) -> epath.Path:
  """Restores, samples with a progress bar, writes DIR/samples/<step>/ and returns it."""
  images_NHWC, step = sample.sample_checkpoint(config, workdir, on_row=RowProgress())
  directory = epath.Path(workdir) / 'samples' / str(step)
  if jax.process_index() == 0:
    columns = images_lib.grid_columns(len(images_NHWC), sample_options.parse_labels(config))
    images_lib.write_sample_dir(images_NHWC, directory, columns)
    print(f'wrote {len(images_NHWC)} samples of step {step} to {directory}', flush=True)
  return directory
