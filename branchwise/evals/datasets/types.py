"""The one typed shape every dataset loader yields.

Loaders differ only in parsing; downstream code (systems, runner, metrics) sees an
:class:`EvalDataset`: a corpus of :class:`~branchwise.types.Document` plus a list of
:class:`EvalQuestion` carrying gold answers and gold evidence.

Evidence is recorded at the *document* level (``gold_doc_ids`` and graded ``qrels`` keyed by
document id) because chunk ids only exist after chunking (``"{doc_id}#{ordinal}"``); the
runner maps retrieved chunks back to their documents before scoring. Sentence-level gold
(HotpotQA/2Wiki supporting facts, MuSiQue supporting paragraphs) is kept as
:class:`SupportingFact` with its text, so citation quality can be checked against whatever
chunking an index used.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Any, Mapping

from branchwise.types import Document


@dataclass(frozen=True, slots=True)
class SupportingFact:
    """One gold supporting fact.

    Attributes:
        doc_id: the document (paragraph) holding it.
        sent_id: sentence index within the document, or None for paragraph-level gold.
        text: the sentence (or paragraph) text.
    """

    doc_id: str
    sent_id: int | None
    text: str


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    """One evaluation question with its gold annotations.

    Attributes:
        id: the dataset's question id.
        text: the question.
        answers: acceptable gold answers (empty for IR-only sets).
        gold_doc_ids: documents holding the evidence (HotpotQA: the two gold paragraphs).
        supporting_facts: sentence/paragraph-level gold evidence.
        choices: the options of a multiple-choice question (empty otherwise).
        gold_choice: index of the correct option, or None.
        type: the dataset's question type ("bridge", "comparison", "2hop", "exam", ...).
        qrels: graded relevance ``doc_id -> grade`` (> 0 relevant); for QA sets each gold
            document gets grade 1.
        context_doc_ids: the documents shipped with this question (HotpotQA's 10
            paragraphs, MuSiQue's 20); empty when the question is asked of the whole corpus.
        metadata: anything else worth keeping (level, answerable, evidences, ...).
    """

    id: str
    text: str
    answers: tuple[str, ...] = ()
    gold_doc_ids: tuple[str, ...] = ()
    supporting_facts: tuple[SupportingFact, ...] = ()
    choices: tuple[str, ...] = ()
    gold_choice: int | None = None
    type: str = ""
    qrels: Mapping[str, float] = field(default_factory=dict)
    context_doc_ids: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.choices)

    def prompt_text(self) -> str:
        """The question as shown to a reader: with lettered options for multiple choice."""
        if not self.choices:
            return self.text
        opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(self.choices))
        return f"{self.text}\n{opts}\nAnswer with the letter of the correct option."


@dataclass(frozen=True, slots=True)
class EvalDataset:
    """A corpus plus questions with gold answers and evidence.

    Attributes:
        name: dataset name ("hotpotqa", "vaswani", ...).
        corpus: the documents to index (deduplicated).
        questions: the evaluation questions, in file order.
        kind: "qa" (answers are scored), "ir" (only retrieval is scored), "mc"
            (multiple-choice answers) or "unanswerable" (the corpus lacks every question's
            evidence: the right answer is "not found", see :func:`without_gold`).
    """

    name: str
    corpus: list[Document]
    questions: list[EvalQuestion]
    kind: str = "qa"

    def head(self, limit: int | None) -> "EvalDataset":
        """The first ``limit`` questions (None: all) over the matching corpus.

        For sets whose questions ship their own paragraphs (HotpotQA, 2Wiki, MuSiQue) the
        corpus shrinks to the pooled paragraphs of the kept questions, exactly as if only
        those records had been loaded: retrieval stays over every kept question's
        distractors, and building an index (and a summary tree) for 50 questions costs 50
        questions' worth of text. Other sets keep their whole corpus.
        """
        if limit is None or limit >= len(self.questions):
            return self
        kept = self.questions[:limit]
        if not all(q.context_doc_ids for q in kept):
            return EvalDataset(self.name, self.corpus, kept, self.kind)
        wanted = {d for q in kept for d in q.context_doc_ids}
        return EvalDataset(self.name, [d for d in self.corpus if d.id in wanted], kept, self.kind)


def without_gold(dataset: EvalDataset) -> EvalDataset:
    """The same questions asked of the corpus *without* their evidence: every question's gold
    documents are removed from the corpus and from every question's shipped paragraphs, so no
    question can be answered from it and the right answer is "not found" (kind
    ``"unanswerable"``; gold answers are kept only to see whether a system made one up)."""
    gold = {d for q in dataset.questions for d in q.gold_doc_ids}
    questions = [dataclasses.replace(q, gold_doc_ids=(), supporting_facts=(), qrels={},
                                     context_doc_ids=tuple(d for d in q.context_doc_ids if d not in gold),
                                     metadata={**q.metadata, "answerable": False})
                 for q in dataset.questions]
    return EvalDataset(f"{dataset.name}_unanswerable", [d for d in dataset.corpus if d.id not in gold], questions,
                       "unanswerable")


class CorpusBuilder:
    """Collects documents from many questions, deduplicating identical ones.

    Multi-hop QA sets ship each question with its own paragraphs, and the same Wikipedia
    paragraph recurs across questions. Documents with the same title *and* text collapse
    into one; a title that recurs with a different text gets ``"title (2)"``, ``"(3)"``...
    so ids stay readable and unique.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._title_count: dict[str, int] = {}
        self._docs: list[Document] = []

    def add(self, title: str, text: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Add a document (if new) and return its id."""
        key = (title, text)
        if key in self._by_key:
            return self._by_key[key]
        n = self._title_count.get(title, 0) + 1
        self._title_count[title] = n
        doc_id = title if n == 1 else f"{title} ({n})"
        self._by_key[key] = doc_id
        self._docs.append(Document(id=doc_id, text=text, title=title, metadata=dict(metadata or {})))
        return doc_id

    @property
    def documents(self) -> list[Document]:
        return list(self._docs)
