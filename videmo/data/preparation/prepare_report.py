"""The preparation report: what a dataset build kept, what it could not, and why.

`build_report` turns the clips' summaries and the listing issues into a JSON-ready dict,
written as `prepare_report.json` next to the shards (`videmo prepare` prints its summary).

    summary           counts: clips listed / written, frames decoded / with a face / without
                      / written / found by the detector itself, and one count per list below
    splits            the same counts per split
    options           the preparation options (face size, padding, tracking, policy, ...)
    clips_without_face    clips where no frame has a face (not written): source, frames
    unreadable_files      files that could not be decoded at all (not written): source, error
    empty_videos          zero-length videos (not written)
    truncated_videos      videos written that break off; the frames before the damage were kept
                          (each clip is in one list only, under its cause: a clip cut short with
                          no face in what remains is a clip without a face)
    not_video_files       files or folders in the tree that are neither videos nor frames
    unknown_class_folders class folders or labels that are not classes (their clips skipped)
    other_issues          loose files, missing files named by annotations, duplicates, ...
    clips             per written clip: id, source, split, label, fps, frames decoded, with a
                      face, written, and the indices of the frames without a face
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

from videmo.data.preparation import clip_processing, clip_sources

REPORT_NAME = "prepare_report.json"

_ISSUE_LISTS = {
    clip_sources.NOT_VIDEO: "not_video_files",
    clip_sources.UNKNOWN_CLASS: "unknown_class_folders",
}


def _counts(results: Sequence[clip_processing.ClipResult]) -> dict:
  ok = [r for r in results if r.status == clip_processing.OK]
  decoded = sum(r.num_source_frames for r in results)
  with_face = sum(r.frames_with_face for r in results)
  return {
      "clips_listed": len(results),
      "clips_written": len(ok),
      "frames_decoded": decoded,
      "frames_with_face": with_face,
      "frames_without_face": decoded - with_face,
      "frames_found_by_detector": sum(r.frames_detected for r in results),
      "frames_written": sum(len(r.face_found) for r in ok),
  }


def build_report(dataset: str, results: Sequence[clip_processing.ClipResult],
                 issues: Sequence[clip_sources.ListingIssue], options: clip_processing.ClipOptions | None,
                 class_names: Sequence[str], note: str | None = None) -> dict:
  """The report of one build: `results` are the clips' summaries (ClipResult without frames)."""
  by_status = lambda status: [r for r in results if r.status == status]
  lists = {
      "clips_without_face": [{"source": r.source, "split": r.split, "frames": r.num_source_frames, "error": r.message}
                             for r in by_status(clip_processing.NO_FACE)],
      "unreadable_files": [{"source": r.source, "split": r.split, "error": r.message}
                           for r in by_status(clip_processing.UNREADABLE)],
      "empty_videos": [{"source": r.source, "split": r.split, "error": r.message}
                       for r in by_status(clip_processing.EMPTY)],
      "truncated_videos": [{"source": r.source, "split": r.split, "frames_decoded": r.num_source_frames,
                            "error": r.message} for r in results if r.truncated and r.status == clip_processing.OK],
      "not_video_files": [],
      "unknown_class_folders": [],
      "other_issues": [],
  }
  for issue in issues:
    entry = {"path": issue.path, "error": issue.message}
    key = _ISSUE_LISTS.get(issue.kind, "other_issues")
    if key == "other_issues":
      entry["kind"] = issue.kind
    lists[key].append(entry)
  summary = _counts(results)
  summary.update({key: len(value) for key, value in lists.items()})
  splits = {}
  for split in sorted({r.split for r in results}):
    splits[split] = _counts([r for r in results if r.split == split])
  report = {"dataset": dataset, "summary": summary, "splits": splits}
  if note:
    report["note"] = note
  report["class_names"] = list(class_names)
  report["options"] = dataclasses.asdict(options) if options is not None else None
  report.update(lists)
  report["clips"] = [{
      "clip_id": r.clip_id, "source": r.source, "split": r.split, "label": class_names[r.label],
      "fps": r.fps, "frames_decoded": r.num_source_frames, "frames_with_face": r.frames_with_face,
      "frames_written": len(r.face_found), "missing_frames": r.missing_frames,
  } for r in results if r.status == clip_processing.OK]
  return report


def write_report(report: dict, path: str | os.PathLike) -> Path:
  """Writes the report as indented JSON (via a temporary file); returns its path."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
  os.replace(tmp, path)
  return path


def summary_lines(report: dict, examples: int = 5) -> list[str]:
  """Human-readable lines: the counts, each followed by the first `examples` entries of its list.

  Works on any builder's report: the items of a "summary" dict are printed first, then the
  other top-level scalars and lists (by length, with examples); "clips", "splits",
  "options" and "class_names" are left to the JSON file.
  """
  lines: list[str] = []
  summary = report.get("summary") if isinstance(report.get("summary"), dict) else {}

  def add_examples(value: list) -> None:
    for entry in value[:examples]:
      lines.append(f"    - {_describe(entry)}")
    if len(value) > examples:
      lines.append(f"    ... and {len(value) - examples} more")

  for key, value in summary.items():
    lines.append(f"  {key}: {value}")
    if isinstance(report.get(key), list):
      add_examples(report[key])
  for key, value in report.items():
    if key in summary or key in ("summary", "clips", "splits", "options", "class_names", "dataset"):
      continue
    if isinstance(value, (list, tuple)):
      lines.append(f"  {key}: {len(value)}")
      add_examples(list(value))
    elif not isinstance(value, dict):
      lines.append(f"  {key}: {value}")
  return lines


def _describe(entry) -> str:
  if not isinstance(entry, dict):
    return str(entry)
  where = entry.get("source") or entry.get("path") or entry.get("clip_id") or ""
  why = entry.get("error") or entry.get("message") or ""
  extra = "" if why else ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("source", "path"))
  return f"{where}: {why or extra}" if where else (why or extra)
