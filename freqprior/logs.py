"""What a run prints, and keeping the libraries' own logs out of it.

stdout is the run's account, from process 0: where the config was written, the model, one line
per log step, one per evaluation, and last of all the eval record as JSON (so `tail -1` finds
it). stderr holds warnings and errors. Orbax, grain, TFDS and JAX's backend probe log at INFO
through absl, and TensorFlow's C++ side prints start-up notices; main.py keeps all of these off
unless --verbosity=0 (absl's INFO) or higher asks for them.
"""
import math
import os
import shlex
from typing import Optional

import jax
import ml_collections


def quiet_libraries(verbosity: int) -> None:
  """Below absl's INFO verbosity, silences what Python log levels cannot reach: TensorFlow's C++
  logs. Takes effect only if called before TensorFlow is imported."""
  if verbosity >= 0:
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  # TensorFlow only writes TensorBoard summaries in this program, so its oneDNN kernels would
  # compute nothing; their notice is printed when TensorFlow loads, whatever the log level.
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')


def say(message: str) -> None:
  """Prints a line of the run's account on process 0 (every process runs the same loop)."""
  if jax.process_index() == 0:
    print(message, flush=True)


def duration(seconds: float) -> str:
  """'45s', '3m04s', '2h05m': as precise as a person reading an ETA wants."""
  if not math.isfinite(seconds):
    return '?'
  seconds = max(0, round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def progress_line(step: int, num_steps: int, loss: float, bpd: float,
                  steps_per_s: float) -> str:
  """One log step: mean loss (nats per subpixel) and bits/dim since the last one, the training
  rate, and the time the remaining steps take at that rate (evaluations not included)."""
  eta = (num_steps - step) / steps_per_s if steps_per_s > 0 else math.inf
  width = len(str(num_steps))
  return (f'step {step:{width}d}/{num_steps}  loss {loss:.4f}  {bpd:.4f} bits/dim  '
          f'{steps_per_s:.2f} steps/s  ETA {duration(eta)}')


def eval_line(step: int, bpd_by_split: dict[str, float], samples: Optional[str] = None) -> str:
  """One evaluation: bits/dim of each split, and where the sample grid went."""
  parts = [f'{split} {bpd:.4f} bits/dim' for split, bpd in bpd_by_split.items()]
  line = f'step {step} eval: ' + ', '.join(parts)
  return line + (f'; samples {samples}' if samples else '')


def config_flags(config: ml_collections.ConfigDict, prefix: str = 'config') -> list[str]:
  """Every leaf of `config` as the shell-quoted flag that sets it (`--config.model.width=32`),
  sorted by key: what --mode=show_config prints, and pasted back it gives the same config."""
  lines = []
  for key, value in sorted(config.items()):
    if isinstance(value, ml_collections.ConfigDict):
      lines.extend(config_flags(value, f'{prefix}.{key}'))
    else:
      lines.append(f'--{prefix}.{key}={_shell_word(str(value))}')
  return lines


def _shell_word(text: str) -> str:
  """`text` quoted for a POSIX shell, in double quotes where it holds single ones (tuples of
  strings), which reads better than shlex's '"'"' splices."""
  if "'" in text and not any(c in text for c in '"$`\\!'):
    return f'"{text}"'
  return shlex.quote(text)
