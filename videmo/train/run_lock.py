"""One `videmo train` per work directory: an advisory lock on WORKDIR/train.lock (run_dir.LOCK_FILE).

Two processes training into one folder would interleave checkpoints and event files. The
lock is `fcntl.flock` on the lock file, so the kernel drops it when its process ends, however
it ends (a kill, a crash): a lock left by a dead process is never in the way. The file holds
the holder's pid and host, so a refused run names who holds it. On file systems without
flock (some network mounts) the lock cannot be taken and the run goes ahead with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from videmo.train import run_dir

log = logging.getLogger(__name__)


class WorkdirInUse(ValueError):
  """Another process holds the work directory's lock (the message names it, in one line). A
  ValueError: like any wrong argument, the commands print it as one line."""


def _holder(path: Path) -> str:
  try:
    record = json.loads(path.read_text())
    return f"pid {record['pid']} on {record['host']}, since {record['since']}"
  except (OSError, ValueError, KeyError, TypeError):
    return "another process"


@contextlib.contextmanager
def held(workdir: str | os.PathLike) -> Iterator[None]:
  """Hold WORKDIR's training lock inside the block; WorkdirInUse if another process holds it."""
  path = run_dir.lock_path(workdir)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise WorkdirInUse(f"{Path(workdir)} is in use by another videmo train ({_holder(path)}); "
                           f"wait for it to end or use another --workdir") from None
      log.warning("cannot lock %s (%s); two runs in this work directory would not be stopped", path, err)
    record = dict(pid=os.getpid(), host=socket.gethostname(), since=time.strftime("%Y-%m-%d %H:%M:%S"))
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock
