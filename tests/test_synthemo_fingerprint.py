"""SynthEmo's data is pinned: a fingerprint per builder config, recorded under the dataset version.

Every published SynthEmo number hangs on the renderer's exact output, which hangs on the order
of its random draws. TFDS rebuilds nothing for a version it has built already, so a change to
the pixels, labels or ground truth under the same version would silently mix old and new data.
For every config of the synthemo builder this test hashes:

* every clip's job (`clip_jobs`: seed, split, index, label, size, frame range, JPEG quality,
  expression set, window share) for both splits: the labels and clip counts of the whole split;
* the first few clips of each split as rendered (`render.render_job`, before JPEG/PNG
  encoding): frames [F, S, S, 3] uint8, intensity [F] float32, region_mask [F, S, S] bool, and
  label, window, apex, num_frames, source and the clip's key.

and compares with FINGERPRINTS[Builder.VERSION]. When a change to them is intended: bump
Builder.VERSION, add its RELEASE_NOTES entry and a line to the changelog in docs/synthemo.md,
and add the new fingerprints under the new version (`python tests/test_synthemo_fingerprint.py`
prints them), leaving the old version's as they were.
"""

from __future__ import annotations

import hashlib
import re

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
    },
}

_ARRAYS = ("frames", "intensity", "region_mask")
_METADATA = ("label", "window", "apex", "num_frames", "source")


def _clips_hashed(config) -> int:
  if config.max_frames == 1:
    return STILLS_PER_SPLIT
  return CLIPS.get(config.name, CLIPS_PER_SPLIT)


def fingerprint(config) -> str:
  """16 hex digits of SHA-256 over the config's jobs and its first rendered clips (module doc)."""
  digest = hashlib.sha256()
  for split in ("train", "validation"):
    jobs = clip_jobs(config, split)
    digest.update(repr([tuple(job) for job in jobs]).encode())
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
