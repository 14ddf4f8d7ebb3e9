"""Evaluation dataset loaders: one typed shape (:class:`EvalDataset`) for every format.

:func:`load_dataset` resolves a dataset name and a local path (a file or a directory).
Nothing is downloaded at run time; fetch the public files once, e.g.:

| name | path to pass | where it is published |
|---|---|---|
| ``hotpotqa`` | ``hotpot_dev_distractor_v1.json`` (JSON or JSONL) | hotpotqa.github.io |
| ``2wikimultihopqa`` | ``dev.json`` (JSON or JSONL) | github.com/Alab-NII/2wikimultihop |
| ``musique`` | ``musique_ans_v1.0_dev.jsonl`` | github.com/StonyBrookNLP/musique |
| ``beir`` | the unzipped dataset folder | github.com/beir-cellar/beir |
| ``vaswani`` | folder with ``doc-text.trec``, ``query-text.trec``, ``qrels`` | ir.dcs.gla.ac.uk test collections (NPL) |
| ``cranfield`` | folder with ``cran.all.1400``, ``cran.qry``, ``cranqrel`` | ir.dcs.gla.ac.uk test collections |
| ``quality`` / ``nq_long`` | L-Eval ``quality.jsonl`` / ``natural_question.jsonl`` | github.com/OpenLMLab/LEval |

Each dataset keeps its own license; cite it where results are reported.
"""

from __future__ import annotations

from pathlib import Path

from branchwise.evals.datasets.ir import load_beir, load_cranfield, load_trec, load_vaswani
from branchwise.evals.datasets.leval import load_leval, load_nq_long, load_quality
from branchwise.evals.datasets.multihop import load_2wiki, load_hotpotqa, load_musique
from branchwise.evals.datasets.types import EvalDataset, EvalQuestion, SupportingFact
from branchwise.registry import Registry

__all__ = [
    "EvalDataset",
    "EvalQuestion",
    "SupportingFact",
    "DATASETS",
    "SHARED_PATHS",
    "load_dataset",
    "load_2wiki",
    "load_beir",
    "load_cranfield",
    "load_hotpotqa",
    "load_leval",
    "load_musique",
    "load_nq_long",
    "load_quality",
    "load_trec",
    "load_vaswani",
]

#: name -> loader taking the path (file or directory) of the local copy (``--dataset``).
DATASETS: Registry = Registry("dataset", "--dataset")
DATASETS.register("hotpotqa", load_hotpotqa, "HotpotQA (multi-hop QA, distractor setting)")
DATASETS.register("2wikimultihopqa", load_2wiki, "2WikiMultihopQA (multi-hop QA)")
DATASETS.register("musique", load_musique, "MuSiQue (multi-hop QA)")
DATASETS.register("beir", load_beir, "a BEIR retrieval dataset folder")
DATASETS.register("vaswani", load_vaswani, "Vaswani / NPL (IR test collection, TREC format)")
DATASETS.register("cranfield", load_cranfield, "Cranfield (IR test collection)")
DATASETS.register("hotpotqa_unanswerable", "branchwise.evals.datasets.multihop:load_hotpotqa_unanswerable",
                  "HotpotQA with every question's gold paragraphs removed: the answer is 'not found'")
DATASETS.register("quality", load_quality, "QuALITY long stories, multiple choice (L-Eval)")
DATASETS.register("nq_long", load_nq_long, "Natural Questions on long Wikipedia pages (L-Eval)")

#: the file or directory each loader expects inside ``/work/shared/data`` (for defaults).
SHARED_PATHS: dict[str, str] = {
    "hotpotqa": "hotpotqa/dev_distractor_200.jsonl",
    "hotpotqa_unanswerable": "hotpotqa/dev_distractor_200.jsonl",
    "vaswani": "vaswani",
    "cranfield": "cranfield",
    "quality": "quality/quality.jsonl",
    "nq_long": "nq_long/natural_question.jsonl",
}


def load_dataset(name: str, path: Path) -> EvalDataset:
    """Load dataset ``name`` from the local ``path``; InputError lists the known names."""
    return DATASETS.create(name.lower(), Path(path))  # type: ignore[no-any-return]
