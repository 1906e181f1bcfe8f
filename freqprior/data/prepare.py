r"""Turns a local image-folder or COCO tree into a TFDS ArrayRecord dataset, without network.

  python -m freqprior.data.prepare --source=folder --input=PATH --output=DATA_DIR/NAME \
      [--image_size=N] [--channels=1|3] [--max_samples=N]

  folder: PATH/{train,val}/<class>/<image>.{jpg,jpeg,png}; class names are the folder names
          (WordNet ids such as n01440764 read as ImageNet names). Train with
          config.dataset.name='folder:NAME', config.dataset.data_dir=DATA_DIR.
  coco:   PATH/images/{train,val}2017/*.jpg and PATH/annotations/captions_{train,val}2017.json;
          every caption of an image is kept. Train with config.dataset.name='coco:NAME'.

'val' becomes the 'test' split. Images are center-cropped to a square and resized to
image_size x image_size with `channels` channels. Both default to what the images are when they
all agree (one square size; all greyscale -> 1, all colour -> 3), and are required otherwise.
--channels=1 turns colour into grey (PIL convert('L')), --channels=3 repeats grey three times;
16-bit grey is scaled to 8 bits. --max_samples caps each split (balanced over classes for folder).
Output goes to a temporary folder renamed at the end: a failure leaves nothing at --output, and an
existing --output is never overwritten.
"""
from collections.abc import Iterator
import json

from absl import app
from absl import flags
from etils import epath
import numpy as np
from PIL import Image
from PIL import ImageOps
import tensorflow_datasets as tfds

from freqprior.data import names
from freqprior.data import writer

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
# PIL modes of one grey band, alpha aside ('I;16' and kin are 16-bit grey).
GREY_MODES = ('1', 'L', 'LA', 'La', 'I', 'F')
_SPLITS = {'train': 'train', 'val': 'test'}  # input folder -> stored split


class PrepareError(ValueError):
  """Input that cannot be turned into a dataset; the message names the offending path."""


def _header(path: epath.Path) -> tuple[tuple[int, int], str, bool]:
  """((width, height), PIL mode, greyscale?) of an image file, from its header alone."""
  try:
    with path.open('rb') as f, Image.open(f) as image:
      return image.size, image.mode, is_grey(image)
  except Exception as e:  # Pillow raises many types for bad files.
    raise PrepareError(f'Cannot read image {path}: {e}') from e


def is_grey(image: Image.Image) -> bool:
  """One grey band (alpha aside), including palettes whose colours are all grey."""
  if image.mode in ('P', 'PA'):
    rgb_K3 = np.asarray(image.getpalette() or [], np.int64).reshape(-1, 3)
    return rgb_K3.size > 0 and bool((rgb_K3 == rgb_K3[:, :1]).all())
  return image.mode in GREY_MODES or image.mode.startswith('I;')


def load_image(path: epath.Path, image_size: int, channels: int = 3) -> np.ndarray:
  """uint8 [image_size, image_size, channels]: center square crop, bicubic resize."""
  try:
    with path.open('rb') as f:
      image = Image.open(f)
      image.load()
  except Exception as e:  # Pillow raises many types for bad files.
    raise PrepareError(f'Cannot read image {path}: {e}') from e
  if image.mode == 'I' or image.mode.startswith('I;'):
    # convert() would clip 16-bit values at 255; scale 0..65535 to 0..255 instead.
    grey_HW = np.round(np.asarray(image, np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(grey_HW)
  image = ImageOps.fit(image.convert('L' if channels == 1 else 'RGB'), (image_size, image_size),
                       method=Image.Resampling.BICUBIC)
  return np.asarray(image).reshape(image_size, image_size, channels)


def image_shape(paths: list[epath.Path], image_size: int | None, channels: int | None
                ) -> tuple[int, int]:
  """(image_size, channels): as given, or what all the images agree on (else PrepareError)."""
  if image_size is not None and channels is not None:
    return image_size, channels
  sizes: dict[tuple[int, int], epath.Path] = {}  # first file of each (width, height)
  kinds: dict[bool, tuple[epath.Path, str]] = {}  # grey? -> first (file, mode)
  for path in paths:
    size, mode, grey = _header(path)
    sizes.setdefault(size, path)
    kinds.setdefault(grey, (path, mode))
  if image_size is None:
    flag = 'set --image_size=N (each image is center-cropped and resized to N x N)'
    for (width, height), path in sizes.items():
      if width != height:
        raise PrepareError(f'{path} is {width}x{height}, not square: {flag}.')
    if len(sizes) > 1:
      ((w0, h0), first), ((w1, h1), other) = list(sizes.items())[:2]
      raise PrepareError(f'Images differ in size ({first} is {w0}x{h0}, {other} is {w1}x{h1}): '
                         f'{flag}.')
    image_size = next(iter(sizes))[0]
  if channels is None:
    if len(kinds) > 1:
      (grey, grey_mode), (colour, colour_mode) = kinds[True], kinds[False]
      raise PrepareError(f'Images mix greyscale and colour ({grey} is {grey_mode}, {colour} is '
                         f'{colour_mode}): set --channels=1 (colour becomes grey) or '
                         '--channels=3 (grey is repeated).')
    (grey,) = kinds
    channels = 1 if grey else 3
  return image_size, channels


def _image_files(folder: epath.Path) -> list[epath.Path]:
  return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _balanced(files_per_class: list[list[epath.Path]], max_samples: int | None
              ) -> list[list[epath.Path]]:
  """At most `max_samples` files in all, spread as evenly over the classes as they allow."""
  if max_samples is None:
    return files_per_class
  counts = [0] * len(files_per_class)
  remaining = max_samples
  while remaining > 0:
    open_classes = [c for c, files in enumerate(files_per_class) if counts[c] < len(files)]
    if not open_classes:
      break
    share = max(1, remaining // len(open_classes))
    for c in open_classes:
      take = min(share, len(files_per_class[c]) - counts[c], remaining)
      counts[c] += take
      remaining -= take
  return [files[:n] for files, n in zip(files_per_class, counts)]


def folder_splits(root: epath.Path, max_samples: int | None
                  ) -> tuple[list[str], dict[str, list[tuple[epath.Path, int]]]]:
  """(class folder names, stored split -> [(file, label)]) of a PATH/{train,val}/<class>/ tree."""
  for folder in _SPLITS:
    if not (root / folder).is_dir():
      raise PrepareError(f'{root / folder} is missing: expected {root}/{{train,val}}/<class>/.')
  classes = sorted(p.name for p in (root / 'train').iterdir() if p.is_dir())
  if not classes:
    raise PrepareError(f'{root / "train"} has no class folders.')
  for c in classes:
    names.readable(c)  # Rejects WordNet ids outside ImageNet-1k before any work.
  splits = {}
  for folder, split in _SPLITS.items():
    extra = sorted({p.name for p in (root / folder).iterdir() if p.is_dir()} - set(classes))
    if extra:
      raise PrepareError(f'{root / folder} has classes that train lacks: {extra[:5]}.')
    files_per_class = []
    for c in classes:
      class_dir = root / folder / c
      files = _image_files(class_dir) if class_dir.is_dir() else []
      if not files:
        raise PrepareError(f'Class folder {class_dir} is empty or missing (no '
                           f'{"/".join(IMAGE_SUFFIXES)} files).')
      files_per_class.append(files)
    chosen = _balanced(files_per_class, max_samples)
    splits[split] = [(f, label) for label, files in enumerate(chosen) for f in files]
  return classes, splits


def coco_splits(root: epath.Path, max_samples: int | None
                ) -> dict[str, list[tuple[epath.Path, list[str]]]]:
  """stored split -> [(image file, captions)] of a COCO 2017 captions tree."""
  splits = {}
  for folder, split in _SPLITS.items():
    annotations = root / 'annotations' / f'captions_{folder}2017.json'
    images_dir = root / 'images' / f'{folder}2017'
    if not annotations.exists():
      raise PrepareError(f'{annotations} is missing.')
    try:
      info = json.loads(annotations.read_text())
      captions = {image['id']: [] for image in info['images']}
      for annotation in info['annotations']:
        captions[annotation['image_id']].append(annotation['caption'].strip())
      files = {image['id']: images_dir / image['file_name'] for image in info['images']}
    except (ValueError, KeyError, TypeError) as e:
      raise PrepareError(f'{annotations} is not a COCO captions file: {e!r}') from e
    ids = sorted(files)[:max_samples]
    missing = [str(files[i]) for i in ids if not files[i].exists()]
    if missing:
      raise PrepareError(f'{len(missing)} image file(s) listed in {annotations} do not exist, '
                         f'e.g. {missing[:3]}.')
    uncaptioned = [str(files[i]) for i in ids if not any(captions[i])]
    if uncaptioned:
      raise PrepareError(f'{len(uncaptioned)} image(s) have no captions in {annotations}, '
                         f'e.g. {uncaptioned[:3]}.')
    if not ids:
      raise PrepareError(f'{annotations} lists no images.')
    splits[split] = [(files[i], [c for c in captions[i] if c]) for i in ids]
  return splits


def prepare(source: str, input_dir: str, output: str, image_size: int | None = None,
            max_samples: int | None = None, channels: int | None = None) -> epath.Path:
  """Writes the dataset; returns `output`. `image_size` / `channels` None: the images' own."""
  root, output_path = epath.Path(input_dir), epath.Path(output)
  if not root.is_dir():
    raise PrepareError(f'--input={input_dir} is not a folder.')
  if output_path.exists():
    raise PrepareError(f'--output={output} already exists; it is never overwritten.')
  writer.check_name(output_path)  # before reading any image
  if (image_size is not None and image_size < 1) or (max_samples is not None and max_samples < 1):
    raise PrepareError('--image_size and --max_samples must be positive.')
  if channels not in (None, 1, 3):
    raise PrepareError(f'--channels={channels}: expected 1 (greyscale) or 3 (RGB).')
  if source == 'folder':
    classes, folder_files = folder_splits(root, max_samples)
    image_size, channels = image_shape([p for items in folder_files.values() for p, _ in items],
                                       image_size, channels)
    features = tfds.features.FeaturesDict({
        'image': writer.image_feature((image_size, image_size, channels)),
        'label': tfds.features.ClassLabel(names=classes)})

    def folder_examples(items) -> Iterator[tuple[int, dict]]:
      for key, (path, label) in enumerate(items):
        yield key, {'image': load_image(path, image_size, channels), 'label': label}

    splits = {split: folder_examples(items) for split, items in folder_files.items()}
  elif source == 'coco':
    coco_files = coco_splits(root, max_samples)
    image_size, channels = image_shape([p for items in coco_files.values() for p, _ in items],
                                       image_size, channels)
    features = tfds.features.FeaturesDict({
        'image': writer.image_feature((image_size, image_size, channels)),
        'captions': tfds.features.Sequence({'text': tfds.features.Text()})})

    def coco_examples(items) -> Iterator[tuple[int, dict]]:
      for key, (path, texts) in enumerate(items):
        yield key, {'image': load_image(path, image_size, channels), 'captions': {'text': texts}}

    splits = {split: coco_examples(items) for split, items in coco_files.items()}
  else:
    raise PrepareError(f'--source={source!r}: expected folder or coco.')
  return writer.write_dataset(output_path, features, splits,
                              description=f'Prepared by freqprior from {source} tree {root}.')


_SOURCE = flags.DEFINE_enum('source', None, ['folder', 'coco'], 'Layout of --input.')
_INPUT = flags.DEFINE_string('input', None, 'Root of the image tree.')
_OUTPUT = flags.DEFINE_string('output', None, 'DATA_DIR/NAME to create (must not exist).')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', None,
                                   'Stored images are N x N; default: the images\' own size, '
                                   'when they are all square and equal.')
_CHANNELS = flags.DEFINE_integer('channels', None,
                                 '1 (grey) or 3 (RGB); default: what the images all are.')
_MAX_SAMPLES = flags.DEFINE_integer('max_samples', None, 'Cap on images per split.')


def main(argv):
  del argv
  try:
    path = prepare(_SOURCE.value, _INPUT.value, _OUTPUT.value, _IMAGE_SIZE.value,
                   _MAX_SAMPLES.value, _CHANNELS.value)
  except (PrepareError, ValueError) as e:
    raise app.UsageError(str(e)) from e
  features = tfds.builder_from_directory(path / writer.VERSION).info.features
  size, _, channels = features['image'].shape
  print(f'Wrote {path}. Train with config.dataset.name="{_SOURCE.value}:{path.name}", '
        f'config.dataset.data_dir="{path.parent}", config.dataset.image_size={size}, '
        f'config.dataset.channels={channels}.')


if __name__ == '__main__':
  flags.mark_flags_as_required(['source', 'input', 'output'])
  app.run(main)
