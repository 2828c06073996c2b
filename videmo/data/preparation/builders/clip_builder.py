"""The shared base of the builders that prepare real videos (afew, video_folder).

A subclass says where the clips are (`_list_clips`: tasks per split, class names, listing
issues); this base does the rest, the same way for every dataset:

  1. prepare every clip (decode, detect, track, align, JPEG) on all cores through
     `clip_pool.prepare_clips`, resumable through the clip cache in
     `<data_dir>/<name>/<config>/prepare_cache-<version>/` (removed after a successful build
     unless the builder is made with `keep_cache=True`);
  2. write `prepare_report.json` (for people) and `clip_list.json` (every listed clip with its
     status, for evaluation: videmo/data/clip_list.py) next to the shards;
  3. yield the clips that have a face, in sorted order, in the shared clip schema
     (`videmo.data.schema.clip_features`) plus two fields of its own:
       frame_index  Sequence(int32) [F]  the source frame of each stored frame
       fps          float32              the source frame rate (0 when unknown: frame folders)

On Apache Beam (`DownloadConfig(beam_options=...)` or `beam_runner=...`, or `tfds build
--beam_pipeline_options=...`) step 1 runs inside the pipeline, clip by clip, on the Beam
workers instead (no clip cache: Beam retries failed work itself); the pipeline also writes
each clip's summary next to the data, from which the same report is made at the end.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from videmo.data.preparation import clip_cache, clip_pool, clip_processing, clip_sources, faces, prepare_report
from videmo.data import clip_list, schema

_BEAM_SUMMARIES = "beam_clip_summaries"  # under Beam, the clips' summaries, read back for the report


@dataclasses.dataclass(eq=False)
class VideoClipConfig(tfds.core.BuilderConfig):
  """A prepared variant of a video dataset: how faces are cropped and which frames are kept.

  face_size, padding: aligned crop side in pixels and dlib's padding (paper: 256, 0.25).
  missing_face: "skip" (keep only frames with a face, as the paper) or "reuse_last" (keep
    every frame; a frame without a face repeats the last face, face_found False).
  redetect_every: frames between detector confirmations of the tracked face (1: detect in
    every frame).
  detect_scales: frame scales the detector tries when no face is tracked (see faces.py).
  max_frames: read at most this many frames of each video (None: all).
  """

  face_size: int = schema.FACE_SIZE
  padding: float = 0.25
  missing_face: str = "skip"
  redetect_every: int = 5
  detect_scales: tuple[float, ...] = (0.5, 1.0)
  max_frames: int | None = None

  def clip_options(self) -> clip_processing.ClipOptions:
    """The per-clip options of this config (validated)."""
    face = faces.FaceOptions(face_size=self.face_size, padding=self.padding, redetect_every=self.redetect_every,
                             detect_scales=tuple(self.detect_scales))
    return clip_processing.ClipOptions(face=face, missing_face=self.missing_face, max_frames=self.max_frames)


def video_extra_features() -> dict[str, tfds.features.FeatureConnector]:
  """The fields the video builders add to the shared clip schema."""
  return {
      "frame_index": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
      "fps": tfds.features.Scalar(dtype=np.float32),
  }


def unnamed_label_features(face_size: int) -> tfds.features.FeaturesDict:
  """The shared clip schema with a ClassLabel whose names are set later, from the data."""
  shared = clip_features_with_extras(schema.AFEW_EMOTIONS, face_size)
  fields = dict(shared.items())
  fields["label"] = tfds.features.ClassLabel()
  return tfds.features.FeaturesDict(fields)


def clip_features_with_extras(class_names: Sequence[str], face_size: int) -> tfds.features.FeaturesDict:
  return schema.clip_features(class_names, face_size, extra=video_extra_features())


class VideoClipBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: subclasses set MANUAL_DOWNLOAD_INSTRUCTIONS, BUILDER_CONFIGS and implement
  `_list_clips` (and `_fixed_class_names` when the class names do not come from the data)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Faces found by dlib's HOG detector, tracked with 5-point landmarks, aligned at 256x256."}

  def __init__(self, *, workers: int | None = None, keep_cache: bool = False, progress: bool = True, **kwargs):
    """workers: processes preparing clips (default: all cores). keep_cache: keep the per-clip
    cache after a successful build. progress: show the progress bar."""
    if workers is not None and int(workers) < 1:
      raise ValueError(f"workers must be >= 1, got {workers}")
    self._workers = None if workers is None else int(workers)
    self._keep_cache = keep_cache
    self._progress = progress
    self._use_beam = False
    self._report_context = None
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)
    self._options = self.builder_config.clip_options()
    # Beside the version folder, so it survives TFDS's temporary build folder.
    self._cache_dir = Path(self.data_dir).parent / f"prepare_cache-{self.version}"

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """The subclass's module file (TFDS 4.9.10 would look it up with `importlib_resources`,
    which it does not install on Python >= 3.9)."""
    return epath.Path(sys.modules[cls.__module__].__file__)

  # Subclass interface ---------------------------------------------------------------------

  @abc.abstractmethod
  def _list_clips(self, root: Path) -> tuple[dict[str, list[clip_processing.ClipTask]], list[str],
                                              list[clip_sources.ListingIssue]]:
    """(tasks per split, class names, issues) for the data under `root` (the manual dir)."""

  def _fixed_class_names(self) -> Sequence[str] | None:
    """Class names known before looking at the data (None: they come from the data)."""
    return None

  # TFDS -------------------------------------------------------------------------------------

  def _info(self) -> tfds.core.DatasetInfo:
    names = self._fixed_class_names()
    size = self.builder_config.face_size
    features = clip_features_with_extras(names, size) if names is not None else unnamed_label_features(size)
    return self.dataset_info_from_configs(features=features, supervised_keys=None,
                                          description=(type(self).__doc__ or "").strip(),
                                          citation=getattr(self, "CITATION", None))

  def _download_and_prepare(self, dl_manager, download_config):
    self._use_beam = download_config.beam_runner is not None or download_config.beam_options is not None
    return super()._download_and_prepare(dl_manager, download_config)

  def _manual_root(self, dl_manager) -> Path:
    try:
      root = Path(dl_manager.manual_dir)
    except AssertionError:  # TFDS: manual dir missing or empty
      where = getattr(dl_manager, "_manual_dir", None) or "(not given)"
      raise FileNotFoundError(f"{self.name}: manual_dir {where} is missing or empty; "
                              f"{' '.join(self.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}") from None
    return root

  def _split_generators(self, dl_manager):
    root = self._manual_root(dl_manager)
    splits, class_names, issues = self._list_clips(root)
    dataset = f"{self.name}/{self.builder_config.name}:{self.version}"
    fallback_report = self._cache_dir.parent / f"prepare_report-{self.version}.json"
    splits = {split: tasks for split, tasks in splits.items() if tasks}
    if not splits:
      report = prepare_report.build_report(dataset, [], issues, self._options, class_names)
      path = prepare_report.write_report(report, fallback_report)
      raise FileNotFoundError(f"{self.name}: no video or frame folder found under {root} (report: {path}); "
                              f"{' '.join(self.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}")
    if len(class_names) < 2:
      raise ValueError(f"{self.name}: found {len(class_names)} class(es) under {root} ({list(class_names)}); "
                       "need at least 2")
    self.info.features["label"].names = list(class_names)
    self._report_context = (dataset, issues, class_names)
    if self._use_beam:
      return {split: _beam_transform(tasks, self._options, Path(self.data_dir) / f"{_BEAM_SUMMARIES}-{split}")
              for split, tasks in splits.items()}
    cache = clip_cache.ClipCache(self._cache_dir)
    tasks = [task for split_tasks in splits.values() for task in split_tasks]
    results = clip_pool.prepare_clips(tasks, self._options, cache, self._workers, progress=self._progress,
                                      desc=f"{self.name}: preparing clips")
    report = prepare_report.build_report(dataset, results, issues, self._options, class_names)
    ok = {split: [t for t, r in zip(tasks, results) if t.split == split and r.status == clip_processing.OK]
          for split in splits}
    ok = {split: split_tasks for split, split_tasks in ok.items() if split_tasks}
    if not ok:
      path = prepare_report.write_report(report, fallback_report)
      raise ValueError(f"{self.name}: none of the {len(tasks)} clips under {root} has a readable face; "
                       f"report: {path}")
    prepare_report.write_report(report, Path(self.data_dir) / prepare_report.REPORT_NAME)
    clip_list.write(clip_list.from_results(dataset, results, class_names), self.data_dir)
    return {split: self._generate_examples(split_tasks, cache) for split, split_tasks in ok.items()}

  def _process_pipeline_result(self, pipeline_result) -> None:
    """Under Beam: the report, from the clip summaries the pipeline wrote next to the data."""
    dataset, issues, class_names = self._report_context
    files = sorted(Path(self.data_dir).glob(f"{_BEAM_SUMMARIES}-*"))
    results = []
    for file in files:
      results += [clip_processing.ClipResult(**json.loads(line)) for line in file.read_text().splitlines() if line]
      file.unlink()
    results.sort(key=lambda r: (r.split, r.clip_id))
    report = prepare_report.build_report(dataset, results, issues, self._options, class_names,
                                         note="built with Apache Beam")
    prepare_report.write_report(report, Path(self.data_dir) / prepare_report.REPORT_NAME)
    clip_list.write(clip_list.from_results(dataset, results, class_names), self.data_dir)

  def _generate_examples(self, tasks: Sequence[clip_processing.ClipTask],
                         cache: clip_cache.ClipCache) -> Iterator[tuple[str, dict]]:
    for task in tasks:
      result = cache.load(clip_cache.cache_key(task.path, self._options), task)
      if result is None:
        raise RuntimeError(f"{self.name}: clip cache entry of {task.source} vanished during the build; run again")
      yield task.clip_id, clip_example(result)

  def _post_download_and_prepare_hook(self) -> None:
    if not self._keep_cache and self._cache_dir.exists():
      shutil.rmtree(self._cache_dir, ignore_errors=True)


def clip_example(result: clip_processing.ClipResult) -> dict:
  """The TFDS example of a prepared clip (frames already JPEG bytes: no TensorFlow needed)."""
  return {
      "frames": list(result.frames),
      "label": int(result.label),
      "clip_id": result.clip_id,
      "source": result.source,
      "num_frames": np.int32(len(result.frames)),
      "face_found": np.asarray(result.face_found, np.bool_),
      "frame_index": np.asarray(result.frame_index, np.int32),
      "fps": np.float32(result.fps or 0.0),
  }


def _beam_transform(tasks: Sequence[clip_processing.ClipTask], options: clip_processing.ClipOptions,
                    summaries: Path):
  """A Beam PTransform preparing `tasks` on the pipeline's workers: (clip_id, example) pairs
  of the clips with a face; every clip's summary goes to JSON lines at `summaries`-*."""
  beam = tfds.core.lazy_imports.apache_beam

  class PrepareClip(beam.DoFn):
    """Prepares one clip; dlib's models are loaded once per worker (setup)."""

    def setup(self):
      self._models = faces.load_face_models()

    def process(self, task):
      result = clip_processing.process_clip(task, options, self._models)
      beam.metrics.Metrics.counter("videmo", f"clips_{result.status}").inc()
      beam.metrics.Metrics.counter("videmo", "frames_with_face").inc(result.frames_with_face)
      yield result

  class PrepareClips(beam.PTransform):
    def expand(self, root):
      results = root | "Tasks" >> beam.Create(list(tasks)) | "Prepare" >> beam.ParDo(PrepareClip())
      _ = (results
           | "Summaries" >> beam.Map(lambda r: json.dumps(dataclasses.asdict(r.summary()), default=str))
           | "WriteSummaries" >> beam.io.WriteToText(os.fspath(summaries), file_name_suffix=".jsonl"))
      return (results
              | "WithFace" >> beam.Filter(lambda r: r.status == clip_processing.OK)
              | "Examples" >> beam.Map(lambda r: (r.clip_id, clip_example(r))))

  return PrepareClips()
