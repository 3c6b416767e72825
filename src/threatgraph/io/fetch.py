"""Read an import source: a local path or an ``http(s)`` URL, plain or gzip-compressed.

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json.gz"
>>> _ = p.write_bytes(gzip.compress(b'{"a": 1}'))
>>> src = read_source(str(p))
>>> src.data, len(src.sha256), src.compressed
(b'{"a": 1}', 64, True)
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from threatgraph.errors import ImportFailed

Progress = Callable[[str], None]
"""Receives short human-readable status lines (the CLI prints them on stderr)."""

DEFAULT_URLS: dict[str, str] = {
    "attack": "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/"
    "enterprise-attack/enterprise-attack.json",
    "attack-enterprise": "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/"
    "enterprise-attack/enterprise-attack.json",
    "attack-ics": "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/ics-attack/ics-attack.json",
    "attack-mobile": "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/"
    "mobile-attack/mobile-attack.json",
    "atlas": "https://raw.githubusercontent.com/mitre-atlas/atlas-data/main/dist/ATLAS.yaml",
    "capec": "https://raw.githubusercontent.com/mitre/cti/master/capec/2.1/stix-capec.json",
    "d3fend": "https://raw.githubusercontent.com/d3fend/d3fend-ontology/master/src/ontology/d3fend-protege.ttl",
}
"""MITRE's published locations, used when ``threatgraph import KIND`` gets no SOURCE."""

_TIMEOUT_S = 60.0


@dataclass
class Source:
    """An import source's bytes (decompressed), where they came from, and the sha256 of the file as read."""

    location: str
    data: bytes
    sha256: str
    compressed: bool

    def take(self) -> bytes:
        """Hand the bytes over (the Source keeps none), so a parser can free them once decoded."""
        data, self.data = self.data, b""
        return data

    @property
    def name(self) -> str:
        """Last path segment, for messages and version guessing."""
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def is_url(location: str) -> bool:
    """True for ``http://`` and ``https://`` locations."""
    return location.startswith(("http://", "https://"))


def _download(url: str, progress: Progress | None) -> bytes:
    if progress:
        progress(f"downloading {url}")
    req = urllib.request.Request(url, headers={"User-Agent": "threatgraph"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as err:
        raise ImportFailed(f"{url}: HTTP {err.code} {err.reason}", hint="check the URL") from err
    except (urllib.error.URLError, OSError) as err:
        raise ImportFailed(
            f"{url}: cannot download: {err}", hint="check the network, or download the file and pass its path"
        ) from err


def read_source(location: str, progress: Progress | None = None) -> Source:
    """Read ``location`` (path or URL); gunzip when the bytes start with the gzip magic number."""
    if is_url(location):
        raw = _download(location, progress)
    else:
        path = Path(location).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ImportFailed(
                f"{location}: cannot read: {err.strerror or err}", hint="check the path"
            ) from err
    digest = hashlib.sha256(raw).hexdigest()
    compressed = raw[:2] == b"\x1f\x8b"
    data = raw
    if compressed:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ImportFailed(
                f"{location}: corrupt or truncated gzip data: {err}", hint="download the file again"
            ) from err
    return Source(location=location, data=data, sha256=digest, compressed=compressed)
