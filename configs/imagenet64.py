"""Class-conditional ImageNet 64x64 (tfds imagenet_resized/64x64, 1000 labels), logistic mixture head.

Data:     tfds build imagenet_resized/64x64 --file_format=array_record --data_dir=gs://BUCKET/tfds
Command:  python main.py --config=configs/imagenet64.py --workdir=gs://BUCKET/imagenet64 \
            --config.dataset.data_dir=gs://BUCKET/tfds
Hardware: sized for a TPU v4-64 / v5e-64 or 8 hosts of 8 GPUs (global batch 256), FSDP on.
Expected: target test bits/dim below 3.6 (Gated PixelCNN: 3.57; not yet measured).
"""
from configs import common


def get_config():
  config = common.base_config()
  config.num_train_steps = 500_000
  config.batch_size = 256
  config.eval_every_steps = 10_000
  config.checkpoint_every_steps = 5000
  config.log_every_steps = 100
  config.dataset.name = 'imagenet64'
  config.dataset.image_size = 64
  config.dataset.channels = 3
  config.dataset.num_classes = 1000
  config.dataset.validation_examples = 10_000
  config.dataset.worker_count = 2
  config.eval.batch_size = 512
  config.model.head = 'logistic_mixture'
  config.model.num_mixtures = 10
  config.model.width = 192
  config.model.num_blocks = 16
  config.model.head_width = 192
  # A full-width prior in every block at 64x64 would hold 1.5M taps per block: filter a
  # 48-channel projection in every other block.
  config.model.prior_channels = 48
  config.model.prior_blocks = '1,3,5,7,9,11,13,15'
  config.model.dropout = 0.0
  config.model.dtype = 'bfloat16'
  config.mesh.fsdp = True
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 5000
  config.optim.ema_decay = 0.9995
  return config
