"""Input pipelines: TFDS ArrayRecord datasets read with grain; see `sources` for dataset names."""
from freqprior.data.info import DatasetInfo
from freqprior.data.info import dataset_info
from freqprior.data.pipeline import eval_batches
from freqprior.data.pipeline import train_iterator
from freqprior.data.sharding import process_rows
from freqprior.data.sharding import to_global
from freqprior.data.sources import DataError

__all__ = ['DataError', 'DatasetInfo', 'dataset_info', 'eval_batches', 'process_rows', 'to_global',
           'train_iterator']
