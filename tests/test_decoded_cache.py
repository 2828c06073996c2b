"""The decoded-record cache: the same batches as without it, a budget it keeps, and decoding once."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from videmo.data.loading import decoded_cache, pipeline


@pytest.fixture(scope="module")
def tiny_train(synthemo_tiny):
  return pipeline.open_split("synthemo/tiny", "train", synthemo_tiny)


@pytest.fixture(scope="module")
def tiny_validation(synthemo_tiny):
  return pipeline.open_split("synthemo/tiny", "validation", synthemo_tiny)


class CountingSource:
  """A source that counts its reads."""

  def __init__(self, source):
    self.source, self.reads = source, 0

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index):
    self.reads += 1
    return self.source[index]


def _same_batches(a, b, count):
  for step in range(count):
    x, y = next(a), next(b)
    assert x.keys() == y.keys()
    for field in x:
      np.testing.assert_array_equal(x[field], y[field], err_msg=f"batch {step}, field {field}")


def test_training_batches_are_the_same_with_and_without_the_cache(tiny_train):
  cached = decoded_cache.CachedSource(tiny_train, decoded_cache.DecodedCache(64))
  epochs = 3 * len(tiny_train) // 4
  _same_batches(pipeline.train_batches(tiny_train, batch_size=4, num_frames=4, crop_size=32, seed=3),
                pipeline.train_batches(cached, batch_size=4, num_frames=4, crop_size=32, seed=3), epochs)
  record = cached[0]
  assert record["frames"].dtype == np.uint8 and record["frames"].ndim == 4
  np.testing.assert_array_equal(record["frames"], decoded_cache.decode_frames(list(tiny_train[0]["frames"])))


def test_evaluation_batches_are_the_same_with_and_without_the_cache(tiny_validation):
  cached = decoded_cache.CachedSource(tiny_validation, decoded_cache.DecodedCache(64))
  clips = pipeline.eval_clips(tiny_validation)
  assert pipeline.eval_clips(cached) == clips
  for _ in range(2):  # the second pass reads the cache
    _same_batches(pipeline.eval_batches(tiny_validation, clips, batch_size=4, crop_size=32, buckets=(4, 8)),
                  pipeline.eval_batches(cached, clips, batch_size=4, crop_size=32, buckets=(4, 8)),
                  -(-sum(c.has_face for c in clips) // 4))


def test_each_record_is_read_and_decoded_once(tiny_train):
  counting = CountingSource(tiny_train)
  cached = decoded_cache.CachedSource(counting, decoded_cache.DecodedCache(64))
  batches = pipeline.train_batches(cached, batch_size=4, num_frames=4, crop_size=32, seed=0)
  for _ in range(4 * len(tiny_train) // 4):  # four epochs
    next(batches)
  assert counting.reads == len(tiny_train)


def test_the_budget_caps_what_is_kept_and_the_rest_is_read_as_before(tiny_train):
  one_record = decoded_cache.estimated_bytes(tiny_train[0])
  assert one_record == len(tiny_train[0]["frames"]) * 32 * 32 * 3
  cache = decoded_cache.DecodedCache(2.5 * one_record / decoded_cache.MB)
  counting = CountingSource(tiny_train)
  cached = decoded_cache.CachedSource(counting, cache)
  records = [cached[i] for i in range(len(tiny_train))]
  kept = [r for r in records if isinstance(r["frames"], np.ndarray) and r["frames"].dtype == np.uint8]
  assert 1 <= len(kept) < len(records)
  assert cache.used == sum(r["frames"].nbytes for r in kept) <= cache.budget
  assert any(r["frames"].dtype == object for r in records)  # JPEG bytes, decoded per sample as before
  reads = counting.reads
  for i in range(len(tiny_train)):
    cached[i]
  assert counting.reads == reads + len(tiny_train) - len(kept)
  uncached = decoded_cache.CachedSource(CountingSource(tiny_train), decoded_cache.DecodedCache(0))
  assert uncached[0]["frames"].dtype == object


def test_a_loader_process_gets_an_empty_cache_with_its_share_of_the_budget(tiny_train):
  cached = decoded_cache.CachedSource(tiny_train, decoded_cache.DecodedCache(64))
  cached[0]
  copy = pickle.loads(pickle.dumps(cached))
  assert len(copy._records) == 0 and copy.cache.used == 0 and copy.cache.budget == cached.cache.budget
  budget = cached.cache.budget
  share = cached.for_workers(4)
  assert share.cache.budget == (budget - cached.cache.used) // 5 and len(share._records) == 0


def test_the_main_process_and_its_workers_together_stay_within_the_budget(tiny_train):
  cache = decoded_cache.DecodedCache(64)
  train, validation = decoded_cache.CachedSource(tiny_train, cache), decoded_cache.CachedSource(tiny_train, cache)
  validation[0]  # the main process holds a record already
  workers = 3
  shares = train.for_workers(workers)
  assert shares.cache.budget > 0 and cache.budget - cache.used >= shares.cache.budget  # the main process keeps a share
  assert cache.budget + workers * shares.cache.budget <= 64 * decoded_cache.MB
  again = train.for_workers(workers)  # a second loader (e.g. a restarted stream) splits what is left again
  assert cache.budget + workers * (shares.cache.budget + again.cache.budget) <= 64 * decoded_cache.MB
  assert decoded_cache.CachedSource(tiny_train, decoded_cache.DecodedCache(0)).for_workers(2).cache.budget == 0


def test_loader_processes_give_the_same_batches_with_the_cache(tiny_train):
  cached = decoded_cache.CachedSource(tiny_train, decoded_cache.DecodedCache(64))
  _same_batches(pipeline.train_batches(tiny_train, batch_size=4, num_frames=4, crop_size=32, seed=5),
                pipeline.train_batches(cached, batch_size=4, num_frames=4, crop_size=32, seed=5, workers=2),
                2 * len(tiny_train) // 4)


def test_a_negative_budget_is_refused():
  with pytest.raises(ValueError, match="decoded_cache_mb"):
    decoded_cache.DecodedCache(-1)


def test_the_split_report_s_crops_are_the_same_from_a_decoded_record(tiny_validation):
  from videmo.predict import faces_input

  cached = decoded_cache.CachedSource(tiny_validation, decoded_cache.DecodedCache(64))
  for index in range(3):
    raw, decoded = (faces_input.faces_from_record(source[index], 32, None) for source in (tiny_validation, cached))
    assert cached[index]["frames"].dtype == np.uint8
    np.testing.assert_array_equal(raw.crops, decoded.crops)
    np.testing.assert_array_equal(raw.frame_index, decoded.frame_index)


def test_listing_a_split_s_clips_and_labels_spends_no_budget(tiny_validation):
  cache = decoded_cache.DecodedCache(64)
  cached = decoded_cache.CachedSource(tiny_validation, cache)
  assert pipeline.eval_clips(cached) == pipeline.eval_clips(tiny_validation)
  np.testing.assert_array_equal(pipeline.split_labels(cached), pipeline.split_labels(tiny_validation))
  assert cache.used == 0 and len(cached._records) == 0
  kept = cached[1]
  assert cached.peek(1) is kept and cached.peek(-1)["frames"].dtype == object


def test_a_split_keeps_every_per_frame_image_encoded_and_loses_nothing(tiny_train, synthemo_tiny):
  """Frames and SynthEmo's region masks stay PNG/JPEG bytes (neither training nor evaluation
  reads the masks); decoding them gives what TFDS decodes."""
  import io

  import tensorflow_datasets as tfds
  from PIL import Image

  decoded = tfds.data_source("synthemo/tiny", data_dir=str(synthemo_tiny))["train"]
  for index in (0, len(tiny_train) - 1):
    raw, full = tiny_train[index], decoded[index]
    assert all(isinstance(x, bytes) for x in raw["frames"]) and all(isinstance(x, bytes) for x in raw["region_mask"])
    masks = np.stack([np.asarray(Image.open(io.BytesIO(x))) for x in raw["region_mask"]])
    np.testing.assert_array_equal(masks, np.stack(full["region_mask"])[..., 0])
    frames = np.stack([np.asarray(Image.open(io.BytesIO(x)).convert("RGB")) for x in raw["frames"]])
    np.testing.assert_array_equal(frames, np.stack(full["frames"]))
    assert raw["label"] == full["label"] and raw["clip_id"] == full["clip_id"]
