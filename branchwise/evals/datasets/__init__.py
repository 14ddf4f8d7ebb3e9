"""Evaluation dataset loaders: one typed shape (:class:`EvalDataset`) for every format.

:func:`load_dataset` resolves a dataset name and a local path (a file or a directory);
nothing is downloaded — users fetch the public files themselves (see the README's
"Evaluation" section and ``/work/shared/data/README.md`` for the expected layouts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from branchwise.errors import InputError
from branchwise.evals.datasets.ir import load_beir, load_cranfield, load_trec, load_vaswani
from branchwise.evals.datasets.leval import load_leval, load_nq_long, load_quality
from branchwise.evals.datasets.multihop import load_2wiki, load_hotpotqa, load_musique
from branchwise.evals.datasets.types import EvalDataset, EvalQuestion, SupportingFact

__all__ = [
    "EvalDataset",
    "EvalQuestion",
    "SupportingFact",
    "LOADERS",
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

#: name -> loader taking the path (file or directory) of the local copy.
LOADERS: dict[str, Callable[[Path], EvalDataset]] = {
    "hotpotqa": load_hotpotqa,
    "2wikimultihopqa": load_2wiki,
    "musique": load_musique,
    "beir": load_beir,
    "vaswani": load_vaswani,
    "cranfield": load_cranfield,
    "quality": load_quality,
    "nq_long": load_nq_long,
}

#: the file or directory each loader expects inside ``/work/shared/data`` (for defaults).
SHARED_PATHS: dict[str, str] = {
    "hotpotqa": "hotpotqa/dev_distractor_200.jsonl",
    "vaswani": "vaswani",
    "cranfield": "cranfield",
    "quality": "quality/quality.jsonl",
    "nq_long": "nq_long/natural_question.jsonl",
}


def load_dataset(name: str, path: Path) -> EvalDataset:
    """Load dataset ``name`` from the local ``path``; InputError lists the known names."""
    loader = LOADERS.get(name.lower())
    if loader is None:
        raise InputError(f"unknown dataset {name!r}.", fix=f"use one of: {', '.join(sorted(LOADERS))}.")
    return loader(Path(path))
