"""Prints, from process 0, a digest of the first global train and eval batches as the mesh sees
them: `python tests/global_batches.py DATA_DIR STEPS [--coordinator=HOST:PORT --num_processes=N
--process_id=I]`, devices from JAX_NUM_CPU_DEVICES. Used by tests/test_multihost.py."""
import hashlib
import json
import sys

import jax
from jax.experimental import multihost_utils
import numpy as np

from configs import digits
from freqprior import data
from freqprior import train


def digest(batch: dict) -> str:
  h = hashlib.sha256()
  for key in sorted(batch):
    if key != 'caption':
      h.update(key.encode() + np.asarray(multihost_utils.process_allgather(
          batch[key], tiled=True)).tobytes())
  return h.hexdigest()


def main(data_dir: str, steps: int, *flags: str) -> None:
  options = dict(flag[2:].split('=', 1) for flag in flags)
  if options:
    jax.distributed.initialize(options['coordinator'], int(options['num_processes']),
                               int(options['process_id']))
  config = digits.get_config()
  config.dataset.update(data_dir=data_dir, random_flip=True)
  config.update(batch_size=16, seed=3)
  config.eval.batch_size = 64
  config.model.update(width=8, num_blocks=1, head_width=8)
  setup = train.Setup.create(config)
  iterator = data.train_iterator(config, rows=setup.rows(config.batch_size))
  record = {'train': [digest(setup.global_batch(next(iterator), train.TRAIN_KEYS, 16))
                      for _ in range(steps)],
            'test': [digest(setup.global_batch(batch, train.EVAL_KEYS, 64)) for batch in
                     data.eval_batches(config, 'test', rows=setup.rows(64))],
            'devices': jax.device_count(), 'processes': jax.process_count()}
  if jax.process_index() == 0:
    print(json.dumps(record), flush=True)


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
