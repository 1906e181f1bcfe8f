"""Raw TFDS records -> fixed-size uint8 images, labels and captions.

Images are raw pixels (`writer.image_feature`: digits and prepared datasets) or PNG/JPEG
(`tfds.features.Image`: TFDS-built cifar100, imagenet_resized, coco_captions). Records are read
undecoded (`DeserializeMethod.RAW_BYTES`) and parsed here with the tf.Example
protobuf that tfds ships: per image this is about 10x cheaper than TFDS's generic per-feature
decoding. PNG/JPEG decode with Pillow; encoded images of another size (COCO, mocked data) are
center-cropped to a square and resized.
"""
import io

import numpy as np
from PIL import Image
from PIL import ImageOps
from tensorflow_datasets.proto import tf_example_pb2

from freqprior.data import sources


class CorruptRecordError(sources.DataError):
  """A record whose image, label or captions cannot be used."""


def parse(record: bytes) -> tuple[bytes, int, list[str]]:
  """(encoded image, label or 0, captions) of one serialized tf.Example."""
  features = tf_example_pb2.Example.FromString(record).features.feature
  image = features['image'].bytes_list.value[0]
  label = features['label'].int64_list.value[0] if 'label' in features else 0
  captions = ([t.decode('utf-8') for t in features['captions/text'].bytes_list.value]
              if 'captions/text' in features else [])
  return image, label, captions


def decode_image(encoded: bytes, shape_HWC: tuple[int, int, int], raw: bool) -> np.ndarray:
  """Raw pixels or PNG/JPEG -> uint8 [H, W, C]; encoded images of another size are
  center-cropped and resized."""
  if raw:
    return np.frombuffer(encoded, np.uint8).reshape(shape_HWC)
  height, width, channels = shape_HWC
  image = Image.open(io.BytesIO(encoded))
  if image.mode != (mode := 'L' if channels == 1 else 'RGB'):
    image = image.convert(mode)
  if image.size != (width, height):
    image = ImageOps.fit(image, (width, height), method=Image.Resampling.BICUBIC)
  return np.asarray(image).reshape(shape_HWC)


def read_batch(source, indices_B: np.ndarray, shape_HWC: tuple[int, int, int], raw: bool
               ) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
  """Reads records `indices_B` of `source`: images [B, H, W, C], int labels [B], captions."""
  # One batched read: about 2x the throughput of per-record reads under grain reader threads.
  records = source.__getitems__([int(i) for i in indices_B])
  images_BHWC = np.empty((len(records), *shape_HWC), np.uint8)
  labels_B = np.empty(len(records), np.int64)
  captions = []
  for i, (index, record) in enumerate(zip(indices_B, records)):
    try:
      encoded, labels_B[i], record_captions = parse(record)
      images_BHWC[i] = decode_image(encoded, shape_HWC, raw)
    except Exception as e:  # Name the record whatever went wrong with it.
      raise CorruptRecordError(f'Record {index} cannot be decoded: {e!r}') from e
    captions.append(record_captions)
  return images_BHWC, labels_B, captions
