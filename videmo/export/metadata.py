"""What an exported network carries besides its graph: the facts a user needs to feed it and read it.

Every value is a string (ONNX metadata_props are string to string); lists and dicts are JSON:

  videmo_export     format version of these fields ("1")
  classes           JSON [E]: class names, in the order of log_probs' last axis
  crop_size         C: the frames are C x C crops
  face_size         S: crops are the centre C x C of faces aligned at S x S (what the run trained on)
  input_convention  JSON: how the uint8 pixels are normalised inside (channel_order, scale, mean, std)
  inputs            JSON {name: shape}: frames uint8 [1, T, C, C, 3] RGB, mask bool [1, T]
  outputs           JSON {name: shape}, in the graph's output order
  spatial, num_heads, attention_grid (JSON [gh, gw]: L = gh * gw), pooling, temperature
  checkpoint, step  the step folder exported and its training step

`--format onnx` stores them in the model's metadata_props
(`onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map`); `--format stablehlo`
writes them as OUT.json beside the file.
"""

from __future__ import annotations

import json

from videmo.export import network

VERSION = "1"


def describe(run: network.ExportableRun) -> dict[str, str]:
  """The fields above for an exportable run."""
  c, t = run.crop_size, network.FRAMES_SYMBOL
  return {
      "videmo_export": VERSION,
      "classes": json.dumps(list(run.class_names)),
      "crop_size": str(c),
      "face_size": str(run.face_size),
      "input_convention": json.dumps(run.convention.to_dict()),
      "inputs": json.dumps({"frames": f"uint8 [1, {t}, {c}, {c}, 3] RGB face crops",
                            "mask": f"bool [1, {t}] (True = real frame)"}),
      "outputs": json.dumps(run.output_shapes()),
      "spatial": run.model.spatial,
      "num_heads": str(run.model.num_heads),
      "attention_grid": json.dumps(list(run.grid)),
      "pooling": run.model.temporal,
      "temperature": repr(float(run.model.temperature)),
      "checkpoint": run.checkpoint,
      "step": str(run.step),
  }
