"""The per-user cache directory and atomic writes into it (compiled knowledge views, the parsed
ontology and its compiled closure, the shipped rules' passed checks).

Everything cached is keyed by a digest of what it is derived from, written to a temporary file and
renamed into place (concurrent processes never read a half-written file), and only an optimisation:
a cache that cannot be read or written is rebuilt or skipped, never an error.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """Where compiled views are cached: ``$THREATGRAPH_CACHE``, else ``$XDG_CACHE_HOME/threatgraph``,
    else ``~/.cache/threatgraph`` (safe to delete at any time)."""
    env = os.environ.get("THREATGRAPH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "threatgraph"


_EXCLUSIVE = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
              | getattr(os, "O_BINARY", 0))


def temp_file(directory: str | Path, prefix: str, suffix: str) -> tuple[int, str]:
    """As ``tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)``: a new file (never an existing
    one, nor a link followed), mode 0600, open for reading and writing; its descriptor and absolute path.

    Without importing :mod:`tempfile`, which imports shutil (with bz2, lzma, fnmatch) and random: ~12 M
    instructions of the start-up of every command that writes a cache file or ``--output`` (issue 14).

    >>> import tempfile as t
    >>> with t.TemporaryDirectory() as d:
    ...     fd, name = temp_file(d, ".r.", ".tmp")
    ...     os.close(fd)
    ...     (oct(os.stat(name).st_mode & 0o777), os.path.basename(name)[:3], name.endswith(".tmp"), os.path.isabs(name))
    ('0o600', '.r.', True, True)
    """
    for _ in range(100):
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(name, _EXCLUSIVE, 0o600), os.path.abspath(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no usable temporary file name found", str(directory))


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (temporary file + rename); False when it cannot be written
    (a cache that cannot be written is only slower next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_file(path.parent, path.name, ".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def read_cached(path: Path) -> bytes | None:
    """The bytes of a cache file, or None when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except OSError:
        return None


_STAMPS: dict[str, str] = {}


def library_stamp(*modules: str) -> str:
    """A stamp of installed libraries (where each is installed, its ``__init__``'s size and modification
    time), found without importing them: part of the keys of caches derived by those libraries, so that
    upgrading one invalidates them."""
    import importlib.util

    out = []
    for name in modules:
        stamp = _STAMPS.get(name)
        if stamp is None:
            try:
                spec = importlib.util.find_spec(name)
                origin = spec.origin if spec is not None else None
                st = os.stat(origin) if origin else None
                stamp = f"{name}:{origin}:{st.st_size}:{st.st_mtime_ns}" if st is not None else f"{name}:?"
            except (OSError, ImportError, ValueError):
                stamp = f"{name}:?"
            _STAMPS[name] = stamp
        out.append(stamp)
    return "|".join(out)


_CHECKED = b"# threatgraph-cache sha256 "


def write_checked(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically behind a first line holding its sha256 (``# …``: a comment in
    N-Triples, N-Quads and Turtle), so that a truncated or altered file is never used (:func:`read_checked`)."""
    import hashlib

    return write_atomic(path, _CHECKED + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def _digest_matches(raw: bytes) -> bytes | None:
    """``raw`` when it is what :func:`write_checked` writes (its digest line matches the rest), else None."""
    import hashlib

    if not raw.startswith(_CHECKED):
        return None
    head, _, body = raw.partition(b"\n")
    return raw if head[len(_CHECKED):] == hashlib.sha256(body).hexdigest().encode() else None


def read_checked(path: Path) -> bytes | None:
    """What :func:`write_checked` wrote to ``path``; None when the file is missing, unreadable, or its digest
    line does not match the rest (the caller rebuilds it). The digest is checked once per file
    (:func:`read_stamped`)."""
    raw = read_stamped(path, _digest_matches)
    if raw is None:
        return None
    return raw[raw.index(b"\n") + 1:]


STAMP_AGE_NS = 2_000_000_000
"""A cache file is stamped (:func:`read_stamped`) only once its modification and change times are this old:
a file's times advance in ticks of a few milliseconds, so a file changed in place within the tick of its
stamp could keep its times; one changed after they are this old gets new ones (git's "racily clean" rule)."""


def read_stamped(path: Path, check: Callable[[bytes], bytes | None], *, header: bytes = b"") -> bytes | None:
    """The bytes of the cache file ``path`` as ``check(raw)`` gives them (None: damaged, or not there),
    ``check`` skipped when the file is the one that passed it before: its stamp (``<file>.stamp``: size,
    modification and change times, inode and first line, written after a check passed) still matches.
    ``header``: only a file whose first line starts with it (its digest line) is stamped; another is checked
    every time (the compiled knowledge view's older files, without a digest line).

    Checking the digest line of a cache file hashes all of it: ~0.7 MB (the bridge mappings' N-Triples,
    the checked rules) in every analysis (issue 14). A rewrite (a new inode), a truncation or a change in
    place (new times) is checked again.

    >>> import tempfile, threatgraph.cachefiles as cf
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "c"
    ...     _ = write_checked(p, b"data")
    ...     young = read_checked(p), (Path(d) / "c.stamp").is_file()  # checked; too recent to be stamped
    ...     cf.STAMP_AGE_NS = -1  # (as if it were old)
    ...     first = read_checked(p), (Path(d) / "c.stamp").is_file()  # checked, stamped
    ...     cf.STAMP_AGE_NS = STAMP_AGE_NS
    ...     again = read_stamped(p, lambda raw: None)  # the stamp matches: not checked again
    ...     time.sleep(0.05)  # (past the tick of the file system's clock)
    ...     _ = p.write_bytes(p.read_bytes()[:-1] + b"X")  # changed in place: new times, checked again
    ...     young, first, again is not None, read_checked(p)
    ((b'data', False), (b'data', True), True, None)
    """
    try:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            raw = fh.read()
    except OSError:
        return None
    end = raw.find(b"\n")
    if end < 0 or not raw.startswith(header):
        return check(raw)
    stamp = f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} ".encode() + raw[:end] + b"\n"
    stamp_path = path.with_name(path.name + ".stamp")
    if read_cached(stamp_path) == stamp:
        return raw
    data = check(raw)
    if data is not None and time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > STAMP_AGE_NS:
        write_atomic(stamp_path, stamp)
    return data
