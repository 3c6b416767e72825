"""Read an import source: a local path or an ``http(s)`` URL, plain or gzip-compressed.

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json.gz"
>>> _ = p.write_bytes(gzip.compress(b'{"a": 1}'))
>>> src = read_source(str(p))
>>> src.data, len(src.sha256), src.compressed
(b'{"a": 1}', 64, True)
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threatgraph import bounded
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
    """True for ``http(s)://`` and ``taxii+http(s)://`` locations."""
    return location.startswith(("http://", "https://", "taxii+http://", "taxii+https://"))


def _download(url: str, progress: Progress | None, accept: str | None = None) -> bytes:
    if progress:
        progress(f"downloading {url}")
    headers = {"User-Agent": "threatgraph"}
    if accept:
        headers["Accept"] = accept
    import urllib.error  # not at module level: ~30 ms (http.client, email, ssl) a file import never needs
    import urllib.request

    req = urllib.request.Request(url, headers=headers)
    try:
        cap = bounded.limits().decompressed_bytes
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            data = bytes(resp.read(cap + 1))
        if len(data) > cap:
            raise ImportFailed(f"{url}: more than {cap} bytes (the limit)",
                               hint="raise THREATGRAPH_MAX_DECOMPRESSED_BYTES if the file is genuine (see docs/limits.md)")
        return data
    except urllib.error.HTTPError as err:
        raise ImportFailed(f"{url}: HTTP {err.code} {err.reason}", hint="check the URL") from err
    except (urllib.error.URLError, OSError) as err:
        raise ImportFailed(
            f"{url}: cannot download: {err}", hint="check the network, or download the file and pass its path"
        ) from err


TAXII_MEDIA = "application/taxii+json;version=2.1"
TAXII_PAGE = 1000


def read_taxii(location: str, progress: Progress | None = None) -> bytes:
    """All objects of a TAXII 2.1 collection, as the bytes of one STIX bundle.

    ``location`` is ``taxii+https://HOST/API-ROOT/collections/ID/`` (``taxii+http`` for local servers);
    pages are followed with ``more``/``next`` (TAXII 2.1 section 5.4).
    """
    base = location[len("taxii+") :].rstrip("/") + "/objects/"
    objects: list[Any] = []
    next_token: str | None = None
    while True:
        query = {"limit": str(TAXII_PAGE)}
        if next_token:
            query["next"] = next_token
        url = base + "?" + urllib.parse.urlencode(query)
        raw = _download(url, progress, accept=TAXII_MEDIA)
        try:
            envelope = bounded.load_json(raw, url, error=ImportFailed)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ImportFailed(
                f"{url}: not a TAXII 2.1 envelope: {err}", hint="check the collection URL"
            ) from err
        if not isinstance(envelope, dict) or not isinstance(envelope.get("objects", []), list):
            raise ImportFailed(f"{url}: not a TAXII 2.1 envelope", hint="check the collection URL")
        objects.extend(envelope.get("objects", []))
        next_token = envelope.get("next")
        if not envelope.get("more") or not isinstance(next_token, str):
            break
    bundle_id = "bundle--" + str(uuid.uuid5(uuid.NAMESPACE_URL, location))
    return json.dumps({"type": "bundle", "id": bundle_id, "objects": objects}).encode("utf-8")


def read_source(location: str, progress: Progress | None = None) -> Source:
    """Read ``location`` (path, URL, or ``taxii+https://…/collections/ID/``); gunzip gzip data."""
    if location.startswith(("taxii+http://", "taxii+https://")):
        raw = read_taxii(location, progress)
    elif is_url(location):
        raw = _download(location, progress)
    else:
        path = Path(location).expanduser()
        raw = bounded.read_regular(path, location, max_bytes=bounded.limits().decompressed_bytes,
                                   error=ImportFailed, regular_only=False,
                                   limit_var="THREATGRAPH_MAX_DECOMPRESSED_BYTES")
    digest = hashlib.sha256(raw).hexdigest()
    compressed = raw[:2] == b"\x1f\x8b"
    data = raw
    if compressed:  # bounded: a gzip bomb is refused once it passes THREATGRAPH_MAX_DECOMPRESSED_BYTES
        data = bounded.gunzip(raw, location, error=ImportFailed)
    return Source(location=location, data=data, sha256=digest, compressed=compressed)
