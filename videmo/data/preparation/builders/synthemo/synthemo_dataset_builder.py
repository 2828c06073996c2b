"""The `synthemo` TFDS builder: SynthEmo clips in the shared clip schema plus their ground truth.

    videmo prepare --dataset synthemo/small --data_dir DIR        # 64x64, builds in seconds
    videmo prepare --dataset synthemo --data_dir DIR              # AFEW's scale, 256x256
    tfds build videmo/data/preparation/builders/synthemo --config small --data_dir DIR

Fields: the shared ones of videmo.data.schema (frames, label, clip_id, source, num_frames,
face_found: all True) and SynthEmo's ground truth (F frames, S = config.size):
  intensity    Sequence(float32)               expression intensity per frame, 0..1  [F]
  region_mask  Sequence(Image[S, S, 1], png)   mouth/eye/brow regions, values 0/1     [F, S, S, 1]
  apex_frame   int32                           a frame of maximal intensity (-1: Neutral)
  window       Tensor[2] int32                 [start, stop) of the frames with intensity > 0
The regions a clip's class moves, their masks and the distractor frames are not stored:
videmo.data.synthemo.truth recomputes them from a record (`record_job`), so the records of
every config, and of datasets built before those existed, have the same fields.

Clips are rendered in a pool of `workers` spawned processes (ordered, each clip seeded from
(config.seed, split, index) only). Shards are array_record (the default here, so `tfds build`
needs no TensorFlow either). TFDS serialises each tf.Example's feature map in an order that
changes from process to process (protobuf maps), so after writing, the builder re-serialises
every record deterministically (`canonicalize_shards`): the same seed then gives
byte-identical shards, whatever the worker count.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import re
import sys
import warnings
from typing import Any, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tqdm import tqdm

from videmo.data import schema
from videmo.data.synthemo import render, truth


@dataclasses.dataclass(eq=False)
class SynthEmoConfig(tfds.core.BuilderConfig):
  """A SynthEmo build: frame side, clips per split, frames per clip, seed, and the signal's design
  (docs/synthemo.md, "The signal's knobs"): the expression set ('afew' or 'pairs',
  render.EXPRESSION_SETS); the range of the expressive window's share of a clip
  (window_min..window_max) and its least length in frames (window_min_frames: 1 allows a
  one-frame window); the apex's intensity (apex_intensity, in (0, 1]); distractor frames outside
  the window (distractor_rate in 0..1, distractor_kinds among render.DISTRACTOR_KINDS, and
  distractor_strength, the intensity of another expression). At their defaults the knobs render
  what the configs rendered before they existed."""
  size: int = 256
  num_train: int = 773
  num_validation: int = 383
  min_frames: int = 16
  max_frames: int = 80
  seed: int = 0
  expression_set: str = "afew"
  window_min: float = render.DEFAULT_WINDOW_SHARE[0]
  window_max: float = render.DEFAULT_WINDOW_SHARE[1]
  window_min_frames: int = render.DEFAULT_WINDOW_MIN_FRAMES
  apex_intensity: float = 1.0
  distractor_rate: float = 0.0
  distractor_kinds: tuple[str, ...] = render.DISTRACTOR_KINDS
  distractor_strength: float = 0.5

  def __post_init__(self):
    if self.size < render.MIN_SIZE:
      raise ValueError(f"SynthEmoConfig.size must be >= {render.MIN_SIZE}, got {self.size}")
    if self.num_train < 0 or self.num_validation < 0:
      raise ValueError(f"SynthEmoConfig.num_train/num_validation must be >= 0, got "
                       f"{self.num_train}/{self.num_validation}")
    if not 1 <= self.min_frames <= self.max_frames:
      raise ValueError(f"SynthEmoConfig needs 1 <= min_frames <= max_frames, got "
                       f"{self.min_frames}..{self.max_frames}")
    if self.seed < 0:
      raise ValueError(f"SynthEmoConfig.seed must be >= 0, got {self.seed}")
    try:
      render.expression_set(self.expression_set)
      render.check_window_share((self.window_min, self.window_max))
      render.check_window_min_frames(self.window_min_frames)
      render.check_apex_intensity(self.apex_intensity)
      render.Distractors(self.distractor_rate, tuple(self.distractor_kinds), self.distractor_strength)
    except ValueError as err:
      raise ValueError(f"SynthEmoConfig: {err}") from None


# The temporal phase diagram's cells (docs/synthemo_when_where.md): tables' clips with the
# expressive window a fixed share of each clip, without and with distractors.
WHEN_WINDOW_SHARES = (0.05, 0.1, 0.25, 0.5, 1.0)
WHEN_DISTRACTOR_RATES = (0.0, 0.3)


def when_config_name(share: float, distractor_rate: float) -> str:
  """'when_w05_d0' for a window of 5% of the clip and no distractors; 'when_w100_d30': the whole
  clip expressive, 30% of the other frames distractors (none remain to disturb at 100%)."""
  return f"when_w{round(100 * share):02d}_d{round(100 * distractor_rate)}"


def _when_config(share: float, rate: float) -> "SynthEmoConfig":
  return SynthEmoConfig(
      name=when_config_name(share, rate), size=64, num_train=490, num_validation=420, min_frames=16, max_frames=32,
      expression_set="pairs", window_min=share, window_max=share, window_min_frames=1, distractor_rate=rate,
      description=f"The phase diagram's cell (docs/synthemo_when_where.md): tables' clips with the "
                  f"expressive window {100 * share:g}% of each clip"
                  + (f", {100 * rate:g}% of the other frames distractors." if rate else ", no distractors."))


class Builder(tfds.core.GeneratorBasedBuilder):
  """SynthEmo: synthetic face videos where the emotion's regions and frames are known."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  WRITES_EVERY_CLIP = True  # no clip is ever dropped: evaluation needs no clip list (data/clip_list.py)
  BUILDER_CONFIGS = [
      SynthEmoConfig(name="default", description="AFEW's scale: 773 train / 383 validation clips of "
                     "16-80 frames at 256x256."),
      SynthEmoConfig(name="small", size=64, num_train=490, num_validation=210, min_frames=16,
                     max_frames=32, description="Tests and the default demo: 490 / 210 clips of "
                     "16-32 frames at 64x64; builds in well under a minute on 2 cores."),
      SynthEmoConfig(name="tiny", size=32, num_train=28, num_validation=14, min_frames=4,
                     max_frames=10, description="Unit tests of the training loop: 28 / 14 clips of "
                     "4-10 frames at 32x32; builds in about a second."),
      SynthEmoConfig(name="stills", size=64, num_train=2000, num_validation=280, min_frames=1,
                     max_frames=1, seed=1, description="Labelled face stills to pre-train the demo's "
                     "narrow trunk on (the analogue of a static expression dataset): 2,000 / 280 "
                     "one-frame clips at 64x64, each at its expression's apex (Neutral: a neutral "
                     "face), of other people than small's (seed 1); builds in seconds."),
      SynthEmoConfig(name="stills_pairs", size=64, num_train=2000, num_validation=280, min_frames=1,
                     max_frames=1, seed=1, expression_set="pairs", description="stills with the "
                     "'pairs' expression set: the trunk pre-training of the tables' SynthEmo rows "
                     "(docs/synthemo.md), as stills is for small."),
      SynthEmoConfig(name="tables", size=64, num_train=490, num_validation=420, min_frames=16,
                     max_frames=32, expression_set="pairs", window_min=0.10, window_max=0.25,
                     description="The paper's tables on SynthEmo (docs/synthemo.md): small's size "
                     "with 420 validation clips, expressive windows of 10-25% of the frames, and "
                     "classes that each need two face regions at once (the 'pairs' expression set)."),
      SynthEmoConfig(name="brief", size=64, num_train=490, num_validation=210, min_frames=16,
                     max_frames=32, window_min=0.01, window_max=0.01, window_min_frames=1,
                     description="Strong briefly (docs/synthemo.md): small's clips with the expression "
                     "on one frame only, at full strength."),
      SynthEmoConfig(name="faint", size=64, num_train=490, num_validation=210, min_frames=16,
                     max_frames=32, window_min=1.0, window_max=1.0, apex_intensity=0.35,
                     description="Faint everywhere (docs/synthemo.md): small's clips with the expression "
                     "over the whole clip, its apex at 35% of full strength."),
      SynthEmoConfig(name="distractors", size=64, num_train=490, num_validation=210, min_frames=16,
                     max_frames=32, distractor_rate=0.3,
                     description="small's clips with distractors (docs/synthemo.md): 30% of the frames "
                     "outside the window show another expression at half strength, a blink, a talking "
                     "mouth or an extra occluder."),
      *[_when_config(share, rate) for rate in WHEN_DISTRACTOR_RATES for share in WHEN_WINDOW_SHARES],
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "default"

  def __init__(self, *, workers: int | None = None, **kwargs: Any):
    """`workers`: processes rendering clips (default: all cores); the rest goes to TFDS."""
    if workers is not None and workers < 1:
      raise ValueError(f"workers must be >= 1 (or None for all cores), got {workers}")
    self._workers = workers or os.cpu_count() or 1
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """This file. (TFDS 4.9.10 finds it with `importlib_resources`, which it only installs on
    Python < 3.9, so without this override preparing fails with ModuleNotFoundError.)"""
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.size
    extra = {
        "intensity": tfds.features.Sequence(tfds.features.Scalar(dtype=np.float32)),
        "region_mask": tfds.features.Sequence(
            tfds.features.Image(shape=(size, size, 1), encoding_format="png")),
        "apex_frame": tfds.features.Scalar(dtype=np.int32),
        "window": tfds.features.Tensor(shape=(2,), dtype=np.int32),
    }
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Procedural face videos with AFEW's seven emotions: the emotion is a small "
                     "deformation of mouth, brows and eyes inside an onset-apex-offset window of "
                     "15-40% of the frames; identity, background, lighting, motion, noise and an "
                     "occluder vary strongly. Ground truth: per-frame intensity and region masks."),
        features=schema.clip_features(schema.AFEW_EMOTIONS, size, extra=extra),
        homepage="docs/synthemo.md",
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    super()._download_and_prepare(dl_manager=dl_manager, download_config=download_config)
    canonicalize_shards(self.data_dir)  # TFDS points data_dir at the incomplete directory here

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    config = self.builder_config
    return {split: self._generate_examples(split) for split in ("train", "validation")}

  def _generate_examples(self, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    config = self.builder_config
    jobs = clip_jobs(config, split)
    num_clips = len(jobs)
    workers = min(self._workers, max(1, num_clips))
    bar = dict(total=num_clips, desc=f"synthemo/{config.name} {split}: rendering", unit=" clips")
    if workers > 1 and not _spawn_can_start():
      warnings.warn("synthemo: the main script cannot be re-imported by worker processes (e.g. "
                    "`python - <<EOF`); rendering in this process instead")
      workers = 1
    if workers == 1:
      yield from tqdm(map(render.encode_clip, jobs), **bar)
      return
    # 'spawn': fresh interpreters, safe next to JAX or threads in the parent; imap keeps job order.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      yield from tqdm(pool.imap(render.encode_clip, jobs, chunksize=2), **bar)


def clip_jobs(config: SynthEmoConfig, split: str) -> list[render.ClipJob]:
  """Every clip of `split` ('train' or 'validation') that the builder renders for `config`, in
  order: its seed, index, label (balanced, shuffled by the seed), size, frame range and the
  signal's knobs (expression set, window share and least length, apex intensity, distractors)."""
  num_clips = {"train": config.num_train, "validation": config.num_validation}[split]
  labels = render.split_labels(config.seed, split, num_clips)
  return [_job(config, split, i, int(labels[i])) for i in range(num_clips)]


def record_job(config: SynthEmoConfig, source: str | bytes, label: int) -> render.ClipJob:
  """The job (as in clip_jobs) of a stored record of `config`'s dataset, from its `source` and
  label; a one-line ValueError when the record is not one of this config's clips."""
  seed, split, index = truth.parse_source(source)
  if seed != config.seed or split not in ("train", "validation"):
    raise ValueError(f"synthemo/{config.name}: the record of {truth.parse_source(source)} (seed, split, index) "
                     f"is not one of its clips (seed {config.seed}, splits train and validation)")
  num_clips = {"train": config.num_train, "validation": config.num_validation}[split]
  if not 0 <= index < num_clips:
    raise ValueError(f"synthemo/{config.name}: clip index {index} is outside its {num_clips} {split} clips")
  expected = int(render.split_labels(config.seed, split, num_clips)[index])
  if expected != int(label):
    raise ValueError(f"synthemo/{config.name}: {split} clip {index} is stored with label {label}, the config "
                     f"gives {expected}; rebuild the dataset")
  return _job(config, split, index, expected)


def _job(config: SynthEmoConfig, split: str, index: int, label: int) -> render.ClipJob:
  return render.ClipJob(config.seed, split, index, label, config.size, config.min_frames, config.max_frames,
                        expression_set=config.expression_set, window_share=(config.window_min, config.window_max),
                        window_min_frames=config.window_min_frames, apex_intensity=config.apex_intensity,
                        distractor_rate=config.distractor_rate, distractor_kinds=tuple(config.distractor_kinds),
                        distractor_strength=config.distractor_strength)


def _spawn_can_start() -> bool:
  """Whether 'spawn' workers can start: they re-run the main module from its file, if it has one.

  A main read from stdin has a __file__ that does not exist; the workers would then die while
  starting and Pool would replace them forever.
  """
  main_file = getattr(sys.modules.get("__main__"), "__file__", None)
  return main_file is None or os.path.exists(main_file)


def canonicalize_shards(directory: str | os.PathLike) -> int:
  """Rewrites every array_record shard in `directory` with deterministically serialised records.

  Each record is parsed as a tf.Example and serialised again with sorted map keys; record
  order, sizes and the writer's options are unchanged, so readers and TFDS's split metadata
  (shard lengths, byte counts) see the same data. Returns the number of shards rewritten.
  """
  from array_record.python import array_record_module
  from tensorflow_datasets.proto import tf_example_pb2

  shards = sorted(path for path in epath.Path(directory).iterdir()
                  if re.search(r"\.array_record-\d+-of-\d+$", path.name))
  for path in shards:
    reader = array_record_module.ArrayRecordReader(os.fspath(path))
    options, count = reader.writer_options_string(), reader.num_records()
    tmp = path.with_name(path.name + ".canonical")
    writer = array_record_module.ArrayRecordWriter(os.fspath(tmp), options)
    for start in range(0, count, 64):
      for record in reader.read(start, min(count, start + 64)):
        writer.write(tf_example_pb2.Example.FromString(record).SerializeToString(deterministic=True))
    writer.close()
    reader.close()
    os.replace(tmp, path)
  return len(shards)
