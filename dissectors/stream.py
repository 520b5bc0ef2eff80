"""A byte stream buffer that remembers which frame carried each byte.

Both framers that cut a reassembled TCP stream into protocol units — the TLS record layer
(dissectors/tls_records.py, RFC 8446 §5.1 / RFC 5246 §6.2.1: records span TCP segments) and
the V2GTP splitter (dissectors/v2gtp.py, ISO 15118-2 §7.8.3: messages span TCP segments or
TLS records) — keep the bytes of an unfinished unit and must name, for a unit or for
skipped garbage, the frame its first byte arrived in (a finding points at that frame).
"""
from __future__ import annotations


class FrameTaggedBuffer:
    """The unfinished bytes of one stream direction and the frames that carried them.

    ``buf``: the buffered bytes (bytearray), ``base``: the stream offset of ``buf[0]``
    (bytes), ``chunks``: (stream offset, frame number) of each piece fed, in order. Memory
    is what is buffered: :meth:`consume` drops bytes and the chunk marks before them.
    Subclasses add their framing state (``__slots__``)."""

    __slots__ = ("buf", "base", "chunks")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.base = 0
        self.chunks: list[tuple[int, int]] = []

    def append(self, data: bytes, frame: int) -> None:
        """Buffer ``data`` (bytes), which arrived in frame number ``frame``."""
        self.chunks.append((self.base + len(self.buf), frame))
        self.buf += data

    def frame_at(self, offset: int) -> int:
        """Frame number that supplied the byte at stream ``offset`` (which should be
        buffered; the first chunk's frame when it is before them, 0 when nothing is)."""
        chunks = self.chunks
        frame = chunks[0][1] if chunks else 0
        for off, fr in chunks:
            if off > offset:
                break
            frame = fr
        return frame

    def consume(self, upto: int) -> None:
        """Drop the buffered bytes before buffer position ``upto`` (≤ 0: nothing)."""
        if upto <= 0:
            return
        del self.buf[:upto]
        self.base += upto
        keep = [c for c in self.chunks if c[0] >= self.base]
        head = [c for c in self.chunks if c[0] < self.base]
        if head and (not keep or keep[0][0] > self.base):
            keep.insert(0, (self.base, head[-1][1]))
        self.chunks = keep
