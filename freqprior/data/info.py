"""`dataset_info(config)`: what a configured dataset holds, for building models and reports."""
import dataclasses

import ml_collections

from freqprior.data import sources


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  num_classes: int
  class_names: tuple[str, ...]  # readable English; empty for caption datasets (COCO)
  image_shape: tuple[int, int, int]  # (H, W, C) of the images the pipelines yield
  split_sizes: dict[str, int]  # 'train', 'test' and, when carved, 'validation'
  has_captions: bool  # True when records carry their own captions


def dataset_info(config: ml_collections.ConfigDict) -> DatasetInfo:
  dataset = sources.open_dataset(config)
  return DatasetInfo(name=dataset.name, num_classes=dataset.num_classes,
                     class_names=dataset.class_names, image_shape=dataset.image_shape,
                     split_sizes=dict(dataset.split_sizes),
                     has_captions=dataset.has_stored_captions)
