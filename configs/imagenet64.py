"""Class-conditional ImageNet 64x64 (tfds imagenet_resized/64x64, 1000 labels), mixture head.

Data:     tfds build imagenet_resized/64x64 --file_format=array_record --data_dir=gs://BUCKET/tfds
Command:  python main.py --config=configs/imagenet64.py --workdir=gs://BUCKET/imagenet64 \
            --config.dataset.data_dir=gs://BUCKET/tfds
Model:    21.6M parameters, the frequency prior in blocks 3, 7, 11, 15.
Hardware: sized for a TPU v4-64 / v5e-64 or 8 hosts of 8 GPUs (global batch 256), FSDP.
Expected: target: test bits/dim below 3.6 (Gated PixelCNN: 3.57; not yet measured).
"""
from configs import imagenet32


def get_config():
  """imagenet32's settings at 64x64, deeper, FSDP-sharded."""
  config = imagenet32.get_config()
  config.dataset.name = 'imagenet64'
  config.dataset.image_size = 64
  config.eval.batch_size = 512
  config.model.num_blocks = 16
  config.model.prior_blocks = '3,7,11,15'  # imagenet32's placement: every fourth block
  config.mesh.fsdp = True
  config.mesh.shape = (1, -1)  # every device on 'fsdp': parameters split over all of them
  return config
