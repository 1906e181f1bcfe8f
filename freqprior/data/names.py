"""Readable class names and the captions built from them.

`imagenet_names.txt` maps each ImageNet WordNet id to the first synonym of its standard class
name (joined from the label files that ship with tensorflow-datasets); `cifar100_names.txt` lists
the 100 CIFAR-100 fine labels in label order.
"""
import functools
import pathlib
import re

_HERE = pathlib.Path(__file__).parent
_WNID = re.compile(r'^n\d{8}$')


@functools.cache
def imagenet_names() -> dict[str, str]:
  """WordNet id -> readable name, e.g. 'n01440764' -> 'tench'."""
  lines = (_HERE / 'imagenet_names.txt').read_text().splitlines()
  return dict(line.split('\t') for line in lines if line)


@functools.cache
def cifar100_names() -> tuple[str, ...]:
  return tuple((_HERE / 'cifar100_names.txt').read_text().split())


def readable(raw: str) -> str:
  """A stored label name as English: WordNet ids looked up, underscores become spaces."""
  if _WNID.match(raw):
    if raw not in imagenet_names():
      raise ValueError(f'WordNet id {raw!r} is not an ImageNet-1k class; rename its folder.')
    return imagenet_names()[raw]
  return re.sub(r'[_\s]+', ' ', raw).strip()


DIGIT_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')


def photo_captions(name: str) -> tuple[str, ...]:
  """('a photo of a maple tree',), ('a photo of an orange',)."""
  article = 'an' if name[:1].lower() in 'aeiou' else 'a'
  return (f'a photo of {article} {name}',)


def digit_captions(name: str) -> tuple[str, ...]:
  """('a handwritten digit 7', 'a handwritten digit seven'); the first is used in evaluation."""
  return tuple(f'a handwritten digit {n}' for n in (name, DIGIT_WORDS[int(name)]))
