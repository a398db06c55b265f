"""multipart/form-data bodies built as bytes, so a retry can send the very same body again."""

from __future__ import annotations

import uuid
from collections.abc import Mapping


def multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and files (name: (filename, bytes, type)),
    as bytes so a retry can send it again."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, data, content_type) in (files or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
            + value.encode("utf-8")
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
