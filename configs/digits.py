"""The embedded default: class-conditional 8x8 handwritten digits (sklearn's bundled set).

Command:  python main.py --config=configs/digits.py --workdir=/tmp/digits
Model:    236K parameters, the frequency prior in blocks 0, 1, 2, 3.
Hardware: 2 CPU cores, no download; about 2 minutes for training and evaluation.
Expected: test bits/dim 1.709, validation 1.659 (2026-12-03). The target of 1.6 is not
          reached: the test images are writers absent from training (docs/RESULTS.md).
"""
from configs import common


def get_config():
  config = common.base_config()
  config.num_train_steps = 1000
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  config.log_every_steps = 50
  config.dataset.validation_examples = 200
  config.model.width = 32
  config.model.num_blocks = 4
  config.model.head_width = 64
  config.model.dropout = 0.5  # 1,300 training images: without it test bits/dim rises after ~500 steps
  config.model.position_embedding = True  # centred digits: position alone is informative
  config.optim.learning_rate = 2e-3
  config.optim.warmup_steps = 100
  config.optim.ema_decay = 0.999
  config.sample.num_images = 30
  config.sample.batch_size = 30
  return config
