"""One file from a multipart upload, read from the request stream into memory with the limit
enforced while reading (issue 17).

Starlette's `request.form()` spools every part to a temporary file (in full, on disk past 1 MB)
and only then hands it to the route, which can measure it. Here the stream is parsed as it
arrives: the named file part's bytes are counted as they come and the upload is refused at the
first byte past the limit, whether or not the client declared a length; nothing touches disk.
Other parts (form fields) are counted against a small envelope and dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from api.errors import ApiError

# Room for the multipart envelope around the file itself (part headers, other small fields).
ENVELOPE_BYTES = 64 * 1024


class UploadTooLarge(Exception):
    """The file part passed the limit; nothing more was read."""


class BadUpload(Exception):
    """Not a readable multipart body (the message says why, in English, for the log)."""


class _Reader:
    def __init__(self, field: str, limit: int) -> None:
        self.field = field.encode()
        self.limit = limit
        self.file: bytearray | None = None
        self.files_seen = 0
        self.other = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._in_file = False

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self.other += len(self._header_field) + len(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") == self.field:
            self.files_seen += 1
            if self.files_seen > 1:
                raise BadUpload(f"more than one part named {self.field.decode()!r}")
            self._in_file = True
            self.file = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.file is not None:
            self.file += data[start:end]
            if len(self.file) > self.limit:
                raise UploadTooLarge
        else:
            self.other += end - start
        if self.other > ENVELOPE_BYTES:
            raise UploadTooLarge


async def read_file_part(request: Request, field: str, limit: int) -> bytes | None:
    """The bytes of the part named `field` (None if the body has none); raises UploadTooLarge
    at the first byte past `limit`, BadUpload for a body that is not multipart."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadUpload("missing boundary in multipart")
    reader = _Reader(field, limit)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": reader.on_part_begin,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
            "on_part_data": reader.on_part_data,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadUpload(str(exc)) from exc
    return None if reader.file is None else bytes(reader.file)


async def read_spreadsheet(request: Request, limit: int, what: str = "文件") -> bytes:
    """The `file` part of a spreadsheet upload, or the route's ApiError: 413 past `limit` (on the
    declared length first, then while streaming), 415 for a body that is not multipart, 400 for
    one that does not parse, 422 without the part. Shared by every import route."""
    too_large = ApiError(
        413, "file_too_large", f"{what}超过 {limit // (1024 * 1024)} MB 的上限，请拆分后分批导入"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise too_large
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415, "multipart_required", "请以 multipart/form-data 上传文件，字段名为 file"
        )
    try:
        data = await read_file_part(request, "file", limit)
    except UploadTooLarge:
        raise too_large from None
    except BadUpload as exc:
        raise ApiError(400, "bad_multipart", f"上传内容无法解析：{exc}") from exc
    if data is None:
        raise ApiError(422, "missing_file", "缺少上传的文件（表单字段名应为 file）")
    return data


def spreadsheet_doc(headers: str) -> dict[str, Any]:
    """The OpenAPI of a route that takes one spreadsheet as `file` (multipart), which FastAPI
    cannot infer: the route reads the body itself, streamed, with its limit."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": f"CSV (UTF-8 or GB18030) or XLSX; headers {headers}",
                            }
                        },
                    }
                }
            },
        }
    }


# The statuses of such a route besides 200.
SPREADSHEET_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "the file is larger than IMPORT_MAX_BYTES (50 MB)"},
    415: {"description": "not a CSV or XLSX spreadsheet"},
    422: {
        "description": "empty file, wrong header, or bad rows (then nothing was written and "
        "the body lists every rejected row beside `error`)"
    },
}
