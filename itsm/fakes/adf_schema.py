"""Atlassian Document Format: fetch Atlassian's published JSON schema and validate documents with it.

The schema is not copied into the repository: :func:`ensure_adf_schema` downloads the pinned npm
tarball of ``@atlaskit/adf-schema`` once, checks its published sha512 integrity, extracts only
``package/dist/json-schema/v1/full.json`` and caches it (``var/cache/adf-schema/<version>/full.json``
under the repository root, or under ``$ADF_SCHEMA_CACHE``). ``python -m itsm.fakes.adf_schema``
prints the cached path.

The fake Jira validates every description and comment with :class:`SchemaAdfValidator` (draft-04,
built once). :class:`StructuralAdfValidator` is the offline demo's fallback: it only checks the
document's envelope and says so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

ADF_SCHEMA_VERSION = "57.7.22"
ADF_SCHEMA_TARBALL_URL = (
    f"https://registry.npmjs.org/@atlaskit/adf-schema/-/adf-schema-{ADF_SCHEMA_VERSION}.tgz"
)
# dist.integrity of the pinned version in the npm registry: the download is checked against it.
ADF_SCHEMA_TARBALL_INTEGRITY = "sha512-6v/cNmo2VmOmAjVKZ8lP0LhtnzlHRpnhh1wYG+TrHaa9xB/aFHv+iRGyJxb6f5fZniV7wR2AJTAwOmntwQD3cw=="
SCHEMA_MEMBER = "package/dist/json-schema/v1/full.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
DOWNLOAD_TIMEOUT_SECONDS = 60
MAX_TARBALL_BYTES = 20 * 1024 * 1024


class AdfSchemaUnavailable(RuntimeError):
    """The ADF schema is neither cached nor downloadable."""


def default_cache_dir() -> Path:
    configured = os.environ.get("ADF_SCHEMA_CACHE")
    return Path(configured) if configured else REPO_ROOT / "var" / "cache" / "adf-schema"


def ensure_adf_schema(cache_dir: Path | None = None) -> Path:
    """The path of the cached ``full.json``, downloading the pinned tarball the first time."""
    target = (cache_dir or default_cache_dir()) / ADF_SCHEMA_VERSION / "full.json"
    if target.is_file():
        return target
    url = os.environ.get("ADF_SCHEMA_TARBALL_URL", ADF_SCHEMA_TARBALL_URL)
    tarball = _download(url)
    _check_integrity(tarball, url)
    schema_bytes = _extract_schema(tarball, url)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so that a concurrent reader never sees half a file.
    with tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(schema_bytes)
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600; the cache is shared
    os.replace(tmp.name, target)
    return target


def _download(url: str) -> bytes:
    if not url.startswith("https://"):
        raise AdfSchemaUnavailable(f"refusing to fetch the ADF schema over a non-HTTPS URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "itsm-fakes"})  # noqa: S310 - https only, checked above
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as answer:  # noqa: S310 - https only, checked above
            data = answer.read(MAX_TARBALL_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise AdfSchemaUnavailable(
            f"could not download the ADF schema {ADF_SCHEMA_VERSION} from {url}: {error}. "
            "Connect to the network once (the file is then cached), point ADF_SCHEMA_CACHE at a "
            "directory holding <version>/full.json, or start the fakes with --no-adf-schema "
            "(offline demo only: structural check)."
        ) from error
    if len(data) > MAX_TARBALL_BYTES:
        raise AdfSchemaUnavailable(f"the ADF schema tarball at {url} is unexpectedly large")
    return data


def _check_integrity(tarball: bytes, url: str) -> None:
    if url != ADF_SCHEMA_TARBALL_URL:
        return  # a mirror chosen by the operator; its content is the operator's responsibility
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode("ascii")
    if digest != ADF_SCHEMA_TARBALL_INTEGRITY:
        raise AdfSchemaUnavailable(
            f"the ADF schema tarball from {url} does not match the pinned integrity "
            f"{ADF_SCHEMA_TARBALL_INTEGRITY}"
        )


def _extract_schema(tarball: bytes, url: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.getmember(SCHEMA_MEMBER)
            extracted = archive.extractfile(member)
            if extracted is None:
                raise KeyError(SCHEMA_MEMBER)
            data = extracted.read()
    except (tarfile.TarError, KeyError, OSError) as error:
        raise AdfSchemaUnavailable(f"{url} holds no readable {SCHEMA_MEMBER}: {error}") from error
    try:
        schema = json.loads(data)
    except ValueError as error:
        raise AdfSchemaUnavailable(f"{SCHEMA_MEMBER} in {url} is not JSON") from error
    if not isinstance(schema, dict) or "definitions" not in schema:
        raise AdfSchemaUnavailable(f"{SCHEMA_MEMBER} in {url} is not the ADF JSON schema")
    return data


class AdfValidator(Protocol):
    description: str

    def problem(self, document: Any) -> str | None:
        """None for a valid ADF document, else a short description of what is wrong."""


class SchemaAdfValidator:
    """Validates against Atlassian's JSON schema; results are memoised by document content.

    One validation costs a few milliseconds (the schema is a large ``anyOf`` tree) and the portal
    sends the same rendered templates many times, so a bounded cache keeps the 1,000-issue benchmark
    fast without weakening the check.
    """

    CACHE_SIZE = 4096

    def __init__(self, schema_path: Path | str) -> None:
        from jsonschema.validators import validator_for

        self.path = Path(schema_path)
        schema = json.loads(self.path.read_text(encoding="utf-8"))
        validator_class = validator_for(schema)
        validator_class.check_schema(schema)
        self._validator = validator_class(schema)
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self.description = f"ADF JSON schema {self.path}"

    def problem(self, document: Any) -> str | None:
        try:
            key = json.dumps(document, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return "not JSON"
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = self._first_problem(document)
        self._cache[key] = result
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _first_problem(self, document: Any) -> str | None:
        from jsonschema.exceptions import best_match

        if self._validator.is_valid(document):
            return None
        error = best_match(self._validator.iter_errors(document))
        if error is None:  # pragma: no cover - is_valid said otherwise
            return "invalid"
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        return f"at {where}: {message}"


class StructuralAdfValidator:
    """The offline fallback: only ``{"type": "doc", "version": 1, "content": [...]}``."""

    description = "structural ADF check only (no schema; --no-adf-schema)"

    def problem(self, document: Any) -> str | None:
        if not isinstance(document, dict):
            return "an ADF document is a JSON object"
        if document.get("type") != "doc":
            return 'type must be "doc"'
        if document.get("version") != 1:
            return "version must be 1"
        content = document.get("content")
        if not isinstance(content, list):
            return "content must be a list"
        if not all(
            isinstance(node, dict) and isinstance(node.get("type"), str) for node in content
        ):
            return "every content node is an object with a type"
        return None


def load_adf_validator(schema_path: Path | str | None) -> AdfValidator:
    return StructuralAdfValidator() if schema_path is None else SchemaAdfValidator(schema_path)


def main() -> int:
    try:
        print(ensure_adf_schema())
    except AdfSchemaUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
