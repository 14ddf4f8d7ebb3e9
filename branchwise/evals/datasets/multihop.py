"""Multi-hop QA loaders: HotpotQA, 2WikiMultihopQA, MuSiQue.

* **HotpotQA** (Yang et al. 2018), distractor setting: each record has ``_id``,
  ``question``, ``answer``, ``type``, ``level``, ``context`` = ``[[title, [sentence, ...]],
  ...]`` (10 paragraphs, 2 gold) and ``supporting_facts`` = ``[[title, sent_id], ...]``.
* **2WikiMultihopQA** (Ho et al. 2020) uses the same layout plus ``evidences`` (triples).
* **MuSiQue** (Trivedi et al. 2022): ``id``, ``question``, ``answer``, ``answer_aliases``,
  ``answerable``, ``paragraphs`` = ``[{idx, title, paragraph_text, is_supporting}, ...]`` and
  ``question_decomposition``.

Every question's paragraphs go into one shared corpus (deduplicated by title and text, see
:class:`~branchwise.evals.datasets.types.CorpusBuilder`), so retrieval runs over the pooled
distractors of all loaded questions — harder than the per-question 10-paragraph setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from branchwise.errors import InputError
from branchwise.files import field, iter_records
from branchwise.evals.datasets.types import CorpusBuilder, EvalDataset, EvalQuestion, SupportingFact

logger = logging.getLogger(__name__)


def _hotpot_record(rec: dict[str, Any], where: str, corpus: CorpusBuilder, name: str) -> EvalQuestion:
    qid = str(rec.get("_id", rec.get("id", "")))
    if not qid:
        raise InputError(f"{where}: record has no '_id'.", fix=f"check that the file is in the {name} format.")
    context = field(rec, "context", list, where)
    ids: dict[str, str] = {}
    sentences: dict[str, list[str]] = {}
    for item in context:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], list)):
            raise InputError(
                f"{where}: a context entry is not [title, [sentences]].",
                fix=f"check that the file is in the {name} format.",
            )
        title, sents = str(item[0]), [str(s) for s in item[1]]
        # HotpotQA sentences keep their leading spaces, so plain concatenation restores the text.
        ids[title] = corpus.add(title, "".join(sents).strip(), {"source": name})
        sentences[title] = sents
    facts: list[SupportingFact] = []
    for sf in field(rec, "supporting_facts", list, where):
        try:
            title, sid = str(sf[0]), int(sf[1])
        except (TypeError, ValueError, IndexError) as e:
            raise InputError(
                f"{where}: a supporting fact is not [title, sentence_id].",
                fix=f"check that the file is in the {name} format.",
            ) from e
        if title not in ids:
            logger.debug("%s: supporting fact title %r not in context; skipped", where, title)
            continue
        sents = sentences[title]
        if not 0 <= sid < len(sents):
            # A known quirk of the HotpotQA release: a few sentence ids point past the paragraph.
            logger.debug("%s: supporting fact %r[%d] out of range; skipped", where, title, sid)
            continue
        facts.append(SupportingFact(ids[title], sid, sents[sid].strip()))
    gold = tuple(dict.fromkeys(ids[str(sf[0])] for sf in rec["supporting_facts"] if str(sf[0]) in ids))
    meta = {k: rec[k] for k in ("level", "evidences") if k in rec}
    return EvalQuestion(
        id=qid,
        text=str(field(rec, "question", str, where)),
        answers=(str(field(rec, "answer", (str, int, float), where)),),
        gold_doc_ids=gold,
        supporting_facts=tuple(facts),
        type=str(rec.get("type", "")),
        qrels={d: 1.0 for d in gold},
        context_doc_ids=tuple(dict.fromkeys(ids.values())),
        metadata=meta,
    )


def load_hotpot_format(path: Path, name: str = "hotpotqa", limit: int | None = None) -> EvalDataset:
    """Load a HotpotQA-layout file (JSON array or JSONL). Extra fields are ignored.

    Args:
        path: the file (e.g. ``hotpot_dev_distractor_v1.json`` or the shared JSONL sample).
        name: dataset name to record ("hotpotqa" or "2wikimultihopqa").
        limit: read only the first ``limit`` questions (and only their paragraphs).
    """
    corpus = CorpusBuilder()
    questions: list[EvalQuestion] = []
    for i, rec in enumerate(iter_records(Path(path), name)):
        if limit is not None and i >= limit:
            break
        questions.append(_hotpot_record(rec, f"{path} record {i + 1}", corpus, name))
    if not questions:
        raise InputError(f"{path} holds no {name} questions.", fix=f"pass a non-empty {name} file.")
    return EvalDataset(name, corpus.documents, questions, kind="qa")


def load_hotpotqa(path: Path, limit: int | None = None) -> EvalDataset:
    """HotpotQA distractor setting (dev JSON or JSONL)."""
    return load_hotpot_format(path, "hotpotqa", limit)


def load_2wiki(path: Path, limit: int | None = None) -> EvalDataset:
    """2WikiMultihopQA (``dev.json`` array or JSONL); same layout as HotpotQA."""
    return load_hotpot_format(path, "2wikimultihopqa", limit)


def _musique_record(rec: dict[str, Any], where: str, corpus: CorpusBuilder) -> EvalQuestion:
    qid = str(field(rec, "id", str, where))
    facts: list[SupportingFact] = []
    gold: list[str] = []
    pool: list[str] = []
    for p in field(rec, "paragraphs", list, where):
        if not isinstance(p, dict) or "paragraph_text" not in p:
            raise InputError(
                f"{where}: a paragraph lacks 'paragraph_text'.", fix="check that the file is MuSiQue JSONL."
            )
        text = str(p["paragraph_text"]).strip()
        doc_id = corpus.add(str(p.get("title", "")), text, {"source": "musique"})
        pool.append(doc_id)
        if p.get("is_supporting"):
            gold.append(doc_id)
            facts.append(SupportingFact(doc_id, None, text))
    answerable = bool(rec.get("answerable", True))
    answers = (str(field(rec, "answer", str, where)), *map(str, rec.get("answer_aliases", [])))
    hops = qid.split("__", 1)[0] if "__" in qid else ""
    return EvalQuestion(
        id=qid,
        text=str(field(rec, "question", str, where)),
        answers=answers if answerable else (),
        gold_doc_ids=tuple(dict.fromkeys(gold)),
        supporting_facts=tuple(facts),
        type=hops,
        qrels={d: 1.0 for d in gold},
        context_doc_ids=tuple(dict.fromkeys(pool)),
        metadata={"answerable": answerable, "decomposition": rec.get("question_decomposition", [])},
    )


def load_musique(path: Path, limit: int | None = None) -> EvalDataset:
    """MuSiQue (``musique_ans_v1.0_dev.jsonl`` / ``musique_full_v1.0_dev.jsonl``).

    Unanswerable questions (MuSiQue-full) get no gold answers and keep ``answerable`` in
    their metadata; their supporting paragraphs are still recorded.
    """
    corpus = CorpusBuilder()
    questions: list[EvalQuestion] = []
    for i, rec in enumerate(iter_records(Path(path), "MuSiQue")):
        if limit is not None and i >= limit:
            break
        questions.append(_musique_record(rec, f"{path} record {i + 1}", corpus))
    if not questions:
        raise InputError(f"{path} holds no MuSiQue questions.", fix="pass a non-empty MuSiQue JSONL file.")
    return EvalDataset("musique", corpus.documents, questions, kind="qa")


def load_hotpotqa_unanswerable(path: Path) -> EvalDataset:
    """HotpotQA with every question's gold paragraphs removed from the corpus (see
    :func:`~branchwise.evals.datasets.types.without_gold`): the right answer is "not found"."""
    from branchwise.evals.datasets.types import without_gold

    return without_gold(load_hotpotqa(path))
