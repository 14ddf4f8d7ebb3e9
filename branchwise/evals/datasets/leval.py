"""L-Eval style long-document QA (An et al. 2023): QuALITY and Natural Questions pages.

Each JSONL line is one long document with several questions: ``input`` (the document),
``instructions`` (the questions), ``outputs`` (the gold answers, aligned with
``instructions``), ``source`` and ``evaluation`` (``"exam"`` for multiple choice, ``"f1"``
for free answers).

* **QuALITY** (Pang et al. 2022): a question embeds its options as ``(A) ...`` lines and the
  gold output starts with the gold letter, e.g. ``"(B) Their subconscious ..."``.
* **NQ long pages** (Kwiatkowski et al. 2019): the document is a Wikipedia page flattened
  with HTML-like markers (``<H1>``, ``<P>``, ``<Td_colspan="2">``); we turn them into line
  breaks so chunkers see paragraph boundaries, and take the title from before
  ``" - wikipedia"`` (or the ``<H1>``).

Every question's gold document is the page it was asked about; the corpus holds all pages
so retrieval must find the right one first.
"""

from __future__ import annotations

import re
from pathlib import Path

from branchwise.errors import InputError
from branchwise.files import field, iter_records
from branchwise.evals.datasets.types import CorpusBuilder, EvalDataset, EvalQuestion

_OPTION = re.compile(r"\n\s*\(([A-Z])\)\s*")
_GOLD_LETTER = re.compile(r"^\s*\(([A-Z])\)")
_NQ_TAG = re.compile(r"\s*</?[A-Za-z][A-Za-z0-9_]*(?:=\"[^\"]*\")?>\s*")
_H1 = re.compile(r"<H1>\s*(.*?)\s*</H1>", re.DOTALL)


def parse_options(instruction: str) -> tuple[str, tuple[str, ...]]:
    """Split a QuALITY instruction into the question and its options (A, B, C, ...).

    Raises :class:`InputError` when the options are not lettered consecutively from A.
    """
    parts = _OPTION.split("\n" + instruction.strip())
    question = parts[0].strip()
    letters, texts = parts[1::2], parts[2::2]
    if not letters or letters != [chr(65 + i) for i in range(len(letters))]:
        raise InputError(
            f"multiple-choice options not found in: {instruction[:80]!r}.",
            fix="each option must start a line with '(A) ', '(B) ', ... in order.",
        )
    return question, tuple(" ".join(t.split()) for t in texts)


def _gold_choice(output: str, n_options: int, where: str) -> int:
    m = _GOLD_LETTER.match(output)
    if not m or ord(m.group(1)) - 65 >= n_options:
        raise InputError(f"{where}: gold output {output[:40]!r} does not start with an option letter.",
                         fix="QuALITY outputs look like '(B) option text'.")
    return ord(m.group(1)) - 65


def _nq_title(text: str) -> str:
    head = text[:400]
    cut = head.lower().find(" - wikipedia")
    if cut > 0:
        return " ".join(head[:cut].split())
    m = _H1.search(text)
    return " ".join(m.group(1).split()) if m else " ".join(head[:60].split())


def _nq_clean(text: str) -> str:
    return "\n".join(line for line in (" ".join(s.split()) for s in _NQ_TAG.split(text)) if line)


def load_leval(path: Path, name: str | None = None) -> EvalDataset:
    """Load an L-Eval JSONL file; multiple choice when the file's ``evaluation`` is ``exam``."""
    path = Path(path)
    name = name or path.stem
    corpus = CorpusBuilder()
    questions: list[EvalQuestion] = []
    mc = False
    for i, rec in enumerate(iter_records(path, "L-Eval")):
        where = f"{path} record {i + 1}"
        text = str(field(rec, "input", str, where))
        instructions = field(rec, "instructions", list, where)
        outputs = field(rec, "outputs", list, where)
        if len(instructions) != len(outputs):
            raise InputError(f"{where}: {len(instructions)} instructions but {len(outputs)} outputs.",
                             fix="each instruction needs exactly one gold output.")
        is_mc = rec.get("evaluation") == "exam"
        mc = mc or is_mc
        if is_mc:
            title = " ".join(text.strip().split("\n", 1)[0].split())[:80]
            doc_id = corpus.add(title, text.strip(), {"source": rec.get("source", name)})
        else:
            doc_id = corpus.add(_nq_title(text), _nq_clean(text), {"source": rec.get("source", name)})
        for j, (ins, out) in enumerate(zip(instructions, outputs)):
            qid = f"{name}-{i}-{j}"
            if is_mc:
                q, options = parse_options(str(ins))
                questions.append(EvalQuestion(
                    id=qid, text=q, answers=(options[_gold_choice(str(out), len(options), where)],),
                    gold_doc_ids=(doc_id,), choices=options,
                    gold_choice=_gold_choice(str(out), len(options), where), type="exam", qrels={doc_id: 1.0},
                ))
            else:
                questions.append(EvalQuestion(
                    id=qid, text=" ".join(str(ins).split()), answers=(" ".join(str(out).split()),),
                    gold_doc_ids=(doc_id,), type="long_qa", qrels={doc_id: 1.0},
                ))
    if not questions:
        raise InputError(f"{path} holds no questions.", fix="pass an L-Eval JSONL file.")
    return EvalDataset(name, corpus.documents, questions, kind="mc" if mc else "qa")


def load_quality(path: Path) -> EvalDataset:
    """QuALITY (L-Eval ``quality.jsonl``), multiple choice."""
    return load_leval(path, "quality")


def load_nq_long(path: Path) -> EvalDataset:
    """Natural Questions long pages (L-Eval ``natural_question.jsonl``)."""
    return load_leval(path, "nq_long")
