"""Benchmark of `videmo predict --stream`: latency from a frame to its prediction, and sustained frames/s.

    python benchmarks/stream_bench.py --checkpoint runs/synthemo                 # 20 s at 25 fps, 640x480
    python benchmarks/stream_bench.py --checkpoint runs/synthemo --fps 30 --seconds 60 --size 1280x720

The stream: the astronaut photograph moving about (tests/photo_video.py: a real face, found
by dlib), H.264 (x264, tune zerolatency: no frame held back by the encoder) in MPEG-TS, encoded
ahead of time, then written into `videmo predict --stream - --json` (a new process, started
first; feeding starts once it says it is reading) in real time: each frame's bytes at its
timestamp, as a camera gives them. Measured in this process:

  latency   each prediction: the wall time its line was read from the command's stdout minus
            the wall time the frame its window ends at (`frame`) was written: median and p95
            (decoding, FFmpeg's input buffering, faces, network and pooling; not the encoder).
            Two frame intervals of it are the format's: FFmpeg's MPEG-TS demuxer passes a video
            packet on when the next one starts (a sender's `-omit_video_pes_length 0` saves
            that one) and its H.264 parser ends a frame when the next frame's data comes;
  lag       the command's own `lag_s` per prediction (that frame leaving the decoder to the
            prediction): median and p95;
  frames/s  frames the model saw per second of stream, and frames dropped (a sustained rate
            equal to the stream's, with none dropped, means the command keeps up).
Prints a markdown table and the exact commands.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # photo_video: the moving photograph


def frames_loop(size: tuple[int, int], fps: int, seconds: float) -> list[np.ndarray]:
  """[n] RGB frames [H, W, 3] uint8 of the astronaut moving: a 4 s cycle forward then back, repeated."""
  import skimage.data

  import photo_video

  width, height = size
  cycle = photo_video.photo_clip(skimage.data.astronaut(), 4 * fps, height, width,
                                 photo_video.PhotoMotion(scale=(1.2, 1.6), rotation=6.0, travel=0.3), seed=3)
  loop = list(cycle) + list(cycle[::-1])
  return [loop[i % len(loop)] for i in range(int(round(seconds * fps)))]


class _Bytes(io.RawIOBase):
  """Where the muxer writes: the bytes, and the size after each frame."""

  def __init__(self):
    self.chunks: list[bytes] = []
    self.size = 0

  def writable(self) -> bool:
    return True

  def write(self, data) -> int:
    self.chunks.append(bytes(data))
    self.size += len(data)
    return len(data)


def encode(frames: list[np.ndarray], fps: int) -> tuple[bytes, list[int]]:
  """(the MPEG-TS bytes, the byte offset where each frame's data ends) of H.264 zerolatency frames."""
  import av

  out = _Bytes()
  ends = []
  with av.open(out, "w", format="mpegts", container_options={"flush_packets": "1"}) as container:
    stream = container.add_stream("libx264", rate=Fraction(fps))
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    stream.options = {"tune": "zerolatency", "preset": "veryfast", "crf": "20"}
    stream.codec_context.gop_size = 2 * fps
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
      ends.append(out.size)
    for packet in stream.encode():
      container.mux(packet)
  ends[-1] = out.size
  return b"".join(out.chunks), ends


def machine() -> str:
  model = platform.processor()
  try:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
      if line.startswith("Model name:"):
        model = line.split(":", 1)[1].strip()
  except (OSError, subprocess.CalledProcessError):
    pass
  return f"{model}, {os.cpu_count()} cores, load average {[round(v, 2) for v in os.getloadavg()]}"


def run(args: argparse.Namespace, command: list[str]) -> dict:
  """Feeds the stream into `command` in real time; returns what was measured."""
  width, height = (int(v) for v in args.size.split("x"))
  data, ends = encode(frames_loop((width, height), args.fps, args.seconds), args.fps)
  started = time.time()
  process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=REPO)
  errors: list[str] = []
  reading = threading.Event()

  def read_stderr():
    for line in io.TextIOWrapper(process.stderr, encoding="utf-8"):
      errors.append(line.rstrip())
      if "videmo predict: reading" in line:
        reading.set()
    reading.set()

  received: list[tuple[float, dict]] = []

  def read_stdout():
    for line in io.TextIOWrapper(process.stdout, encoding="utf-8"):
      received.append((time.time(), json.loads(line)))

  threads = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
  for thread in threads:
    thread.start()
  reading.wait()
  ready_s = time.time() - started
  sent: list[float] = []
  begin, offset = time.monotonic(), 0
  try:
    for i, end in enumerate(ends):
      time.sleep(max(0.0, begin + i / args.fps - time.monotonic()))
      process.stdin.write(data[offset:end])
      process.stdin.flush()
      sent.append(time.time())
      offset = end
    process.stdin.close()
  except BrokenPipeError:
    pass
  rc = process.wait(timeout=600)
  for thread in threads:
    thread.join(timeout=10)
  rolling = [(t, r) for t, r in received if r["status"] == "ok" and not r["final"] and r["frame"] < len(sent)]
  latency = [t - sent[r["frame"]] for t, r in rolling]
  lag = [r["lag_s"] for _, r in rolling]
  last = received[-1][1] if received else {}
  return dict(rc=rc, ready_s=ready_s, frames=len(ends), bytes=len(data), predictions=len(rolling), latency=latency,
              lag=lag, seen=last.get("frames_seen", 0), dropped=last.get("frames_dropped", 0),
              decoded=last.get("frames_decoded", 0), closing=next((e for e in errors if "stream ended" in e), ""),
              errors=errors)


def report(args: argparse.Namespace, r: dict, command: list[str], where: str) -> str:
  def middle_p95(values):
    if not values:
      return "n/a"
    return f"{np.median(values):.3f} s / {np.percentile(values, 95):.3f} s"

  stream_s = r["frames"] / args.fps
  rows = [
      ("stream", f"{args.size} H.264 (zerolatency) in MPEG-TS, {args.fps} fps, {stream_s:.0f} s, "
                 f"{8 * r['bytes'] / stream_s / 1e6:.1f} Mbit/s, written in real time into a pipe"),
      ("rolling predictions", f"{r['predictions']} (window {args.window_seconds:g} s, every {args.every:g} s)"),
      ("**latency**, frame written → prediction read (median / p95)", middle_p95(r["latency"])),
      ("lag_s, frame decoded → prediction (median / p95)", middle_p95(r["lag"])),
      ("**frames seen by the model per second of stream**",
       f"{r['seen'] / stream_s:.1f} of {args.fps} ({r['seen']} of {r['decoded']} decoded)"),
      ("frames dropped", f"{r['dropped']} ({100 * r['dropped'] / max(r['decoded'], 1):.1f}%)"),
      ("start-up, command start → reading (restore, compile)", f"{r['ready_s']:.1f} s"),
  ]
  lines = [where, "", "| what | value |", "|---|---|"] + [f"| {what} | {value} |" for what, value in rows]
  lines += ["", f"bench: python benchmarks/stream_bench.py {' '.join(sys.argv[1:])}".rstrip(),
            f"command: {' '.join(['videmo'] + command[3:])}", f"  {r['closing']}"]
  if r["rc"] != 0:
    lines += [f"the command exited with status {r['rc']}:"] + [f"  {e}" for e in r["errors"][-5:]]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--checkpoint", required=True, help="a work directory of `videmo train`")
  parser.add_argument("--fps", type=int, default=25)
  parser.add_argument("--seconds", type=float, default=20.0, help="stream length")
  parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the frames (even)")
  parser.add_argument("--window_seconds", type=float, default=4.0)
  parser.add_argument("--every", type=float, default=1.0)
  parser.add_argument("--queue_frames", type=int, default=16)
  parser.add_argument("--batch_frames", type=int, default=32)
  args = parser.parse_args(argv)
  if args.fps < 1 or not args.seconds > 0 or "x" not in args.size:
    raise SystemExit("stream_bench: need --fps >= 1, --seconds > 0 and --size WIDTHxHEIGHT")
  command = [sys.executable, "-m", "videmo.main", "predict", "--stream", "-", "--checkpoint", args.checkpoint,
             "--json", "--window_seconds", f"{args.window_seconds:g}", "--every", f"{args.every:g}",
             "--queue_frames", str(args.queue_frames), "--batch_frames", str(args.batch_frames)]
  where = f"{machine()} (before the run)"
  results = run(args, command)
  print(report(args, results, command, where))
  return 0 if results["rc"] == 0 else 1


if __name__ == "__main__":
  sys.exit(main())
