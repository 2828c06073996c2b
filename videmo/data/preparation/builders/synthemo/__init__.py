"""SynthEmo: procedural face videos with known emotion, timing and regions (TFDS builder).

`videmo prepare --dataset synthemo/small` or `tfds build videmo/data/preparation/builders/synthemo --config small`.
The renderer is videmo.data.synthemo.render; docs/synthemo.md describes the data.
"""

from .synthemo_dataset_builder import Builder, SynthEmoConfig

__all__ = ["Builder", "SynthEmoConfig"]
