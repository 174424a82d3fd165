"""Local paths and object-store URLs (``gs://bucket/dir``) behind one set of functions.

Every file flan_jax reads or writes (MODEL_DIR and its checkpoints, configs, metrics, lock and
TensorBoard events; eval/infer outputs; export-data parts) goes through here. Paths stay
strings: a local path goes through ``os`` exactly as before; a URL whose scheme is in
:data:`SCHEMES` through fsspec (gcsfs for ``gs://``). What each operation relies on in an
object store (docs/storage.md):

- an object becomes visible whole, at the end of its one upload, so :func:`write_text` and
  :func:`open` for writing are atomic there without a temporary name (local: a temporary file,
  fsync, ``os.replace``);
- objects cannot be appended to: :func:`append_text` rewrites the object (one read, one upload);
- :func:`create_exclusive` is local ``O_CREAT | O_EXCL``, on GCS an upload with the precondition
  ``ifGenerationMatch=0``, which the server refuses atomically when the object exists;
- there are no directories: :func:`makedirs` creates nothing there (never a bucket).

orbax (through etils.epath) and tensorstore write the checkpoints' arrays to the same URLs.
``EPATH_USE_TF`` is set to ``false`` unless already set, so epath uses fsspec as this module
does: TensorFlow's gfile has no endpoint setting, so it is the one backend that cannot be
tested against a GCS emulator (``STORAGE_EMULATOR_HOST``). A user's explicit setting wins.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import IO, Any

os.environ.setdefault("EPATH_USE_TF", "false")  # Before etils picks a backend (it caches it).
# gcsfs's experimental zonal/HNS class asks GCS's control plane (gRPC) about every bucket; the
# plain GCSFileSystem is the one tested here (set before gcsfs is imported).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

SCHEMES = ("gs",)  # Object stores whose atomic upload and exclusive create are tested here.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(/*)")
_REACHED: set[str] = set()  # Buckets check_bucket has reached.
CREDENTIALS_HELP = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or run "
                    "`gcloud auth application-default login`; on a GCE/TPU VM give its service "
                    "account read/write access to the bucket")


def unseen_hint(path: str) -> str:
  """What to add when ``path`` was not found: in an object store, maybe the credentials."""
  return f" (or these credentials cannot see it: {CREDENTIALS_HELP})" if is_remote(path) else ""


class StorageError(ValueError):
  """A path flan_jax cannot use: unknown scheme, missing bucket, no access (named, with the fix).
  """


def scheme(path: str) -> str | None:
  """``'gs'`` for ``gs://b/x``; None for a local path."""
  m = _URL.match(os.fspath(path))
  return m.group(1).lower() if m and len(m.group(1)) > 1 else None  # 'C:' is a drive.


def check(path: str) -> str:
  """``path`` if flan_jax can read and write it, else :class:`StorageError` naming the schemes."""
  path = os.fspath(path)
  m = _URL.match(path)
  if m and len(m.group(1)) > 1:
    name, slashes = m.group(1).lower(), m.group(2)
    if name not in SCHEMES:
      raise StorageError(f"{path!r}: unknown storage scheme '{m.group(1)}://'; flan_jax reads "
                         f"and writes local paths and {', '.join(s + '://' for s in SCHEMES)}")
    if slashes != "//" or not path[m.end():].split("/")[0]:
      raise StorageError(f"{path!r} is not a {name}:// URL (write {name}://BUCKET/PATH)")
  return path


def is_remote(path: str) -> bool:
  """Whether ``path`` is an object-store URL (checked: an unknown scheme raises)."""
  return scheme(check(path)) is not None


def resolve(path: str) -> str:
  """A local path made absolute; a URL as it is (without a trailing slash)."""
  return normpath(path) if is_remote(path) else os.path.abspath(path)


def normpath(path: str) -> str:
  if not is_remote(path):
    return os.path.normpath(path)
  head, rest = path.split("://", 1)
  return f"{head}://{posixpath.normpath(rest).lstrip('/')}"


def join(path: str, *parts: str) -> str:
  return posixpath.join(path, *parts) if is_remote(path) else os.path.join(path, *parts)


def basename(path: str) -> str:
  return posixpath.basename(path) if is_remote(path) else os.path.basename(path)


def dirname(path: str) -> str:
  return posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)


def _gcs() -> Any:
  import fsspec  # noqa: PLC0415 -- gcsfs loads only for remote paths.
  # Uncached listings: a checkpoint orbax (or another process) just wrote is seen at once.
  return fsspec.filesystem("gs", use_listings_cache=False)


# --- queries ------------------------------------------------------------------------------------


def exists(path: str) -> bool:
  return _gcs().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gcs().isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  return _gcs().isfile(path) if is_remote(path) else os.path.isfile(path)


def listdir(path: str) -> list[str]:
  """The names in ``path`` (a missing directory raises FileNotFoundError)."""
  if not is_remote(path):
    return os.listdir(path)
  return [posixpath.basename(p.rstrip("/")) for p in _gcs().ls(path, detail=False)]


def getsize(path: str) -> int:
  return int(_gcs().info(path)["size"]) if is_remote(path) else os.path.getsize(path)


def getmtime(path: str) -> float:
  """Modification time (seconds); an object store's directory has none: 0."""
  if not is_remote(path):
    return os.path.getmtime(path)
  modified = _gcs().modified(path) if isfile(path) else None
  return modified.timestamp() if modified is not None else 0.0


def file_sizes(path: str) -> dict[str, int]:
  """{file relative to ``path``: size in bytes} of every file under ``path`` (an object store:
  one listing, not a request per file)."""
  if not is_remote(path):
    return {os.path.relpath(file, path): os.path.getsize(file)
            for root, _, files in os.walk(path) for file in (os.path.join(root, n) for n in files)}
  base = path.split("://", 1)[1].rstrip("/") + "/"
  return {p[len(base):]: int(info["size"])
          for p, info in _gcs().find(path, detail=True).items() if p.startswith(base)}


def walk_files(path: str) -> list[str]:
  """Every file under ``path``, relative to it, sorted."""
  return sorted(file_sizes(path))


# --- reads and writes ---------------------------------------------------------------------------


def open(path: str, mode: str = "r", **kwargs: Any) -> IO:  # noqa: A001 -- builtins.open's twin.
  """The file at ``path``; an object written through it appears whole when it is closed."""
  if not is_remote(path):
    return builtins.open(path, mode, **kwargs)
  return _gcs().open(path, mode, **kwargs)


def read_text(path: str) -> str:
  with open(path) as f:
    return f.read()


def read_bytes(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def write_text(path: str, text: str) -> None:
  """Replaces ``path`` atomically: readers see the old or the new content, never a part."""
  write_bytes(path, text.encode())


def write_bytes(path: str, data: bytes) -> None:
  """:func:`write_text` for bytes: local a fsynced temporary file and ``os.replace``; an object
  store one upload (an object is visible only once complete)."""
  if is_remote(path):
    _gcs().pipe_file(path, data)
    return
  with open_atomic(path, "wb") as f:
    f.write(data)


def temporary_name(path: str) -> str:
  """A name beside ``path`` that no other writer (process or thread) picks."""
  return f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def open_atomic(path: str, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
  """A file to write that appears under ``path`` only when the block ends without an error:
  local a temporary name beside it, fsynced and ``os.replace``d (an error, a full disk or Ctrl-C
  removes it, leaving no partial file under ``path``); an object store one upload, which
  appears whole at its end and not at all when the block fails."""
  if mode not in ("w", "wb"):
    raise ValueError(f"open_atomic writes whole files (mode 'w' or 'wb'), not {mode!r}")
  if is_remote(path):
    raw = _gcs().open(path, "wb")
    try:
      f = io.TextIOWrapper(raw, **kwargs) if mode == "w" else raw
      yield f
      f.close()  # The upload's end: the object appears whole.
    except BaseException:
      raw.discard()  # Cancels a started resumable upload; the final one is never sent.
      raw.closed = True
      raise
    return
  tmp = temporary_name(path)
  try:
    with builtins.open(tmp, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    if isinstance(e, OSError) and e.errno and not e.filename:  # A write's error names no file.
      raise OSError(e.errno, e.strerror, path) from e
    raise


def append_text(path: str, text: str) -> None:
  """Appends ``text``: local flushed and fsynced (a kill never tears earlier lines); an object
  store cannot append, so the object is rewritten whole (the old or the new one is seen)."""
  if is_remote(path):
    old = read_bytes(path) if exists(path) else b""
    write_bytes(path, old + text.encode())
    return
  with builtins.open(path, "a") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def create_exclusive(path: str, text: str) -> bool:
  """Creates ``path`` holding ``text`` unless it exists (then False): local a hard link of a
  written temporary file (``link`` fails when the name exists), GCS an upload with
  ``ifGenerationMatch=0``. Either way exactly one of racing creators wins, and ``path`` appears
  with all of ``text``, never empty or partly written."""
  if is_remote(path):
    try:
      _gcs().pipe_file(path, text.encode(), mode="create")
    except FileExistsError:
      return False
    return True
  tmp = temporary_name(path)  # Written whole first, then linked into place: never seen empty.
  try:
    with builtins.open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.link(tmp, path)
  except FileExistsError:
    return False
  except OSError as e:
    if e.errno not in _NO_HARD_LINKS:
      raise
    return _create_exclusive_unlinked(path, text)
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
  return True


# A file system without hard links (FUSE mounts such as gcsfuse, some network file systems).
_NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV)


def _create_exclusive_unlinked(path: str, text: str) -> bool:
  """``O_EXCL`` create, then the write: the name is briefly seen empty (the lock's reader treats a
  fresh unreadable lock as taken, :data:`flan_jax.models.checkpoint.LOCK_GRACE_S`)."""
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  return True


def makedirs(path: str) -> None:
  """Local ``os.makedirs(exist_ok=True)``; in an object store nothing (directories are name
  prefixes), after checking that the bucket can be reached."""
  if is_remote(path):
    check_bucket(path)
  else:
    os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
  if is_remote(path):
    _gcs().rm_file(path)
  else:
    os.remove(path)


def remove_if_unchanged(path: str, text: str) -> bool:
  """Removes ``path`` if it still holds ``text`` (True), else leaves it (False): of racing removers
  of a stale lock, none removes a lock another has just taken. Local: renamed away atomically,
  compared, and linked back when it changed; an object store: compared, then deleted (a lock
  taken between the two is not seen)."""
  if is_remote(path):
    try:
      if read_text(path) != text:
        return False
      remove(path)
    except FileNotFoundError:
      return False
    return True
  tmp = temporary_name(path)
  try:
    os.rename(path, tmp)
  except FileNotFoundError:
    return False
  try:
    with builtins.open(tmp) as f:
      if f.read() == text:
        return True
    with contextlib.suppress(FileExistsError):
      os.link(tmp, path)  # Someone's fresh lock: put back.
    return False
  finally:
    os.remove(tmp)


def rmtree(path: str) -> None:
  """Deletes ``path`` and everything under it (an object store: each object, not atomically)."""
  if is_remote(path):
    _gcs().rm(path, recursive=True)
  else:
    shutil.rmtree(path)


def move_file(path: str, target: str) -> None:
  """Local ``os.replace`` (atomic: ``target`` is the old or the new file); an object store a
  server-side copy, then ``path`` is deleted."""
  if is_remote(path):
    _gcs().cp_file(path, target)
    remove(path)
  else:
    os.replace(path, target)


def move_dir(path: str, target: str, delete_first: tuple[str, ...] = ()) -> None:
  """Local ``os.rename`` (atomic). An object store has no rename: every object is copied to
  ``target`` (server-side), then ``path``'s objects are deleted, the names in ``delete_first``
  (relative) before the rest. A kill leaves a whole copy and a whole or partly deleted original,
  never less than one whole copy."""
  if not is_remote(path):
    os.rename(path, target)
    return
  names = walk_files(path)
  for rel in names:
    _gcs().cp_file(join(path, rel), join(target, rel))
  first = [rel for rel in delete_first if rel in names]
  for rel in first:
    remove(join(path, rel))
  rest = [join(path, rel) for rel in names if rel not in first]
  if rest:
    _gcs().rm(rest)


def copy_tree_from_local(local: str, path: str) -> None:
  """Copies every file under the local dir ``local`` to ``path`` (each file one write)."""
  for rel in walk_files(local):
    with builtins.open(os.path.join(local, rel), "rb") as f:
      data = f.read()
    target = join(path, rel.replace(os.sep, "/"))
    if not is_remote(path):
      os.makedirs(os.path.dirname(target), exist_ok=True)
    write_bytes(target, data)


def check_bucket(path: str) -> None:
  """Raises :class:`StorageError` unless ``path``'s bucket exists and these credentials reach it
  (before any step: a typo or missing credentials fail here, not at the first checkpoint)."""
  if not is_remote(path):
    return
  bucket = path.split("://", 1)[1].split("/")[0]
  if bucket in _REACHED:  # Once per process: makedirs calls this before every write of a dir.
    return
  try:
    _gcs().ls(f"{bucket}/", detail=False)
  except FileNotFoundError:
    raise StorageError(f"{path}: the bucket {scheme(path)}://{bucket} does not exist; create it "
                       f"(gcloud storage buckets create {scheme(path)}://{bucket}) or fix the "
                       "path") from None
  except Exception as e:  # noqa: BLE001 -- gcsfs raises OSError, HttpError, auth errors.
    text = " ".join(str(e).split())[:300]
    raise StorageError(f"{path}: cannot reach the bucket {scheme(path)}://{bucket} ({text}); "
                       f"{CREDENTIALS_HELP}") from None
  _REACHED.add(bucket)
