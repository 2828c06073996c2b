"""SynthEmo: procedural face videos with known emotion, timing and regions (docs/synthemo.md).

The renderer (`render`, drawing in `drawing`, face regions in `regions`, distractor frames in
`distractors`), a stored clip's ground truth recomputed from its parameters (`truth`) and
`videmo render-clip` (`render_clip`); the TFDS builder that writes SynthEmo datasets is
videmo.data.preparation.builders.synthemo.
"""
