"""Input pipeline: clip shards -> sampled, augmented, masked batches (tfds.data_source + grain).

No TensorFlow: records are read with `tfds.data_source`, frames are kept as JPEG bytes
(`RawFrames`) and only the frames a batch needs are decoded (Pillow), in grain workers. A
source wrapped in `decoded_cache.CachedSource` (as `videmo train` opens its splits, up to
`input.decoded_cache_mb`) hands back records it has already decoded, and the samplers index
their frames instead: the batches are the same either way.

Training (paper Sec. 4.2): per clip, `num_frames` (16) frames drawn at random without
replacement and kept in temporal order; a shorter clip gives all its frames, padded and
masked (no fake frames enter the pooling). One random `crop_size` crop and one random
horizontal mirror per clip, the same for all its frames. The stream is an endless,
per-epoch reshuffled sequence of clips; batch `s` is a pure function of (seed, s), so a
resumed run sees exactly the batches the uninterrupted run would have seen.

Evaluation: every frame of each clip (or `num_frames` evenly spaced ones), centre crop,
batches padded to the next length bucket with a frame mask, the last batch filled with
`valid = False` clips. Every listed clip of the split is an `EvalClip`; those without a face
frame (and those preparation could not write, from the dataset's clip list) have
`has_face = False` and no batch: the no-face policy scores them (train/metrics.py).

Batch arrays (B clips, F frames, C = crop_size):
  frames [B, F, C, C, 3] uint8, mask [B, F] bool, label [B] int32, valid [B] bool,
  index [B] int32 (the clip's record index; -1 for padding).
Frames stay uint8 until the device, where the train step normalises them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import grain
import numpy as np
import tensorflow_datasets as tfds

from videmo.data.loading.decoded_cache import CachedSource, frames_at


class RawFrames(tfds.decode.Decoder):
  """Keep a Sequence(Image) feature as its encoded bytes, so only sampled frames get decoded."""

  def decode_example(self, serialized):
    return serialized

  def decode_example_np(self, serialized):
    return serialized

  def decode_batch_example_np(self, serialized):
    return serialized


def open_split(dataset: str, split: str, data_dir: str | os.PathLike | None) -> Any:
  """Random-access source of one split of a built dataset (e.g. 'synthemo/small', 'validation').

  TFDS reads a built dataset from its own files (dataset_info.json, features.json), so loading
  needs none of the preparation code (builders, dlib, PyAV). Every per-frame image feature
  stays encoded (`RawFrames`): "frames", decoded frame by frame where sampled, and any other,
  such as SynthEmo's stored `region_mask`, which training and evaluation never read (the
  localisation's masks come from the renderer's parameters, data/synthemo/truth.py);
  decoding it would cost more than the frames a clip's batch needs.
  """
  try:
    builder = tfds.builder(dataset, data_dir=os.fspath(data_dir) if data_dir else None)
    sources = builder.as_data_source(decoders={name: RawFrames() for name in image_sequences(builder.info.features)})
  except Exception as err:  # TFDS raises several types for a dataset that is not there
    raise FileNotFoundError(
        f"dataset {dataset!r} is not built in {data_dir}: run `videmo prepare --dataset {dataset} "
        f"--data_dir {data_dir}` first ({type(err).__name__}: {str(err).splitlines()[0]})") from err
  if split not in sources:
    raise ValueError(f"split {split!r} not in dataset {dataset!r}; it has {sorted(sources)}")
  return sources[split]


def image_sequences(features: Any) -> set[str]:
  """Names of a FeaturesDict's top-level Sequence(Image) features, "frames" always among them."""
  return {"frames"} | {name for name, feature in features.items()
                       if isinstance(feature, tfds.features.Sequence) and isinstance(feature.feature, tfds.features.Image)}


def face_indices(record: dict) -> np.ndarray:
  """Indices of the frames that hold a face (all frames if the builder stored only found faces)."""
  found = np.asarray(record["face_found"], bool)
  return np.flatnonzero(found) if found.any() else np.zeros((0,), np.int64)


def sample_train_indices(num_available: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
  """`num_frames` distinct frame indices in temporal order (all frames if fewer): [<= num_frames]."""
  if num_available <= num_frames:
    return np.arange(num_available)
  return np.sort(rng.choice(num_available, size=num_frames, replace=False))


def evenly_spaced(num_available: int, num_frames: int | None) -> np.ndarray:
  """All indices, or `num_frames` evenly spaced ones (centres of equal segments)."""
  if num_frames is None or num_available <= num_frames:
    return np.arange(num_available)
  return np.floor((np.arange(num_frames) + 0.5) * num_available / num_frames).astype(np.int64)


@dataclass(frozen=True)
class ClipSampler:
  """Turns one record into one fixed-size training example (a grain RandomMap)."""

  num_frames: int
  crop_size: int
  mirror: bool = True
  vertical_flip: bool = False

  def __call__(self, record: dict, rng: np.random.Generator) -> dict:
    faces = face_indices(record)
    frames = np.zeros((self.num_frames, self.crop_size, self.crop_size, 3), np.uint8)
    mask = np.zeros((self.num_frames,), bool)
    if len(faces):
      chosen = faces[sample_train_indices(len(faces), self.num_frames, rng)]
      clip = frames_at(record, chosen)
      _, h, w, _ = clip.shape
      if h < self.crop_size or w < self.crop_size:
        raise ValueError(f"input.crop_size {self.crop_size} is larger than the faces ({h}x{w})")
      top, left = rng.integers(0, h - self.crop_size + 1), rng.integers(0, w - self.crop_size + 1)
      clip = clip[:, top:top + self.crop_size, left:left + self.crop_size]
      if self.mirror and rng.random() < 0.5:
        clip = clip[:, :, ::-1]
      if self.vertical_flip and rng.random() < 0.5:
        clip = clip[:, ::-1]
      frames[:len(clip)] = clip
      mask[:len(clip)] = True
    return dict(frames=frames, mask=mask, label=np.int32(record["label"]),
                valid=np.bool_(len(faces) > 0), index=np.int32(-1))


def train_batches(source: Any, *, batch_size: int, num_frames: int, crop_size: int, seed: int,
                  start_step: int = 0, mirror: bool = True, vertical_flip: bool = False,
                  workers: int = 0, process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Endless iterator of this process's training batches, starting at global step `start_step`.

  `batch_size` is the per-process batch; clips with no face come out with valid = False.
  With `workers` > 0, decoding runs in that many processes ahead of the training loop.
  """
  if len(source) == 0:
    raise ValueError("the training split is empty")
  if workers > 0 and isinstance(source, CachedSource):
    source = source.for_workers(workers)
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  ds = ds.random_map(ClipSampler(num_frames, crop_size, mirror, vertical_flip), seed=seed + 1)
  ds = ds[process_index::process_count].batch(batch_size, drop_remainder=True)[start_step:]
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, workers), prefetch_buffer_size=2 * batch_size))
  if workers > 0:
    _absl_flags_for_grain()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2))
  return iter(it)


def _absl_flags_for_grain() -> None:
  """Make grain's own absl flags readable at their defaults: the one process-wide change the
  library makes, and only when a loader with worker processes is built.

  Why: starting `mp_prefetch` workers, grain (0.2.18) reads its absl flag
  --grain_enable_multiprocess_worker_profiling through `FLAGS.<name>`, which raises
  UnparsedFlagAccessError unless absl's flags were parsed, i.e. unless the process is an absl
  app. `videmo train`, plain scripts and notebooks are not. grain offers no way around it:
  `grain.config.update` covers other flags and setting a value does not make it readable, and no
  environment variable switches the read off.

  What: each unparsed `grain_*` flag is marked present, as grain itself does for its debug flags
  in its worker processes (process_prefetch._parse_debug_flags); the values stay the defaults.
  Nothing else changes: absl's flags are not marked parsed (an absl app that parses its command
  line later still does, --grain_* flags included), and no other library's flags become
  readable. Does nothing once the flags are parsed.
  """
  from absl import flags

  if flags.FLAGS.is_parsed():
    return
  for name in list(flags.FLAGS):
    if name.startswith("grain_"):
      flags.FLAGS[name].present = True


def bucket_length(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket >= length; beyond the largest bucket, the next multiple of it (so
  that a long clip keeps every frame, and lengths still fall into few compiled shapes)."""
  for bucket in sorted(buckets):
    if length <= bucket:
      return bucket
  largest = max(buckets)
  return -(-length // largest) * largest


@dataclass(frozen=True)
class EvalClip:
  """One listed clip of an evaluation split.

  index: its position in the split's evaluation arrays: the record index for a written clip,
    len(source) + k for the k-th clip that preparation could not write (no record).
  num_faces: frames with a face (0 for a clip that was not written).
  source, reason: for a clip that was not written, the file and why (clip_list.MissingClip).
  """

  index: int
  label: int
  num_faces: int
  source: str = ""
  reason: str = ""

  @property
  def has_face(self) -> bool:
    return self.num_faces > 0


def eval_clips(source: Any, missing: Sequence[Any] = ()) -> list[EvalClip]:
  """Every listed clip of a split: the records in order, then the `missing` clips
  (clip_list.MissingClip: source, label, status, reason) that preparation could not write."""
  clips = []
  for i in range(len(source)):
    record = _metadata(source, i)
    clips.append(EvalClip(i, int(record["label"]), len(face_indices(record))))
  for k, clip in enumerate(missing):
    clips.append(EvalClip(len(source) + k, int(clip.label), 0, clip.source, f"{clip.status}: {clip.reason}"))
  return clips


def split_labels(source: Any, missing: Sequence[Any] = ()) -> np.ndarray:
  """The labels of every listed clip of a split (records, then the clips not written): [K] int64."""
  return np.array([int(_metadata(source, i)["label"]) for i in range(len(source))] + [int(c.label) for c in missing],
                  np.int64)


def _metadata(source: Any, index: int) -> dict:
  """Record `index` for its labels and face flags: a CachedSource neither decodes nor keeps it."""
  return source.peek(index) if isinstance(source, CachedSource) else source[index]


def eval_batches(source: Any, clips: Sequence[EvalClip], *, batch_size: int, crop_size: int,
                 num_frames: int | None = None, buckets: Sequence[int] = (16, 32, 64, 128),
                 process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """This process's share of every evaluation batch, over the clips that have a face.

  Clips are grouped by length so that each batch pads to a small bucket (a multiple of the
  largest bucket beyond it: every frame is kept). `batch_size` is the global batch. Besides the
  training batch's fields, `index` [B] (the clip's EvalClip.index, -1 = padding), `frame`
  [B, F] (each slot's frame number in the clip, -1 = padding) and `window` [B, 2] (the
  ground-truth expressive frames [start, stop) where the dataset records them, as SynthEmo
  does; [-1, -1] otherwise).
  """
  if batch_size % process_count:
    raise ValueError(f"eval batch_size {batch_size} must be a multiple of the process count {process_count}")
  with_face = sorted((c for c in clips if c.has_face), key=lambda c: (c.num_faces, c.index))
  local = batch_size // process_count
  for start in range(0, len(with_face), batch_size):
    group = with_face[start:start + batch_size]
    lengths = [min(c.num_faces, num_frames or c.num_faces) for c in group]
    length = bucket_length(max(lengths), buckets)
    batch = dict(frames=np.zeros((batch_size, length, crop_size, crop_size, 3), np.uint8),
                 mask=np.zeros((batch_size, length), bool), label=np.zeros((batch_size,), np.int32),
                 valid=np.zeros((batch_size,), bool), index=np.full((batch_size,), -1, np.int32),
                 frame=np.full((batch_size, length), -1, np.int32),
                 window=np.full((batch_size, 2), -1, np.int32))
    mine = range(process_index * local, (process_index + 1) * local)
    for slot, clip in enumerate(group):
      batch["label"][slot], batch["valid"][slot], batch["index"][slot] = clip.label, True, clip.index
      if slot not in mine:
        continue
      record = source[clip.index]
      faces = face_indices(record)
      chosen = faces[evenly_spaced(len(faces), min(num_frames or length, length))]
      frames = center_crop(frames_at(record, chosen), crop_size)
      batch["frames"][slot, :len(frames)] = frames
      batch["mask"][slot, :len(frames)] = True
      batch["frame"][slot, :len(frames)] = chosen
      if "window" in record:
        batch["window"][slot] = np.asarray(record["window"], np.int32)
    yield {k: v[mine.start:mine.stop] for k, v in batch.items()}


def center_crop(frames: np.ndarray, crop_size: int) -> np.ndarray:
  """[F, H, W, 3] -> [F, C, C, 3], the centre crop."""
  _, h, w, _ = frames.shape
  if h < crop_size or w < crop_size:
    raise ValueError(f"input.crop_size {crop_size} is larger than the faces ({h}x{w})")
  top, left = (h - crop_size) // 2, (w - crop_size) // 2
  return frames[:, top:top + crop_size, left:left + crop_size]
