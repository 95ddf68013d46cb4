"""Frame sources for detection: video files, image folders, camera indices, stream URLs.

`open_source(spec)` picks the kind from the spec: an int (or digits) is a camera,
`scheme://...` a stream URL, a folder an image sequence, anything else a video file.
`read()` returns the next BGR uint8 frame or None at the end; a source that cannot
be opened raises DeployError.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import os
from pathlib import Path

import cv2
import numpy as np

from yolo_slim.errors import DeployError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class FrameSource(ABC):
    """A sequence of frames. Attributes: name (for outputs), fps (nominal, or None), length (frames, or None)."""

    name: str
    fps: float | None
    length: int | None

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next BGR frame, or None when the source has ended."""

    def close(self) -> None:
        """Release the source."""


class VideoSource(FrameSource):
    """A `cv2.VideoCapture` over a file, a camera index or a URL."""

    def __init__(self, target: str | int, name: str, live: bool) -> None:
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            kind = "camera" if isinstance(target, int) else ("stream" if live else "video file")
            raise DeployError(f"{target}: cannot open {kind}")
        self.name = name
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.length = None if live or count <= 0 else count

    def read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        return frame if ok else None

    def close(self) -> None:
        self.cap.release()


class ImageFolderSource(FrameSource):
    """The images of a folder, in sorted order; unreadable images raise DeployError."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DeployError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.name, self.fps, self.length = folder.name, None, len(self.files)
        self._next = 0

    def read(self) -> np.ndarray | None:
        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        self._next += 1
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise DeployError(f"{path}: cannot read image")
        return frame


def source_name(spec: str | int, index: int) -> str:
    """A file-system-safe name for a source, unique by its index."""
    if isinstance(spec, int) or str(spec).isdigit():
        return f"{index}_camera{spec}"
    text = str(spec)
    stem = Path(text.split("://", 1)[-1].rstrip("/")).stem if "://" not in text else text.split("://", 1)[1].split("/")[0]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem) or "stream"
    return f"{index}_{safe}"


def open_source(spec: str | int | os.PathLike, index: int = 0) -> FrameSource:
    """Open a source by its spec (see the module docstring).

    Raises:
        DeployError: missing file or folder, or OpenCV cannot open it.
    """
    name = source_name(spec if isinstance(spec, int) else str(spec), index)
    if isinstance(spec, int) or str(spec).isdigit():
        src = VideoSource(int(spec), name, live=True)
    elif "://" in str(spec):
        src = VideoSource(str(spec), name, live=True)
    else:
        path = Path(spec)
        if path.is_dir():
            src = ImageFolderSource(path)
        elif path.is_file():
            src = VideoSource(str(path), name, live=False)
        else:
            raise DeployError(f"{path}: no such video file or image folder")
    src.name = name
    return src
