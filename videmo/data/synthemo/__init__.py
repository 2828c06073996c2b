"""SynthEmo: procedural face videos with known emotion, timing and regions (docs/synthemo.md).

The renderer (`render`, drawing in `drawing`) and `videmo render-clip` (`render_clip`); the
TFDS builder that writes SynthEmo datasets is videmo.data.preparation.builders.synthemo.
"""
