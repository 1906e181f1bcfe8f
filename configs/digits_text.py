"""The embedded 8x8 digits conditioned on a prompt ("a handwritten digit 7") instead of a label.

Command:  python main.py --config=configs/digits_text.py --workdir=/tmp/digits_text
Model:    304K parameters, the frequency prior in blocks 0, 1, 2, 3.
Hardware: 2 CPU cores; no download (images ship inside scikit-learn, captions come from the
          class names, the tokenizer is byte-level UTF-8).
Expected: test bits/dim 1.691; a digits classifier reads 97% of samples prompted "a handwritten
          digit 0".."9" as the prompted digit (benchmarks/quality.py, 2026-11-27, earlier code).
"""
from configs import digits


def get_config():
  config = digits.get_config()
  config.model.class_conditional = False
  config.model.text = 'cross_attention'
  config.model.text_width = 32
  config.model.text_depth = 2
  config.model.text_heads = 4
  config.model.max_prompt_length = 32
  config.model.cross_attention_blocks = 'all'
  config.model.cross_attention_heads = 4
  config.model.cond_dropout = 0.1
  config.sample.class_label = ''  # prompts, not labels
  config.sample.prompt = tuple(f'a handwritten digit {d}' for d in range(10))
  return config
