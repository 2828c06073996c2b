"""Read `torch.save` files (`.pth`) with numpy alone: no PyTorch, and no code from the file.

A `.pth` file is one of three containers. The first two hold a protocol-2 pickle in which every
tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every
storage a persistent id `('storage', torch.FloatStorage, key, location, numel[, view])`:

  * zip (torch >= 1.6): entries `<archive>/data.pkl` (the pickle), `<archive>/data/<key>`
    (each storage's raw bytes), `<archive>/version` and, in newer files, `<archive>/byteorder`;
  * legacy stream (torch 0.1.10 to 1.5, e.g. vgg_face_dag.pth): a pickle of the magic number
    0x1950a86a20f9469cfc6c, one of the protocol version 1001, one of system info, then the
    object's pickle, then a pickle of the sorted storage keys, then for each key an int64
    element count and the raw bytes;
  * tar (torch < 0.1.10, which wrote some of torchvision's oldest weight files): members
    `storages` (a pickled count, then per storage a pickled (key, location, type), an int64
    element count and the bytes, then a pickled list of views), `tensors` (a pickled count,
    then per tensor a pickled (key, storage key, type), int32 ndim, 4 padding bytes, int64
    sizes, int64 strides, int64 offset) and `pickle` (the object, with tensors as persistent
    ids naming their keys).

The unpickler resolves only an allow-list of globals -- `collections.OrderedDict`, torch's
tensor/parameter rebuild functions and storage types -- each implemented here with numpy.
Any other global (a pickled model class, `os.system`, ...) is refused with an error naming it,
so reading a file never runs code from it.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage type name -> numpy dtype of one element.
STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}


# torch tensor classes, named (not built) by the tar container's tensor records.
TENSOR_TYPES = frozenset(
    n.replace("Storage", "Tensor") for n in STORAGE_DTYPES if n != "UntypedStorage")


class TorchFileError(ValueError):
  """The file is not a readable `torch.save` file; the message says what was expected."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str

  @property
  def dtype(self) -> np.dtype:
    return np.dtype(STORAGE_DTYPES[self.name])


@dataclasses.dataclass
class _Storage:
  """A flat typed buffer; `data` is filled when its bytes are read (after the pickle if legacy)."""
  dtype: np.dtype
  numel: int
  data: np.ndarray | None = None


@dataclasses.dataclass
class _StorageView:
  root: _Storage
  offset: int  # in elements
  numel: int


@dataclasses.dataclass
class _TensorRef:
  """A tensor waiting for its storage's bytes: materialised by `_materialise`."""
  storage: _Storage | _StorageView
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


class _Marker:
  """Stand-in for an allowed torch class seen only as an argument (torch.Tensor, Parameter)."""

  def __init__(self, name: str):
    self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size),
                    tuple(int(s) for s in stride))


def _rebuild_parameter(data, *unused):
  return data


def _rebuild_from_type_v2(func, new_type, args, state):
  del new_type, state
  return func(*args)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _Marker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _Marker("torch.nn.Parameter"),
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only `_ALLOWED_GLOBALS` and torch storage types; storages via `persistent_load`."""

  def __init__(self, file: BinaryIO, storages: dict[str, _Storage], load_storage=None):
    super().__init__(file, encoding="utf-8")
    self._storages = storages
    self._load_storage = load_storage  # zip: key, storage -> None (fills storage.data now)

  def find_class(self, module: str, name: str) -> Any:
    if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:  # cuda: saved from a GPU
      return _StorageType(name)
    if module in ("torch", "torch.cuda") and name in TENSOR_TYPES:
      return _Marker(f"{module}.{name}")
    if (module, name) in _ALLOWED_GLOBALS:
      return _ALLOWED_GLOBALS[(module, name)]
    if module.startswith("torch.nn.modules") or "." not in module and name[:1].isupper():
      raise TorchFileError(
          f"expected a state dict (names -> tensors), but the file pickles a whole object of class "
          f"{module}.{name}; re-save it with torch.save(model.state_dict(), path)")
    raise TorchFileError(f"refusing to load {module}.{name}: a weights file only needs "
                         f"OrderedDict, tensors and storages (is this really a weights file?)")

  def persistent_load(self, pid: Any) -> Any:
    if not isinstance(pid, tuple) or len(pid) < 5 or _ascii(pid[0]) != "storage":
      raise TorchFileError(f"unknown persistent id {str(pid)[:80]!r} (expected a torch storage)")
    storage_type, key, numel = pid[1], _ascii(pid[2]), int(pid[4])
    if not isinstance(storage_type, _StorageType):
      raise TorchFileError(
          f"expected a torch storage type in a persistent id, got {storage_type!r}")
    storage = self._storages.get(key)
    if storage is None:
      storage = self._storages[key] = _Storage(storage_type.dtype, numel)
      if self._load_storage is not None:
        self._load_storage(key, storage)
    view = pid[5] if len(pid) > 5 else None
    if view is not None:  # legacy files only: (view_key, offset, view_numel)
      _, offset, view_numel = view
      return _StorageView(storage, int(offset), int(view_numel))
    return storage


class _TarUnpickler(_RestrictedUnpickler):
  """The tar container's object pickle: persistent ids are the keys of already-read tensors."""

  def __init__(self, file: BinaryIO, tensors: dict[Any, _TensorRef]):
    super().__init__(file, {})
    self._tensors = tensors

  def persistent_load(self, pid: Any) -> Any:
    if isinstance(pid, tuple):
      raise TorchFileError("expected a state dict, but the file pickles whole modules (old "
                           "torch.save(model)); re-save it with "
                           "torch.save(model.state_dict(), path)")
    try:
      return self._tensors[int(pid)]
    except (KeyError, ValueError, TypeError):
      raise TorchFileError(f"the pickle refers to tensor {str(pid)[:20]!r}, which the file lacks: "
                           f"corrupt file") from None


def _ascii(s: Any) -> Any:
  return s.decode("ascii") if isinstance(s, bytes) else s


def load(path: str | Path) -> Any:
  """The object saved in a `.pth` file, with every tensor as a numpy array (C order, own memory).

  Raises TorchFileError (one line) when the file is not a `torch.save` file, is truncated,
  or pickles anything other than containers of tensors.
  """
  path = Path(path).expanduser()
  with open(path, "rb") as f:
    head = f.read(512)
  if zipfile.is_zipfile(path):
    return _load_zip(path)
  if head[257:262] == b"ustar":
    return _load_tar(path)
  if head.startswith(b"PK\x03\x04"):
    raise TorchFileError(
        "expected a complete zip archive (torch >= 1.6 format); the file starts like "
        "one but its end is missing: truncated")
  if head[:2] == b"\x80\x02":
    return _load_legacy(path)
  raise TorchFileError(f"expected a torch.save file (a zip or tar archive, or a pickle starting "
                       f"with bytes 80 02), found bytes {head[:4].hex(' ')}")


def _load_zip(path: Path) -> Any:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if any(n.endswith("constants.pkl") for n in names):
      raise TorchFileError("this zip is a TorchScript archive (torch.jit.save), not a state dict "
                           "saved with torch.save")
    if len(pickles) != 1:
      raise TorchFileError(
          f"expected a zip archive with one <archive>/data.pkl (torch.save format), "
          f"found entries {names[:4]}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
      if byteorder not in ("little", "big"):
        raise TorchFileError(f"unknown byteorder record {byteorder!r} (expected 'little' or 'big')")

    def load_storage(key: str, storage: _Storage) -> None:
      name = f"{prefix}data/{key}"
      try:
        raw = zf.read(name)
      except KeyError:
        raise TorchFileError(
            f"the pickle refers to storage {name}, which the archive lacks") from None
      except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise TorchFileError(
            f"expected a readable {name} in the archive ({e}): truncated or corrupt") from None
      storage.data = _typed(raw, storage, byteorder, name)

    storages: dict[str, _Storage] = {}
    try:
      pkl = zf.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError) as e:
      raise TorchFileError(
          f"expected a readable {pickles[0]} ({e}): truncated or corrupt") from None
    obj = _unpickle(io.BytesIO(pkl), storages, load_storage)
  return _materialise(obj)


def _load_legacy(path: Path) -> Any:
  storages: dict[str, _Storage] = {}
  with open(path, "rb") as f:
    try:
      magic = _unpickle(f, {})
      if magic != MAGIC_NUMBER:
        raise TorchFileError(f"expected the torch magic number {MAGIC_NUMBER:#x} at the start of a "
                             f"legacy .pth file, found {str(magic)[:40]!r}: not a torch.save file")
      version = _unpickle(f, {})
      if version != PROTOCOL_VERSION:
        raise TorchFileError(
            f"expected legacy torch protocol version {PROTOCOL_VERSION}, found {version!r}")
      sys_info = _unpickle(f, {})
      little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
      obj = _unpickle(f, storages)
      keys = _unpickle(f, {})
    except EOFError:
      raise TorchFileError(
          "expected a pickled state dict followed by tensor data; the file ends inside "
          "the pickle: truncated") from None
    if not isinstance(keys, list) or any(_ascii(k) not in storages for k in keys):
      raise TorchFileError(
          "expected the list of storage keys after the pickled object: corrupt file")
    for key in keys:
      storage = storages[_ascii(key)]
      head = f.read(8)
      if len(head) < 8:
        raise TorchFileError(
            f"expected {len(keys)} tensor storages after the pickle; the file ends "
            f"before storage {key}: truncated")
      (count,) = struct.unpack("<q", head)
      if count != storage.numel:
        raise TorchFileError(f"storage {key} should hold {storage.numel} elements, its data says "
                             f"{count}: corrupt file")
      nbytes = count * storage.dtype.itemsize
      raw = f.read(nbytes)
      if len(raw) < nbytes:
        raise TorchFileError(f"expected {nbytes} bytes of storage {key}; the file ends after "
                             f"{len(raw)}: truncated")
      storage.data = _typed(raw, storage, "little" if little else "big", f"storage {key}")
  return _materialise(obj)


def _load_tar(path: Path) -> Any:
  try:
    with tarfile.open(path, mode="r:") as tar:

      def member(name: str) -> BinaryIO:
        try:
          f = tar.extractfile(name)
        except KeyError:
          f = None
        if f is None:
          raise TorchFileError(f"expected a member {name!r} in a tar-format .pth (torch < 0.1.10); "
                               f"found {tar.getnames()[:4]}: truncated, or not a torch file")
        return f

      def read(f: BinaryIO, n: int, what: str) -> bytes:
        data = f.read(n)
        if len(data) != n:
          raise TorchFileError(f"expected {n} bytes of {what}; the file ends after {len(data)}: "
                               f"truncated")
        return data

      storages: dict[Any, Any] = {}
      f = member("storages")
      for _ in range(int(_unpickle(f, {}))):
        key, _, storage_type = _unpickle(f, {})
        if not isinstance(storage_type, _StorageType):
          raise TorchFileError(
              f"expected a torch storage type, found {storage_type!r}: corrupt file")
        (count,) = struct.unpack("<q", read(f, 8, f"storage {key}'s size"))
        storage = _Storage(storage_type.dtype, count)
        raw = read(f, count * storage.dtype.itemsize, f"storage {key}")
        storage.data = _typed(raw, storage, "little", f"storage {key}")
        storages[key] = storage
      for target, root, offset, numel in _unpickle(f, {}):
        storages[target] = _StorageView(storages[root], int(offset), int(numel))
      tensors: dict[Any, _TensorRef] = {}
      f = member("tensors")
      for _ in range(int(_unpickle(f, {}))):
        key, storage_key, _ = _unpickle(f, {})
        (ndim,) = struct.unpack("<i", read(f, 4, f"tensor {key}'s rank"))
        read(f, 4, "padding")
        size = struct.unpack(f"<{ndim}q", read(f, 8 * ndim, f"tensor {key}'s size"))
        stride = struct.unpack(f"<{ndim}q", read(f, 8 * ndim, f"tensor {key}'s stride"))
        (offset,) = struct.unpack("<q", read(f, 8, f"tensor {key}'s offset"))
        if storage_key not in storages:
          raise TorchFileError(f"tensor {key} refers to a missing storage: corrupt file")
        tensors[key] = _TensorRef(storages[storage_key], offset, size, stride)
      try:
        obj = _TarUnpickler(member("pickle"), tensors).load()
      except EOFError:
        raise TorchFileError(
            "expected a complete object pickle; it ends early: truncated") from None
  except TorchFileError:
    raise
  except (tarfile.TarError, EOFError, OSError) as e:
    raise TorchFileError(f"expected a complete tar-format .pth (torch < 0.1.10) "
                         f"({type(e).__name__}: {e}): truncated or corrupt") from None
  except (ValueError, TypeError, KeyError, struct.error) as e:
    raise TorchFileError(f"expected tar-format .pth records, found a malformed one "
                         f"({type(e).__name__}: {str(e)[:80]}): corrupt file") from None
  return _materialise(obj)


def _unpickle(f: BinaryIO, storages: dict[str, _Storage], load_storage=None) -> Any:
  try:
    return _RestrictedUnpickler(f, storages, load_storage).load()
  except (TorchFileError, EOFError):
    raise
  except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
    raise TorchFileError(
        f"expected a torch.save pickle, but unpickling failed ({type(e).__name__}: "
        f"{str(e)[:100]}): corrupt file") from None


def _typed(raw: bytes, storage: _Storage, byteorder: str, what: str) -> np.ndarray:
  nbytes = storage.numel * storage.dtype.itemsize
  if len(raw) != nbytes:
    raise TorchFileError(f"expected {nbytes} bytes ({storage.numel} x {storage.dtype}) in {what}, "
                         f"found {len(raw)}: truncated or corrupt")
  dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
  return np.frombuffer(raw, dtype=dtype).astype(storage.dtype, copy=False)


def _tensor(ref: _TensorRef) -> np.ndarray:
  storage, base = ref.storage, 0
  if isinstance(storage, _StorageView):
    storage, base = storage.root, storage.offset
  if storage.data is None:
    raise TorchFileError("a tensor's storage has no data: truncated or corrupt file")
  offset = base + ref.offset
  if len(ref.size) != len(ref.stride) or any(s < 0 for s in ref.size + ref.stride):
    raise TorchFileError(f"bad tensor size {ref.size} / stride {ref.stride}: corrupt file")
  if 0 in ref.size:
    return np.zeros(ref.size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
  if offset < 0 or last >= storage.data.size:
    raise TorchFileError(f"a tensor of size {list(ref.size)} reaches element {last} of a storage "
                         f"of {storage.data.size}: corrupt file")
  item = storage.data.itemsize
  view = np.lib.stride_tricks.as_strided(storage.data[offset:],
                                         shape=ref.size,
                                         strides=tuple(s * item for s in ref.stride),
                                         writeable=False)
  return np.array(view, order="C")


def _materialise(obj: Any) -> Any:
  if isinstance(obj, _TensorRef):
    return _tensor(obj)
  if isinstance(obj, dict):
    out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
    for k, v in obj.items():
      out[k] = _materialise(v)
    return out
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialise(v) for v in obj)
  if isinstance(obj, (_Storage, _StorageView, _StorageType, _Marker)):
    raise TorchFileError(
        "the file holds bare storages or torch classes, not a state dict of tensors")
  return obj
