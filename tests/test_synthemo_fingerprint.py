"""SynthEmo's data is pinned: a fingerprint per builder config, recorded under the dataset version.

Every published SynthEmo number hangs on the renderer's exact output, which hangs on the order
of its random draws. TFDS rebuilds nothing for a version it has built already, so a change to
the pixels, labels or ground truth under the same version would silently mix old and new data.
For every config of the synthemo builder this test hashes:

* every clip's job (`clip_jobs`: seed, split, index, label, size, frame range, JPEG quality,
  expression set, window share, and each later knob of render.ClipJob that is not at its
  default) for both splits: the labels and clip counts of the whole split;
* the first few clips of each split as rendered (`render.render_job`, before JPEG/PNG
  encoding): frames [F, S, S, 3] uint8, intensity [F] float32, region_mask [F, S, S] bool, and
  label, window, apex, num_frames, source and the clip's key.

and compares with FINGERPRINTS[Builder.VERSION]. A knob added to ClipJob must render, at its
default, what was rendered before it existed; hashing it only when set keeps every recorded
fingerprint valid, so this test proves it. Beside them, synthemo/tiny as `videmo prepare` builds
it (shards after JPEG/PNG encoding and TFDS's serialisation, dataset_info.json, features.json)
is pinned file by file (BUILT_TINY): what the builder writes, not only what it renders.

When a change to them is intended: bump Builder.VERSION, add its RELEASE_NOTES entry and a line
to the changelog in docs/synthemo.md, and add the new fingerprints under the new version
(`python tests/test_synthemo_fingerprint.py` prints them), leaving the old version's as they
were. BUILT_TINY also changes with the encoders' versions (Pillow's libjpeg-turbo and zlib,
array_record's zstd), which the project pins.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from tiny import REPO
from videmo.data.preparation.builders.synthemo import Builder
from videmo.data.preparation.builders.synthemo.synthemo_dataset_builder import clip_jobs
from videmo.data.synthemo import render

# Rendered clips hashed per split (the whole split's jobs are hashed too): a few seconds in all.
CLIPS = {"default": 1}  # 256x256 and up to 80 frames: one clip per split
CLIPS_PER_SPLIT = 3
STILLS_PER_SPLIT = 8

FINGERPRINTS: dict[str, dict[str, str]] = {
    # 1.0.0: renders of default, small and tiny as written at e6e076f; stills (3ac75a0),
    # tables (70bc328) and stills_pairs (3100a42) as first written (docs/synthemo.md, Versions).
    "1.0.0": {
        "default": "b08c47be406cfaaf",
        "small": "7b8ffe90ab6c2493",
        "tiny": "88431df72d4553be",
        "stills": "3cc1099dfc0ca5f8",
        "stills_pairs": "c366a6a1131210e1",
        "tables": "5b8e4bdff490b6e1",
        # brief, faint and distractors: the signal's knobs (docs/synthemo.md), as first written.
        "brief": "908fc4fddead967d",
        "faint": "53843c2b40498f0d",
        "distractors": "686ffe3aecd7689a",
        # The temporal phase diagram's cells (docs/synthemo_when_where.md), as first written.
        "when_w05_d0": "1ef0ba13cf7c25fc",
        "when_w10_d0": "a3725a77463d2c22",
        "when_w25_d0": "89cb5fb080d810a5",
        "when_w50_d0": "5e445b38b4642c7f",
        "when_w100_d0": "2206a40a676cde6f",
        "when_w05_d30": "0823ae2dd9154608",
        "when_w10_d30": "6216fcfb2d530060",
        "when_w25_d30": "8f0901c417315a7b",
        "when_w50_d30": "512bc9610790bcb0",
        "when_w100_d30": "e2b8cc690a5ad0aa",
    },
}

# synthemo/tiny built by `videmo prepare` (conftest's synthemo_tiny): SHA-256 (16 hex digits) of
# every file of <data_dir>/synthemo/tiny/<version>, as built at 2155247.
BUILT_TINY: dict[str, dict[str, str]] = {
    "1.0.0": {
        "dataset_info.json": "79780b1a0b02d8fd",
        "features.json": "91ae98a79d333762",
        "label.labels.txt": "817a2cdd755ea318",
        "synthemo-train.array_record-00000-of-00001": "a076f5176de91d62",
        "synthemo-validation.array_record-00000-of-00001": "2a38af50c12adfa5",
    },
}

_ARRAYS = ("frames", "intensity", "region_mask")
_METADATA = ("label", "window", "apex", "num_frames", "source")


def _clips_hashed(config) -> int:
  if config.max_frames == 1:
    return STILLS_PER_SPLIT
  return CLIPS.get(config.name, CLIPS_PER_SPLIT)


def job_key(job: render.ClipJob) -> tuple:
  """The job as hashed: its fields up to window_share, then (name, value) of each later field
  that differs from its default (module doc)."""
  fields = render.ClipJob._fields
  first = fields.index("window_share") + 1
  later = tuple((name, getattr(job, name)) for name in fields[first:]
                if getattr(job, name) != render.ClipJob._field_defaults[name])
  return tuple(job)[:first] + later


def fingerprint(config) -> str:
  """16 hex digits of SHA-256 over the config's jobs and its first rendered clips (module doc)."""
  digest = hashlib.sha256()
  for split in ("train", "validation"):
    jobs = clip_jobs(config, split)
    digest.update(repr([job_key(job) for job in jobs]).encode())
    for job in jobs[:_clips_hashed(config)]:
      clip = render.render_job(job)
      digest.update(render.clip_key(job).encode())
      for name in _ARRAYS:
        array = np.ascontiguousarray(clip[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}".encode())
        digest.update(array.tobytes())
      digest.update(repr([(name, clip[name]) for name in _METADATA]).encode())
  return digest.hexdigest()[:16]


def _configs():
  return [pytest.param(config, id=config.name) for config in Builder.BUILDER_CONFIGS]


@pytest.mark.parametrize("config", _configs())
def test_every_config_renders_what_its_version_recorded(config):
  version = str(Builder.VERSION)
  assert version in FINGERPRINTS, (f"synthemo {version} has no fingerprints: add them to FINGERPRINTS "
                                   "(python tests/test_synthemo_fingerprint.py prints them)")
  expected = FINGERPRINTS[version].get(config.name)
  assert expected, f"synthemo/{config.name} has no fingerprint under {version}: add it to FINGERPRINTS"
  actual = fingerprint(config)
  assert actual == expected, (
      f"synthemo/{config.name} renders differently from what version {version} recorded ({actual} != "
      f"{expected}): if intended, bump Builder.VERSION, add RELEASE_NOTES and a docs/synthemo.md changelog "
      f"line, and record the new fingerprints under the new version")


def test_a_knob_at_its_default_is_not_hashed_and_a_set_knob_is():
  job = clip_jobs(Builder.builder_configs["tiny"], "train")[0]
  assert job_key(job) == tuple(job)[:len(job_key(job))] and len(job_key(job)) < len(job)
  assert job_key(job._replace(apex_intensity=0.5))[-1] == ("apex_intensity", 0.5)


def built_files(directory: Path) -> dict[str, str]:
  """{file name: 16 hex digits of its SHA-256} of every file in a built dataset's version folder."""
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(directory.iterdir()) if p.is_file()}


def test_the_built_tiny_dataset_is_byte_identical_to_the_recorded_build(synthemo_tiny):
  version = str(Builder.VERSION)
  actual = built_files(Path(synthemo_tiny) / "synthemo" / "tiny" / version)
  assert actual == BUILT_TINY.get(version), (
      f"synthemo/tiny {version} as built now differs from the recorded build: {actual}; if intended, bump "
      f"Builder.VERSION and record the files under it (module doc)")


def test_every_recorded_config_exists_and_the_version_has_notes_and_a_changelog_line():
  version = str(Builder.VERSION)
  assert set(FINGERPRINTS.get(version, {})) == {config.name for config in Builder.BUILDER_CONFIGS}
  assert set(FINGERPRINTS) <= set(Builder.RELEASE_NOTES), "every fingerprinted version needs RELEASE_NOTES"
  assert version in Builder.RELEASE_NOTES
  changelog = (REPO / "docs" / "synthemo.md").read_text().split("## Versions", 1)
  assert len(changelog) == 2, "docs/synthemo.md needs a '## Versions' section (the changelog)"
  assert re.search(rf"^- `{re.escape(version)}`", changelog[1], re.M), f"no changelog line for {version}"


if __name__ == "__main__":  # print the current fingerprints, to record them under a new version
  for config in Builder.BUILDER_CONFIGS:
    print(f'        "{config.name}": "{fingerprint(config)}",')
