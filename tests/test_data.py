"""freqprior.data pipelines: digits end to end, mocked TFDS datasets, determinism, global batches
independent of the process count, exact eval coverage, streams that start at any step."""
import io

from absl import flags
import jax
import numpy as np
from PIL import Image
import pytest
from sklearn import datasets as sk_datasets

import data_helpers as helpers
from freqprior import data
from freqprior.data import decode


@pytest.fixture(scope='module')
def digits_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds')


def test_digits_splits_pixels_and_captions(digits_dir):
  config = helpers.digits_config(digits_dir, validation_examples=100)
  info = data.dataset_info(config)
  assert info.split_sizes == {'train': 1400, 'validation': 100, 'test': 297}
  assert (info.num_classes, info.image_shape, info.has_captions) == (10, (8, 8, 1), False)

  digits = sk_datasets.load_digits()
  expected = np.round(digits.images * 255 / 16).astype(np.uint8)[..., None]
  test = list(data.eval_batches(config, 'test', batch_size=297))
  assert len(test) == 1 and test[0]['mask'].all()
  assert sorted(helpers.image_keys(test)) == sorted(x.tobytes() for x in expected[-297:])
  assert sorted(test[0]['label'].tolist()) == sorted(digits.target[-297:].tolist())
  for label, caption in zip(test[0]['label'], test[0]['caption']):
    assert caption == f'a handwritten digit {label}'

  batch = next(data.train_iterator(config))
  assert batch['image'].shape == (64, 8, 8, 1) and batch['image'].dtype == np.uint8
  assert batch['label'].dtype == np.int32 and batch['caption'].shape == (64,)
  words = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
  forms = [{f'a handwritten digit {label}', f'a handwritten digit {words[label]}'}
           for label in batch['label']]
  assert all(caption in form for caption, form in zip(batch['caption'], forms))
  assert len(set(batch['caption'])) > 10  # training mixes both forms of each digit's caption


def test_eval_covers_each_split_once_with_padding(digits_dir):
  config = helpers.digits_config(digits_dir, validation_examples=100)
  for split, size in (('train', 1400), ('validation', 100), ('test', 297)):
    whole = helpers.image_keys(data.eval_batches(config, split, batch_size=size), masked=True)
    batches = list(data.eval_batches(config, split, batch_size=64))
    assert len(batches) == -(-size // 64)
    assert [b['mask'].sum() for b in batches][-1] == size - 64 * (len(batches) - 1)
    assert all(b['image'].shape[0] == 64 for b in batches)
    assert sorted(helpers.image_keys(batches, masked=True)) == sorted(whole)
    hosts = [list(data.eval_batches(config, split, batch_size=32, process_index=p,
                                    process_count=2)) for p in (0, 1)]
    assert len(hosts[0]) == len(hosts[1])  # Processes stay in step.
    assert sorted(helpers.image_keys(hosts[0] + hosts[1], masked=True)) == sorted(whole)
  train = helpers.image_keys(data.eval_batches(config, 'train', batch_size=1400))
  validation = helpers.image_keys(data.eval_batches(config, 'validation', batch_size=100))
  assert len(set(train) | set(validation)) > len(set(train))  # Validation is carved out.


def test_training_stream_is_deterministic_and_reshuffled(digits_dir):
  config = helpers.digits_config(digits_dir, validation_examples=0)
  first = helpers.take(data.train_iterator(config), 25)
  again = helpers.take(data.train_iterator(config), 25)
  other = helpers.take(data.train_iterator(config, seed=1), 25)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert not np.array_equal(first[0]['image'], other[0]['image'])
  # 1500 images in batches of 64: batches 0..22 are epoch 1, 24 lies wholly in epoch 2.
  epoch_1 = helpers.image_keys(first[:23])
  assert len(set(epoch_1)) >= len(epoch_1) - 10  # No record repeats within an epoch (but
  # sklearn's digits hold a few identical images).
  # Batch 24 holds positions 36..99 of epoch 2; without a reshuffle it would repeat epoch 1's.
  assert helpers.image_keys(first[24:25]) != epoch_1[36:100]


def test_two_processes_read_disjoint_shards(tmp_path):
  with helpers.mock_tfds(256):
    config = helpers.mocked_config('cifar100', tmp_path)
    every = helpers.image_keys(data.eval_batches(config, 'train', batch_size=256))
    assert len(set(every)) == 256
    shards = [helpers.image_keys(helpers.take(
        data.train_iterator(config, process_index=p, process_count=2), 4)) for p in (0, 1)]
  assert all(len(set(shard)) == 128 for shard in shards)  # 4 batches of 64 // 2 = 1 epoch.
  assert not set(shards[0]) & set(shards[1])
  assert set(shards[0]) | set(shards[1]) == set(every)


def test_mocked_cifar100_captions_flip_and_shapes(tmp_path):
  with helpers.mock_tfds(128):
    config = helpers.mocked_config('cifar100', tmp_path, random_flip=False)
    info = data.dataset_info(config)
    plain = next(data.train_iterator(config))
    config.dataset.random_flip = True
    flipped = next(data.train_iterator(config))
  assert info.class_names[:2] == ('apple', 'aquarium fish') and len(info.class_names) == 100
  assert plain['image'].shape == (64, 32, 32, 3)
  np.testing.assert_array_equal(plain['label'], flipped['label'])
  mirrored = [np.array_equal(a[:, ::-1], b) and not np.array_equal(a, b)
              for a, b in zip(plain['image'], flipped['image'])]
  same = [np.array_equal(a, b) for a, b in zip(plain['image'], flipped['image'])]
  assert all(m or s for m, s in zip(mirrored, same)) and 10 < sum(mirrored) < 54
  for label, caption in zip(plain['label'], plain['caption']):
    assert caption in (f'a photo of a {info.class_names[label]}',
                       f'a photo of an {info.class_names[label]}')


@pytest.mark.parametrize('name,size', [('imagenet32', 32), ('imagenet64', 64)])
def test_mocked_imagenet_readable_captions(tmp_path, name, size):
  with helpers.mock_tfds(64):
    config = helpers.mocked_config(name, tmp_path, validation_examples=16)
    config.batch_size = 32
    info = data.dataset_info(config)
    batch = next(data.train_iterator(config))
    test = list(data.eval_batches(config, 'test', batch_size=48))
  assert info.split_sizes == {'train': 48, 'validation': 16, 'test': 64}
  assert batch['image'].shape == (32, size, size, 3)
  assert info.class_names[:2] == ('kit fox', 'English setter')
  for caption in batch['caption']:
    assert caption.startswith('a photo of ') and '_' not in caption
    assert not any(word.startswith('n0') and word[1:].isdigit() for word in caption.split())
  assert [b['mask'].sum() for b in test] == [48, 16]


def test_stream_starts_at_any_step(digits_dir):
  config = helpers.digits_config(digits_dir)
  expected = helpers.take(data.train_iterator(config), 33)[3:]  # crosses into the second epoch
  for a, b in zip(expected, helpers.take(data.train_iterator(config, start_step=3), 30)):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['caption'], b['caption'])


@pytest.mark.parametrize('process_count', [2, 4, 8])
def test_global_batches_do_not_depend_on_the_process_count(digits_dir, process_count):
  config = helpers.digits_config(digits_dir, random_flip=True)
  whole = helpers.take(data.train_iterator(config), 26)
  parts = [helpers.take(data.train_iterator(config, process_index=p,
                                            process_count=process_count), 26)
           for p in range(process_count)]
  for t, expected in enumerate(whole):
    for key in ('image', 'label', 'caption'):
      np.testing.assert_array_equal(np.concatenate([part[t][key] for part in parts]),
                                    expected[key])
  rows = helpers.take(data.train_iterator(config, rows=(8, 40)), 3)
  for t in range(3):
    np.testing.assert_array_equal(rows[t]['image'], whole[t]['image'][8:40])
  for split in ('validation', 'test'):
    whole = list(data.eval_batches(config, split, batch_size=64))
    parts = [list(data.eval_batches(config, split, batch_size=64, process_index=p,
                                    process_count=process_count)) for p in range(process_count)]
    assert all(len(part) == len(whole) for part in parts)
    for j, expected in enumerate(whole):
      for key in ('image', 'label', 'mask'):
        np.testing.assert_array_equal(np.concatenate([part[j][key] for part in parts]),
                                      expected[key])


def test_to_global_builds_sharded_arrays(digits_dir):
  config = helpers.digits_config(digits_dir)
  batch = next(iter(data.eval_batches(config, 'test', batch_size=8)))
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ('data',))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  arrays = data.to_global(batch, sharding, 8)
  assert isinstance(arrays['image'], jax.Array) and arrays['image'].sharding == sharding
  np.testing.assert_array_equal(np.asarray(arrays['image']), batch['image'])
  assert arrays['mask'].dtype == bool and arrays['label'].dtype == np.int32
  assert arrays['caption'] is batch['caption']  # Strings stay host-local numpy.


@pytest.mark.parametrize('dataset,message', [
    ({'name': 'svhn'}, 'Unknown dataset name'),
    ({'image_size': 16}, 'Image size mismatch'),
    ({'channels': 3}, 'Image size mismatch'),
    ({'num_classes': 5}, 'Labels out of range'),
    ({'validation_examples': 1500}, 'validation_examples'),
    ({'name': 'folder:absent'}, 'holds no prepared dataset'),
])
def test_bad_dataset_config(digits_dir, dataset, message):
  with pytest.raises(data.DataError, match=message):
    data.dataset_info(helpers.digits_config(digits_dir, **dataset))


def test_bad_split_and_batch(digits_dir):
  config = helpers.digits_config(digits_dir, validation_examples=0)
  with pytest.raises(data.DataError, match='validation_examples > 0'):
    data.eval_batches(config, 'validation')
  with pytest.raises(data.DataError, match='Unknown split'):
    data.eval_batches(config, 'dev')
  config.batch_size = 63
  with pytest.raises(data.DataError, match='not divisible'):
    data.train_iterator(config, process_count=2, process_index=0)


def test_missing_tfds_data(tmp_path):
  config = helpers.mocked_config('cifar100', '')
  with pytest.raises(data.DataError, match='data_dir is empty.*tfds build cifar100'):
    data.dataset_info(config)
  config.dataset.data_dir = str(tmp_path / 'nowhere')
  with pytest.raises(data.DataError, match='does not exist'):
    data.dataset_info(config)
  config.dataset.data_dir = str(tmp_path)
  with pytest.raises(data.DataError, match='is not in .*tfds build cifar100 --file_format=array'):
    data.dataset_info(config)


def test_worker_processes_yield_the_same_stream(digits_dir):
  flags.FLAGS.mark_as_parsed()  # grain workers read absl flags.
  config = helpers.digits_config(digits_dir)
  expected = helpers.take(data.train_iterator(config), 30)
  config.dataset.worker_count = 2
  for a, b in zip(expected, helpers.take(data.train_iterator(config), 30)):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['caption'], b['caption'])


def test_encoded_images_of_other_sizes_are_center_cropped():
  pixels = np.zeros((30, 40, 3), np.uint8)
  pixels[:, :5, 0] = pixels[:, 35:, 0] = 255  # Red side bands outside the central square.
  pixels[:, 5:35, 2] = 255
  encoded = io.BytesIO()
  Image.fromarray(pixels).save(encoded, format='PNG')
  image = decode.decode_image(encoded.getvalue(), (15, 15, 3), raw=False)
  assert image.shape == (15, 15, 3)
  assert image[:, 1:-1, 0].max() < 30 and image[:, 1:-1, 2].min() > 225
  grey = decode.decode_image(encoded.getvalue(), (30, 40, 1), raw=False)
  assert grey.shape == (30, 40, 1) and grey[0, 0, 0] == round(0.299 * 255)


def test_an_embedded_dataset_is_built_on_first_use_with_one_line(tmp_path, capfd):
  from freqprior.data import digits as digits_data  # pylint: disable=g-import-not-at-top
  digits_data.ensure_built(str(tmp_path))
  out, err = capfd.readouterr()
  assert out == f'dataset: wrote sklearn_digits to {tmp_path / "sklearn_digits"} (first use)\n'
  assert not err  # TFDS's progress bars are off while it writes
  digits_data.ensure_built(str(tmp_path))
  assert capfd.readouterr() == ('', '')
