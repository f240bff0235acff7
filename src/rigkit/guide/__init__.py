"""The build book (assembly sequence, cable map, BIOS settings, printable checklist) for a
resolved build, and the tracker that follows a build in progress to its certificate."""

from rigkit.guide.book import build_book
from rigkit.guide.model import Book, Phase, Reading, Step

__all__ = ["Book", "Phase", "Reading", "Step", "build_book"]
