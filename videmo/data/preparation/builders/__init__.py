"""TFDS builders of videmo's datasets; importing this package registers them with TFDS.

Each builder lives in its own folder (TFDS's layout, so `tfds build PATH` works too), writes
the shared clip schema of `videmo.data.schema`, and accepts `workers=N` (default: all cores).
"""

# Names of the datasets `videmo prepare --dataset` accepts. Each builder module is imported
# below so that TFDS registers it.
NAMES: tuple[str, ...] = ("synthemo", "afew", "video_folder")

from videmo.data.preparation.builders.synthemo import synthemo_dataset_builder  # noqa: E402,F401  (registers)
from videmo.data.preparation.builders.afew import afew_dataset_builder  # noqa: E402,F401  (registers)
from videmo.data.preparation.builders.video_folder import video_folder_dataset_builder  # noqa: E402,F401  (registers)
