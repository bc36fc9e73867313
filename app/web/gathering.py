"""Whether the bytes of an HTTP/1 request received so far make a whole request (pure, no I/O).

``Gathering`` is what the web process's gunicorn worker (``app.web.buffering``) keeps for each
connection while its request arrives. It finds the end of the head, then waits for the body by
``Content-Length`` or by its chunks, and bounds both: at most ``HEAD_LIMIT`` bytes of head and
``BODY_LIMIT`` of body are ever held. Anything malformed is declared ready and left to gunicorn's
parser, which answers it (400 and friends): this only decides when to stop waiting. Each byte is
looked at a bounded number of times, so a client sending one byte per packet costs linear time.
"""

from __future__ import annotations

import re

#: The most bytes of request line and header fields held for one request.
HEAD_LIMIT = 32 * 1024
#: The most bytes of body held for one request: the app's own limit (``app.factory.MAX_BODY_BYTES``),
#: so every body the app would accept is gathered, and nothing bigger is ever read.
BODY_LIMIT = 64 * 1024

#: Verdicts: not whole yet; whole (or malformed: the parser answers); whole head with a body over
#: ``BODY_LIMIT`` (left unread: the app refuses it from its ``Content-Length``); refuse it.
WAIT, READY, WITHHELD, TOO_LARGE, HEAD_TOO_LARGE = "wait", "ready", "withheld", "413", "431"

#: A chunk-size line longer than this is malformed: gunicorn's parser refuses it.
_CHUNK_LINE_LIMIT = 1024
#: An ``Expect: 100-continue`` field line (RFC 9110 section 10.1.1: the value is case-insensitive).
_EXPECT_CONTINUE = re.compile(
    rb"\r?\nexpect[ \t]*:[ \t]*100-continue[ \t]*(?=\r?\n)", flags=re.IGNORECASE
)


class Gathering:
    """One request's bytes as they arrive (``data``) and what they hold so far (``verdict``).

    ``expects_continue``: the client waits for ``100 Continue`` before sending its body; the field
    is taken out of ``data``, so whoever answers it is the only one to say it.
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray()
        self.verdict = WAIT
        self.expects_continue = False
        self._start = 0  # after the empty lines allowed before a request line
        self._searched = 0  # how far the search for an end (of the head, of trailers) went
        self._body_start: int | None = None
        self._needed: int | None = None  # Content-Length: the bytes a whole request has
        self._chunk = 0  # chunked: where the next chunk-size line starts
        self._trailers: int | None = None  # chunked: where the trailer section starts
        if data:
            self.feed(data)

    def feed(self, chunk: bytes) -> str:
        """Add ``chunk``; return what the bytes so far hold (and keep it in ``verdict``)."""
        self.data += chunk
        if self.verdict == WAIT:
            self.verdict = self._head() if self._body_start is None else self._body()
        return self.verdict

    def _head(self) -> str:
        data = self.data
        while self._start < len(data) and data[self._start] in b"\r\n":
            self._start += 1
        resume = max(self._start, self._searched - 3)
        self._searched = len(data)
        ends = [
            i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep, resume)) >= 0
        ]
        if not ends:
            return HEAD_TOO_LARGE if len(data) - self._start > HEAD_LIMIT else WAIT
        end = min(ends)
        if end - self._start > HEAD_LIMIT:
            return HEAD_TOO_LARGE
        end = self._take_expect_continue(end)
        self._body_start = self._chunk = self._searched = end
        fields = _fields(bytes(data[self._start : end]))
        if b"transfer-encoding" in fields:
            return self._body() if fields[b"transfer-encoding"] == [b"chunked"] else READY
        lengths = fields.get(b"content-length", [b"0"])
        if len(lengths) != 1 or not lengths[0].isdigit():
            return READY
        if int(lengths[0]) > BODY_LIMIT:
            return WITHHELD
        self._needed = end + int(lengths[0])
        return self._body()

    def _take_expect_continue(self, end: int) -> int:
        head = bytes(self.data[self._start : end])
        if not head.split(b"\n", 1)[0].rstrip().endswith(b"HTTP/1.1"):
            return end  # RFC 9110 section 10.1.1: ignored in HTTP/1.0
        stripped, found = _EXPECT_CONTINUE.subn(b"", head)
        if found != 1:
            return end
        self.data[self._start : end] = stripped
        self.expects_continue = True
        return self._start + len(stripped)

    def _body(self) -> str:
        if self._needed is not None:
            return READY if len(self.data) >= self._needed else WAIT
        return self._chunks() if self._trailers is None else self._trailer_section()

    def _chunks(self) -> str:
        data, body_start = self.data, self._body_start or 0
        while True:
            line_end = data.find(b"\r\n", self._chunk)
            if line_end < 0:
                return WAIT if len(data) - self._chunk <= _CHUNK_LINE_LIMIT else READY
            try:
                size = int(data[self._chunk : line_end].split(b";", 1)[0].strip(), 16)
            except ValueError:
                return READY
            if size == 0:  # the last chunk
                self._trailers = self._searched = line_end
                return self._trailer_section()
            self._chunk = line_end + 2 + size + 2
            if self._chunk - body_start > BODY_LIMIT:
                return TOO_LARGE
            if self._chunk > len(data):
                return WAIT

    def _trailer_section(self) -> str:
        """The trailer section ends with an empty line (right after the last chunk's, if none)."""
        resume = max(self._trailers or 0, self._searched - 3)
        self._searched = len(self.data)
        if self.data.find(b"\r\n\r\n", resume) >= 0:
            return READY
        return TOO_LARGE if len(self.data) - (self._trailers or 0) > HEAD_LIMIT else WAIT


def scan(data: bytes) -> str:
    """The verdict on ``data`` received at once."""
    return Gathering(data).verdict


def _fields(head: bytes) -> dict[bytes, list[bytes]]:
    fields: dict[bytes, list[bytes]] = {}
    for line in head.splitlines()[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(value.strip().lower())
    return fields
