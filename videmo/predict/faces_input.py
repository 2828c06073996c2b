"""A video -> the face crops the model sees, made the way a dataset clip is prepared and evaluated.

Two ways in (S = the training data's face side, C = config.input.crop_size <= S):

* detect (a raw video): preparation's own code, `clip_processing.process_clip` (PyAV
  decoding, dlib detection and landmark tracking, 5-point alignment at S x S with the
  dataset's padding, JPEG at the stored quality). Frames where no face was found are left
  out and listed, as evaluation leaves them out.
* aligned (frames that already are aligned faces: DFEW's frame folders, a rendered SynthEmo
  clip): each frame's central square, resized to S x S, JPEG at the stored quality.

Then, as evaluation does (videmo/data/loading/pipeline.py `eval_batches`): the frames with a face,
evenly subsampled to `num_frames` when given, JPEG-decoded, centre-cropped to C x C.
A video that cannot be read, or in which no frame has a face, comes back with that status
and a one-line message instead of crops; nothing here raises on a bad file.

The face followed is the clip's main one, chosen over the whole clip (clip_tracks.py); the
source is decoded a frame at a time, and `max_frames` / `max_seconds` stop a long video
early (the message says so). Times come from the frames' timestamps (`frame_time`, `fps`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Sequence

import numpy as np

from videmo.data.preparation import clip_processing, clip_tracks, faces
from videmo.data.loading import decoded_cache, pipeline
from videmo.data import schema, video_io
from videmo.predict import record as record_lib


@dataclasses.dataclass
class FaceFrames:
  """The crops of one video and where they came from.

  crops [T, C, C, 3] uint8 (T = 0 unless status is ok); frame_index [T]: source frame of
  each crop; frames_without_face: source frames with no face; status/message: see record.py;
  frame_time [T]: seconds of each crop's source frame from the first frame, from the video's
  timestamps (None when unknown: frame folders, frames given without an fps); face_box [T, 4]:
  each crop's face box (x0, y0, x1, y1) in its source frame's pixels (None when unknown: aligned
  frames); person: the person's number when every person is followed (None: the main face);
  frames_with_face: every source frame where this face was found (None: not recorded).
  """

  crops: np.ndarray
  frame_index: np.ndarray
  num_source_frames: int
  frames_without_face: list[int]
  fps: float | None = None
  status: str = record_lib.OK
  message: str = ""
  frame_time: np.ndarray | None = None
  face_box: np.ndarray | None = None
  person: int | None = None
  frames_with_face: list[int] | None = None


def failed(status: str, message: str, num_source_frames: int = 0, fps: float | None = None,
           frames_without_face: Sequence[int] = ()) -> FaceFrames:
  """A video without crops: status NO_FACE or UNREADABLE, and why."""
  return FaceFrames(np.zeros((0, 0, 0, 3), np.uint8), np.zeros((0,), np.int64), num_source_frames,
                    list(frames_without_face), fps, status, message)


def stored_face(frame: np.ndarray, size: int) -> np.ndarray:
  """An already aligned face [H, W, 3] uint8 -> its central square resized to [S, S, 3]."""
  from PIL import Image

  if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(f"frames must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
  h, w, _ = frame.shape
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = frame[top:top + side, left:left + side]
  if side == size:
    return np.ascontiguousarray(square)
  return np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))


def select_crops(frames: Sequence[bytes] | np.ndarray, found: Sequence[bool], frame_index: Sequence[int],
                 crop_size: int, num_frames: int | None) -> tuple[np.ndarray, np.ndarray]:
  """Evaluation's choice of frames from a stored clip: the frames with a face, evenly
  subsampled to `num_frames` (None: all), decoded and centre-cropped. `frames`: JPEG bytes, or
  the decoded [F, S, S, 3] uint8 frames of a record a CachedSource keeps.

  Returns (crops [T, C, C, 3] uint8, source frame index [T])."""
  with_face = pipeline.face_indices({"face_found": np.asarray(found, bool)})
  chosen = with_face[pipeline.evenly_spaced(len(with_face), num_frames)]
  crops = pipeline.center_crop(decoded_cache.frames_at({"frames": frames}, chosen), crop_size)
  return crops, np.asarray(frame_index, np.int64)[chosen]


def _times_of(index: np.ndarray, times: Sequence[float] | None) -> np.ndarray | None:
  """The times [T] of the source frames `index` [T], given every source frame's time (or None)."""
  if times is None:
    return None
  return np.asarray(times, np.float64)[np.asarray(index, np.int64)]


def _from_stored(jpegs: list[bytes | None], frame_index: Sequence[int], crop_size: int,
                 num_frames: int | None, fps: float | None, message: str = "",
                 times: Sequence[float] | None = None) -> FaceFrames:
  """Crops from per-frame JPEGs (None: no face in that source frame); times [len(jpegs)]: each
  source frame's time in seconds, or None."""
  found = [j is not None for j in jpegs]
  missing = [int(frame_index[i]) for i, ok in enumerate(found) if not ok]
  if not any(found):
    why = f"no face in any of its {len(jpegs)} frames" + (f" ({message})" if message else "")
    return failed(record_lib.NO_FACE, why, len(jpegs), fps, missing)
  crops, index = select_crops([j or b"" for j in jpegs], found, frame_index, crop_size, num_frames)
  return FaceFrames(crops, index, len(jpegs), missing, fps, record_lib.OK, message, _times_of(index, times))


def _with_limits(options: clip_processing.ClipOptions, max_frames: int | None,
                 max_seconds: float | None) -> clip_processing.ClipOptions:
  """`options` with the tighter of its limits and the given ones (raises ValueError on bad ones)."""
  tighter = lambda a, b: b if a is None else a if b is None else min(a, b)
  return dataclasses.replace(options, max_frames=tighter(options.max_frames, max_frames),
                             max_seconds=tighter(options.max_seconds, max_seconds))


def faces_from_path(path: str | os.PathLike, options: clip_processing.ClipOptions, models: faces.FaceModels | None,
                    crop_size: int, num_frames: int | None = None, aligned: bool = False, *,
                    max_frames: int | None = None, max_seconds: float | None = None) -> FaceFrames:
  """The crops of a video file or frame folder (see the module docstring); never raises on a bad file.

  max_frames / max_seconds: decode at most that many frames / only the frames before that
  time (seconds from the first frame's timestamp); the message then says where it stopped.
  Raises ValueError for a limit below 1 frame or not above 0 seconds.
  """
  options = _with_limits(options, max_frames, max_seconds)
  if aligned:
    return _aligned_from_path(path, options, crop_size, num_frames)
  task = clip_processing.ClipTask(os.fspath(path), os.fspath(path), os.fspath(path), -1, "predict")
  return _from_result(clip_processing.process_clip(task, options, models), crop_size, num_frames)


def people_from_path(path: str | os.PathLike, options: clip_processing.ClipOptions, models: faces.FaceModels,
                     crop_size: int, num_frames: int | None = None, *, max_frames: int | None = None,
                     max_seconds: float | None = None) -> list[FaceFrames]:
  """The crops of every person of a video file or frame folder (`clip_processing.process_clip_people`),
  one FaceFrames each with `person` set, in order of first sighting; a video that cannot be read
  or shows nobody gives one FaceFrames saying so. Never raises on a bad file."""
  options = _with_limits(options, max_frames, max_seconds)
  task = clip_processing.ClipTask(os.fspath(path), os.fspath(path), os.fspath(path), -1, "predict")
  results = clip_processing.process_clip_people(task, options, models)
  return [_from_result(result, crop_size, num_frames) for result in results]


def _from_result(result: clip_processing.ClipResult, crop_size: int, num_frames: int | None) -> FaceFrames:
  """The crops of one prepared clip (one person of a video)."""
  if result.status in (clip_processing.EMPTY, clip_processing.UNREADABLE):
    return failed(record_lib.UNREADABLE, result.message, result.num_source_frames, result.fps)
  if result.status == clip_processing.NO_FACE:
    return failed(record_lib.NO_FACE, result.message, result.num_source_frames, result.fps,
                  result.missing_frames)
  crops, index = select_crops(result.frames, result.face_found, result.frame_index, crop_size, num_frames)
  position = {int(i): k for k, i in enumerate(result.frame_index)}
  times = None
  if result.frame_time is not None:
    times = np.asarray([result.frame_time[position[int(i)]] for i in index], np.float64)
  boxes = None
  if result.face_box is not None:
    boxes = np.asarray([result.face_box[position[int(i)]] or [np.nan] * 4 for i in index], np.float64).reshape(-1, 4)
  found = [int(i) for i, ok in zip(result.frame_index, result.face_found) if ok]
  return FaceFrames(crops, index, result.num_source_frames, list(result.missing_frames), result.fps,
                    record_lib.OK, result.message, times, face_box=boxes, person=result.person,
                    frames_with_face=found)


def _aligned_from_path(path, options: clip_processing.ClipOptions, crop_size: int,
                       num_frames: int | None) -> FaceFrames:
  jpegs: list[bytes | None] = []
  fps, message, times = None, "", None
  try:
    with video_io.VideoReader(path, max_frames=options.max_frames, max_seconds=options.max_seconds) as video:
      for frame in video:
        jpegs.append(schema.encode_jpeg(stored_face(frame, options.face.face_size), options.jpeg_quality))
      fps, times = video.fps, video.frame_times
      if video.truncated:
        message = video.error or f"only {len(jpegs)} of {video.expected_frames} frames could be decoded"
      elif video.stopped:
        message = video.stopped
  except video_io.VideoReadError as err:
    return failed(record_lib.UNREADABLE, err.reason)
  except Exception as err:  # noqa: BLE001  one odd file (FFmpeg, Pillow) must not stop a folder
    return failed(record_lib.UNREADABLE, f"failed after {len(jpegs)} frames: {type(err).__name__}: {err}")
  if not jpegs:
    return failed(record_lib.UNREADABLE, f"no frame could be decoded{f' ({message})' if message else ''}", 0, fps)
  return _from_stored(jpegs, range(len(jpegs)), crop_size, num_frames, fps, message, times)


def faces_from_frames(frames: Iterable[np.ndarray] | np.ndarray, options: clip_processing.ClipOptions,
                      models: faces.FaceModels | None, crop_size: int, num_frames: int | None = None,
                      aligned: bool = False, fps: float | None = None) -> FaceFrames:
  """The crops of frames [T, H, W, 3] uint8 already in memory (raises ValueError on bad arrays);
  `fps` (None: unknown) gives the frames' times, t / fps."""
  frames = list(frames)[:options.max_frames] if options.max_frames else list(frames)
  if not frames:
    raise ValueError("predict: no frames given")
  if aligned:
    jpegs = [schema.encode_jpeg(stored_face(f, options.face.face_size), options.jpeg_quality) for f in frames]
  else:
    jpegs = [None] * len(frames)
    for out in clip_tracks.align_main_face(frames, models, options.face):
      if out.found:
        jpegs[out.index] = schema.encode_jpeg(out.face, options.jpeg_quality)
  times = np.arange(len(frames)) / fps if fps else None
  return _from_stored(jpegs, range(len(frames)), crop_size, num_frames, fps, times=times)


def faces_from_record(record: dict[str, Any], crop_size: int, num_frames: int | None) -> FaceFrames:
  """The crops of a stored dataset clip (frames as JPEG bytes or, from a CachedSource, decoded;
  face_found, optional frame_index)."""
  frames = record["frames"]
  found = np.asarray(record["face_found"], bool)
  index = np.asarray(record["frame_index"]) if "frame_index" in record else np.arange(len(frames))
  missing = [int(i) for i, ok in zip(index, found) if not ok]
  if not found.any():
    return failed(record_lib.NO_FACE, f"no face in any of its {len(frames)} frames", len(frames),
                  frames_without_face=missing)
  crops, chosen = select_crops(frames, found, index, crop_size, num_frames)
  fps = float(record["fps"]) if float(record.get("fps", 0) or 0) > 0 else None
  return FaceFrames(crops, chosen, len(frames), missing, fps)
