"""Static files as a browser on a county network should get them: compressed and cached.

- gzip when the browser accepts it (the chart library is 1.1 MB, ~360 KB gzipped): each file is
  compressed once per version (path, size and mtime) and kept in memory; the files are few.
- Caching: a URL that carries `?v=<hash of the file>` (`versioned`, which the desk pages'
  templates pass through) never changes, so it is cached for a year (`immutable`); a plain URL
  is revalidated on every use (`no-cache` + ETag, answered 304 when unchanged), so a deploy is
  seen at once either way.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

# Text formats worth compressing; images (and the .ico) are compressed already or tiny.
_COMPRESSIBLE = {".js", ".css", ".svg", ".html", ".json", ".txt", ".map", ".webmanifest"}
_MIN_SIZE = 1024
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

_lock = threading.Lock()
_gzipped: dict[tuple[str, int, int], bytes] = {}
_versions: dict[tuple[str, int, int], str] = {}


def _key(path: str, st: os.stat_result) -> tuple[str, int, int]:
    return (path, st.st_size, st.st_mtime_ns)


def _gzip(path: str, st: os.stat_result) -> bytes:
    key = _key(path, st)
    with _lock:
        data = _gzipped.get(key)
    if data is None:
        # mtime=0: the same file gives the same bytes (and ETag) in every process.
        data = gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
        with _lock:
            for old in [k for k in _gzipped if k[0] == path]:
                del _gzipped[old]
            _gzipped[key] = data
    return data


def _accepts_gzip(headers: Headers) -> bool:
    return any(
        part.split(";")[0].strip() == "gzip"
        and part.replace(" ", "").split(";q=")[-1] not in ("0", "0.0", "0.00", "0.000")
        for part in headers.get("accept-encoding", "").split(",")
    )


class Static(StaticFiles):
    """StaticFiles with gzip and the cache policy above."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        request = Headers(scope=scope)
        query = scope.get("query_string", b"").decode("latin-1")
        cache = IMMUTABLE if re.search(r"(^|&)v=", query) else REVALIDATE
        path = str(full_path)
        plain = FileResponse(path, status_code=status_code, stat_result=stat_result)
        plain.headers["Cache-Control"] = cache
        compressible = Path(path).suffix in _COMPRESSIBLE and stat_result.st_size >= _MIN_SIZE
        if compressible:
            plain.headers["Vary"] = "Accept-Encoding"
        if not (compressible and _accepts_gzip(request)):
            if self.is_not_modified(plain.headers, request):
                return NotModifiedResponse(plain.headers)
            return plain
        # Another representation, another (strong) ETag.
        etag = plain.headers["etag"].rstrip('"') + '-gz"'
        headers = {
            "Cache-Control": cache,
            "ETag": etag,
            "Last-Modified": plain.headers["last-modified"],
            "Vary": "Accept-Encoding",
            "Content-Encoding": "gzip",
        }
        if etag in [t.strip() for t in request.get("if-none-match", "").split(",")]:
            return NotModifiedResponse(Headers(headers))
        return Response(
            _gzip(path, stat_result),
            status_code=status_code,
            media_type=plain.media_type,
            headers=headers,
        )


def version(name: str) -> str:
    """A short hash of a static file's content (empty if it does not exist)."""
    path = STATIC / name
    try:
        st = path.stat()
    except OSError:
        return ""
    key = _key(str(path), st)
    with _lock:
        v = _versions.get(key)
    if v is None:
        v = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        with _lock:
            _versions[key] = v
    return v


_STATIC_REF = re.compile(r'(["\'])/static/([\w./-]+\.(?:js|css|svg|png|ico))\1')


def versioned(html_text: str) -> str:
    """Every `/static/...` reference in a page with `?v=<content hash>` appended, so the file
    is cached for good and a new version is a new URL."""

    def sub(m: re.Match[str]) -> str:
        v = version(m.group(2))
        return f"{m.group(1)}/static/{m.group(2)}?v={v}{m.group(1)}" if v else m.group(0)

    return _STATIC_REF.sub(sub, html_text)
