"""Offline sentence splitting for extractive compression.

RECOMP's extractive compressor (Xu et al. 2023, arXiv 2310.04408) selects *sentences*, so
every chunk must be split first. NLTK's Punkt needs a data download (and llama-index's
splitter leans on the same data), which branchwise never does at run time; this module
is a small, deterministic rule-based splitter instead. It keeps character offsets so a
compressor can rebuild text in the original order and map a sentence back to its chunk.

Rules, in order:

* a blank line always ends a sentence (paragraph break);
* a single newline ends one when the line before ends in terminal punctuation or ``:``,
  or the next line starts a list item / heading (``-``, ``*``, ``#``, ``1.``);
* ``.``, ``!``, ``?`` (optionally followed by closing quotes/brackets) end one when
  followed by whitespace and an upper-case letter, digit, quote or bracket, unless the
  word before the period is a known abbreviation (``Dr.``, ``e.g.``, ``Inc.``, month
  names...) or a single-letter initial (``J. R. R. Tolkien``, ``U.S.``).

Decimal numbers and URLs never split (no whitespace after the dot). The splitter is
conservative: when unsure it keeps text together, which costs a little compression but
never cuts a fact in half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Sentence", "split_sentences", "split_text"]

# Lower-cased abbreviations (without the trailing period) that do not end a sentence.
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft rev gen col lt sgt capt cmdr gov sen rep pres hon
    vs etc e.g i.e cf al approx ca no nos vol vols pp fig figs eq eqs ed eds est dept
    inc ltd co corp bros assn univ jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)

# Candidate boundary: terminal punctuation, optional closers, whitespace, then a sentence
# opener. The lookahead keeps the opener in the next sentence.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9À-ÖØ-Þ])""")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LIST_START = re.compile(r"\s*(?:[-*•#]|\d+[.)])\s")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of a text.

    Attributes:
        text: the sentence, stripped of surrounding whitespace.
        start: offset of the first character of ``text`` in the source string.
        end: offset one past its last character (``source[start:end] == text``).
    """

    text: str
    start: int
    end: int


def _is_abbreviation(prefix: str) -> bool:
    """True when the word that ends ``prefix`` (just before a period) is an abbreviation."""
    m = _WORD_BEFORE.search(prefix)
    if m is None:
        return False
    word = m.group(1).lower().rstrip(".")
    last = word.rsplit(".", 1)[-1] if "." in word else word
    if len(last) == 1 and last.isalpha():  # initials: "J.", "U.S."
        return True
    return word in _ABBREVIATIONS or last in _ABBREVIATIONS


def _line_breaks(text: str, start: int, end: int) -> list[int]:
    """Offsets (within ``text``) just after single newlines that end a sentence."""
    cuts: list[int] = []
    pos = text.find("\n", start, end)
    while pos != -1:
        before = text[start:pos].rstrip()
        after = text[pos + 1 : end]
        if before and (before[-1] in ".!?:;" or _LIST_START.match(after)):
            cuts.append(pos + 1)
        pos = text.find("\n", pos + 1, end)
    return cuts


def _punct_breaks(text: str, start: int, end: int) -> list[int]:
    cuts: list[int] = []
    for m in _BOUNDARY.finditer(text, start, end):
        if m.group(0).startswith(".") and len(m.group(0).rstrip("\"'”’)]")) == 1:
            if _is_abbreviation(text[start : m.start()]):
                continue
        cuts.append(m.end())
    return cuts


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences with their character offsets.

    Empty or whitespace-only pieces are dropped; the concatenation of the returned
    sentences, in order, covers every non-whitespace character of ``text`` exactly once.
    """
    blocks: list[tuple[int, int]] = []
    pos = 0
    for m in _PARAGRAPH.finditer(text):
        blocks.append((pos, m.start()))
        pos = m.end()
    blocks.append((pos, len(text)))

    out: list[Sentence] = []
    for b_start, b_end in blocks:
        cuts = sorted(set(_line_breaks(text, b_start, b_end) + _punct_breaks(text, b_start, b_end)))
        bounds = [b_start, *cuts, b_end]
        for s, e in zip(bounds, bounds[1:], strict=False):
            piece = text[s:e]
            stripped = piece.strip()
            if not stripped:
                continue
            lead = len(piece) - len(piece.lstrip())
            out.append(Sentence(stripped, s + lead, s + lead + len(stripped)))
    return out


def split_text(text: str) -> list[str]:
    """Convenience wrapper: the sentence strings of ``text``."""
    return [s.text for s in split_sentences(text)]
