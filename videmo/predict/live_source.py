"""A live video source, decoded in its own thread into a small queue that drops the oldest frames.

    check_source("udp://127.0.0.1:5000")                   # SourceError (one line) for what cannot work
    reader = SourceReader(open_source("udp://127.0.0.1:5000", idle_seconds=10), queue_frames=16)
    reader.start()
    while (frames := reader.queue.take(8, timeout=0.2)) is not None:   # [LiveFrame]; [] while none came
      ...
    reader.decoded, reader.queue.dropped, reader.ended              # ended: why the stream stopped

SOURCE is anything FFmpeg (PyAV) opens as a live input:

  -                    standard input (`... | videmo predict --stream -`)
  a URL                rtsp://, udp://, tcp://, srt://, http(s)://, pipe:N, ... (FFmpeg's protocols)
  a V4L2 device        /dev/video0, when PyAV's FFmpeg has the v4l2 input (its wheels do not; then
                       pipe the camera in: `ffmpeg -f v4l2 -i /dev/video0 -f mpegts - | videmo ...`)
  a named pipe (FIFO)  read until its writer closes it (opening it waits for a writer)
  a regular file       followed as it grows (FFmpeg's file protocol with follow=1), like `tail -f`

The stream ends at the end of a pipe, a closed connection, after `idle_seconds` without new
data (a file no longer written, a sender gone, a pipe whose writer stalls; also the longest
wait for the first data), or at `max_frames` / `max_seconds`. Pipes are read through a file
object that waits with select(), so an idle pipe ends like an idle socket and `stop()` ends
the thread at once. A packet that does not decode (a stream cut mid-packet) is skipped.
Times are the frames' presentation timestamps in seconds from the first frame's; a frame
without one, or with one not after the previous frame's, is placed one nominal frame
interval after the previous one (a jump back of over a second, a timestamp reset, re-anchors
the clock there). Frames come out RGB [H, W, 3] uint8, upright as the display rotation says.
"""

from __future__ import annotations

import dataclasses
import os
import re
import select
import stat
import threading
import time
from collections import deque
from typing import Any

import numpy as np

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # FFmpeg protocol prefixes: udp:, rtsp:, pipe:, ...
_PROBE_MICROSECONDS = "1000000"  # stream analysis before the first frame: 1 s of a live stream is plenty
_BACKWARD_RESET_S = 1.0          # a timestamp going back further than this is a reset, not jitter
_POLL_S = 0.2                    # a pipe read looks at the stop event this often


class SourceError(Exception):
  """A source that cannot be read as a live video stream; str() is one line naming it and why."""


@dataclasses.dataclass(frozen=True)
class LiveFrame:
  """One decoded frame: index in decoding order (0-based; dropped frames count), time_s from the
  first frame's timestamp, image [H, W, 3] uint8 RGB, and decoded_at (time.monotonic() when
  it left the decoder)."""

  index: int
  time_s: float
  image: np.ndarray
  decoded_at: float


def _address(source: str) -> tuple[str, str | None, dict[str, str]]:
  """(FFmpeg URL, or "fd:" for a pipe read here; format or None; demuxer options) of SOURCE;
  SourceError when it cannot be a stream."""
  import av

  if source == "-":
    if os.isatty(0):
      raise SourceError("--stream -: standard input is a terminal; pipe a video stream into it")
    return "fd:", None, {"analyzeduration": _PROBE_MICROSECONDS}
  if not os.path.exists(source):
    if _URL.match(source):
      return source, None, {"analyzeduration": _PROBE_MICROSECONDS}
    raise SourceError(f"--stream {source}: no such file, device or URL")
  mode = os.stat(source).st_mode
  if stat.S_ISDIR(mode):
    raise SourceError(f"--stream {source}: is a folder; a folder of videos is `videmo predict FOLDER`")
  if stat.S_ISCHR(mode):
    if "v4l2" not in av.formats_available:
      raise SourceError(f"--stream {source}: a device, but this FFmpeg (PyAV) has no v4l2 input; pipe it in: "
                        f"ffmpeg -f v4l2 -i {source} -f mpegts - | videmo predict --stream - ...")
    return source, "v4l2", {}
  if stat.S_ISREG(mode):
    return source, None, {"follow": "1", "analyzeduration": _PROBE_MICROSECONDS}
  if stat.S_ISFIFO(mode):
    return "fd:", None, {"analyzeduration": _PROBE_MICROSECONDS}
  return source, None, {"analyzeduration": _PROBE_MICROSECONDS}  # a socket file


def check_source(source: str) -> None:
  """SourceError (one line) when SOURCE cannot be a live stream, before anything is opened."""
  _address(source)


def _reason(err: BaseException) -> str:
  """FFmpeg's reason without the repeated URL."""
  text = getattr(err, "strerror", None) or str(err)
  return str(text).split(": '")[0].strip() or type(err).__name__


class _PipeInput:
  """A pipe (stdin, a FIFO) as the file object PyAV reads: `read` waits at most `idle_seconds`
  for data, then reports the end (`went_idle`), and returns at once once `stop` is set."""

  def __init__(self, fd: int, idle_seconds: float, stop: threading.Event):
    self.fd, self.idle_seconds, self.stop = fd, idle_seconds, stop
    self.went_idle = False

  def read(self, size: int) -> bytes:
    deadline = time.monotonic() + self.idle_seconds
    while not self.stop.is_set():
      ready, _, _ = select.select([self.fd], [], [], min(_POLL_S, max(0.0, deadline - time.monotonic())))
      if ready:
        return os.read(self.fd, size)  # b"" at the end of the pipe
      if time.monotonic() >= deadline:
        self.went_idle = True
        break
    return b""


@dataclasses.dataclass
class Source:
  """An opened source: its name (SOURCE as given), the PyAV input container (a video stream
  in it), the idle limit, the event that stops reading, and the pipe object for a pipe."""

  name: str
  container: Any
  idle_seconds: float
  stop: threading.Event
  pipe: _PipeInput | None = None

  @property
  def went_idle(self) -> bool:
    return self.pipe is not None and self.pipe.went_idle

  def close(self) -> None:
    """Closes the container, and a named pipe's descriptor (never standard input's)."""
    try:
      self.container.close()
    finally:
      if self.pipe is not None and self.pipe.fd != 0:
        os.close(self.pipe.fd)


def open_source(source: str, idle_seconds: float) -> Source:
  """SOURCE opened (see the module docstring), with a video stream; SourceError (one line) when
  FFmpeg cannot open it or no data comes within `idle_seconds`. A FIFO waits for its writer."""
  import av

  url, fmt, options = _address(source)
  stop, pipe = threading.Event(), None
  if url == "fd:":
    pipe = _PipeInput(0 if source == "-" else os.open(source, os.O_RDONLY), idle_seconds, stop)
  elif options.get("follow"):
    options["rw_timeout"] = str(int(idle_seconds * 1e6))  # follow=1 waits for the file to grow this long
  try:
    container = av.open(pipe or url, format=fmt, options=options, timeout=(idle_seconds, idle_seconds))
  except (av.error.FFmpegError, OSError, ValueError) as err:
    if pipe is not None and pipe.fd != 0:
      os.close(pipe.fd)
    if isinstance(err, av.error.ExitError) or (pipe is not None and pipe.went_idle):
      raise SourceError(f"--stream {source}: no video data within {idle_seconds:g} s") from None
    raise SourceError(f"--stream {source}: FFmpeg cannot open it as a video stream ({_reason(err)})") from None
  opened = Source(source, container, idle_seconds, stop, pipe)
  if not container.streams.video:
    opened.close()
    raise SourceError(f"--stream {source}: has no video stream")
  return opened


class FrameQueue:
  """A bounded FIFO of LiveFrames between the reader thread and the model: `put` on a full
  queue drops the oldest frame (counted in `dropped`); `close` marks the end of the stream."""

  def __init__(self, size: int):
    if size < 1:
      raise ValueError(f"queue size must be >= 1, got {size}")
    self.size, self.dropped = int(size), 0
    self._items: deque[LiveFrame] = deque()
    self._closed = False
    self._ready = threading.Condition()

  def put(self, frame: LiveFrame) -> None:
    with self._ready:
      if len(self._items) >= self.size:
        self._items.popleft()
        self.dropped += 1
      self._items.append(frame)
      self._ready.notify()

  def close(self) -> None:
    with self._ready:
      self._closed = True
      self._ready.notify_all()

  def take(self, most: int, timeout: float) -> list[LiveFrame] | None:
    """Up to `most` frames, oldest first, waiting at most `timeout` s for one: [] when none came,
    None once the stream has ended and every frame was taken."""
    with self._ready:
      if not self._items and not self._closed:
        self._ready.wait(timeout)
      if not self._items:
        return None if self._closed else []
      return [self._items.popleft() for _ in range(min(most, len(self._items)))]


class SourceReader(threading.Thread):
  """Decodes an opened source (`open_source`) into `queue` until the stream ends or `stop()`;
  `decoded` counts frames, `skipped_packets` packets that did not decode, `ended` says why it
  stopped (set when the thread finishes)."""

  def __init__(self, source: Source, queue_frames: int = 16, max_frames: int | None = None,
               max_seconds: float | None = None):
    super().__init__(name="videmo-live-source", daemon=True)  # a read blocked in FFmpeg must not hold the exit
    self.source, self.queue = source, FrameQueue(queue_frames)
    self.max_frames, self.max_seconds = max_frames, max_seconds
    self.decoded = self.skipped_packets = 0
    self.ended = ""
    self._first: float | None = None
    self._last = 0.0
    stream = source.container.streams.video[0]
    stream.codec_context.thread_type = "SLICE"  # frame threads would hold frames back, one per thread
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    self._interval = 1.0 / float(rate) if rate else 1.0 / 25.0

  def stop(self) -> None:
    self.source.stop.set()

  def _time(self, stamp: float | None) -> float:
    """The frame's time in seconds from the first frame's (see the module docstring)."""
    if self._first is None:
      self._first = stamp or 0.0
      return 0.0
    if stamp is not None and stamp - self._first > self._last:
      return stamp - self._first
    moved = self._last + self._interval
    if stamp is not None and self._last - (stamp - self._first) > _BACKWARD_RESET_S:
      self._first = stamp - moved
    return moved

  def _limit_reached(self, time_s: float) -> bool:
    if self.max_frames is not None and self.decoded >= self.max_frames:
      self.ended = f"stopped at max_frames={self.max_frames}"
    elif self.max_seconds is not None and time_s >= self.max_seconds:
      self.ended = f"stopped at max_seconds={self.max_seconds:g}"
    return bool(self.ended)

  def _emit(self, frame: Any) -> bool:
    """Queues one decoded frame; False once a limit or stop() says to read no more."""
    if self.source.stop.is_set():
      self.ended = "stopped"
      return False
    time_s = self._time(None if frame.time is None else float(frame.time))
    if self._limit_reached(time_s):
      return False
    self._last = time_s
    image = frame.to_ndarray(format="rgb24")
    turns = int(round((frame.rotation or 0) / 90)) % 4  # the display rotation: upright
    if turns:
      image = np.rot90(image, k=turns)
    self.queue.put(LiveFrame(self.decoded, time_s, np.ascontiguousarray(image), time.monotonic()))
    self.decoded += 1
    return True

  def _read(self) -> None:
    import av

    container = self.source.container
    stream = container.streams.video[0]
    idle = f"no new data for {self.source.idle_seconds:g} s"
    try:
      for packet in container.demux(stream):
        try:
          frames = packet.decode()
        except av.error.InvalidDataError:
          self.skipped_packets += 1
          continue
        if not all(self._emit(frame) for frame in frames):
          return
      self.ended = idle if self.source.went_idle else "stopped" if self.source.stop.is_set() else "end of stream"
      return
    except av.error.ExitError:
      self.ended = idle
    except av.error.EOFError:
      self.ended = "end of stream"
    except (av.error.FFmpegError, OSError, ValueError) as err:
      self.ended = f"the stream broke off ({_reason(err)})"
    try:  # the frames still inside the decoder
      for frame in stream.codec_context.decode(None):
        if not self._emit(frame):
          return
    except (av.error.FFmpegError, ValueError):
      pass

  def run(self) -> None:
    try:
      self._read()
    except Exception as err:  # noqa: BLE001  reported as the reason the stream ended, never a traceback
      self.ended = f"reading failed: {type(err).__name__}: {_reason(err)}"
    finally:
      self.queue.close()
      try:
        self.source.close()
      except Exception:  # noqa: BLE001  closing a broken stream
        pass
