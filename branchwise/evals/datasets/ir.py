"""IR test collections: BEIR, TREC (SGML), Cranfield.

IR sets have no answers; each question carries graded ``qrels`` over document ids and
``gold_doc_ids`` = the ids judged relevant (grade > 0). Queries without any relevant
judgement are dropped (they cannot be scored), with a log line saying how many.

* **BEIR** (Thakur et al. 2021): ``corpus.jsonl`` (``_id, title, text``), ``queries.jsonl``
  (``_id, text``), ``qrels/<split>.tsv`` (``query-id corpus-id score`` with a header).
* **TREC**: documents ``<DOC><DOCNO>id</DOCNO> text </DOC>`` (optionally inside ``<TEXT>``),
  topics ``<top><num>N</num><title>...</title></top>`` (closed or classic unclosed tags),
  qrels ``qid iter docno rel``. Vaswani (NPL) ships in this format.
* **Cranfield**: ``.I/.T/.A/.B/.W`` records; queries are numbered 1..225 *by position*
  (the ``.I`` numbers in ``cran.qry`` have gaps and are not what ``cranqrel`` uses).
  ``cranqrel`` codes follow Cleverdon's scale quoted in ``cranqrel.readme``: 1 = complete
  answer ... 4 = minimum interest, 5 = no interest (never listed). We convert to a gain
  ``5 - code`` (complete answer = 4, minimum interest = 1) so nDCG rewards the most useful
  references most. The code ``-1`` (one per query) is not on that scale; like code 5 it
  marks a reference of no interest, so it becomes grade 0 (judged non-relevant). Note that
  ``ir_datasets`` reads the codes the other way round (1 = minimum interest); we follow the
  readme shipped with the data.
"""

from __future__ import annotations

import csv
import html
import logging
import re
from pathlib import Path

from branchwise.errors import InputError
from branchwise.files import field, iter_records, require_file
from branchwise.evals.datasets.types import EvalDataset, EvalQuestion
from branchwise.types import Document

logger = logging.getLogger(__name__)

Qrels = dict[str, dict[str, float]]


def _questions(name: str, queries: list[tuple[str, str]], qrels: Qrels) -> list[EvalQuestion]:
    out = []
    for qid, text in queries:
        judged = qrels.get(qid, {})
        relevant = tuple(d for d, g in judged.items() if g > 0)
        if not relevant:
            continue
        out.append(EvalQuestion(id=qid, text=text, gold_doc_ids=relevant, qrels=dict(judged), type="ir"))
    dropped = len(queries) - len(out)
    if dropped:
        logger.info("%s: %d of %d queries have no relevant judgement and were dropped", name, dropped, len(queries))
    if not out:
        raise InputError(f"{name}: no query has a relevance judgement.", fix="check that the qrels match the queries.")
    return out


# ------------------------------------------------------------------------------- BEIR
def load_beir(root: Path, split: str = "test", name: str | None = None) -> EvalDataset:
    """Load a BEIR dataset directory (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``)."""
    root = Path(root)
    name = name or root.name
    docs = []
    for i, rec in enumerate(iter_records(root / "corpus.jsonl", "BEIR corpus")):
        where = f"{root / 'corpus.jsonl'} record {i + 1}"
        docs.append(Document(id=str(field(rec, "_id", (str, int), where)), text=str(rec.get("text", "")),
                             title=str(rec.get("title", "")), metadata=dict(rec.get("metadata") or {})))
    queries = [
        (str(field(r, "_id", (str, int), "BEIR queries")), str(field(r, "text", str, "BEIR queries")))
        for r in iter_records(root / "queries.jsonl", "BEIR queries")
    ]
    qrels_path = require_file(root / "qrels" / f"{split}.tsv", f"BEIR qrels ({split} split)")
    qrels: Qrels = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if lineno == 1 and row and row[0] == "query-id":
                continue
            if len(row) < 3:
                raise InputError(f"{qrels_path}:{lineno}: expected 'query-id corpus-id score'.",
                                 fix="check the BEIR qrels file.")
            qrels.setdefault(row[0], {})[row[1]] = float(row[2])
    return EvalDataset(name, docs, _questions(name, queries, qrels), kind="ir")


# ------------------------------------------------------------------------------- TREC
_DOC = re.compile(r"<DOC>(.*?)</DOC>", re.DOTALL | re.IGNORECASE)
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.DOTALL | re.IGNORECASE)
_TEXT = re.compile(r"<TEXT>(.*?)</TEXT>", re.DOTALL | re.IGNORECASE)
_TOP = re.compile(r"<top>(.*?)</top>", re.DOTALL | re.IGNORECASE)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*(\S+?)\s*(?:</num>|\n|<)", re.IGNORECASE)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?:</title>|<desc>|<narr>|$)", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def read_trec_docs(path: Path) -> list[Document]:
    """Parse TREC SGML documents; the text is everything but the DOCNO (or the TEXT block)."""
    raw = require_file(path, "TREC documents").read_text(encoding="utf-8", errors="replace")
    docs = []
    for m in _DOC.finditer(raw):
        body = m.group(1)
        no = _DOCNO.search(body)
        if not no:
            raise InputError(f"{path}: a <DOC> has no <DOCNO>.", fix="check that the file is TREC SGML.")
        text_m = _TEXT.search(body)
        text = text_m.group(1) if text_m else _DOCNO.sub("", body)
        docs.append(Document(id=no.group(1), text=" ".join(html.unescape(_TAG.sub(" ", text)).split())))
    if not docs:
        raise InputError(f"{path} contains no <DOC> records.", fix="check that the file is TREC SGML.")
    return docs


def read_trec_topics(path: Path) -> list[tuple[str, str]]:
    """Parse TREC topics; the query text is the ``<title>`` field."""
    raw = require_file(path, "TREC topics").read_text(encoding="utf-8", errors="replace")
    topics = []
    for m in _TOP.finditer(raw):
        num, title = _NUM.search(m.group(1)), _TITLE.search(m.group(1))
        if not num or not title:
            raise InputError(f"{path}: a <top> lacks <num> or <title>.", fix="check that the file is TREC topics.")
        topics.append((num.group(1), " ".join(title.group(1).split())))
    if not topics:
        raise InputError(f"{path} contains no <top> records.", fix="check that the file is TREC topics.")
    return topics


def read_trec_qrels(path: Path) -> Qrels:
    """Parse ``qid iter docno rel`` lines."""
    qrels: Qrels = {}
    for lineno, line in enumerate(require_file(path, "TREC qrels").read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise InputError(f"{path}:{lineno}: expected 'qid iter docno rel'.", fix="check the TREC qrels file.")
        qrels.setdefault(parts[0], {})[parts[2]] = float(parts[3])
    return qrels


def load_trec(docs: Path, topics: Path, qrels: Path, name: str = "trec") -> EvalDataset:
    """A TREC-format collection from its three files."""
    return EvalDataset(name, read_trec_docs(docs), _questions(name, read_trec_topics(topics), read_trec_qrels(qrels)), "ir")


def load_vaswani(root: Path) -> EvalDataset:
    """Vaswani (NPL): ``doc-text.trec``, ``query-text.trec``, ``qrels`` in ``root``."""
    root = Path(root)
    return load_trec(root / "doc-text.trec", root / "query-text.trec", root / "qrels", name="vaswani")


# ------------------------------------------------------------------------------- Cranfield
def _cranfield_records(path: Path) -> list[dict[str, str]]:
    """Split a ``.I``-delimited file into records of field letter -> text."""
    records: list[dict[str, str]] = []
    current: dict[str, list[str]] | None = None
    key = ""
    for lineno, line in enumerate(require_file(path, "Cranfield").read_text(errors="replace").splitlines(), 1):
        if line.startswith(".I"):
            current = {"I": [line[2:].strip()]}
            records.append(current)  # type: ignore[arg-type]
            key = ""
        elif len(line) == 2 and line[0] == "." and line[1] in "TABW":
            if current is None:
                raise InputError(f"{path}:{lineno}: field before the first .I.", fix="check the Cranfield file.")
            key = line[1]
            current.setdefault(key, [])
        elif current is not None and key:
            current[key].append(line)
    if not records:
        raise InputError(f"{path} has no .I records.", fix="check that the file is in the Cranfield format.")
    return [{k: " ".join(" ".join(v).split()) for k, v in r.items()} for r in records]  # type: ignore[union-attr]


def load_cranfield(root: Path) -> EvalDataset:
    """Cranfield 1400 from ``cran.all.1400``, ``cran.qry`` and ``cranqrel`` in ``root``."""
    root = Path(root)
    docs = []
    for r in _cranfield_records(root / "cran.all.1400"):
        title, body = r.get("T", ""), r.get("W", "")
        # .W repeats the title; keep the abstract as text and the title separately.
        if title and body.startswith(title):
            body = body[len(title):].strip()
        # Records 471 and 995 are empty in the distributed file; indexing skips empty documents.
        docs.append(Document(id=str(int(r["I"])), text=body, title=title,
                             metadata={"author": r.get("A", ""), "bib": r.get("B", "")}))
    queries = [(str(i), r.get("W", "")) for i, r in enumerate(_cranfield_records(root / "cran.qry"), start=1)]
    qrels: Qrels = {}
    path = require_file(root / "cranqrel", "Cranfield qrels")
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise InputError(f"{path}:{lineno}: expected 'qid docid code'.", fix="check the cranqrel file.")
        code = int(parts[2])
        grade = float(5 - code) if 1 <= code <= 4 else 0.0
        qrels.setdefault(parts[0], {})[parts[1]] = grade
    return EvalDataset("cranfield", docs, _questions("cranfield", queries, qrels), kind="ir")
