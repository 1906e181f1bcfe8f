"""Class-conditional CIFAR-100 (32x32x3, 100 fine labels), discretized logistic mixture head.

Command:  python main.py --config=configs/cifar100.py --workdir=gs://BUCKET/cifar100 \
            --config.dataset.data_dir=gs://BUCKET/tfds
Model:    10.5M parameters, the frequency prior in blocks 3, 7, 11.
Hardware: sized for a TPU v4-8 / v5e-8 or 8 GPUs (global batch 64).
Expected: target: test bits/dim below 3.2 (not yet measured).
"""
from configs import common


def get_config():
  config = common.base_config()
  config.num_train_steps = 300_000
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 5000
  config.log_every_steps = 100
  config.dataset.name = 'cifar100'
  config.dataset.image_size = 32
  config.dataset.channels = 3
  config.dataset.num_classes = 100
  config.dataset.random_flip = True
  config.dataset.validation_examples = 5000
  config.dataset.worker_count = 2  # PNG decoding: about 8k images/s per process
  config.model.head = 'logistic_mixture'
  config.model.num_mixtures = 10
  config.model.width = 160
  config.model.num_blocks = 12
  config.model.head_width = 160
  # The prior in the last block of every group of four, filtering a 48-channel projection:
  # in all 12 blocks at full width it cost 0.6-0.8 of a train step (README, Results).
  config.model.prior_blocks = '3,7,11'
  config.model.prior_channels = 48
  config.model.dropout = 0.5
  config.model.dtype = 'bfloat16'
  config.model.cond_dropout = 0.1  # learns the null label: classifier-free guidance
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 2000
  config.optim.ema_decay = 0.9995
  return config
