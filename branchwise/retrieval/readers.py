"""Per-format readers used by :mod:`branchwise.retrieval.ingest`: text, Markdown, HTML, PDF.

Each reader maps a file to ``(text, title)`` or raises :class:`SkipFile` with a message
naming the file and a fix; the caller decides whether that stops ingestion or only skips
the file (``IngestConfig.on_error``).

Why our own readers: llama-index-core has none for these formats without the separate
``llama-index-readers-file`` package, and its fallback (``errors="ignore"``) hides decoding
problems. These are small, use only the standard library (plus pypdf for PDF) and treat
file contents strictly as data.
"""

from __future__ import annotations

import codecs
import importlib.util
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

#: Bytes inspected for NUL bytes when deciding whether a file is binary.
BINARY_SNIFF_BYTES = 8192

Reader = Callable[[Path, str], tuple[str, str]]


class SkipFile(Exception):
    """A file cannot be read; ``message`` names it, ``fix`` says what to do."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message = message
        self.fix = fix


def decode_text(path: Path, encoding_errors: str) -> str:
    """Read a text file as UTF-8 (BOM-aware, UTF-16 with a BOM too), refusing binary files."""
    data = path.read_bytes()
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise SkipFile(
            f"{path} looks like a binary file (it contains NUL bytes), not text.",
            "remove it from the corpus folder, or convert it to .txt/.md.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if encoding_errors == "replace":
            log.warning("%s is not valid UTF-8 (byte %d); undecodable bytes replaced by U+FFFD.", path, e.start)
            return data.decode("utf-8-sig", errors="replace")
        raise SkipFile(
            f"{path} is not valid UTF-8 text ({e.reason} at byte {e.start}).",
            f"re-encode it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 '{path}'`), "
            "or pass encoding_errors='replace' to decode it lossily.",
        ) from e


def read_text(path: Path, encoding_errors: str) -> tuple[str, str]:
    """Plain text; the title is left to the caller (the file name)."""
    return decode_text(path, encoding_errors), ""


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_FM_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.MULTILINE)
_ATX_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def read_markdown(path: Path, encoding_errors: str) -> tuple[str, str]:
    """Markdown kept as Markdown (LLMs read it well); YAML front matter is dropped.

    The title is the front-matter ``title:`` or else the first level-1 heading.
    """
    text = decode_text(path, encoding_errors)
    title = ""
    if m := _FRONT_MATTER.match(text):
        if t := _FM_TITLE.search(m.group(1)):
            title = t.group(1)
        text = text[m.end():]
    if not title and (h := _ATX_H1.search(text)):
        title = h.group(1)
    return text, title


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: scripts/styles dropped, blocks become line breaks."""

    _HIDDEN = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dd", "dt",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._hidden = 0
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        self._in_title |= tag == "title"
        self._in_h1 |= tag == "h1"
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1
        if tag == "title":
            self._in_title = False
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)
            if self._in_h1:
                self.h1_parts.append(data)


def read_html(path: Path, encoding_errors: str) -> tuple[str, str]:
    """Visible text of an HTML file; title from ``<title>`` or the first ``<h1>``."""
    parser = _HTMLText()
    parser.feed(decode_text(path, encoding_errors))
    parser.close()
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", ln).strip() for ln in "".join(parser.parts).split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title_parts).split()) or " ".join("".join(parser.h1_parts).split())
    return text, title


def pdf_supported() -> bool:
    """Whether pypdf (the ``pdf`` extra) is installed."""
    return importlib.util.find_spec("pypdf") is not None


def read_pdf(path: Path, encoding_errors: str) -> tuple[str, str]:
    """Text of every page (pypdf), pages separated by blank lines; title from PDF metadata."""
    if not pdf_supported():
        raise SkipFile(f"{path} is a PDF and pypdf is not installed.", "pip install 'branchwise[pdf]'.")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise SkipFile(f"{path} is an encrypted PDF.", "decrypt it (e.g. `qpdf --decrypt`) first.")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata is not None else None
    except (PyPdfError, ValueError, KeyError, OSError) as e:
        raise SkipFile(f"{path} is not a readable PDF ({e}).", "re-export it as PDF, or convert it to text.") from e
    return "\n\n".join(p.strip() for p in pages if p.strip()), str(meta_title or "")


#: Reader by lower-case file suffix.
READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}
