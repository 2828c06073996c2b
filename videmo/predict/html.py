"""`index.html`: every video's prediction and figure on one page that works offline.

The page sits in the report folder next to `figures/`; images are linked by relative paths
and the style is inline, with no JavaScript, so the folder can be copied, zipped or opened
from disk anywhere. Layout: a summary line, a table of all videos in report order (each
row links to its entry), then one entry per video: prediction, top-3, true class when
known, any message, and its figure.
"""

from __future__ import annotations

import dataclasses
import os
from html import escape
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from videmo.predict import record as record_lib

INDEX_NAME = "index.html"

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
.wrong { color: #d62728; } .right { color: #2ca02c; } .none { color: #888; }
.entry { border-top: 2px solid #ccc; margin-top: 2em; padding-top: 0.5em; }
.entry img { max-width: 100%; height: auto; }
.message { color: #8a5a00; }
.banner { background: #fff3cd; border: 1px solid #e0b100; padding: 0.6em 1em; font-weight: bold; }
"""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One video on the page: its prediction and its figure (a path relative to the page; None: no figure)."""

  prediction: record_lib.Prediction
  figure: str | None


def relative_url(path: str) -> str:
  """A path relative to the page as a URL ('figures/0001_a b.png' -> 'figures/0001_a%20b.png');
  an absolute path or a URL is refused, so the page never points outside its folder."""
  posix = Path(path).as_posix()
  if Path(path).is_absolute() or posix.startswith("/") or ":" in posix.split("/")[0] or ".." in posix.split("/"):
    raise ValueError(f"report: figure paths must be relative to the page and inside its folder, got {path!r}")
  return quote(posix)


def _verdict(prediction: record_lib.Prediction) -> tuple[str, str]:
  """(css class, text) of a prediction against its true class, if any."""
  if prediction.true_label is None:
    return "", ""
  if prediction.ok and prediction.label == prediction.true_label:
    return "right", "right"
  return "wrong", "wrong"


def page(entries: Sequence[Entry], title: str, note: str = "") -> str:
  """The HTML text of the page."""
  ok = [e for e in entries if e.prediction.ok]
  counts = {status: sum(e.prediction.status == status for e in entries) for status in record_lib.STATUSES}
  summary = (f"{len(entries)} videos: {counts[record_lib.OK]} predicted, {counts[record_lib.NO_FACE]} without "
             f"a face, {counts[record_lib.UNREADABLE]} unreadable")
  known = [e for e in entries if e.prediction.true_label is not None]
  if known:
    right = sum(_verdict(e.prediction)[0] == "right" for e in known)
    summary += f"; {right} of {len(known)} right ({100 * right / len(known):.1f}%)"
  if ok:
    summary += f"; model step {ok[0].prediction.step}"
  rows, blocks = [], []
  for number, entry in enumerate(entries, 1):
    p = entry.prediction
    anchor = f"v{number}"
    css, verdict = _verdict(p)
    label = escape(p.label) if p.ok else f'<span class="none">{escape(p.status.replace("_", " "))}</span>'
    probability = f"{100 * p.probability:.1f}%" if p.ok else ""
    true = escape(p.true_label) if p.true_label is not None else ""
    rows.append(f'<tr class="{css}"><td>{number}</td><td><a href="#{anchor}">{escape(p.name)}</a></td>'
                f"<td>{label}</td><td>{probability}</td><td>{true}</td><td>{verdict}</td></tr>")
    lines = [f'<div class="entry" id="{anchor}">', f"<h2>{number}. {escape(p.name)}</h2>"]
    if p.ok:
      top = ", ".join(f"{escape(name)} {100 * prob:.1f}%" for name, prob in p.top(3))
      lines.append(f'<p class="{css}"><b>{escape(p.label)}</b> {probability} &nbsp; (top-3: {top})'
                   + (f" &nbsp; true: <b>{true}</b>" if true else "") + "</p>")
      lines.append(f"<p>{len(p.frame_index)} frames seen of {p.num_source_frames}; "
                   f"{len(p.frames_without_face)} without a face</p>")
    else:
      lines.append(f'<p class="none">{escape(p.status.replace("_", " "))}'
                   + (f" &nbsp; true: <b>{true}</b>" if true else "") + "</p>")
    if p.message:
      lines.append(f'<p class="message">{escape(p.message)}</p>')
    if entry.figure:
      lines.append(f'<img src="{escape(relative_url(entry.figure))}" alt="{escape(p.name)}" loading="lazy">')
    lines.append("</div>")
    blocks.append("\n".join(lines))
  return "\n".join([
      "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{escape(title)}</title>",
      f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{escape(title)}</h1>", *_banners(entries),
      f"<p>{escape(summary)}</p>", f"<p>{escape(note)}</p>" if note else "",
      "<table><tr><th>#</th><th>video</th><th>prediction</th><th>p</th><th>true</th><th></th></tr>",
      *rows, "</table>", *blocks, "</body>", "</html>", ""])


def _banners(entries: Sequence[Entry]) -> list[str]:
  """A banner per synthetic training dataset among the models of the page (record_lib.SYNTHETIC_NOTICE)."""
  datasets = dict.fromkeys(e.prediction.trained_on or "a synthetic dataset"
                           for e in entries if e.prediction.synthetic_training)
  return [f'<p class="banner">Note: {escape(record_lib.SYNTHETIC_NOTICE.format(dataset=d))}.</p>' for d in datasets]


def write_index(out_dir: str | os.PathLike, entries: Sequence[Entry], title: str, note: str = "") -> Path:
  """Write OUT_DIR/index.html; returns its path."""
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / INDEX_NAME
  path.write_text(page(entries, title, note), encoding="utf-8")
  return path
