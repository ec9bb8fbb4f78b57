"""An uploaded XLSX checked before openpyxl opens it (issue 17).

An XLSX is a zip of XML parts. Two attacks fit in a small upload:
- **a zip bomb**: a part that inflates a thousandfold (a 50 MB upload holding gigabytes of
  XML), exhausting memory or CPU while the sheet is read;
- **XML entities**: a DOCTYPE that declares entities, expanded exponentially ("billion laughs")
  or read from the server's files or network (external entities).

The zip's central directory declares each part's sizes; Python's zipfile never inflates a part
past its declared size (the read stops there and the CRC check fails), so the declared sizes are
a bound that holds. They are checked here: each part and their sum, and the inflation ratio of
the large ones. Every XML part's prolog is read (a few KB at most) and refused if it holds a
DOCTYPE; behind this, openpyxl parses through defusedxml (a pinned dependency), which forbids
entities wherever they are.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass


@dataclass(frozen=True)
class XlsxLimits:
    # A county's member list (50,000 rows) is a sheet of ~15 MB of XML; ample room above.
    max_part_bytes: int = 100 * 1024 * 1024
    max_total_bytes: int = 200 * 1024 * 1024
    max_parts: int = 1_000
    # Spreadsheet XML deflates 5-20x; 100x is far above any real sheet and far below a bomb
    # (thousands to millions). Small parts are exempt: an empty sheet deflates 50x and more.
    max_ratio: float = 100.0
    ratio_from_bytes: int = 1024 * 1024
    # How much of each XML part is read looking for a DOCTYPE before the root element.
    prolog_bytes: int = 4096


LIMITS = XlsxLimits()


class UnsafeXlsx(ValueError):
    """The file breaks one of the limits; the message (Chinese) names which, for the clerk.
    `status`: 413 for the size limits (what it would inflate to), 422 for a DOCTYPE."""

    def __init__(self, message: str, status: int = 413) -> None:
        super().__init__(message)
        self.status = status


_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")


def check_xlsx(data: bytes, limits: XlsxLimits = LIMITS) -> None:
    """Raises UnsafeXlsx, or zipfile.BadZipFile if it is no zip at all."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = z.infolist()
        if len(parts) > limits.max_parts:
            raise UnsafeXlsx(f"文件包含 {len(parts)} 个部件，超过 {limits.max_parts} 个的上限")
        total = 0
        for info in parts:
            if info.file_size > limits.max_part_bytes:
                raise UnsafeXlsx(
                    f"文件中的“{info.filename}”解压后有 {_mb(info.file_size)}，"
                    f"超过 {_mb(limits.max_part_bytes)} 的上限"
                )
            total += info.file_size
            if total > limits.max_total_bytes:
                raise UnsafeXlsx(f"文件解压后超过 {_mb(limits.max_total_bytes)} 的上限")
            if info.file_size >= limits.ratio_from_bytes and (
                info.file_size > limits.max_ratio * max(info.compress_size, 1)
            ):
                raise UnsafeXlsx(
                    f"文件中的“{info.filename}”压缩比异常（超过 {limits.max_ratio:.0f} 倍），"
                    "可能是恶意构造的文件"
                )
        for info in parts:
            if info.filename.endswith((".xml", ".rels", ".vml")):
                with z.open(info) as f:
                    head = f.read(limits.prolog_bytes)
                root = _ROOT_START.search(head)
                prolog = head if root is None else head[: root.start()]
                if _DOCTYPE.search(prolog):
                    raise UnsafeXlsx(
                        f"文件中的“{info.filename}”含有文档类型声明（DOCTYPE），"
                        "Excel 不会生成这样的文件，已拒绝",
                        422,
                    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"
