"""Byte-level UTF-8 prompt tokenizer: no vocabulary file, and no text ever maps to an unknown token.

Tokens 0..255 are the prompt's UTF-8 bytes; BOS, EOS and PAD follow. Every prompt becomes
[BOS, bytes..., EOS, PAD...] of exactly `max_length` tokens, so batches have one static shape.
The empty prompt, [BOS, EOS, PAD...], is the unconditional input (classifier-free guidance).
"""
import itertools
import pathlib
import warnings
from typing import Sequence, Union

import numpy as np

from freqprior import errors

BOS, EOS, PAD = 256, 257, 258
VOCAB_SIZE = 259


def encode(prompt: Union[str, bytes], max_length: int) -> list[int]:
  """One prompt -> [BOS, bytes..., EOS]; longer prompts lose whole trailing characters, with a
  warning, so that at most `max_length` tokens remain."""
  if max_length < 2:
    raise errors.ConfigError('config.model.max_prompt_length must be >= 2 (BOS and EOS), got '
                             f'{max_length}')
  if isinstance(prompt, bytes):
    prompt = prompt.decode('utf-8')
  if not isinstance(prompt, str):
    raise TypeError(f'a prompt must be a str, got {type(prompt).__name__}: {prompt!r}')
  data = prompt.encode('utf-8')
  room = max_length - 2
  if len(data) > room:
    kept = data[:room].decode('utf-8', errors='ignore')  # drops a character cut in half
    warnings.warn(f'prompt of {len(data)} UTF-8 bytes truncated to {len(kept.encode())} '
                  f'(config.model.max_prompt_length={max_length}): {prompt!r} -> {kept!r}',
                  stacklevel=3)
    data = kept.encode('utf-8')
  return [BOS, *data, EOS]


def tokenize(prompts: Sequence[Union[str, bytes]], max_length: int) -> np.ndarray:
  """Prompts -> int32 tokens [B, max_length], PAD after each prompt's EOS."""
  tokens_BT = np.full((len(prompts), max_length), PAD, np.int32)
  for b, prompt in enumerate(prompts):
    ids = encode(prompt, max_length)
    tokens_BT[b, :len(ids)] = ids
  return tokens_BT


def null_tokens(batch: int, max_length: int) -> np.ndarray:
  """The empty prompt [B, max_length] int32: the unconditional text input."""
  return np.repeat(tokenize([''], max_length), batch, axis=0)


def detokenize(tokens_T: Sequence[int]) -> str:
  """Tokens of one prompt -> its text (BOS, EOS and PAD dropped)."""
  data = bytes(int(t) for t in tokens_T if 0 <= int(t) < 256)
  return data.decode('utf-8')


def load_prompts(prompt: Union[str, Sequence[str]], prompt_file: str, num: int) -> list[str]:
  """`num` prompts for sampling: config.sample.prompt (one string, or a list cycled over the
  images) or config.sample.prompt_file (one prompt a line, cycled; a blank line is the empty,
  unconditional prompt)."""
  if prompt_file:
    if prompt:
      raise errors.ConfigError('set config.sample.prompt or config.sample.prompt_file, not both')
    path = pathlib.Path(prompt_file)
    if not path.is_file():
      raise errors.MissingError(f'config.sample.prompt_file={prompt_file!r} does not exist')
    prompts = path.read_text(encoding='utf-8').splitlines()
    if not prompts:
      raise errors.ConfigError(f'config.sample.prompt_file={prompt_file!r} holds no prompts')
  elif isinstance(prompt, (list, tuple)):
    prompts = [str(p) for p in prompt]
  else:
    prompts = [str(prompt)]  # a command-line override may parse '7' as an int
    if not prompts:
      raise errors.ConfigError('config.sample.prompt is an empty list')
  return list(itertools.islice(itertools.cycle(prompts), num))
