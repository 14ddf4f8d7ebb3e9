"""Cheap lexical judgements the agent uses where an LLM call is not worth its cost.

* :func:`top_sentences` — the "key facts" of a passage without an LLM: its sentences ranked
  by overlap with the question (the fallback of LLM distillation, and the default on the
  embedded model).
* :func:`unresolved_triples` — which relational triples of the question no evidence covers
  yet. RFM-RAG builds its gap queries from them; we call a triple covered when one pool
  item contains at least ``coverage`` of the triple's content words (variables excluded),
  a deliberately simple, inspectable rule.
* :func:`describe_triple` — a triple as search words, its variables replaced by what the
  other triples say about them (``(?a, born in, ?c)`` with ``(?a, author of, Dracula)`` →
  "author of Dracula born in"): the template gap query when no LLM writes one.
* :func:`is_relational` — whether the plan makes the question multi-hop (graph route).
"""

from __future__ import annotations

import re
from typing import Sequence

from branchwise.agents.state import EvidenceRecord, Triple
from branchwise.text.sentences import split_text

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "the a an of in on at to for and or but is are was were be been being by with from as that "
    "this these those which who whom whose what when where how why it its his her their they "
    "he she him them than then there did does do has have had not no yes also into about".split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` minus stop words and one-letter tokens."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def top_sentences(question: str, text: str, n: int) -> list[str]:
    """The ``n`` sentences of ``text`` sharing most content words with ``question``.

    Ties keep document order; sentences sharing nothing are never returned unless the
    passage has nothing better (then its first sentence stands for it).
    """
    sentences = [s.strip() for s in split_text(text) if s.strip()]
    if not sentences:
        return []
    q = content_words(question)
    scored = sorted(
        ((len(q & content_words(s)), -i, s) for i, s in enumerate(sentences)),
        key=lambda t: (t[0], t[1]),
        reverse=True,
    )
    best = [s for score, _, s in scored[:n] if score > 0]
    return best or sentences[:1]


def triple_words(t: Triple) -> set[str]:
    """Content words of a triple, variables (``?x``) excluded."""
    return content_words(" ".join(p for p in (t["subject"], t["relation"], t["object"]) if not p.startswith("?")))


def describe_triple(t: Triple, triples: Sequence[Triple]) -> str:
    """``t`` as plain words; each variable becomes its description from another triple."""

    def describe(var: str) -> str:
        for other in triples:
            if other is t:
                continue
            if other["subject"] == var and not other["object"].startswith("?"):
                return f"{other['relation']} {other['object']}"
            if other["object"] == var and not other["subject"].startswith("?"):
                return f"{other['subject']} {other['relation']}"
        return ""

    parts = [describe(p) if p.startswith("?") else p for p in (t["subject"], t["relation"], t["object"])]
    return " ".join(p for p in parts if p).strip()


def unresolved_triples(
    triples: Sequence[Triple], pool: Sequence[EvidenceRecord], coverage: float = 0.6
) -> list[Triple]:
    """Triples no single pool item covers (see the module docstring)."""
    texts = [content_words(" ".join([ev["title"], ev["text"], *ev["facts"]])) for ev in pool]
    out = []
    for t in triples:
        words = triple_words(t)
        if not words:
            continue
        if not any(len(words & tw) >= coverage * len(words) for tw in texts):
            out.append(t)
    return out


def is_relational(triples: Sequence[Triple], subqueries: Sequence[str]) -> bool:
    """Multi-hop when the plan needs two or more triples or sub-questions (a chain of hops)."""
    return len(triples) >= 2 or len(subqueries) >= 2
