"""The shared decoded store: the same batches as the shards give, built once for every process,
rebuilt when the shards change, and left unbuilt when a split is too big for its budget."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest

from videmo.data.loading import decoded_cache, decoded_store, pipeline

MB = decoded_cache.MB


@pytest.fixture(scope="module")
def tiny_dir(synthemo_tiny):
  return next(Path(synthemo_tiny).glob("synthemo/tiny/*"))  # the version folder


def _source(synthemo_tiny, split):
  return pipeline.open_split("synthemo/tiny", split, synthemo_tiny)


def _open(synthemo_tiny, tiny_dir, store_dir, split="train", megabytes=64):
  return decoded_store.DecodedStore.open_or_build(_source(synthemo_tiny, split), store_dir, megabytes * MB,
                                                  decoded_store.shard_files(tiny_dir, split))


def _same_batches(a, b, count):
  for step in range(count):
    x, y = next(a), next(b)
    for field in x:
      np.testing.assert_array_equal(x[field], y[field], err_msg=f"batch {step}, field {field}")


def test_batches_from_the_store_are_the_shards_batches(synthemo_tiny, tiny_dir, tmp_path):
  train, validation = _source(synthemo_tiny, "train"), _source(synthemo_tiny, "validation")
  stored_train = decoded_store.StoredSource(train, _open(synthemo_tiny, tiny_dir, tmp_path / "train"))
  stored_validation = decoded_store.StoredSource(
      validation, _open(synthemo_tiny, tiny_dir, tmp_path / "validation", "validation"))
  _same_batches(pipeline.train_batches(train, batch_size=4, num_frames=4, crop_size=32, seed=3),
                pipeline.train_batches(stored_train, batch_size=4, num_frames=4, crop_size=32, seed=3), 14)
  clips = pipeline.eval_clips(validation)
  assert pipeline.eval_clips(stored_validation) == clips
  _same_batches(pipeline.eval_batches(validation, clips, batch_size=4, crop_size=32, buckets=(4, 8)),
                pipeline.eval_batches(stored_validation, clips, batch_size=4, crop_size=32, buckets=(4, 8)),
                len(clips) // 4)
  np.testing.assert_array_equal(stored_train[5]["frames"], decoded_cache.decode_frames(list(train[5]["frames"])))
  again = pickle.loads(pickle.dumps(stored_train.store))  # what a loader process receives: the path
  np.testing.assert_array_equal(again.frames(5), stored_train[5]["frames"])


def _open_in_child(args):
  data_dir, version_dir, store_dir = args
  store = _open(data_dir, Path(version_dir), Path(store_dir))
  return (Path(store_dir) / decoded_store.FRAMES_FILE).stat().st_ino, int(store.counts.sum())


def test_processes_that_start_together_build_it_once(synthemo_tiny, tiny_dir, tmp_path):
  with multiprocessing.get_context("spawn").Pool(2) as pool:
    results = pool.map(_open_in_child, [(str(synthemo_tiny), str(tiny_dir), str(tmp_path))] * 2)
  assert results[0] == results[1]  # the same file: the second process waited and opened it
  index = (tmp_path / decoded_store.INDEX_FILE).stat().st_mtime_ns
  _open(synthemo_tiny, tiny_dir, tmp_path)
  assert (tmp_path / decoded_store.INDEX_FILE).stat().st_mtime_ns == index  # opened, not rebuilt


def test_changed_shards_rebuild_and_a_split_too_big_stays_unbuilt(synthemo_tiny, tiny_dir, tmp_path):
  store = _open(synthemo_tiny, tiny_dir, tmp_path)
  shards = decoded_store.shard_files(tiny_dir, "train")
  source = _source(synthemo_tiny, "train")
  changed = [[name, size + 1] for name, size in shards]  # as if the dataset had been rebuilt
  assert decoded_store.DecodedStore.open_or_build(source, tmp_path, 64 * MB, changed) is not None
  assert json.loads((tmp_path / decoded_store.INDEX_FILE).read_text())["shards"] == changed
  small = tmp_path / "small"
  assert decoded_store.DecodedStore.open_or_build(source, small, 1000, shards) is None
  index = json.loads((small / decoded_store.INDEX_FILE).read_text())
  assert not index["complete"] and not (small / decoded_store.FRAMES_FILE).exists()
  assert int(store.counts.sum()) * 32 * 32 * 3 > 1000
