"""Cheap checks of video sources, for what decoding would only find late or name badly.

* A frame file cut short (an interrupted copy) lacks its end: PNG's ``IEND`` chunk, JPEG's
  end-of-image marker, the length a BMP header gives. :func:`frame_folder_problem` reads a few
  bytes at the end of every frame of a folder (no decoding): ``fairseq-slt-prep`` checks every
  folder this way.
* A file without a video stream (audio only, subtitles): :func:`video_stream_problem` says so
  where probing it as a video failed.

Nothing here imports a decoder at module level: ``fairseq-slt-prep`` starts without them.
"""

import os
from typing import List, Optional, Sequence

PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"  # IEND chunk with its CRC
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
BMP_START = b"BM"
# how far from a file's end its end marker is looked for (encoders may pad after it)
TAIL_BYTES = 1024


def frame_file_problem(path: str) -> Optional[str]:
    """Why the png/jpg/bmp frame ``path`` is unusable (empty, truncated, not such an image), or
    ``None``. Told by the file's first bytes, not its name (a JPEG named ``.png`` is fine)."""
    size = os.path.getsize(path)
    if size == 0:
        return "is empty"
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    if head.startswith(PNG_START):
        return None if PNG_END in tail else f"is truncated (no PNG end chunk in its {size} bytes)"
    if head.startswith(JPEG_START):
        return None if JPEG_END in tail else f"is truncated (no JPEG end marker in its {size} bytes)"
    if head.startswith(BMP_START) and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if declared <= size else f"is truncated ({size} bytes, its BMP header says {declared})"
    return f"is not a PNG, JPEG or BMP image (it starts with {head[:4]!r})"


def frame_folder_problem(files: Sequence[str]) -> Optional[str]:
    """Why the frames ``files`` of one folder cannot all be read (how many are bad, the first
    named), or ``None``."""
    bad: List[str] = []
    first = None
    for path in files:
        problem = frame_file_problem(path)
        if problem is not None:
            bad.append(path)
            first = first or f"{os.path.basename(path)} {problem}"
    if not bad:
        return None
    return f"{len(bad)} of its {len(files)} frames are unusable, the first: {first}"


def video_stream_problem(path: str) -> Optional[str]:
    """``"it has no video stream (streams: audio)"`` for a media file without one, else ``None``
    (also where the file cannot be opened at all: the caller's error says so)."""
    import av

    try:
        with av.open(path) as container:
            if container.streams.video:
                return None
            kinds = sorted({s.type for s in container.streams}) or ["none"]
    except Exception:
        return None
    return f"it has no video stream (streams: {', '.join(kinds)}); give a video file or a frame folder"
