"""Write VGG16 weights in the published formats, without PyTorch, Caffe or MATLAB (tests only).

  write_pth          torch.save's containers: the zip (`<archive>/data.pkl` + `data/<key>`) and the
                     legacy stream (magic, version, sys info, pickle, keys, storages); the pickle is
                     produced by a pickler that emits torch's globals (_rebuild_tensor_v2,
                     FloatStorage) by name, exactly as torch.save writes them.
  write_mat          MatConvNet: scipy.io.savemat of a `layers` cell array of structs with
                     `weights` = {filters [H,W,Cin,Cout], biases} and `meta.normalization`
                     (or the older top-level `net` struct).
  write_caffemodel   a Caffe NetParameter in protobuf wire format, written byte by byte: V1
                     `layers` with legacy 4-D blob dims (as VGG_FACE.caffemodel) or new `layer`
                     messages with BlobShape.

Weights are given once, in the PyTorch layout of an RGB network (`random_vgg16`): conv
[C_out, C_in, 3, 3], fc dense [out, in] with fc6's input flattened C, H, W; each writer derives
its own format's layout from that.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io

from vgg_reference import BLOCKS, NAMES

Layers = dict[str, tuple[np.ndarray, np.ndarray]]


def random_vgg16(
    seed: int = 0,
    k: int = 2,
    fc_sizes: tuple[int, int, int] = (64, 48, 10)) -> tuple[Layers, Layers]:
  """He-initialised full-size VGG16 convs (OIHW) and small fc layers (dense [out, in])."""
  rng = np.random.default_rng(seed)
  conv, c_in = {}, 3
  for name, c_out in zip(NAMES, (c for block in BLOCKS for c in block)):
    w = rng.standard_normal((c_out, c_in, 3, 3), np.float32) * np.float32(np.sqrt(2.0 / (9 * c_in)))
    conv[name] = (w, (0.1 * rng.standard_normal(c_out)).astype(np.float32))
    c_in = c_out
  fc, n_in = {}, 512 * k * k
  for name, n_out in zip(("fc6", "fc7", "fc8"), fc_sizes):
    w = rng.standard_normal((n_out, n_in), np.float32) * np.float32(np.sqrt(2.0 / n_in))
    fc[name] = (w, (0.1 * rng.standard_normal(n_out)).astype(np.float32))
    n_in = n_out
  return conv, fc


def to_bgr(conv: Layers) -> Layers:
  """The same network for BGR input: conv1_1's input channels reversed."""
  out = dict(conv)
  w, b = conv["conv1_1"]
  out["conv1_1"] = (np.ascontiguousarray(w[:, ::-1]), b)
  return out


# ------------------------------------------------------------------------------------------------
# PyTorch


def vggface_state_dict(conv: Layers, fc: Layers | None) -> dict[str, np.ndarray]:
  """vgg_face_dag.pth's keys: conv1_1.weight ... conv5_3.bias, fc6.weight [N6, 512*k*k] ..."""
  sd = collections.OrderedDict()
  for name, (w, b) in list(conv.items()) + list((fc or {}).items()):
    sd[f"{name}.weight"], sd[f"{name}.bias"] = w, b
  return sd


def torchvision_state_dict(conv: Layers, fc: Layers | None) -> dict[str, np.ndarray]:
  """torchvision's VGG16 keys: features.{0,2,5,...,28}.weight/.bias, classifier.{0,3,6}.*."""
  sd = collections.OrderedDict()
  for name, i in zip(NAMES, (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)):
    sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = conv[name]
  for name, i in zip(("fc6", "fc7", "fc8"), (0, 3, 6)):
    if fc:
      sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"] = fc[name]
  return sd


class _Global:
  """A torch global (module, name) to be pickled by name; torch itself is never imported."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __call__(self, *args):  # pickle requires reduce functions to be callable
    raise TypeError("stand-in for a torch function")


class _Storage:
  def __init__(self, key: str, data: np.ndarray):
    self.key, self.data = key, np.ascontiguousarray(data).reshape(-1)

  @property
  def type_name(self) -> str:
    return {np.float32: "FloatStorage", np.float64: "DoubleStorage", np.float16: "HalfStorage",
            np.int64: "LongStorage"}[self.data.dtype.type]


class _Tensor:

  def __init__(self, storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int,
                                                                                           ...]):
    self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

  def __reduce__(self):
    return (_Global("torch._utils", "_rebuild_tensor_v2"),
            (self.storage, self.offset, tuple(self.shape), tuple(self.stride), False,
             collections.OrderedDict()))


class _TorchPickler(pickle._Pickler
                   ):  # the pure-Python pickler, whose dispatch table can be extended
  dispatch = dict(pickle._Pickler.dispatch)

  def __init__(self, file, legacy: bool):
    super().__init__(file, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      pid = ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.data.size)
      return pid + (None,) if self.legacy else pid
    return None

  def _save_global(self, obj: _Global):
    self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))

  dispatch[_Global] = _save_global


def _tensors(state_dict: dict[str, np.ndarray], share_storage: bool, first_key: int):
  """(tensor stand-ins by name, storages): with share_storage, a layer's weight and bias share one
  storage (bias at an offset) and 2-D weights are stored transposed (non-contiguous strides)."""
  storages, tensors, key = [], collections.OrderedDict(), first_key
  names = list(state_dict)
  i = 0
  while i < len(names):
    name = names[i]
    a = np.asarray(state_dict[name])
    pair = names[i + 1] if i + 1 < len(names) else None
    if share_storage and name.endswith(".weight") and pair == name[:-6] + "bias":
      b = np.asarray(state_dict[pair])
      if a.ndim == 2:  # store W^T contiguously, describe W with strides (1, rows of W^T)
        flat = np.concatenate([a.T.reshape(-1), b])
        stride = (1, a.shape[0])
      else:
        flat = np.concatenate([a.reshape(-1), b])
        stride = tuple(int(s) // a.itemsize for s in np.ascontiguousarray(a).strides)
      st = _Storage(str(key), flat)
      tensors[name] = _Tensor(st, 0, a.shape, stride)
      tensors[pair] = _Tensor(st, a.size, b.shape, (1,))
      storages.append(st)
      i += 2
    else:
      st = _Storage(str(key), a)
      c = np.ascontiguousarray(a)
      tensors[name] = _Tensor(st, 0, a.shape,
                              tuple(int(s) // max(a.itemsize, 1) for s in c.strides))
      storages.append(st)
      i += 1
    key += 1
  return tensors, storages


def write_pth(path: Path, state_dict: dict[str, np.ndarray], container: str = "zip",
              share_storage: bool = False) -> Path:
  """Write a state dict as torch.save would: container 'zip' (torch >= 1.6), 'legacy'
  (0.1.10 to 1.5) or 'tar' (before 0.1.10)."""
  if container == "tar":
    return _write_tar_pth(Path(path), state_dict)
  legacy = container == "legacy"
  tensors, storages = _tensors(state_dict, share_storage, first_key=140000 if legacy else 0)
  tensors._metadata = collections.OrderedDict([("", {"version": 1})])  # as Module.state_dict() sets
  body = _pickle(tensors, legacy)
  path = Path(path)
  if legacy:
    with open(path, "wb") as f:
      pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
      pickle.dump(1001, f, protocol=2)
      pickle.dump({"protocol_version": 1001, "little_endian": True,
                   "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
      f.write(body)
      keys = sorted(s.key for s in storages)
      pickle.dump(keys, f, protocol=2)
      by_key = {s.key: s for s in storages}
      for k in keys:
        f.write(struct.pack("<q", by_key[k].data.size))
        f.write(by_key[k].data.astype(by_key[k].data.dtype.newbyteorder("<")).tobytes())
  else:
    prefix = path.stem + "/"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
      zf.writestr(prefix + "data.pkl", body)
      zf.writestr(prefix + "byteorder", "little")
      for s in storages:
        zf.writestr(f"{prefix}data/{s.key}",
                    s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())
      zf.writestr(prefix + "version", "3\n")
      zf.writestr(prefix + ".data/serialization_id", "0123456789")
  return path


class _TarPickler(_TorchPickler):
  """The tar container's object pickle: each tensor becomes a persistent id, its key as a string."""

  def persistent_id(self, obj):
    return str(obj.key) if isinstance(obj, _TarTensor) else None


class _TarTensor:
  def __init__(self, key: int):
    self.key = key


def _write_tar_pth(path: Path, state_dict: dict[str, np.ndarray]) -> Path:
  """torch < 0.1.10: a tar of `sys_info`, `pickle`, `tensors` and `storages` (one storage per
  tensor, keyed like id(); the tensor records name their storage)."""
  storages, tensors, obj = io.BytesIO(), io.BytesIO(), collections.OrderedDict()
  pickle.dump(len(state_dict), storages, protocol=2)
  pickle.dump(len(state_dict), tensors, protocol=2)
  for i, (name, a) in enumerate(state_dict.items()):
    a = np.ascontiguousarray(a, np.float32)
    tensor_key, storage_key = 1000 + 2 * i, 1001 + 2 * i
    storages.write(_pickle((storage_key, "cpu", _Global("torch", "FloatStorage")), legacy=False))
    storages.write(struct.pack("<q", a.size) + a.astype("<f4").tobytes())
    tensors.write(_pickle((tensor_key, storage_key, _Global("torch", "FloatTensor")), legacy=False))
    strides = [s // 4 for s in a.strides]
    tensors.write(struct.pack("<i", a.ndim) + b"\0\0\0\0" + struct.pack(f"<{a.ndim}q", *a.shape)
                  + struct.pack(f"<{a.ndim}q", *strides) + struct.pack("<q", 0))
    obj[name] = _TarTensor(tensor_key)
  pickle.dump([], storages, protocol=2)  # no storage views
  body = io.BytesIO()
  _TarPickler(body, legacy=False).dump(obj)
  sys_info = {"protocol_version": 1000, "little_endian": True,
              "type_sizes": {"short": 2, "int": 4, "long": 8}}
  members = {"sys_info": pickle.dumps(sys_info, protocol=2), "pickle": body.getvalue(),
             "tensors": tensors.getvalue(), "storages": storages.getvalue()}
  with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def _pickle(obj, legacy: bool) -> bytes:
  buf = io.BytesIO()
  _TorchPickler(buf, legacy).dump(obj)
  return buf.getvalue()


def write_raw_pickle_pth(path: Path, payload: bytes) -> Path:
  """A zip-format .pth whose data.pkl is `payload` (for hostile-pickle tests)."""
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", payload)
    zf.writestr("archive/version", "3\n")
  return Path(path)


# ------------------------------------------------------------------------------------------------
# MatConvNet


def _cell(items) -> np.ndarray:
  cell = np.empty((1, len(items)), dtype=object)
  for i, item in enumerate(items):
    cell[0, i] = item
  return cell


def write_mat(path: Path, conv: Layers, fc: Layers | None, average_rgb, class_names=None,
              layout: str = "simplenn", conv_names=NAMES) -> Path:
  """MatConvNet VGG-Face: layout 'simplenn' (vgg-face.mat: `layers`, `meta`), 'net' (the older
  vgg_face.mat: one struct `net` with layers, normalization, classes) or 'dagnn' (DagNN's
  saveobj: `layers` naming their `params` 'conv1_1f', 'conv1_1b', a `params` struct array)."""
  column = layout == "net"  # the older release stores biases as columns and a 3x1 mean

  def conv_layer(name, filters, biases, pad):
    biases = biases.reshape(-1, 1) if column else biases.reshape(1, -1)
    return {"name": name, "type": "conv", "weights": _cell([filters.astype(np.float32), biases]),
            "size": np.array(filters.shape, float), "pad": np.array([pad] * 4, float),
            "stride": np.array([1.0, 1.0]), "dilate": 1.0, "precious": 0.0, "opts": _cell([])}

  layers, i = [], 0
  for b, block in enumerate(BLOCKS):
    for j in range(len(block)):
      name = conv_names[i]
      w, bias = conv[NAMES[i]]
      layers.append(conv_layer(name, w.transpose(2, 3, 1, 0), bias, 1.0))
      layers.append({"name": f"relu{b + 1}_{j + 1}", "type": "relu", "leak": 0.0, "precious": 0.0})
      i += 1
    layers.append({"name": f"pool{b + 1}", "type": "pool", "method": "max",
                   "pool": np.array([2.0, 2.0]), "stride": np.array([2.0, 2.0]),
                   "pad": np.zeros(4), "precious": 0.0, "opts": _cell([])})
  if fc:
    n_in = fc["fc6"][0].shape[1]
    k = int(round(np.sqrt(n_in // 512)))
    w6, b6 = fc["fc6"]
    layers.append(conv_layer("fc6", w6.reshape(-1, 512, k, k).transpose(2, 3, 1, 0), b6, 0.0))
    layers.append({"name": "relu6", "type": "relu", "leak": 0.0, "precious": 0.0})
    for name in ("fc7", "fc8"):
      w, bias = fc[name]
      layers.append(conv_layer(name, w.T[None, None], bias, 0.0))
      if name == "fc7":
        layers.append({"name": "relu7", "type": "relu", "leak": 0.0, "precious": 0.0})
    layers.append({"name": "prob", "type": "softmax", "precious": 0.0})
  average = np.asarray(average_rgb, np.float32)
  normalization = {"averageImage": average.reshape(3, 1) if column else average.reshape(1, 1, 3),
                   "imageSize": np.array([224.0, 224.0, 3.0]), "interpolation": "bilinear",
                   "keepAspect": 1.0}
  classes = {"name": _cell([n.replace(" ", "_") for n in class_names or []]),
             "description": _cell(list(class_names or []))}
  meta = {"normalization": normalization, "classes": classes,
          "inputs": {"name": "data", "size": np.array([224.0, 224, 3, 10])}}
  if layout == "net":
    content = {"net": {"layers": _cell(layers), "normalization": normalization, "classes": classes}}
  elif layout == "dagnn":
    dag_layers, params = [], []
    for layer in layers:
      entry = {"name": layer["name"], "type": "dagnn." + layer["type"].capitalize(),
               "inputs": _cell(["x"]), "outputs": _cell(["y"]), "params": _cell([]), "block": {}}
      if layer["type"] == "conv":
        names = [layer["name"] + "f", layer["name"] + "b"]
        entry["params"] = _cell(names)
        params += [{"name": n, "value": v, "learningRate": 1.0, "weightDecay": 1.0}
                   for n, v in zip(names, layer["weights"][0])]
      dag_layers.append(entry)
    content = {"layers": _cell(dag_layers), "params": _cell(params), "meta": meta,
               "vars": _cell([])}
  else:
    content = {"layers": _cell(layers), "meta": meta}
  scipy.io.savemat(str(path), content, do_compression=False)
  return Path(path)


# ------------------------------------------------------------------------------------------------
# Caffe


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    byte = n & 0x7F
    n >>= 7
    if n:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _key(number: int, wire: int) -> bytes:
  return _varint(number << 3 | wire)


def _bytes_field(number: int, payload: bytes) -> bytes:
  return _key(number, 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
  return _key(number, 0) + _varint(value)


def _blob(a: np.ndarray, legacy_dims: bool, packed: bool = True) -> bytes:
  """BlobProto: legacy num/channels/height/width (fields 1-4) or BlobShape (7); data (5)."""
  a = np.asarray(a, np.float32)
  if legacy_dims:
    dims = (1,) * (4 - a.ndim) + a.shape
    out = b"".join(_int_field(i + 1, d) for i, d in enumerate(dims))
  else:
    out = _bytes_field(7, _bytes_field(1, b"".join(_varint(d) for d in a.shape)))
  if packed:
    out += _bytes_field(5, a.astype("<f4").tobytes())
  else:
    out += b"".join(_key(5, 5) + struct.pack("<f", v) for v in a.reshape(-1))
  return out


_V1 = {"Convolution": 4, "ReLU": 18, "Pooling": 17, "InnerProduct": 14, "Dropout": 6, "Softmax": 20}


def _layer(name: str, type_: str, bottom: str, top: str, blobs: list[np.ndarray],
           style: str) -> bytes:
  if style == "v1":  # V1LayerParameter: bottom 2, top 3, name 4, type 5 (enum), blobs 6
    body = (_bytes_field(2, bottom.encode()) + _bytes_field(3, top.encode()) +
            _bytes_field(4, name.encode()) + _int_field(5, _V1[type_]) +
            b"".join(_bytes_field(6, _blob(b, legacy_dims=True)) for b in blobs))
    return _bytes_field(2, body)
  # LayerParameter: name 1, type 2, bottom 3, top 4, blobs 7; biases written unpacked
  body = (_bytes_field(1, name.encode()) + _bytes_field(2, type_.encode()) +
          _bytes_field(3, bottom.encode()) + _bytes_field(4, top.encode()) + b"".join(
              _bytes_field(7, _blob(b, legacy_dims=False, packed=(i == 0)))
              for i, b in enumerate(blobs)))
  return _bytes_field(100, body)


def write_caffemodel(path: Path, conv_bgr: Layers, fc: Layers | None, style: str = "v1",
                     conv_names=NAMES) -> Path:
  """A VGG_FACE.caffemodel-like NetParameter; conv weights [O, I, 3, 3] already for BGR input."""
  out = _bytes_field(1, b"VGG_FACE_16_layers") + _bytes_field(3, b"data")
  out += b"".join(_int_field(4, d) for d in (1, 3, 224, 224))
  prev, i = "data", 0
  for b, block in enumerate(BLOCKS):
    for j in range(len(block)):
      name = conv_names[i]
      w, bias = conv_bgr[NAMES[i]]
      out += _layer(name, "Convolution", prev, name, [w, bias], style)
      out += _layer(f"relu{b + 1}_{j + 1}", "ReLU", name, name, [], style)
      prev = name
      i += 1
    out += _layer(f"pool{b + 1}", "Pooling", prev, f"pool{b + 1}", [], style)
    prev = f"pool{b + 1}"
  if fc:
    for name in ("fc6", "fc7", "fc8"):
      w, bias = fc[name]
      out += _layer(name, "InnerProduct", prev, name, [w, bias], style)
      if name != "fc8":
        out += _layer(f"relu{name[2:]}", "ReLU", name, name, [], style)
        out += _layer(f"drop{name[2:]}", "Dropout", name, name, [], style)
      prev = name
    out += _layer("prob", "Softmax", prev, "prob", [], style)
  Path(path).write_bytes(out)
  return Path(path)
