"""Caption-conditioned COCO (tfds coco_captions; 64x64 center crops, a random caption per epoch).

Data:     tfds build coco_captions --file_format=array_record --data_dir=gs://BUCKET/tfds
Command:  python main.py --config=configs/coco.py --workdir=gs://BUCKET/coco \
            --config.dataset.data_dir=gs://BUCKET/tfds
Model:    16.2M parameters, the frequency prior in blocks 3, 7, 11.
Hardware: sized for a TPU v4-8 / v5e-8 or 8 GPUs (global batch 64).
Expected: not yet measured; compare test bits/dim with and without captions (model.text='none').
"""
from configs import cifar100


def get_config():
  """cifar100's model and schedule at 64x64, conditioned on captions instead of labels."""
  config = cifar100.get_config()
  config.dataset.name = 'coco'
  config.dataset.image_size = 64
  config.dataset.num_classes = 1  # COCO has captions, no labels: every label is 0.
  config.dataset.worker_count = 0
  config.model.class_conditional = False
  config.model.text = 'cross_attention'
  config.model.text_width = 256
  config.model.text_depth = 4
  config.model.text_heads = 8
  config.model.max_prompt_length = 128
  config.model.cross_attention_blocks = '1,3,5,7,9,11'
  config.model.cross_attention_heads = 8
  config.model.cond_dropout = 0.1
  config.model.dropout = 0.25
  config.sample.class_label = ''  # prompts, not labels
  config.sample.prompt = ('a red double decker bus on a city street', 'a plate of food',
                          'a giraffe standing in a field', 'a man riding a wave on a surfboard')
  config.sample.guidance_scale = 2.0
  return config
