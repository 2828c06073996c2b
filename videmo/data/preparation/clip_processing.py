"""One clip, start to finish: decode, find and align the main face in each frame, JPEG-encode.

The video is read twice, a frame at a time: once to choose the clip's main face over the
whole clip, once to follow and align it (clip_tracks.py; the first pass keeps its decoded
frames for the second when they fit clip_tracks.SURVEY_BUFFER_BYTES, so a clip of usual
length is decoded once and memory stays bounded for a long one); frames where the main
person is not seen count as frames without a face. `process_clip_people` follows every
person instead, one result each.
Times come from the frames' timestamps: `fps` is measured from them and `frame_time` gives
each stored frame's time in seconds (variable-frame-rate phone videos included).
`ClipOptions.max_frames` / `max_seconds` stop a long video early and say so in `message`.

`process_clip(task, options, models)` never raises on bad input: an unreadable, empty or
face-free video (or one on which dlib, FFmpeg or Pillow fail in any other way) comes back as
a `ClipResult` whose `status` says so, with a one-line `message`, so a dataset build keeps
going and reports it. A video that breaks off is kept up to the damage (`truncated` is set).

Frames without a face follow `ClipOptions.missing_face`:
  "skip"        they are left out of the clip (the paper keeps the frames where dlib found a
                face); `frame_index` says which source frames were kept.
  "reuse_last"  every frame is kept; a frame without a face repeats the last aligned face
                (frames before the first face repeat the first one); its `face_found` flag
                is False.
Either way the indices of the frames without a face are in `missing_frames`.
"""

from __future__ import annotations

import dataclasses
import time

from videmo.data.preparation import clip_tracks, faces
from videmo.data import schema, video_io
# Clip outcomes: "ok" clips are written to the dataset; the others are only reported.
from videmo.data.clip_status import EMPTY, NO_FACE, OK, UNREADABLE  # noqa: F401

MISSING_FACE_POLICIES = ("skip", "reuse_last")


@dataclasses.dataclass(frozen=True)
class ClipOptions:
  """Everything that changes a clip's prepared frames (it is part of the cache key).

  face: detection, tracking and alignment options (faces.FaceOptions).
  missing_face: what to do with frames without a face, one of MISSING_FACE_POLICIES.
  jpeg_quality: quality of the stored JPEG frames.
  max_frames: read at most this many frames of a video (None: all).
  max_seconds: read only the frames before this time, in seconds from the first frame's
    timestamp (None: all; frame folders have no times and ignore it).
  """

  face: faces.FaceOptions = faces.FaceOptions()
  missing_face: str = "skip"
  jpeg_quality: int = schema.JPEG_QUALITY
  max_frames: int | None = None
  max_seconds: float | None = None

  def __post_init__(self):
    if self.missing_face not in MISSING_FACE_POLICIES:
      raise ValueError(f"missing_face must be one of {MISSING_FACE_POLICIES}, got {self.missing_face!r}")
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
    if self.max_frames is not None and self.max_frames < 1:
      raise ValueError(f"max_frames must be >= 1 or None, got {self.max_frames}")
    if self.max_seconds is not None and not self.max_seconds > 0:
      raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds}")


@dataclasses.dataclass(frozen=True)
class ClipTask:
  """One clip to prepare: where it is, its label, and where it goes.

  clip_id: unique id in the dataset (the path relative to the data root, without suffix).
  path: absolute path of the video file or frame folder.
  source: the path relative to the data root, as stored in the dataset.
  label: class index; split: the split it belongs to.
  """

  clip_id: str
  path: str
  source: str
  label: int
  split: str


@dataclasses.dataclass
class ClipResult:
  """A prepared clip. frames: JPEG bytes [F]; face_found [F]; frame_index [F] (source frame
  of each stored frame); frame_time [F]: its time in seconds from the first frame, from the
  timestamps (None for frame folders); missing_frames: source frames without a face;
  num_source_frames: frames decoded; frames_detected: frames where the detector itself found
  the face; fps: measured from the timestamps (None for frame folders); face_box [F]: each
  stored frame's face box in the source frame's pixels (None where no face was found)."""

  clip_id: str
  source: str
  label: int
  split: str
  status: str = OK
  message: str = ""
  truncated: bool = False
  fps: float | None = None
  num_source_frames: int = 0
  frames_detected: int = 0
  frames: list[bytes] = dataclasses.field(default_factory=list)
  face_found: list[bool] = dataclasses.field(default_factory=list)
  frame_index: list[int] = dataclasses.field(default_factory=list)
  frame_time: list[float] | None = None
  missing_frames: list[int] = dataclasses.field(default_factory=list)
  seconds: float = 0.0
  face_box: list[list[float] | None] | None = None  # [F] each stored frame's face box (x0, y0, x1, y1), or None
  person: int | None = None   # process_clip_people: the person's number (in order of first sighting)
  main: bool = True           # ... and whether they are the clip's main person

  @property
  def frames_with_face(self) -> int:
    return self.num_source_frames - len(self.missing_frames)

  def summary(self) -> "ClipResult":
    """The same result without the JPEG bytes (cheap to send between processes)."""
    return dataclasses.replace(self, frames=[])


class _Faces:
  """One person's outcome per source frame, as the tracker settles them: the JPEG of the
  aligned face (None: not found) and its box [4] in the frame's pixels."""

  def __init__(self):
    self.crops: list[bytes | None] = []
    self.boxes: list[list[float] | None] = []
    self.detected = 0

  def add(self, aligned: faces.AlignedFrame, jpeg_quality: int) -> None:
    if aligned.found:
      self.crops.append(schema.encode_jpeg(aligned.face, jpeg_quality))
      self.boxes.append(None if aligned.box is None else [round(float(v), 2) for v in aligned.box])
      self.detected += int(aligned.detected)
    else:
      self.crops.append(None)
      self.boxes.append(None)


def process_clip(task: ClipTask, options: ClipOptions, models: faces.FaceModels) -> ClipResult:
  """Decodes `task.path`, aligns the main face of every frame, applies the missing-face policy."""
  return _process(task, options, models, everyone=False)[0]


def process_clip_people(task: ClipTask, options: ClipOptions, models: faces.FaceModels) -> list[ClipResult]:
  """Every person of `task.path`, each followed and aligned as `process_clip` does the main
  one (clip_tracks.align_people): one ClipResult per person seen in at least one frame, in
  order of first sighting, with `person` (0, 1, ...) and `main` set. A video that cannot be
  read, or in which nobody's face is followed, gives one result with that status
  (`person` None). Never raises on bad input."""
  return _process(task, options, models, everyone=True)


def _process(task: ClipTask, options: ClipOptions, models: faces.FaceModels, everyone: bool) -> list[ClipResult]:
  start = time.perf_counter()
  readers: list[video_io.VideoReader] = []
  people: dict[int, _Faces] = {}
  main = None
  num_frames = 0

  def decode():
    """One pass over the video, a frame at a time (the last pass's reader is readers[-1])."""
    with video_io.VideoReader(task.path, max_frames=options.max_frames, max_seconds=options.max_seconds) as video:
      readers.append(video)
      yield from video

  def failed(status: str, message: str) -> list[ClipResult]:
    result = ClipResult(task.clip_id, task.source, task.label, task.split, status=status, message=message)
    result.seconds = time.perf_counter() - start
    return [result]

  try:
    if everyone:
      found, followed = clip_tracks.align_people(decode, models, options.face)
      main = found.main
      for person, aligned in followed:
        people.setdefault(person, _Faces()).add(aligned, options.jpeg_quality)
      num_frames = found.num_frames
    else:
      people[0] = _Faces()
      for aligned in clip_tracks.align_main_face(decode, models, options.face):
        people[0].add(aligned, options.jpeg_quality)
      num_frames = len(people[0].crops)
    video = readers[-1]
  except video_io.VideoReadError as err:
    return failed(EMPTY if isinstance(err, video_io.EmptyVideoError) else UNREADABLE, err.reason)
  except Exception as err:  # noqa: BLE001  one odd file (dlib, FFmpeg, Pillow) must not stop a build
    done = max((len(p.crops) for p in people.values()), default=0)
    return failed(UNREADABLE, f"failed after {done} frames: {type(err).__name__}: {err}")
  seen = {p: faces_of for p, faces_of in people.items() if any(c is not None for c in faces_of.crops)}
  if everyone and seen:
    results = [_outcome(task, options, faces_of, video, num_frames) for _, faces_of in sorted(seen.items())]
    for number, (p, result) in enumerate(zip(sorted(seen), results)):
      result.person, result.main = number, p == main
  else:
    results = [_outcome(task, options, people.get(0, _Faces()), video, num_frames)]
  for result in results:
    result.seconds = time.perf_counter() - start
  return results


def _outcome(task: ClipTask, options: ClipOptions, found: _Faces, video: video_io.VideoReader,
             num_frames: int) -> ClipResult:
  """The ClipResult of one person's faces over the `num_frames` frames read from `video`."""
  result = ClipResult(task.clip_id, task.source, task.label, task.split, fps=video.fps,
                      num_source_frames=num_frames, frames_detected=found.detected)
  crops = found.crops if found.crops else [None] * num_frames
  if video.truncated:
    result.truncated = True
    expected = f" of {video.expected_frames}" if video.expected_frames else ""
    result.message = video.error or f"only {num_frames}{expected} frames could be decoded"
  elif video.stopped:
    result.message = video.stopped
  result.missing_frames = [i for i, crop in enumerate(crops) if crop is None]
  if not crops and result.truncated:
    result.status, result.truncated = UNREADABLE, False
    result.message = f"no frame could be decoded ({result.message})"
  elif not crops:
    result.status, result.message = EMPTY, "zero-length video (no frames)"
  elif len(result.missing_frames) == len(crops):
    # One cause per clip: a clip cut short without a face in what remains is a clip without a face.
    cut_short = f"; {result.message}" if result.truncated or result.message else ""
    result.status, result.truncated = NO_FACE, False
    result.message = f"no face in any of its {len(crops)} {'decoded ' if cut_short else ''}frames{cut_short}"
  else:
    _apply_policy(result, crops, options.missing_face)
    boxes = found.boxes if found.boxes else [None] * num_frames
    result.face_box = [boxes[i] for i in result.frame_index]
    times = video.frame_times
    if times is not None and len(times) == len(crops):
      result.frame_time = [float(times[i]) for i in result.frame_index]
  return result


def _apply_policy(result: ClipResult, crops: list[bytes | None], policy: str) -> None:
  if policy == "skip":
    result.frame_index = [i for i, crop in enumerate(crops) if crop is not None]
    result.frames = [crops[i] for i in result.frame_index]
    result.face_found = [True] * len(result.frames)
    return
  first = next(crop for crop in crops if crop is not None)
  last = first
  for crop in crops:
    last = crop if crop is not None else last
    result.frames.append(last)
    result.face_found.append(crop is not None)
  result.frame_index = list(range(len(crops)))
