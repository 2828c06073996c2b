"""Read a video (a file, or a folder of frame images) as RGB frames; write test videos.

Decoding uses PyAV (`av`), FFmpeg's Python binding, which ships as a self-contained wheel
on Linux, macOS and Windows, so no system FFmpeg or OpenCV is needed. A clip is either

  * a video file with one of `VIDEO_EXTENSIONS` (.avi, .mp4, .mkv, .mov, ...), decoded
    frame by frame (streaming: a long video never sits in memory whole), or
  * a folder of frame images (DFEW, MAFW and others ship frames), read in natural order
    (frame_2 before frame_10); its frame rate is unknown (`fps` is None).

Frames come out as uint8 RGB arrays [H, W, 3]. `VideoReader` raises `VideoReadError`, with
the path and FFmpeg's reason, when a file cannot be opened or has no video stream
(`EmptyVideoError` for a 0-byte file). When a video carries a display rotation (phone
videos), frames come out turned as it says: upright. When a video breaks off in the middle
(truncated, damaged), the frames before the damage are returned and `reader.truncated` /
`reader.error` say what happened, so a caller keeps what can be kept and reports the rest.

Time comes from the frames' presentation timestamps, not from frame counts: phones record at
a variable frame rate, so `reader.frame_times` holds each decoded frame's time in seconds
(from the first frame) and `reader.fps` is measured from them ((n - 1) / (t_last - t_first))
once two frames are decoded. `max_frames` / `max_seconds` stop a long video early
(`reader.stopped` says where).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

# Extensions read as video files (lower case). Anything else in a dataset tree that is not a
# frame folder is reported as "not a video" by the builders.
VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".3gp",
    ".ogv", ".vob", ".ts", ".mts", ".m2ts", ".mxf", ".divx", ".asf", ".y4m",
})
# Extensions of frame images inside a frame folder.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# Encoder used by `write_video` for each container.
_CODEC_FOR_EXTENSION = {".avi": "mpeg4", ".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264",
                        ".webm": "libvpx", ".mpg": "mpeg1video", ".mpeg": "mpeg1video"}


class VideoReadError(Exception):
  """A video file or frame folder that cannot be read: "<path>: <reason>" (`.reason` alone)."""

  def __init__(self, path: str | os.PathLike, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path, self.reason = os.fspath(path), reason


class EmptyVideoError(VideoReadError):
  """A zero-length video file (0 bytes)."""


def is_video_file(path: str | os.PathLike) -> bool:
  """True when `path` is a regular file whose extension is one of `VIDEO_EXTENSIONS`."""
  path = Path(path)
  return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _natural_key(name: str) -> list:
  return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
  """The image files directly inside `folder`, in natural order (img_2 before img_10)."""
  folder = Path(folder)
  files = [p for p in folder.iterdir()
           if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")]
  return sorted(files, key=lambda p: _natural_key(p.name))


def is_frame_folder(path: str | os.PathLike) -> bool:
  """True when `path` is a directory holding at least one frame image (see IMAGE_EXTENSIONS)."""
  path = Path(path)
  if not path.is_dir():
    return False
  return any(p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") for p in path.iterdir())


# A container's frame count and duration are estimates for some codecs and muxers (B-frames,
# edit lists, variable frame rates): an H.264 .mp4 promising 98 frames may decode 95, all of
# them. A decode counts as cut short only when it ends more than this far below the promise.
SHORTFALL_TOLERANCE = 0.05   # of the promised frames
SHORTFALL_MIN_FRAMES = 3


class VideoReader:
  """Streams the RGB frames [H, W, 3] uint8 of a video file or frame folder.

      with VideoReader("clip.mov", max_seconds=60) as video:
        video.num_frames                     # from the container header; None if unknown
        video.duration_frames                # the stream's duration x the header's rate; None if unknown
        for frame in video: ...              # [H, W, 3] uint8, one at a time
        video.frame_times                    # [n] seconds of each decoded frame from the first (None: folder)
        video.fps                            # from the timestamps (the header's rate before 2 frames)
        video.frames_read, video.truncated, video.error, video.stopped

  `threads` is FFmpeg's decoding thread count (1 suits a process pool with one worker per
  core; 0 lets FFmpeg choose). `max_frames` stops after that many frames, `max_seconds` before
  the first frame at or after that time (from the first frame's timestamp; a frame folder has
  no times and ignores it); `stopped` then says so in one line (None when the video ended
  first). Opening raises `VideoReadError` for a missing, empty or undecodable file, a file
  without a video stream, or a folder without images.
  """

  def __init__(self, path: str | os.PathLike, threads: int = 1, max_frames: int | None = None,
               max_seconds: float | None = None):
    if max_frames is not None and max_frames < 1:
      raise ValueError(f"VideoReader: max_frames must be >= 1 or None, got {max_frames}")
    if max_seconds is not None and not max_seconds > 0:
      raise ValueError(f"VideoReader: max_seconds must be > 0 or None, got {max_seconds}")
    self.path = Path(path)
    self.max_frames, self.max_seconds = max_frames, max_seconds
    self.header_fps: float | None = None
    self.num_frames: int | None = None
    self.duration_frames: int | None = None
    self.frames_read = 0
    self.frame_times: list[float] | None = None
    self.error: str | None = None
    self.stopped: str | None = None
    self._container = None
    self._frame_files: list[Path] | None = None
    if self.path.is_dir():
      self._frame_files = list_frame_files(self.path)
      if not self._frame_files:
        raise VideoReadError(self.path, f"folder has no frame images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
      self.num_frames = len(self._frame_files)
      return
    if not self.path.is_file():
      raise VideoReadError(self.path, "no such file")
    if self.path.stat().st_size == 0:
      raise EmptyVideoError(self.path, "zero-length file (0 bytes)")
    import av

    try:
      self._container = av.open(os.fspath(self.path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
      raise VideoReadError(self.path, f"cannot open as a video ({_reason(err)})") from None
    if not self._container.streams.video:
      self._container.close()
      raise VideoReadError(self.path, "has no video stream")
    stream = self._container.streams.video[0]
    stream.codec_context.thread_count = max(0, int(threads))
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    self.header_fps = float(rate) if rate else None
    self.num_frames = int(stream.frames) if stream.frames else None
    if stream.duration and stream.time_base and self.header_fps:
      self.duration_frames = int(round(float(stream.duration * stream.time_base) * self.header_fps))
    self.frame_times = []
    self._tick = float(stream.time_base) if stream.time_base else 0.0  # timestamp resolution, seconds
    self._stream = stream

  @property
  def fps(self) -> float | None:
    """Frames per second: (n - 1) / (t_last - t_first) over the frames decoded so far, from
    their timestamps (a variable-rate video's mean rate), or the container header's exact
    rate when the timestamps agree with it to within one tick of the stream's time base
    (timestamps are rounded: 30 fps in milliseconds would read 29.94). The header's rate
    before two frames are decoded; None for a frame folder."""
    times = self.frame_times
    if not times or len(times) < 2 or times[-1] <= times[0]:
      return self.header_fps
    span, intervals = times[-1] - times[0], len(times) - 1
    if self.header_fps and abs(span - intervals / self.header_fps) <= self._tick:
      return self.header_fps  # constant rate: the header's exact figure (timestamps are rounded to ticks)
    return intervals / span

  @property
  def expected_frames(self) -> int | None:
    """The frames the container promises: its frame count, else its duration x fps (the
    duration of a damaged file can be estimated from what is left of it, the count cannot)."""
    return self.num_frames or self.duration_frames or None

  @property
  def truncated(self) -> bool:
    """True when decoding stopped on an error, or ended clearly short of what the container
    promises (beyond SHORTFALL_TOLERANCE of it, and at least SHORTFALL_MIN_FRAMES frames).
    A video stopped by `max_frames` / `max_seconds` is not truncated."""
    if self.error is not None:
      return True
    expected = self.expected_frames
    if self._frame_files is not None or expected is None or self.stopped is not None:
      return False
    return self.frames_read < expected - max(SHORTFALL_MIN_FRAMES, SHORTFALL_TOLERANCE * expected)

  def __iter__(self) -> Iterator[np.ndarray]:
    if self._frame_files is not None:
      yield from self._iter_images()
    else:
      yield from self._iter_video()

  def _stop_by_count(self) -> bool:
    """True (and `stopped` set) when a frame comes after `max_frames` frames were read."""
    if self.max_frames is None or self.frames_read < self.max_frames:
      return False
    total = f" of {self.expected_frames}" if self.expected_frames else ""
    self.stopped = f"stopped at max_frames={self.max_frames}: the first {self.frames_read}{total} frames used"
    return True

  def _iter_images(self) -> Iterator[np.ndarray]:
    from PIL import Image

    for file in self._frame_files:
      if self._stop_by_count():
        return
      try:
        with Image.open(file) as image:
          frame = np.asarray(image.convert("RGB"))
      except (OSError, ValueError, Image.DecompressionBombError) as err:
        self.error = f"{file.name}: unreadable image ({_reason(err)})"
        return
      self.frames_read += 1
      yield frame

  def _frame_time(self, frame) -> float:
    """The frame's presentation time in seconds from the first frame's. A frame without a
    timestamp, or with one not after the previous frame's, is placed one nominal frame
    interval after the previous frame."""
    times = self.frame_times
    stamp = frame.time
    if not times:
      self._first_stamp = float(stamp) if stamp is not None else 0.0
      return 0.0
    if stamp is not None and float(stamp) - self._first_stamp > times[-1]:
      return float(stamp) - self._first_stamp
    return times[-1] + 1.0 / (self.header_fps or 25.0)

  def _iter_video(self) -> Iterator[np.ndarray]:
    import av

    try:
      for frame in self._container.decode(self._stream):
        if self._stop_by_count():
          return
        time = self._frame_time(frame)
        if self.max_seconds is not None and time >= self.max_seconds:
          last = self.frame_times[-1] if self.frame_times else 0.0
          self.stopped = (f"stopped at max_seconds={self.max_seconds:g}: the first {self.frames_read} frames "
                          f"(0-{last:.2f} s) used")
          return
        self.frame_times.append(time)
        self.frames_read += 1
        image = frame.to_ndarray(format="rgb24")
        # Phones store frames as the sensor saw them and say in the display matrix how to turn
        # them (counterclockwise degrees): turned here, a video recorded upright comes out upright.
        turns = int(round((frame.rotation or 0) / 90)) % 4
        if turns:
          image = np.rot90(image, k=turns)
        # FFmpeg pads rows to an alignment; dlib and friends need C-contiguous arrays.
        yield np.ascontiguousarray(image)
    except (av.error.FFmpegError, OSError, ValueError) as err:
      self.error = f"decoding stopped after {self.frames_read} frames ({_reason(err)})"

  def close(self) -> None:
    if self._container is not None:
      self._container.close()
      self._container = None

  def __enter__(self) -> "VideoReader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _reason(err: BaseException) -> str:
  """FFmpeg/Pillow's reason without the repeated path."""
  text = getattr(err, "strerror", None) or str(err)
  return str(text).split(": '")[0].strip() or type(err).__name__


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float | None]:
  """All frames of a video file or frame folder: ([T, H, W, 3] uint8, fps or None).

  The fps is measured from the frames' timestamps (see VideoReader.fps). Raises
  VideoReadError when nothing can be read; a video that breaks off returns the frames before
  the damage. `max_frames` stops early.
  """
  frames = []
  with VideoReader(path, max_frames=max_frames) as video:
    frames = list(video)
    fps = video.fps
  if not frames:
    raise VideoReadError(path, "no frame could be decoded")
  if len({f.shape for f in frames}) != 1:
    raise VideoReadError(path, "frames differ in size; read them one by one with VideoReader")
  return np.stack(frames), fps


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray] | np.ndarray, fps: float = 25.0,
                codec: str | None = None, bit_rate: int = 4_000_000, crf: int | None = None,
                times: Sequence[float] | None = None, rotation: int = 0) -> None:
  """Writes RGB frames [T, H, W, 3] uint8 (even H and W) as a video file (tests, demos).

  The codec follows the extension (.avi: MPEG-4 part 2, .mp4/.mkv/.mov: H.264, .webm: VP8)
  unless given. `bit_rate` (bits/s) applies to the codecs without a quality default
  (MPEG-4 part 2, MPEG-1, MJPEG); FFmpeg's own default there (200 kbit/s) is blocky.
  `crf` sets H.264's constant rate factor (0..51, lower is better; x264's default is 23).
  `times` [T] (seconds, increasing) gives each frame its own presentation time, at
  millisecond precision: a variable-frame-rate video (`fps` is then the nominal rate).
  `rotation` (a multiple of 90 degrees, counterclockwise) stores the frames as a phone's
  sensor would, turned the other way, with a display rotation that turns them back upright.
  """
  import av

  path = Path(path)
  codec = codec or _CODEC_FOR_EXTENSION.get(path.suffix.lower())
  if codec is None:
    raise ValueError(f"write_video: no default codec for {path.suffix!r}; pass codec= "
                     f"(defaults exist for {', '.join(sorted(_CODEC_FOR_EXTENSION))})")
  if crf is not None and (codec != "libx264" or not 0 <= crf <= 51):
    raise ValueError(f"write_video: crf must be in 0..51 and needs the libx264 codec, got crf={crf} for {codec}")
  from fractions import Fraction

  rate = Fraction(fps).limit_denominator(1001)
  if rotation % 90:
    raise ValueError(f"write_video: rotation must be a multiple of 90 degrees, got {rotation}")
  if times is not None:
    stamps = [int(round(1000 * float(t))) for t in times]
    if any(b <= a for a, b in zip(stamps, stamps[1:])) or (stamps and stamps[0] < 0):
      raise ValueError("write_video: times must be >= 0 and increase by at least 1 ms from frame to frame")
  stream = None
  with av.open(os.fspath(path), "w") as container:
    for index, frame in enumerate(frames):
      frame = np.asarray(frame)
      if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"write_video: frames must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
      frame = np.ascontiguousarray(np.rot90(frame, k=-(rotation // 90) % 4))
      if stream is None:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frame.shape[:2]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec in ("mpeg4", "mpeg1video", "mpeg2video", "mjpeg"):
          stream.bit_rate = int(bit_rate)
        if crf is not None:
          stream.options = {"crf": str(int(crf))}
        if rotation % 360:
          stream.set_display_rotation(rotation)
        if times is not None:  # millisecond timestamps, kept by the encoder (not rounded to 1/fps)
          stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
      picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
      if times is not None:
        if index >= len(stamps):
          raise ValueError(f"write_video: {len(stamps)} times for more frames")
        picture.pts, picture.time_base = stamps[index], Fraction(1, 1000)
      for packet in stream.encode(picture):
        container.mux(packet)
    if stream is None:
      raise ValueError("write_video: no frames given")
    for packet in stream.encode():
      container.mux(packet)

