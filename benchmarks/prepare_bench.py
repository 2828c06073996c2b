"""Benchmark of face preparation: videmo's tracker against HOG detection on every full frame.

    python benchmarks/prepare_bench.py                      # the figures in docs/benchmarks.md
    python benchmarks/prepare_bench.py --clips 4 --frames 30 --workers 1   # a quick look

Input: AFEW-like clips made from a real photograph (skimage's astronaut) at AFEW's 720x576,
25 fps, MPEG-4 part 2 in .avi: the face moves, zooms (about 100-180 px wide) and turns a
little. Three kinds (`clip_kind`): "plain"; "cut" (every 4th clip from the 2nd: a cut to a
face-free shot for a fifth of the clip, then back to the person, elsewhere in the frame);
"small" (every 4th clip from the 4th: faces about 85-125 px, moving fast).

Compared, per frame, single process, the methods taking turns clip by clip (frames per
second per core, and the share of frames with a face):
  baseline  the simple pipeline: dlib's HOG detector on every full frame (upsample 0, the
            RGB frame as decoded), the largest face, 5-point landmarks, get_face_chip 256,
            JPEG. Also with the grey frame as the detector's input (a tuned variant), and
            with dlib's upsample=1 (face_recognition's default) on the first
            `--baseline_upsample` clips only (it is ~5x slower still).
  videmo    clip_processing.process_clip: the main-person survey (shot cuts, whole-frame
            detection every 10 frames and at each cut, face descriptors where they decide
            who is who), then detection on a downscaled frame, landmark tracking, detector
            confirmation every 5 frames (FaceOptions defaults), JPEG; and the same with the
            detector (on a crop around the face) in every frame.
Both include decoding and JPEG encoding, so the ratio is end to end. The share of frames
with a face is printed per clip kind too, and what the survey, the cut detector and the
face descriptor cost.

Scaling: the clips (each `--scaling_repeats` times) through a pool of 1..N worker
processes (the pool `videmo prepare` uses, largest videos first), timed after the workers
have started (steady state), and end to end. Efficiency is
frames/s with N workers over N times frames/s with one. On a machine shared with other jobs
the wall-clock figures depend on their load (printed); the CPU-time figures (frames per
CPU-second of the workers) show the cost of running in parallel without that noise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import sys
import time
from pathlib import Path


KINDS = ("plain", "cut", "small")


def clip_kind(i: int) -> str:
  """The kind of the benchmark's clip i: every 4th from the 2nd cuts, every 4th from the 4th
  has small faces, the others are plain."""
  return {1: "cut", 3: "small"}.get(i % 4, "plain")


def make_clips(folder: Path, clips: int, frames: int) -> list[Path]:
  """AFEW-like .avi clips of the astronaut photograph (see the module docstring)."""
  import skimage.data

  sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/photo_video.py
  import photo_video

  from videmo.data import video_io

  astronaut, coffee = skimage.data.astronaut(), skimage.data.coffee()
  paths = []
  for i in range(clips):
    zoom = (0.95, 1.25) if clip_kind(i) == "small" else (1.2, 2.0)
    motion = photo_video.PhotoMotion(scale=zoom, rotation=8.0, travel=0.4, cycles=frames / 100)
    video = photo_video.photo_clip(astronaut, frames, 576, 720, motion, seed=i)
    if clip_kind(i) == "cut":  # a cut to a face-free shot for a fifth of the clip, and back
      start, length = frames // 2, frames // 5
      video[start:start + length] = photo_video.photo_clip(
          coffee, length, 576, 720, photo_video.PhotoMotion(scale=(0.9, 1.1)), anchor=(300, 200), seed=i)
    path = folder / f"clip_{i:03d}.avi"
    video_io.write_video(path, video, fps=25)
    paths.append(path)
  return paths


def baseline_clip(path: Path, models, upsample: int = 0, luma: bool = False) -> tuple[int, int]:
  """HOG detection on every full frame: (frames, frames with a face). `luma`: give the
  detector the grey frame (dlib converts RGB itself otherwise, more slowly)."""
  import dlib

  from videmo.data.preparation import faces
  from videmo.data import schema, video_io

  frames = found = 0
  with video_io.VideoReader(path) as video:
    for frame in video:
      frames += 1
      rects = models.detector(faces.to_gray(frame) if luma else frame, upsample)
      if len(rects):
        rect = max(rects, key=lambda r: r.area())
        shape = models.predictor(frame, rect)
        schema.encode_jpeg(dlib.get_face_chip(frame, shape, size=256, padding=0.25))
        found += 1
  return frames, found


def videmo_clip(path: Path, models, options) -> tuple[int, int]:
  """videmo's per-clip preparation: (frames, frames with a face)."""
  from videmo.data.preparation import clip_processing

  task = clip_processing.ClipTask(path.stem, os.fspath(path), path.name, 0, "bench")
  result = clip_processing.process_clip(task, options, models)
  return result.num_source_frames, result.frames_with_face


def single_core(paths, models, options, upsample_paths) -> dict:
  """Each method on each clip, in one process. The methods take turns clip by clip, so a
  change in a shared machine's speed during the run weighs on all of them alike."""
  import dataclasses

  every_frame = dataclasses.replace(options, face=dataclasses.replace(options.face, redetect_every=1))
  methods = [("videmo", lambda p: videmo_clip(p, models, options), paths),
             ("videmo_detect_every_frame", lambda p: videmo_clip(p, models, every_frame), paths),
             ("baseline", lambda p: baseline_clip(p, models, 0), paths),
             ("baseline_luma_input", lambda p: baseline_clip(p, models, 0, luma=True), paths),
             ("baseline_upsample1", lambda p: baseline_clip(p, models, 1), upsample_paths)]
  totals = {name: {"clips": 0, "seconds": 0.0, "cpu": 0.0, "frames": 0, "found": 0, "kinds": {}}
            for name, _, subset in methods if subset}
  for i, path in enumerate(paths):
    for name, run, subset in methods:
      if path not in subset:
        continue
      start, cpu_start = time.perf_counter(), time.process_time()
      n, f = run(path)
      total = totals[name]
      total["clips"] += 1
      total["seconds"] += time.perf_counter() - start
      total["cpu"] += time.process_time() - cpu_start
      total["frames"], total["found"] = total["frames"] + n, total["found"] + f
      kind = total["kinds"].setdefault(clip_kind(i), [0, 0])
      kind[0], kind[1] = kind[0] + n, kind[1] + f
  rows = {}
  for name, total in totals.items():
    frames, seconds, cpu = total["frames"], total["seconds"], total["cpu"]
    rows[name] = {"clips": total["clips"], "frames": frames, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                  "frames_per_s": round(frames / seconds, 1), "frames_per_cpu_s": round(frames / cpu, 1),
                  "face_share": round(total["found"] / frames, 4),
                  "face_share_by_kind": {k: round(f / n, 4) for k, (n, f) in sorted(total["kinds"].items())}}
  return rows


def survey_costs(paths, models, options) -> dict:
  """What the main-person survey's parts cost, in CPU milliseconds, on the decoded frames:
  the cut detector per frame, the whole survey per clip (by kind), and one face descriptor;
  with the number of descriptors computed per clip (by kind, survey and follow pass)."""
  import numpy as np

  from videmo.data import video_io
  from videmo.data.preparation import clip_tracks, face_tracker, identity, shot_cuts

  out = {"cut_detector_ms_per_frame": 0.0, "survey_ms_per_clip": {}, "descriptors_per_clip": {}}
  cut_cpu = frames_seen = 0
  for i, path in enumerate(paths):
    frames = list(video_io.VideoReader(path))
    cpu = time.process_time()
    detector = shot_cuts.CutDetector(options.face.cut_threshold)
    for frame in frames:
      detector(frame)
    cut_cpu, frames_seen = cut_cpu + time.process_time() - cpu, frames_seen + len(frames)
    cpu = time.process_time()
    found = clip_tracks.survey(frames, models, options.face)
    out["survey_ms_per_clip"].setdefault(clip_kind(i), []).append(1000 * (time.process_time() - cpu))
    plan = clip_tracks.MainFacePlan(found, models, options.face) if found.main is not None else None
    for _ in face_tracker.align_video(frames, models, options.face, plan):
      pass
    follow = plan.recognizer.descriptors if plan else 0
    out["descriptors_per_clip"].setdefault(clip_kind(i), []).append(found.descriptors + follow)
  out["cut_detector_ms_per_frame"] = round(1000 * cut_cpu / max(frames_seen, 1), 3)
  chip = identity.face_chip(models, frames[0], np.array([300, 200, 400, 300.]))
  cpu = time.process_time()
  for _ in range(5):
    identity.descriptor(models, chip)
  out["descriptor_ms"] = round(1000 * (time.process_time() - cpu) / 5, 1)
  out["survey_ms_per_clip"] = {k: round(float(np.mean(v)), 1) for k, v in sorted(out["survey_ms_per_clip"].items())}
  out["descriptors_per_clip"] = {k: round(float(np.mean(v)), 2) for k, v in sorted(out["descriptors_per_clip"].items())}
  return out


def _task(path: str) -> tuple[int, float]:
  """One clip in a pool worker: (frames, CPU seconds it took)."""
  from videmo.data.preparation import clip_pool, clip_processing

  cpu = time.process_time()
  task = clip_processing.ClipTask(Path(path).stem, path, Path(path).name, 0, "bench")
  result = clip_processing.process_clip(task, clip_pool._WorkerState.options, clip_pool._WorkerState.models)
  return result.num_source_frames, time.process_time() - cpu


def _warm(_):
  time.sleep(0.2)  # long enough that every worker takes some: all are started and initialised
  return os.getpid()


def scaling(paths, options, workers_list, cache_root: Path, repeats: int) -> list[dict]:
  """Throughput with 1..N worker processes: steady state (pool started) and end to end.
  Each clip is prepared `repeats` times (as different files), largest first, as
  `videmo prepare` orders its work, so the last clip does not leave workers idle for long."""
  from videmo.data.preparation import clip_cache, clip_pool, clip_processing

  copies = []
  for repeat in range(repeats):
    for path in paths:
      copy = cache_root / "videos" / f"{path.stem}_{repeat}{path.suffix}"
      copy.parent.mkdir(parents=True, exist_ok=True)
      copy.write_bytes(path.read_bytes())
      copies.append(copy)
  paths = sorted(copies, key=lambda p: -p.stat().st_size)
  rows = []
  for workers in workers_list:
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=clip_pool._init_worker, initargs=(options, os.fspath(cache_root))) as pool:
      pool.map(_warm, range(workers * 4), chunksize=1)  # all workers started and initialised
      start = time.perf_counter()
      done = list(pool.imap_unordered(_task, [os.fspath(p) for p in paths], chunksize=1))
      steady = time.perf_counter() - start
    frames, cpu = sum(n for n, _ in done), sum(c for _, c in done)
    tasks = [clip_processing.ClipTask(p.stem, os.fspath(p), p.name, 0, "bench") for p in paths]
    cache = clip_cache.ClipCache(cache_root / f"w{workers}")
    start = time.perf_counter()
    clip_pool.prepare_clips(tasks, options, cache, workers=workers, progress=False)
    end_to_end = time.perf_counter() - start
    rows.append({"workers": workers, "frames": frames, "steady_frames_per_s": round(frames / steady, 1),
                 "worker_frames_per_cpu_s": round(frames / cpu, 1),
                 "end_to_end_frames_per_s": round(frames / end_to_end, 1)})
  base = rows[0]["steady_frames_per_s"] / rows[0]["workers"]
  base_cpu = rows[0]["worker_frames_per_cpu_s"]
  for row in rows:
    row["efficiency"] = round(row["steady_frames_per_s"] / (base * row["workers"]), 3)
    row["cpu_efficiency"] = round(row["worker_frames_per_cpu_s"] / base_cpu, 3)
  return rows


def main() -> None:
  from videmo.data.preparation import clip_pool, clip_processing, faces

  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--clips", type=int, default=12, help="number of clips (default 12)")
  parser.add_argument("--frames", type=int, default=75, help="frames per clip (default 75, 3 s at 25 fps)")
  parser.add_argument("--workers", type=int, nargs="*", default=None,
                      help="pool sizes for the scaling run (default: 1 .. all cores)")
  parser.add_argument("--baseline_upsample", type=int, default=2,
                      help="clips timed with dlib's upsample=1 baseline too (0: skip; default 2)")
  parser.add_argument("--scaling_repeats", type=int, default=3,
                      help="each clip is prepared this many times in the scaling run (default 3)")
  parser.add_argument("--only", choices=("single", "scaling"), default=None,
                      help="run only the single-process comparison or only the scaling run")
  parser.add_argument("--json", default=None, help="also write the results to this JSON file")
  args = parser.parse_args()

  cores = clip_pool.default_workers()
  workers_list = args.workers or list(range(1, cores + 1))
  options = clip_processing.ClipOptions()
  load = os.getloadavg() if hasattr(os, "getloadavg") else None
  with tempfile.TemporaryDirectory() as tmp:
    paths = make_clips(Path(tmp), args.clips, args.frames)
    models = faces.load_face_models()
    single = {} if args.only == "scaling" else single_core(paths, models, options, paths[:args.baseline_upsample])
    costs = {} if args.only == "scaling" else survey_costs(paths, models, options)
    scale = [] if args.only == "single" else scaling(paths, options, workers_list, Path(tmp) / "cache",
                                                     args.scaling_repeats)
  results = {
      "machine": f"{platform.processor() or platform.machine()}, {cores} cores usable",
      "load_average_before": load, "load_average_after": os.getloadavg() if load else None,
      "clips": args.clips, "frames_per_clip": args.frames, "frame_size": "720x576",
      "single_core": single, "survey_costs": costs, "scaling": scale,
  }
  print(f"machine: {results['machine']}; load average before {load}, after {results['load_average_after']}")
  print(f"{args.clips} clips x {args.frames} frames at 720x576 (25 fps MPEG-4 .avi)")
  if single:
    _print_single(single)
    _print_costs(costs)
  if scale:
    _print_scaling(scale)
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


def _print_single(single: dict) -> None:
  videmo, baseline = single["videmo"], single["baseline"]
  print("\n| method | frames/s (one process) | frames per CPU-second | frames with a face | speed-up (wall, CPU) |")
  print("|---|---|---|---|---|")
  for name, row in single.items():
    print(f"| {name} | {row['frames_per_s']} | {row['frames_per_cpu_s']} | {100 * row['face_share']:.1f}% "
          f"| {row['frames_per_s'] / baseline['frames_per_s']:.2f}x, "
          f"{row['frames_per_cpu_s'] / baseline['frames_per_cpu_s']:.2f}x |")
  print("\n| clip kind | frames with a face: videmo | baseline |")
  print("|---|---|---|")
  for kind in KINDS:
    if kind in videmo["face_share_by_kind"]:
      print(f"| {kind} | {100 * videmo['face_share_by_kind'][kind]:.1f}% "
            f"| {100 * baseline['face_share_by_kind'][kind]:.1f}% |")
  print(f"\nspeed-up per core: {videmo['frames_per_s'] / baseline['frames_per_s']:.2f}x wall, "
        f"{videmo['frames_per_cpu_s'] / baseline['frames_per_cpu_s']:.2f}x CPU time; face share "
        f"{100 * videmo['face_share']:.1f}% (videmo) vs {100 * baseline['face_share']:.1f}% (baseline)")


def _print_costs(costs: dict) -> None:
  kinds = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())
  print(f"survey (CPU ms per clip, frames decoded beforehand): {kinds(costs['survey_ms_per_clip'])}; "
        f"cut detector {costs['cut_detector_ms_per_frame']} ms per frame; one face descriptor "
        f"{costs['descriptor_ms']} ms, computed per clip: {kinds(costs['descriptors_per_clip'])}")


def _print_scaling(scale: list) -> None:
  print("\n| workers | frames/s (steady) | efficiency | frames per worker CPU-second | CPU efficiency "
        "| frames/s (end to end) |")
  print("|---|---|---|---|---|---|")
  for row in scale:
    print(f"| {row['workers']} | {row['steady_frames_per_s']} | {row['efficiency']:.2f} "
          f"| {row['worker_frames_per_cpu_s']} | {row['cpu_efficiency']:.2f} | {row['end_to_end_frames_per_s']} |")


if __name__ == "__main__":
  main()
