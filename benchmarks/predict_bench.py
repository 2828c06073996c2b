"""Benchmark of `videmo predict` on a folder: videos/s, frames/s, and where the time goes.

    python benchmarks/predict_bench.py --checkpoint runs/synthemo            # the figures in docs/benchmarks.md
    python benchmarks/predict_bench.py --checkpoint runs/synthemo --clips 5 --aligned   # a quick look

Input: `--clips` SynthEmo clips written as .mp4 by `videmo render-clip`'s code (H.264,
`--size` square, 25 fps), of different lengths (`--min_frames` up in even steps to
`--max_frames`), the seven classes in turn. SynthEmo's faces are drawn; dlib's HOG detector
finds them at 256x256 (most frames), so the default runs the whole path of a raw video;
`--aligned` skips detection as `videmo predict --aligned` does.

Measured, in one process, after a first pass that compiles (reported on its own), each
measurement `--repeats` times, interleaved, medians reported:
  decoding   PyAV alone (`video_io.read_video`), each video once; and the time spent inside
             the video reader during the faces path (`DecodeClock`: the faces path reads a
             video more than once, a survey of its faces and then the main face followed);
  faces      `Predictor.faces` (decoding, dlib detection and tracking, alignment, JPEG,
             crop) minus its time inside the video reader, one video after the other;
  model      the network and pooling on the crops already made: one video at a time
             (`predict_faces`) and all the clips' frames packed (`predict_faces_many`);
  stream     `videmo predict`'s loop (`stream.predict_stream`) end to end: faces in the
             background thread (prefetch 8), and without it (prefetch 0) for comparison,
             each with its own split (decoding, faces, model, waiting);
  command    `videmo predict FOLDER --checkpoint ... --timing --quiet` as a user runs it
             (a new process: start-up, restoring, compiling included), once.
`--trunk_width_divisor 1` times VGG16's full width instead (random weights, the checkpoint's
faces and crops), where the model is a large share of the time and the overlap shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_clips(folder: Path, clips: int, size: int, min_frames: int, max_frames: int) -> list[Path]:
  """`clips` SynthEmo .mp4 clips of lengths min_frames..max_frames (see the module docstring)."""
  from videmo.data.schema import AFEW_EMOTIONS
  from videmo.data.synthemo import render_clip

  paths = []
  for i in range(clips):
    frames = min_frames + round(i * (max_frames - min_frames) / max(clips - 1, 1))
    label = AFEW_EMOTIONS[i % len(AFEW_EMOTIONS)]
    path = folder / f"{i:02d}_{label}.mp4"
    if not path.exists():
      render_clip.write_clip(path, label, seed=i, size=size, num_frames=frames)
    paths.append(path)
  return paths


def timed(fn, *args, **kwargs):
  start = time.perf_counter()
  out = fn(*args, **kwargs)
  return out, time.perf_counter() - start


class DecodeClock:
  """Seconds spent inside `VideoReader` iteration (PyAV decoding and conversion to RGB), in any
  thread, while active: wraps `VideoReader.__iter__` and times each frame's `next`, so the
  work done with a frame between two of them is not counted."""

  def __init__(self):
    self.seconds = 0.0
    self._lock = threading.Lock()

  def __enter__(self):
    from videmo.data import video_io

    self._original = original = video_io.VideoReader.__iter__
    clock = self

    def timed_iter(reader):
      frames = original(reader)
      while True:
        start = time.perf_counter()
        try:
          frame = next(frames)
        except StopIteration:
          return
        finally:
          with clock._lock:
            clock.seconds += time.perf_counter() - start
        yield frame

    video_io.VideoReader.__iter__ = timed_iter
    return self

  def __exit__(self, *exc):
    from videmo.data import video_io

    video_io.VideoReader.__iter__ = self._original


def widened(predictor, width_divisor: int):
  """The same predictor (faces, crops, classes) with the trunk at 1/width_divisor of VGG16's
  width and random weights: the model's share of the time as a wider trained model has it."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from videmo.predict.predictor import Predictor

  model = predictor.model.clone(trunk_width_divisor=width_divisor)
  c = predictor.crop_size
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1, c, c, 3)), jnp.ones((1, 1), bool))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda leaf: (np.sqrt(2.0 / np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.01)
                        * rng.standard_normal(leaf.shape).astype(np.float32), shapes["params"])
  return Predictor.from_parts(model, jax.device_put(params), predictor.convention, predictor.class_names,
                              predictor.clip_options, c, batch_frames=predictor.batch_frames)


def machine() -> dict:
  """CPU model, cores and load averages (the figures depend on what else runs)."""
  model = platform.processor()
  try:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
      if line.startswith("Model name:"):
        model = line.split(":", 1)[1].strip()
  except (OSError, subprocess.CalledProcessError):
    pass
  return dict(cpu=model, cores=os.cpu_count(), load=[round(v, 2) for v in os.getloadavg()])


def run(args: argparse.Namespace) -> dict:
  import jax

  from videmo.data import video_io
  from videmo.predict import stream
  from videmo.predict.predictor import Predictor

  folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="predict_bench_"))
  folder.mkdir(parents=True, exist_ok=True)
  paths = make_clips(folder, args.clips, args.size, args.min_frames, args.max_frames)
  results: dict = dict(machine_before=machine(), backend=jax.default_backend(), folder=str(folder),
                       clips=len(paths), size=args.size, aligned=args.aligned, batch_frames=args.batch_frames,
                       repeats=args.repeats)
  predictor = Predictor(args.checkpoint, batch_frames=args.batch_frames)
  if args.trunk_width_divisor:
    predictor = widened(predictor, args.trunk_width_divisor)
    results["model"] = f"random weights, trunk_width_divisor={args.trunk_width_divisor}"
  jobs = [stream.VideoJob(p) for p in paths]
  names = [p.name for p in paths]

  cold = stream.StreamTiming()
  list(stream.predict_stream(predictor, jobs, aligned=args.aligned, timing=cold))  # compiles; dlib loads
  results["first_pass"] = cold.__dict__.copy()

  runs: dict[str, list] = {}
  for _ in range(args.repeats):  # interleaved, so a change in the machine's load touches every variant
    _, seconds = timed(lambda: [video_io.read_video(p)[0] for p in paths])
    runs.setdefault("decoding_alone_s", []).append(seconds)
    with DecodeClock() as clock:
      made, seconds = timed(lambda: [predictor.faces(p, aligned=args.aligned) for p in paths])
    runs.setdefault("faces_path_s", []).append(seconds)
    runs.setdefault("decoding_in_faces_path_s", []).append(clock.seconds)
    runs.setdefault("faces_s", []).append(seconds - clock.seconds)
    _, seconds = timed(lambda: [predictor.predict_faces(f, n) for f, n in zip(made, names)])
    runs.setdefault("model_one_by_one_s", []).append(seconds)
    passes = predictor.forward_passes
    _, seconds = timed(predictor.predict_faces_many, made, names)
    runs.setdefault("model_packed_s", []).append(seconds)
    results["packed_forward_passes"] = predictor.forward_passes - passes
    for prefetch in (8, 0):
      timing = stream.StreamTiming()
      with DecodeClock() as clock:
        predictions = list(stream.predict_stream(predictor, jobs, aligned=args.aligned, prefetch=prefetch,
                                                 timing=timing))
      runs.setdefault(f"stream_prefetch_{prefetch}", []).append(dict(timing.__dict__, decoding_s=clock.seconds))
  results["runs"] = runs
  results["median"] = {key: statistics.median(v if not isinstance(v[0], dict) else [r["wall_s"] for r in v])
                       for key, v in runs.items()}
  results.update(source_frames=sum(len(f.frame_index) + len(f.frames_without_face) for f in made),
                 decoded_frames=cold.source_frames, frames_seen=sum(len(f.frame_index) for f in made),
                 predicted=sum(p.ok for p in predictions))

  if args.trunk_width_divisor:  # the command runs the trained checkpoint, not this model
    results.update(command="", command_s=float("nan"), command_timing="", command_rc=0, machine_after=machine())
    return results
  command = [sys.executable, "-m", "videmo.main", "predict", str(folder), "--checkpoint", args.checkpoint,
             "--batch_frames", str(args.batch_frames), "--timing", "--quiet"] + (["--aligned"] if args.aligned else [])
  out, command_s = timed(subprocess.run, command, capture_output=True, text=True, cwd=REPO)
  results.update(command=" ".join(["videmo"] + command[3:]), command_s=command_s,
                 command_timing=out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "",
                 command_rc=out.returncode, machine_after=machine())
  return results


def report(r: dict) -> str:
  """The figures as a Markdown table (what docs/benchmarks.md shows): medians of the repeats."""
  n, frames, m = r["clips"], r["decoded_frames"], r["median"]

  def rate(seconds):
    return f"{n / seconds:.2f} | {frames / seconds:.0f}"

  def middle(name):  # the median stream run's own split
    ordered = sorted(r["runs"][name], key=lambda run: run["wall_s"])
    return ordered[len(ordered) // 2]

  faces_what = "resize, JPEG, crop" if r["aligned"] else "dlib detection and tracking, alignment, JPEG, crop"
  rows = [
      ("decoding alone (PyAV, each video once)", m["decoding_alone_s"]),
      ("decoding inside the faces path (every pass over each video)", m["decoding_in_faces_path_s"]),
      (f"faces: {faces_what} (the faces path minus its decoding)", m["faces_s"]),
      ("model, one video at a time", m["model_one_by_one_s"]),
      (f"model, all frames packed ({r['packed_forward_passes']} passes of {r['batch_frames']})", m["model_packed_s"]),
      ("**`predict_stream`, faces in the background (prefetch 8)**", m["stream_prefetch_8"]),
      ("`predict_stream`, one after the other (prefetch 0)", m["stream_prefetch_0"]),
      ("first pass (compiling, loading dlib)", r["first_pass"]["wall_s"]),
  ]
  if r["command"]:
    rows.append(("`videmo predict` command, a new process (start-up, restore, compile)", r["command_s"]))
  before, after = r["machine_before"], r["machine_after"]
  lines = [f"{n} clips, {frames} frames decoded, {r['frames_seen']} seen by the model ({r['predicted']} with a face "
           f"found); {before['cpu']}, {before['cores']} cores, backend {r['backend']}; load average "
           f"{before['load']} before, {after['load']} after; medians of {r['repeats']} interleaved repeats"
           + (f"; model: {r['model']}" if r.get("model") else ""),
           "", "| what | seconds | videos/s | decoded frames/s |", "|---|---|---|---|"]
  lines += [f"| {what} | {seconds:.2f} | {rate(seconds)} |" for what, seconds in rows]
  lines.append("")
  for prefetch in (8, 0):
    s = middle(f"stream_prefetch_{prefetch}")
    lines.append(f"stream, prefetch {prefetch} (its median run): decoding {s['decoding_s']:.2f} s, faces "
                 f"{s['faces_s'] - s['decoding_s']:.2f} s, model {s['model_s']:.2f} s ({s['forward_passes']} passes), "
                 f"main thread waiting for faces {s['waiting_s']:.2f} s, wall {s['wall_s']:.2f} s")
  if r["command"]:
    lines += [f"command: {r['command']}", f"  {r['command_timing']}"]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--checkpoint", required=True, help="a work directory of `videmo train` (configs/synthemo.py)")
  parser.add_argument("--clips", type=int, default=20)
  parser.add_argument("--size", type=int, default=256, help="frame side of the rendered clips (even)")
  parser.add_argument("--min_frames", type=int, default=24)
  parser.add_argument("--max_frames", type=int, default=176)
  parser.add_argument("--batch_frames", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each measurement (medians)")
  parser.add_argument("--trunk_width_divisor", type=int, default=0,
                      help="time a model of this trunk width with random weights instead (1 = VGG16's; "
                           "0: the checkpoint's own model)")
  parser.add_argument("--aligned", action="store_true", help="skip detection (the frames are the faces)")
  parser.add_argument("--folder", default=None, help="where the clips are written (kept; default: a temporary one)")
  parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
  args = parser.parse_args(argv)
  if args.clips < 1 or args.repeats < 1 or not 1 <= args.min_frames <= args.max_frames:
    raise SystemExit("predict_bench: need --clips >= 1, --repeats >= 1 and 1 <= --min_frames <= --max_frames")
  results = run(args)
  print(report(results))
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
