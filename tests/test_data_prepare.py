"""`python -m freqprior.data.prepare` on small generated folder and COCO trees, and bad input."""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest

import data_helpers as helpers
from configs import cifar100
from freqprior import data
from freqprior.data import prepare


def _grey_tree(root, size=(28, 28), modes=('L', 'LA', '1')):
  """root/{train,val}/<digit>/<i>.png: greyscale images of the given PIL modes; returns
  {relative path: uint8 [H, W] grey pixels}."""
  pixels, seed = {}, 0
  for split in ('train', 'val'):
    for c in ('three', 'seven'):
      for i, mode in enumerate(modes):
        seed += 1
        grey_HW = np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)
        if mode == '1':
          grey_HW = np.where(grey_HW > 127, 255, 0).astype(np.uint8)
        image = Image.fromarray(grey_HW).convert(mode)
        path = root / split / c / f'{i}.png'
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        pixels[f'{split}/{c}/{i}.png'] = grey_HW
  return pixels


def _config(name, data_dir, **dataset):
  config = cifar100.get_config()
  config.batch_size = 4
  config.dataset.update(name=name, data_dir=str(data_dir), image_size=16, validation_examples=0,
                        random_flip=False)
  config.dataset.update(dataset)
  return config


def test_folder_tree_end_to_end(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  prepare.prepare('folder', root, tmp_path / 'out' / 'pets', image_size=16)
  config = _config('folder:pets', tmp_path / 'out', num_classes=3)
  info = data.dataset_info(config)
  assert info.class_names == ('cat', 'dog breed', 'tench')
  assert info.split_sizes == {'train': 9, 'test': 3}
  batch = next(data.train_iterator(config))
  assert batch['image'].shape == (4, 16, 16, 3)
  for label, caption in zip(batch['label'], batch['caption']):
    assert caption == f'a photo of a {info.class_names[label]}'
  (test,) = data.eval_batches(config, 'test', batch_size=3)
  assert sorted(test['label'].tolist()) == [0, 1, 2]


def test_folder_max_samples_is_balanced(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in', train_per_class=(5, 5, 1))
  prepare.prepare('folder', root, tmp_path / 'out' / 'few', image_size=8, max_samples=7)
  config = _config('folder:few', tmp_path / 'out', num_classes=3, image_size=8)
  (train,) = data.eval_batches(config, 'train', batch_size=7)
  assert np.bincount(train['label'], minlength=3).tolist() == [3, 3, 1]


def test_coco_tree_end_to_end(tmp_path):
  root = helpers.coco_tree(tmp_path / 'in')
  prepare.prepare('coco', root, tmp_path / 'out' / 'mini_coco', image_size=16)
  config = _config('coco:mini_coco', tmp_path / 'out', num_classes=1)
  info = data.dataset_info(config)
  assert info.has_captions and info.split_sizes == {'train': 4, 'test': 2}
  (test,) = data.eval_batches(config, 'test', batch_size=2)
  assert sorted(test['caption']) == ['val image 1 caption 0.', 'val image 2 caption 0.']
  iterator = data.train_iterator(config)
  picks = [caption for _ in range(40) for caption in next(iterator)['caption']]
  image_1 = {c for c in picks if c.startswith('train image 1 ')}
  assert image_1 == {f'train image 1 caption {k}.' for k in range(3)}  # Varies per epoch.
  assert {c for c in picks if c.startswith('train image 2 ')} == {'train image 2 caption 0.'}


def test_cli_writes_and_reports(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  command = [sys.executable, '-m', 'freqprior.data.prepare', '--source=folder',
             f'--input={root}', f'--output={tmp_path / "out" / "pets"}', '--image_size=8']
  env = {**os.environ, 'PYTHONPATH': os.getcwd()}
  done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
  assert done.returncode == 0, done.stderr
  assert 'config.dataset.name="folder:pets"' in done.stdout
  assert 'config.dataset.image_size=8, config.dataset.channels=3.' in done.stdout
  flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(source='folder', input=str(root), output=str(tmp_path / 'out' / 'pets')):
    with pytest.raises(app.UsageError, match='never overwritten'):
      prepare.main([])


def _assert_nothing_left(parent, name):
  """Neither the dataset nor its temporary staging folder exists."""
  assert not (parent / name).exists()
  assert not list(parent.glob(f'.{name}.*'))


def test_corrupt_image_is_named_and_nothing_is_left(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  bad = root / 'train' / 'cat' / 'broken.jpg'
  bad.write_bytes(b'not an image')
  with pytest.raises(prepare.PrepareError, match='broken.jpg'):
    prepare.prepare('folder', root, tmp_path / 'out' / 'pets', image_size=8)
  _assert_nothing_left(tmp_path / 'out', 'pets')


def test_existing_dataset_is_never_overwritten(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  prepare.prepare('folder', root, tmp_path / 'out' / 'pets', image_size=8)
  before = sorted((p.name, p.stat().st_size) for p in (tmp_path / 'out' / 'pets').rglob('*'))
  with pytest.raises(prepare.PrepareError, match='never overwritten'):
    prepare.prepare('folder', root, tmp_path / 'out' / 'pets', image_size=16)
  assert sorted((p.name, p.stat().st_size) for p in (tmp_path / 'out' / 'pets').rglob('*')) \
      == before


def test_empty_class_folder(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  (root / 'train' / 'owl').mkdir()
  with pytest.raises(prepare.PrepareError, match='owl is empty'):
    prepare.prepare('folder', root, tmp_path / 'out' / 'pets')
  _assert_nothing_left(tmp_path / 'out', 'pets')


def test_images_without_captions(tmp_path):
  root = helpers.coco_tree(tmp_path / 'in', captions_per_image=((2, 0, 1), (1,)))
  with pytest.raises(prepare.PrepareError, match='no captions.*000000000002.jpg'):
    prepare.prepare('coco', root, tmp_path / 'out' / 'coco')
  _assert_nothing_left(tmp_path / 'out', 'coco')


def test_missing_coco_image_and_annotations(tmp_path):
  root = helpers.coco_tree(tmp_path / 'in')
  (root / 'images' / 'val2017' / '000000000001.jpg').unlink()
  with pytest.raises(prepare.PrepareError, match='do not exist.*000000000001.jpg'):
    prepare.prepare('coco', root, tmp_path / 'out' / 'coco')
  (root / 'annotations' / 'captions_train2017.json').unlink()
  with pytest.raises(prepare.PrepareError, match='captions_train2017.json is missing'):
    prepare.prepare('coco', root, tmp_path / 'out' / 'coco')


def test_bad_prepare_arguments(tmp_path):
  root = helpers.folder_tree(tmp_path / 'in')
  with pytest.raises(prepare.PrepareError, match='not a folder'):
    prepare.prepare('folder', tmp_path / 'absent', tmp_path / 'out' / 'x')
  with pytest.raises(prepare.PrepareError, match='expected folder or coco'):
    prepare.prepare('zip', root, tmp_path / 'out' / 'x')
  with pytest.raises(ValueError, match='lowercase'):
    prepare.prepare('folder', root, tmp_path / 'out' / 'My-Set')
  (root / 'val').rename(tmp_path / 'elsewhere')
  with pytest.raises(prepare.PrepareError, match='val is missing'):
    prepare.prepare('folder', root, tmp_path / 'out' / 'x')


def test_prepared_dataset_checks(tmp_path):
  prepare.prepare('coco', helpers.coco_tree(tmp_path / 'in'), tmp_path / 'out' / 'caps',
                  image_size=16)
  with pytest.raises(data.DataError, match='name it coco:caps'):
    data.dataset_info(_config('folder:caps', tmp_path / 'out'))
  with pytest.raises(data.DataError, match='Image size mismatch'):
    data.dataset_info(_config('coco:caps', tmp_path / 'out', image_size=32))
  info_file = tmp_path / 'out' / 'caps' / '1.0.0' / 'dataset_info.json'
  info = json.loads(info_file.read_text())
  info['fileFormat'] = 'tfrecord'
  info_file.write_text(json.dumps(info))
  with pytest.raises(data.DataError, match='stored as tfrecord.*ArrayRecord.*prepare'):
    data.dataset_info(_config('coco:caps', tmp_path / 'out'))


def test_undecodable_record_is_named(tmp_path):
  prepare.prepare('folder', helpers.folder_tree(tmp_path / 'in'), tmp_path / 'out' / 'pets',
                  image_size=8)
  features_file = tmp_path / 'out' / 'pets' / '1.0.0' / 'features.json'
  features_file.write_text(features_file.read_text().replace('"8"', '"4"'))  # Lie about shape.
  config = _config('folder:pets', tmp_path / 'out', num_classes=3, image_size=4)
  with pytest.raises(data.DataError, match='Record [0-9]+ cannot be decoded'):
    next(iter(data.eval_batches(config, 'test', batch_size=2)))


def test_greyscale_tree_keeps_its_size_and_one_channel(tmp_path):
  pixels = _grey_tree(tmp_path / 'in')
  prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'grey')  # no flags
  config = _config('folder:grey', tmp_path / 'out', num_classes=2, image_size=28, channels=1)
  info = data.dataset_info(config)
  assert info.image_shape == (28, 28, 1) and info.split_sizes == {'train': 6, 'test': 6}
  (test,) = data.eval_batches(config, 'test', batch_size=6)
  expected = [pixels[f'val/{c}/{i}.png'][..., None].tobytes()
              for c in ('seven', 'three') for i in range(3)]
  assert sorted(helpers.image_keys([test])) == sorted(expected)  # unresized, unchanged
  with pytest.raises(data.DataError, match='1 channel.*set --config.dataset.channels=1 or '
                                            'prepare the data with that many channels'):
    data.dataset_info(_config('folder:grey', tmp_path / 'out', num_classes=2, image_size=28))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
  path = tmp_path / 'deep.png'
  Image.fromarray(np.full((4, 4), 257 * 200, np.uint16)).save(path)
  assert Image.open(path).mode.startswith('I')
  np.testing.assert_array_equal(prepare.load_image(path, 4, channels=1), 200)


def test_channels_3_repeats_grey(tmp_path):
  pixels = _grey_tree(tmp_path / 'in', modes=('L',))
  prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'grey3', channels=3)
  config = _config('folder:grey3', tmp_path / 'out', num_classes=2, image_size=28)
  assert data.dataset_info(config).image_shape == (28, 28, 3)
  (test,) = data.eval_batches(config, 'test', batch_size=2)
  expected = {np.repeat(pixels[f'val/{c}/0.png'][..., None], 3, -1).tobytes()
              for c in ('seven', 'three')}
  assert set(helpers.image_keys([test])) == expected


def test_sizes_that_differ_need_image_size(tmp_path):
  _grey_tree(tmp_path / 'in')
  Image.new('L', (20, 20)).save(tmp_path / 'in' / 'val' / 'seven' / 'small.png')
  with pytest.raises(prepare.PrepareError, match=r'small.png is 20x20.*--image_size'):
    prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'grey')
  _assert_nothing_left(tmp_path / 'out', 'grey')
  with pytest.raises(prepare.PrepareError, match=r'0.png is 40x30, not square.*--image_size'):
    prepare.prepare('folder', helpers.folder_tree(tmp_path / 'rgb'), tmp_path / 'out' / 'rgb')
  _assert_nothing_left(tmp_path / 'out', 'rgb')
  prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'grey', image_size=20)
  config = _config('folder:grey', tmp_path / 'out', num_classes=2, image_size=20, channels=1)
  assert data.dataset_info(config).image_shape == (20, 20, 1)


def test_grey_and_colour_mixed_need_channels(tmp_path):
  _grey_tree(tmp_path / 'in', modes=('L',))
  colour = tmp_path / 'in' / 'train' / 'three' / 'colour.png'
  helpers.write_image(colour, seed=7, size=(28, 28))
  with pytest.raises(prepare.PrepareError,
                     match=r'0.png is L.*colour.png is RGB.*--channels=1.*--channels=3'):
    prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'mixed')
  _assert_nothing_left(tmp_path / 'out', 'mixed')
  prepare.prepare('folder', tmp_path / 'in', tmp_path / 'out' / 'mixed', channels=1)
  config = _config('folder:mixed', tmp_path / 'out', num_classes=2, image_size=28, channels=1)
  (train,) = data.eval_batches(config, 'train', batch_size=3)
  expected = np.asarray(Image.open(colour).convert('L'))[..., None]
  assert expected.tobytes() in helpers.image_keys([train])


def test_coco_shape_defaults(tmp_path):
  root = helpers.coco_tree(tmp_path / 'in')  # 48x32 colour JPEGs
  with pytest.raises(prepare.PrepareError, match=r'is 48x32, not square.*--image_size'):
    prepare.prepare('coco', root, tmp_path / 'out' / 'caps')
  for path in root.glob('images/*/*.jpg'):
    Image.open(path).convert('L').resize((16, 16)).save(path, format='JPEG')
  prepare.prepare('coco', root, tmp_path / 'out' / 'caps')
  assert data.dataset_info(_config('coco:caps', tmp_path / 'out', channels=1)).image_shape \
      == (16, 16, 1)
