"""An S3 (or S3-compatible) bucket prefix as a collection, through aiobotocore.

Directories do not exist in S3; this connector shows a directory wherever objects live under
``path/`` or a zero-byte ``path/`` marker exists, and keeps a marker for a parent directory that
would otherwise vanish when its last object is deleted or renamed away. Writes of small files
are buffered and sent in one PutObject at commit; larger files become a multipart upload whose
parts (fixed ``WriteState.part_size``, part number = offset // part_size + 1) the engine sends
in parallel and which can be resumed after a crash by its UploadId.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from arctern.connectors.base import Capabilities, FileInfo, WriteState
from arctern.connectors.errors import (
    AlreadyExists,
    ConnectorError,
    DirectoryNotEmpty,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    ObjectNotFound,
    PermissionDenied,
    TransientError,
)
from arctern.connectors.names import escape_name, os_name, unescape_name
from arctern.connectors.paths import child, join_path, split_path
from arctern.connectors.s3.errors import error_code, http_status, mapped
from arctern.connectors.s3.secrets import is_encrypted

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_COPY_THRESHOLD = 5 * GiB  # CopyObject's limit; UploadPartCopy beyond it
DEFAULT_COPY_PART_SIZE = 512 * MiB
DIR_CACHE_SECONDS = 5.0
DIR_CACHE_ENTRIES = 4096

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

# Aliases, because the ``list`` method shadows the builtin inside the class body.
Parts = list[str]
Objects = list[dict[str, Any]]


_session: AioSession | None = None


def shared_session() -> AioSession:
    """One botocore session per process, because it caches the parsed S3 service model.

    A fresh session costs about 0.3 s to open a client (it re-reads the model), and the
    transfer API opens a connector per request. The session holds no credentials: each
    connector passes its own to ``create_client``.
    """
    global _session
    if _session is None:
        _session = get_session()
    return _session


def crc32c_b64(data: bytes) -> str:
    """The base64 CRC32C S3 expects in ``x-amz-checksum-crc32c``.

    Computed here because botocore needs awscrt for CRC32C; with the value supplied, the
    accompanying ``ChecksumAlgorithm`` only names it and botocore computes nothing.
    """
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode("ascii")


def parse_root(root: str) -> tuple[str, str]:
    """Split ``bucket[/prefix]`` (optionally ``s3://``-prefixed) into bucket and key prefix.

    The prefix is returned with a trailing ``/`` (or empty) so keys are ``prefix + relpath``.
    """
    text = root.strip()
    if text.startswith("s3://"):
        text = text[len("s3://") :]
    text = text.strip("/")
    bucket, _, rest = text.partition("/")
    if not bucket:
        raise InvalidPath(f"S3 collection root needs a bucket name: {root!r}")
    if "\x00" in text:
        raise InvalidPath("S3 collection root contains a NUL byte")
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidPath(f"S3 collection root may not contain '..': {root!r}")
    prefix = "/".join(parts) + "/" if parts else ""
    return bucket, prefix


def _temp_name(parts: Parts) -> str:
    """A fresh identity for a pending write, shaped like the other connectors' temp files.

    No object is ever stored under it (the pending data is the write buffer or the multipart
    upload); a new name on resume tells the engine that earlier progress was lost.
    """
    return join_path([*parts[:-1], f".arctern-{uuid.uuid4().hex}.part"])


def _key_name(part: str) -> str:
    """The S3 key component for a collection path component in escaped text form.

    Keys are UTF-8: a name whose bytes are not (copied from a POSIX collection) is refused
    for that file, clearly, instead of being stored under a different name.
    """
    if "\\" not in part:
        return part
    os_name(part)  # refuses a second spelling of a name
    try:
        return unescape_name(part).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath(
            f"{part!r}: S3 object keys must be valid UTF-8, and this name is not"
        ) from None


def _shown_key_name(name: str) -> str:
    """The escaped text form of a key component (only backslashes may need escaping)."""
    return name if "\\" not in name else escape_name(name.encode("utf-8"))


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def _md5_digest(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _bool_option(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConnectorError(f"S3 option {name} must be true or false, not {value!r}")


def _int_option(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"S3 option {name} must be an integer, not {value!r}") from exc


@dataclass(slots=True)
class _PendingPart:
    """A part assembled from writes smaller than the part size."""

    buffer: bytearray
    received: int = 0


@dataclass(slots=True)
class _Upload:
    """In-memory companion of a WriteState: small-file buffer or partial parts."""

    buffer: bytearray | None = None
    pending: dict[int, _PendingPart] = field(default_factory=dict)
    checksums: dict[int, str] = field(default_factory=dict)  # part number -> base64 CRC32C
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class S3Connector:
    """A collection rooted at ``bucket[/prefix]`` of an S3-compatible object store.

    Options (all optional; credentials arrive decrypted, see ``secrets.decrypt_options``):
    ``endpoint_url`` (omit for AWS), ``region`` (us-east-1), ``access_key_id`` and
    ``secret_access_key`` (else botocore's usual credential chain), ``session_token``,
    ``addressing_style`` (path when an endpoint is given, else auto), ``part_size`` (8 MiB,
    grown so a file fits in 10,000 parts), ``multipart_threshold`` (= part_size; smaller
    files go in one PutObject), ``copy_threshold`` (5 GiB; larger renames use part copies
    of ``copy_part_size``), ``concurrency`` (8 server-side copies at once), ``page_size``
    (1000 keys per listing request), ``max_attempts``/``connect_timeout``/``read_timeout``
    (botocore retries and timeouts), ``checksums`` (true: CRC32C on every upload; false
    for stores without additional checksums, which then get Content-MD5).
    """

    def __init__(
        self,
        root: str,
        options: Mapping[str, Any] | None = None,
        *,
        session: AioSession | None = None,
    ) -> None:
        options = dict(options or {})
        self._session = session
        self.bucket, self.prefix = parse_root(root)
        self._endpoint_url = options.get("endpoint_url") or None
        self._region = options.get("region") or options.get("region_name") or "us-east-1"
        self._access_key_id = options.get("access_key_id") or None
        self._secret_access_key = options.get("secret_access_key") or None
        self._session_token = options.get("session_token") or None
        if is_encrypted(self._secret_access_key) or is_encrypted(self._session_token):
            # A caller forgot decrypt_options; signing with the ciphertext would only
            # produce a baffling SignatureDoesNotMatch from the store.
            raise PermissionDenied("S3 credentials are still encrypted (decrypt_options first)")
        # Local and most self-hosted stores only answer path-style requests.
        default_style = "path" if self._endpoint_url else "auto"
        self._addressing_style = options.get("addressing_style") or default_style
        self.part_size = _int_option(options, "part_size", DEFAULT_PART_SIZE)
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ConnectorError(
                f"S3 part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}"
            )
        # Files up to this size are buffered and sent with one PutObject at commit.
        self.multipart_threshold = _int_option(options, "multipart_threshold", self.part_size)
        self.copy_threshold = _int_option(options, "copy_threshold", DEFAULT_COPY_THRESHOLD)
        self.copy_part_size = _int_option(options, "copy_part_size", DEFAULT_COPY_PART_SIZE)
        self.concurrency = max(1, _int_option(options, "concurrency", 8))
        self.page_size = min(1000, max(1, _int_option(options, "page_size", 1000)))
        self.max_attempts = max(1, _int_option(options, "max_attempts", 3))
        # Additional (CRC32C) checksums; off for stores that predate them, which then get
        # Content-MD5 on every upload instead.
        self.checksums = _bool_option(options, "checksums", True)
        self.connect_timeout = _int_option(options, "connect_timeout", 10)
        self.read_timeout = _int_option(options, "read_timeout", 60)
        self.capabilities = Capabilities(
            write_at_offset=False,
            rename=False,
            native_checksums=("crc32c", "md5") if self.checksums else ("md5",),
            set_mtime=False,
            local_path=False,
            min_part_size=MIN_PART_SIZE,
            max_parts=MAX_PARTS,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._client_lock: asyncio.Lock | None = None
        self._uploads: dict[int, _Upload] = {}
        # Directories seen to exist very recently: spares a LIST per file written into them.
        # Our own deletes and renames invalidate it; another client's delete within the
        # window only means a file lands in a directory that S3 then shows again.
        self._known_dirs: dict[str, float] = {}

    # ------------------------------------------------------------------ plumbing

    async def _s3(self) -> Any:
        """The aiobotocore client, created on first use (connectors are opened synchronously)."""
        if self._client is not None:
            return self._client
        if self._client_lock is None:
            self._client_lock = asyncio.Lock()
        async with self._client_lock:
            if self._client is None:
                config = AioConfig(
                    signature_version="s3v4",
                    s3={"addressing_style": self._addressing_style},
                    retries={"max_attempts": self.max_attempts, "mode": "standard"},
                    max_pool_connections=max(10, self.concurrency * 2),
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                stack = contextlib.AsyncExitStack()
                client = await stack.enter_async_context(
                    (self._session or shared_session()).create_client(
                        "s3",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region,
                        aws_access_key_id=self._access_key_id,
                        aws_secret_access_key=self._secret_access_key,
                        aws_session_token=self._session_token,
                        config=config,
                    )
                )
                self._stack, self._client = stack, client
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        self._uploads.clear()
        if stack is not None:
            await stack.aclose()

    def _create_checksum_args(self) -> dict[str, str]:
        # FULL_OBJECT makes the completed object's CRC32C that of its bytes, comparable with
        # a checksum computed while reading the source (COMPOSITE would hash part checksums).
        if not self.checksums:
            return {}
        return {"ChecksumAlgorithm": "CRC32C", "ChecksumType": "FULL_OBJECT"}

    def _copy_checksum_args(self) -> dict[str, str]:
        return {"ChecksumAlgorithm": "CRC32C"} if self.checksums else {}

    async def _body_checksum_args(self, body: bytes) -> dict[str, str]:
        """Integrity headers for an upload; the store rejects a body that does not match."""
        if self.checksums:
            return {"ChecksumAlgorithm": "CRC32C", "ChecksumCRC32C": crc32c_b64(body)}
        if len(body) >= MiB:
            digest = await asyncio.to_thread(_md5_digest, body)
        else:
            digest = _md5_digest(body)
        return {"ContentMD5": base64.b64encode(digest).decode("ascii")}

    def _key(self, parts: Parts) -> str:
        key = self.prefix + "/".join(_key_name(part) for part in parts)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES - 1:  # room for a directory marker's "/"
            raise InvalidPath("path is too long for an S3 key")
        return key

    def _dir_prefix(self, parts: Parts) -> str:
        return self._key(parts) + "/" if parts else self.prefix

    async def _head(self, key: str, what: str, **extra: Any) -> dict[str, Any] | None:
        """HeadObject, or None when there is no such object."""
        s3 = await self._s3()
        try:
            with mapped(what):
                try:
                    return dict(await s3.head_object(Bucket=self.bucket, Key=key, **extra))
                except ClientError as exc:
                    if error_code(exc) in _NOT_FOUND_CODES or http_status(exc) == 404:
                        return None
                    raise
        except ObjectNotFound:
            return None

    async def _probe_dir(self, parts: Parts, what: str) -> dict[str, Any] | None:
        """The first listing entry under ``path/`` (marker or content), or None if empty."""
        s3 = await self._s3()
        with mapped(what):
            resp = await s3.list_objects_v2(
                Bucket=self.bucket, Prefix=self._dir_prefix(parts), MaxKeys=1
            )
        contents = resp.get("Contents") or []
        return dict(contents[0]) if contents else None

    async def _kind(self, parts: Parts, what: str) -> str | None:
        """``"file"``, ``"dir"`` or None for a path that does not exist."""
        if not parts:
            return "dir"
        if await self._head(self._key(parts), what) is not None:
            return "file"
        if await self._probe_dir(parts, what) is not None:
            return "dir"
        return None

    async def _keep_parent(self, parts: Parts, what: str) -> None:
        """Leave a marker for the parent of ``parts`` if removing it emptied the parent."""
        parent = parts[:-1]
        if not parent:
            return
        if await self._probe_dir(parent, what) is None:
            s3 = await self._s3()
            with mapped(what):
                await s3.put_object(Bucket=self.bucket, Key=self._dir_prefix(parent), Body=b"")

    def _remember_dir(self, parts: Parts) -> None:
        if len(self._known_dirs) >= DIR_CACHE_ENTRIES:
            self._known_dirs.clear()
        self._known_dirs[self._dir_prefix(parts)] = time.monotonic() + DIR_CACHE_SECONDS

    def _forget_dirs(self, parts: Parts) -> None:
        """Drop cached knowledge of ``parts`` and everything below it."""
        prefix = self._dir_prefix(parts)
        for known in [k for k in self._known_dirs if k.startswith(prefix)]:
            del self._known_dirs[known]

    async def _require_parent_dir(self, parts: Parts, what: str) -> None:
        parent = parts[:-1]
        if not parent:
            return
        expiry = self._known_dirs.get(self._dir_prefix(parent))
        if expiry is not None and expiry > time.monotonic():
            return
        # Directory first: on the hot path (every begin_write) the parent usually is one.
        if await self._probe_dir(parent, what) is not None:
            self._remember_dir(parent)
            return
        if await self._head(self._key(parent), what) is not None:
            raise NotADirectory(f"{what}: parent is not a directory")
        raise ObjectNotFound(f"{what}: parent directory does not exist")

    # ------------------------------------------------------------------ metadata

    async def stat(self, path: str) -> FileInfo:
        parts = split_path(path)
        if not parts:
            s3 = await self._s3()
            with mapped(f"bucket {self.bucket}"):
                await s3.head_bucket(Bucket=self.bucket)
            return FileInfo(name="", path="/", type="dir", size=0, mtime=0.0, permissions=0o755)
        head = await self._head(self._key(parts), path)
        if head is not None:
            return FileInfo(
                name=parts[-1],
                path=join_path(parts),
                type="file",
                size=int(head.get("ContentLength", 0)),
                mtime=head["LastModified"].timestamp() if head.get("LastModified") else 0.0,
            )
        first = await self._probe_dir(parts, path)
        if first is None:
            raise ObjectNotFound(f"{path}: no such file or directory")
        is_marker = first["Key"] == self._dir_prefix(parts)
        mtime = (
            first["LastModified"].timestamp() if is_marker and first.get("LastModified") else 0.0
        )
        return FileInfo(
            name=parts[-1],
            path=join_path(parts),
            type="dir",
            size=0,
            mtime=mtime,
            permissions=0o755,
        )

    async def list(self, path: str) -> AsyncIterator[FileInfo]:  # type: ignore[override]
        parts = split_path(path)
        base = join_path(parts)
        prefix = self._dir_prefix(parts)
        s3 = await self._s3()
        seen_any = False
        paginator = s3.get_paginator("list_objects_v2")
        with mapped(path):
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                Delimiter="/",
                PaginationConfig={"PageSize": self.page_size},
            )
            async for page in pages:
                entries: builtins.list[FileInfo] = []
                for obj in page.get("Contents") or []:
                    seen_any = True
                    name = obj["Key"][len(prefix) :]
                    if not _valid_name(name):
                        continue  # the directory's own marker, or a name no path can reach
                    name = _shown_key_name(name)
                    entries.append(
                        FileInfo(
                            name=name,
                            path=child(base, name),
                            type="file",
                            size=int(obj.get("Size", 0)),
                            mtime=obj["LastModified"].timestamp(),
                        )
                    )
                for common in page.get("CommonPrefixes") or []:
                    seen_any = True
                    name = common["Prefix"][len(prefix) : -1]
                    if not _valid_name(name):
                        continue
                    name = _shown_key_name(name)
                    entries.append(
                        FileInfo(
                            name=name,
                            path=child(base, name),
                            type="dir",
                            size=0,
                            mtime=0.0,
                            permissions=0o755,
                        )
                    )
                entries.sort(key=lambda info: info.name)
                for entry in entries:
                    yield entry
        if not seen_any:
            if not parts:
                with mapped(f"bucket {self.bucket}"):
                    await s3.head_bucket(Bucket=self.bucket)
                return
            if await self._head(self._key(parts), path) is not None:
                raise NotADirectory(f"{path}: not a directory")
            raise ObjectNotFound(f"{path}: no such directory")

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        parts = split_path(path)
        kind = await self._kind(parts, path)
        if kind == "file":
            raise AlreadyExists(f"{path}: a file with this name exists")
        if kind == "dir":
            if exist_ok:
                return
            raise AlreadyExists(f"{path}: directory exists")
        if parents:
            # Any existing ancestor must be a directory; missing ones appear implicitly.
            for depth in range(1, len(parts)):
                if await self._head(self._key(parts[:depth]), path) is not None:
                    raise NotADirectory(f"{join_path(parts[:depth])}: not a directory")
        else:
            await self._require_parent_dir(parts, path)
        s3 = await self._s3()
        with mapped(path):
            await s3.put_object(Bucket=self.bucket, Key=self._dir_prefix(parts), Body=b"")
        self._remember_dir(parts)

    # ------------------------------------------------------------------ delete

    async def _delete_keys(self, keys: Parts, what: str) -> None:
        s3 = await self._s3()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with mapped(what):
                resp = await s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                code = str(first.get("Code", ""))
                message = f"{what}: could not delete {len(errors)} object(s): {code}"
                if code == "AccessDenied":
                    raise PermissionDenied(message)
                if code in ("SlowDown", "InternalError", "ServiceUnavailable"):
                    raise TransientError(message)
                raise ConnectorError(message)

    async def _walk_keys(self, prefix: str, what: str) -> AsyncIterator[Objects]:
        """Pages of every object under ``prefix``, resumed with StartAfter.

        StartAfter (not the continuation token) lets callers delete what they were given
        before asking for the next page.
        """
        s3 = await self._s3()
        start_after = ""
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": prefix,
                "MaxKeys": self.page_size,
            }
            if start_after:
                kwargs["StartAfter"] = start_after
            with mapped(what):
                resp = await s3.list_objects_v2(**kwargs)
            contents = [dict(obj) for obj in resp.get("Contents") or []]
            if not contents:
                return
            yield contents
            start_after = contents[-1]["Key"]
            if not resp.get("IsTruncated"):
                return

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        parts = split_path(path)
        if not parts:
            raise PermissionDenied("the collection root cannot be deleted")
        self._forget_dirs(parts)
        s3 = await self._s3()
        if await self._head(self._key(parts), path) is not None:
            with mapped(path):
                await s3.delete_object(Bucket=self.bucket, Key=self._key(parts))
            await self._keep_parent(parts, path)
            return
        prefix = self._dir_prefix(parts)
        if not recursive:
            with mapped(path):
                resp = await s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=2)
            keys = [obj["Key"] for obj in resp.get("Contents") or []]
            if not keys:
                raise ObjectNotFound(f"{path}: no such file or directory")
            if keys != [prefix]:
                raise DirectoryNotEmpty(f"{path}: directory is not empty")
            with mapped(path):
                await s3.delete_object(Bucket=self.bucket, Key=prefix)
            await self._keep_parent(parts, path)
            return
        found = False
        async for page in self._walk_keys(prefix, path):
            found = True
            await self._delete_keys([obj["Key"] for obj in page], path)
        if not found:
            raise ObjectNotFound(f"{path}: no such file or directory")
        await self._keep_parent(parts, path)

    # ------------------------------------------------------------------ rename

    async def _copy_object(self, src: str, dst: str, size: int, what: str) -> None:
        s3 = await self._s3()
        source = {"Bucket": self.bucket, "Key": src}
        if size <= self.copy_threshold:
            with mapped(what):
                await s3.copy_object(
                    Bucket=self.bucket,
                    Key=dst,
                    CopySource=source,
                    MetadataDirective="COPY",
                    **self._copy_checksum_args(),
                )
            return
        part_size = max(self.copy_part_size, math.ceil(size / MAX_PARTS), MIN_PART_SIZE)
        count = math.ceil(size / part_size)
        with mapped(what):
            created = await s3.create_multipart_upload(
                Bucket=self.bucket, Key=dst, **self._create_checksum_args()
            )
        upload_id = created["UploadId"]
        limiter = asyncio.Semaphore(self.concurrency)

        async def copy_part(number: int) -> dict[str, Any]:
            first = (number - 1) * part_size
            last = min(size, first + part_size) - 1
            async with limiter:
                with mapped(what):
                    resp = await s3.upload_part_copy(
                        Bucket=self.bucket,
                        Key=dst,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=source,
                        CopySourceRange=f"bytes={first}-{last}",
                    )
            result = resp["CopyPartResult"]
            part: dict[str, Any] = {"PartNumber": number, "ETag": result["ETag"]}
            if result.get("ChecksumCRC32C"):
                part["ChecksumCRC32C"] = result["ChecksumCRC32C"]
            return part

        try:
            parts = await asyncio.gather(*(copy_part(n) for n in range(1, count + 1)))
            with mapped(what):
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": list(parts)},
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=dst, UploadId=upload_id)
            raise

    async def rename(self, old: str, new: str) -> None:
        src = split_path(old)
        dst = split_path(new)
        if not src or not dst:
            raise PermissionDenied("the collection root cannot be renamed or replaced")
        if src == dst:
            if await self._kind(src, old) is None:
                raise ObjectNotFound(f"{old}: no such file or directory")
            return
        if dst[: len(src)] == src:
            raise InvalidPath(f"cannot move {old} inside itself")
        src_kind = await self._kind(src, old)
        if src_kind is None:
            raise ObjectNotFound(f"{old}: no such file or directory")
        self._forget_dirs(src)
        await self._require_parent_dir(dst, new)
        if await self._kind(dst, new) is not None:
            raise AlreadyExists(f"{new}: already exists")
        if src_kind == "file":
            head = await self._head(self._key(src), old)
            if head is None:
                raise ObjectNotFound(f"{old}: no such file or directory")
            await self._copy_object(
                self._key(src), self._key(dst), int(head.get("ContentLength", 0)), old
            )
            s3 = await self._s3()
            with mapped(old):
                await s3.delete_object(Bucket=self.bucket, Key=self._key(src))
            await self._keep_parent(src, old)
            return
        dst_prefix = self._dir_prefix(dst)
        src_prefix = self._dir_prefix(src)
        limiter = asyncio.Semaphore(self.concurrency)

        async def move(obj: dict[str, Any]) -> None:
            target = dst_prefix + obj["Key"][len(src_prefix) :]
            async with limiter:
                await self._copy_object(obj["Key"], target, int(obj.get("Size", 0)), old)

        async for page in self._walk_keys(src_prefix, old):
            await asyncio.gather(*(move(obj) for obj in page))
            await self._delete_keys([obj["Key"] for obj in page], old)
        await self._keep_parent(src, old)

    # ------------------------------------------------------------------ read

    async def read(self, path: str, offset: int, length: int) -> bytes:
        parts = split_path(path)
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        if not parts:
            raise IsADirectory(f"{path}: is a directory")
        key = self._key(parts)
        if length == 0:
            if await self._head(key, path) is None:
                await self._raise_missing_file(parts, path)
            return b""
        s3 = await self._s3()
        try:
            with mapped(path):
                try:
                    resp = await s3.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
                    )
                except ClientError as exc:
                    if error_code(exc) == "InvalidRange" or http_status(exc) == 416:
                        return b""  # at or past the end of the object
                    raise
                async with resp["Body"] as stream:
                    data: bytes = await stream.read()
        except ObjectNotFound:
            await self._raise_missing_file(parts, path)
            raise
        return data

    async def _raise_missing_file(self, parts: Parts, path: str) -> None:
        if await self._probe_dir(parts, path) is not None:
            raise IsADirectory(f"{path}: is a directory")
        raise ObjectNotFound(f"{path}: no such file")

    # ------------------------------------------------------------------ write

    def _part_size_for(self, size: int) -> int:
        needed = math.ceil(size / MAX_PARTS)
        part_size = max(self.part_size, needed)
        return math.ceil(part_size / MiB) * MiB  # whole MiB keeps parts page-aligned

    def _companion(self, state: WriteState) -> _Upload:
        upload = self._uploads.get(id(state))
        if upload is None:
            upload = _Upload()
            if state.upload_id is None:
                upload.buffer = bytearray()
            self._uploads[id(state)] = upload
        return upload

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        # ``temp_key`` is not needed here: an unfinished multipart upload is invisible to
        # readers, and a bucket lifecycle rule (AbortIncompleteMultipartUpload) reclaims it.
        del temp_key
        parts = split_path(path)
        if not parts:
            raise IsADirectory("cannot write to the collection root")
        key = self._key(parts)
        path = join_path(parts)
        if resume is not None and resume.upload_id:
            resumed = await self._resume_upload(resume, key, size, path)
            if resumed is not None:
                return resumed
        elif resume is not None:
            kept = self._uploads.get(id(resume))
            if kept is not None and resume.target == path and resume.size == size:
                return resume  # same process: the buffered bytes are still here
            self._uploads.pop(id(resume), None)
        # The checks POSIX gets from open(2): the parent must be a directory and the
        # target must not be one.
        await self._require_parent_dir(parts, path)
        if await self._probe_dir(parts, path) is not None:
            raise IsADirectory(f"{path}: is a directory")
        if 0 <= size <= self.multipart_threshold:
            state = WriteState(temp_path=_temp_name(parts), size=size, target=path)
            self._uploads[id(state)] = _Upload(buffer=bytearray())
            return state
        if size < 0:
            raise ValueError("S3 writes need the file size in advance")
        part_size = self._part_size_for(size)
        s3 = await self._s3()
        with mapped(path):
            created = await s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, **self._create_checksum_args()
            )
        state = WriteState(
            temp_path=_temp_name(parts),
            upload_id=created["UploadId"],
            part_size=part_size,
            size=size,
            target=path,
        )
        self._uploads[id(state)] = _Upload()
        return state

    async def _resume_upload(
        self, resume: WriteState, key: str, size: int, path: str
    ) -> WriteState | None:
        """The resumed state with the parts the store already holds; None to start afresh."""
        s3 = await self._s3()
        old_key = self._upload_key(resume)
        compatible = (
            old_key == key
            and resume.part_size > 0
            and resume.size == size
            and size > self.multipart_threshold
        )
        if not compatible:
            with contextlib.suppress(ConnectorError):
                await self._abort_upload(old_key, str(resume.upload_id), path)
            return None
        state = WriteState(
            temp_path=resume.temp_path,
            upload_id=resume.upload_id,
            part_size=resume.part_size,
            size=size,
            target=path,
        )
        upload = _Upload()
        count = math.ceil(size / state.part_size)
        marker = 0
        try:
            with mapped(path):
                while True:
                    resp = await s3.list_parts(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=state.upload_id,
                        PartNumberMarker=marker,
                    )
                    for part in resp.get("Parts") or []:
                        number = int(part["PartNumber"])
                        expected = min(state.part_size, size - (number - 1) * state.part_size)
                        # A part of the wrong size was cut differently; send it again.
                        if 1 <= number <= count and int(part.get("Size", -1)) == expected:
                            state.parts[number] = str(part["ETag"])
                            if part.get("ChecksumCRC32C"):
                                upload.checksums[number] = str(part["ChecksumCRC32C"])
                    if not resp.get("IsTruncated"):
                        break
                    marker = int(resp.get("NextPartNumberMarker") or 0)
        except ObjectNotFound:
            return None  # the upload was aborted or expired: begin a new one
        previous = self._uploads.pop(id(resume), None)
        if previous is not None:
            # Some stores omit part checksums from ListParts; keep the ones we computed.
            for number, etag in state.parts.items():
                if number in previous.checksums and resume.parts.get(number) == etag:
                    upload.checksums.setdefault(number, previous.checksums[number])
        self._uploads[id(state)] = upload
        return state

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        if offset < 0:
            raise ValueError("offset must not be negative")
        upload = self._companion(state)
        length = len(data)
        if upload.buffer is not None:
            buffer = upload.buffer
            end = offset + length
            if end > self.multipart_threshold and end > state.size:
                raise ValueError("write beyond the declared size of a small S3 upload")
            if len(buffer) < end:
                buffer.extend(bytes(end - len(buffer)))
            buffer[offset:end] = data
            return
        if state.size >= 0 and offset + length > state.size:
            raise ValueError("write beyond the declared size of an S3 multipart upload")
        view = memoryview(data).cast("B")
        position = 0
        sends: builtins.list[Any] = []
        while position < length:
            absolute = offset + position
            number = absolute // state.part_size + 1
            part_start = (number - 1) * state.part_size
            part_len = min(state.part_size, state.size - part_start)
            within = absolute - part_start
            take = min(part_len - within, length - position)
            piece = view[position : position + take]
            if within == 0 and take == part_len:
                sends.append(self._upload_part(state, upload, number, bytes(piece)))
            else:
                whole = await self._assemble(upload, number, part_len, within, piece)
                if whole is not None:
                    sends.append(self._upload_part(state, upload, number, whole))
            position += take
        if sends:
            await asyncio.gather(*sends)

    async def _assemble(
        self, upload: _Upload, number: int, part_len: int, within: int, piece: memoryview
    ) -> bytes | None:
        """Collect a piece of a part; the whole part once every byte has arrived."""
        async with upload.lock:
            pending = upload.pending.get(number)
            if pending is None:
                pending = upload.pending[number] = _PendingPart(bytearray(part_len))
            pending.buffer[within : within + len(piece)] = piece
            pending.received += len(piece)
            if pending.received < part_len:
                return None
            del upload.pending[number]
            return bytes(pending.buffer)

    async def _upload_part(
        self, state: WriteState, upload: _Upload, number: int, body: bytes
    ) -> None:
        if number > MAX_PARTS:
            raise ValueError("too many parts for one S3 upload")
        integrity = await self._body_checksum_args(body)
        s3 = await self._s3()
        with mapped(state.target):
            resp = await s3.upload_part(
                Bucket=self.bucket,
                Key=self._upload_key(state),
                UploadId=state.upload_id,
                PartNumber=number,
                Body=body,
                **integrity,
            )
        state.parts[number] = str(resp["ETag"])
        if "ChecksumCRC32C" in integrity:
            upload.checksums[number] = integrity["ChecksumCRC32C"]

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        # S3 cannot set a modification time; capabilities.set_mtime says so.
        del mtime
        parts = split_path(path)
        if not parts:
            raise IsADirectory("cannot write to the collection root")
        key = self._key(parts)
        upload = self._companion(state)
        s3 = await self._s3()
        if state.upload_id is None:
            body = bytes(upload.buffer or b"")
            if state.size >= 0 and len(body) != state.size:
                raise ConnectorError(
                    f"{path}: received {len(body)} of {state.size} bytes before commit"
                )
            with mapped(path):
                await s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, **await self._body_checksum_args(body)
                )
            self._uploads.pop(id(state), None)
            return
        count = math.ceil(state.size / state.part_size)
        done = {int(n): etag for n, etag in state.parts.items()}
        missing = [n for n in range(1, count + 1) if n not in done]
        if missing or upload.pending:
            raise ConnectorError(
                f"{path}: multipart upload is incomplete ({len(missing)} part(s) missing)"
            )
        listed: Objects = []
        for number in range(1, count + 1):
            part: dict[str, Any] = {"PartNumber": number, "ETag": done[number]}
            if number in upload.checksums:
                part["ChecksumCRC32C"] = upload.checksums[number]
            listed.append(part)
        upload_key = self._upload_key(state)
        with mapped(path):
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=upload_key,
                UploadId=state.upload_id,
                MultipartUpload={"Parts": listed},
            )
        self._uploads.pop(id(state), None)
        if upload_key != key:
            await self._copy_object(upload_key, key, state.size, path)
            with mapped(path):
                await s3.delete_object(Bucket=self.bucket, Key=upload_key)

    def _upload_key(self, state: WriteState) -> str:
        """The key a multipart upload is bound to (it cannot move before completion)."""
        return self._key(split_path(state.target or state.temp_path))

    async def _abort_upload(self, key: str, upload_id: str, what: str) -> None:
        s3 = await self._s3()
        with mapped(what):
            try:
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise

    async def abort_write(self, state: WriteState) -> None:
        self._uploads.pop(id(state), None)
        if state.upload_id:
            await self._abort_upload(
                self._upload_key(state), state.upload_id, state.target or state.temp_path
            )

    # ------------------------------------------------------------------ checksums

    async def checksum(self, path: str, algorithm: str) -> str | None:
        algorithm = algorithm.lower().replace("-", "")
        if algorithm not in ("crc32c", "md5"):
            return None
        parts = split_path(path)
        if not parts:
            raise IsADirectory(f"{path}: is a directory")
        extra = {"ChecksumMode": "ENABLED"} if algorithm == "crc32c" else {}
        head = await self._head(self._key(parts), path, **extra)
        if head is None:
            await self._raise_missing_file(parts, path)
            return None
        if algorithm == "crc32c":
            value = head.get("ChecksumCRC32C")
            # "<b64>-<n>" is a checksum of part checksums, not of the data.
            if not value or "-" in str(value) or head.get("ChecksumType") == "COMPOSITE":
                return None
            try:
                return base64.b64decode(str(value)).hex()
            except ValueError:
                return None
        etag = str(head.get("ETag", "")).strip('"')
        # Multipart ETags ("…-N") and SSE-KMS ETags are not the MD5 of the data.
        if (
            not etag
            or "-" in etag
            or len(etag) != 32
            or head.get("ServerSideEncryption") == ("aws:kms")
        ):
            return None
        return etag.lower()


def open_s3_connector(root: str, options: Mapping[str, Any] | None = None) -> S3Connector:
    """The registry's entry point: ``root`` is ``bucket[/prefix]``."""
    return S3Connector(root, options)
