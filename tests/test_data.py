"""trainer.data: the input pipeline's memory budget."""

import numpy as np
import pytest


@pytest.mark.slow
def test_splits_beyond_the_memory_budget_stream_the_same_batches(dataset):
  """Memory does not grow with the corpus: splits that do not fit the cache
  budget are read from disk every epoch, with the same content."""
  from trainer import data

  data_dir, _ = dataset
  image = 64 * 64 * 3
  streamed = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=0)
  only_train = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=84 * image)
  everything = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0)
  assert (streamed.cached, only_train.cached) == ((), ("train",))
  assert everything.cached == ("train", "test", "validation")
  assert streamed.train_steps == everything.train_steps == 11          # 84 clips, batches of 8
  for a, b in zip(streamed.test, everything.test):                     # unshuffled: same order
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
