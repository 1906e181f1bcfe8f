"""Class-conditional ImageNet 32x32 (tfds imagenet_resized/32x32, 1000 labels), mixture head.

Data:     tfds build imagenet_resized/32x32 --file_format=array_record --data_dir=gs://BUCKET/tfds
Command:  python main.py --config=configs/imagenet32.py --workdir=gs://BUCKET/imagenet32 \
            --config.dataset.data_dir=gs://BUCKET/tfds
Model:    15.0M parameters, the frequency prior in blocks 3, 7, 11.
Hardware: sized for a TPU v4-32 / v5e-32 or 4 hosts of 8 GPUs (global batch 256).
Expected: target: test bits/dim below 3.85 (Gated PixelCNN: 3.83; not yet measured).
"""
from configs import common


def get_config():
  config = common.base_config()
  config.num_train_steps = 500_000
  config.batch_size = 256
  config.eval_every_steps = 10_000
  config.checkpoint_every_steps = 5000
  config.log_every_steps = 100
  config.dataset.name = 'imagenet32'
  config.dataset.image_size = 32
  config.dataset.channels = 3
  config.dataset.num_classes = 1000
  config.dataset.validation_examples = 10_000
  config.dataset.worker_count = 2
  config.eval.batch_size = 1024
  config.model.head = 'logistic_mixture'
  config.model.num_mixtures = 10
  config.model.width = 192
  config.model.num_blocks = 12
  config.model.head_width = 192
  config.model.prior_blocks = '3,7,11'  # as in cifar100: every fourth block, a 1/3-width filter
  config.model.prior_channels = 64
  config.model.dropout = 0.0
  config.model.dtype = 'bfloat16'
  config.model.cond_dropout = 0.1  # learns the null label: classifier-free guidance
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 5000
  config.optim.ema_decay = 0.9995
  return config
