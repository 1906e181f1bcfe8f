"""CIFAR-100 conditioned on readable class captions ("a photo of a maple tree") with guidance.

Command:  python main.py --config=configs/cifar100_text.py --workdir=gs://BUCKET/cifar100_text \
            --config.dataset.data_dir=gs://BUCKET/tfds
Model:    11.5M parameters, the frequency prior in blocks 3, 7, 11.
Hardware: sized for a TPU v4-8 / v5e-8 or 8 GPUs (global batch 64), like configs/cifar100.py.
Expected: not yet measured; compare test bits/dim with configs/cifar100.py (class labels).
"""
from configs import cifar100


def get_config():
  config = cifar100.get_config()
  config.model.class_conditional = False
  config.model.text = 'cross_attention'
  config.model.text_width = 128
  config.model.text_depth = 2
  config.model.text_heads = 4
  config.model.max_prompt_length = 48
  config.model.cross_attention_blocks = '3,7,11'  # with the prior: the pattern repeats every 4 blocks
  config.model.cross_attention_heads = 4
  config.model.cond_dropout = 0.1
  config.sample.class_label = ''  # prompts, not labels
  config.sample.prompt = ('a photo of an apple', 'a photo of a maple tree', 'a photo of a bicycle',
                          'a photo of a whale', 'a photo of a castle')
  config.sample.guidance_scale = 2.0
  return config
