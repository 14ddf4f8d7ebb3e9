"""LLM summaries start with what distinguishes a node: the prompt asks for it, stock openers
("This group covers ...") are stripped and the text re-capitalised."""

from __future__ import annotations

import pytest

from branchwise.testing import ScriptedLLM
from branchwise.indexing.summarize import PROMPT_VERSION, LLMSummarizer, SummaryConfig, SummaryRequest, strip_opener

OPENERS = [
    ("This group covers a branchwise Python framework for agentic RAG.", "A branchwise Python framework for agentic RAG."),
    ("This group covers: tokamak plasma confinement", "Tokamak plasma confinement"),
    ("This group of passages covers laser optics and beam shaping.", "Laser optics and beam shaping."),
    ("This group of sub-group descriptions describes score calibration.", "Score calibration."),
    ("The group covers spin glasses.", "Spin glasses."),
    ("These passages cover solar cells, inverters.", "Solar cells, inverters."),
    ("These passages mainly focus on bread fermentation.", "Bread fermentation."),
    ("This node covers BM25 ranking.", "BM25 ranking."),
    ("The passages in this group discuss football tactics.", "Football tactics."),
    ("This group covers topics such as yeast and flour.", "Yeast and flour."),
    ("Summary: This group covers navigator beams.", "Navigator beams."),
    ("Description - the documents describe graph extraction.", "Graph extraction."),
    ("  this cluster is about Chroma collections", "Chroma collections"),
]


@pytest.mark.parametrize(("reply", "expected"), OPENERS)
def test_stock_openers_are_stripped_and_recapitalised(reply, expected):
    assert strip_opener(reply) == expected


@pytest.mark.parametrize("text", [
    "Navigator calibration of slate scores and path relevance.",
    "bm25s index files and tokenisation.",  # a lower-case identifier is left as written
    "The striker scored a late goal.",  # "The ..." that is not an opener
    "These results show lasers cut steel.",
    "Group theory and symmetry of crystals.",
])
def test_text_without_opener_is_unchanged(text):
    assert strip_opener(text) == text


def test_summarizer_strips_openers_so_siblings_start_differently():
    replies = iter([
        "This group covers a branchwise Python framework for agentic RAG: tree navigation and calibration.",
        "This group of passages covers a branchwise Python framework for agentic RAG: context compression.",
        "These passages cover the entity graph and GRAG retrieval.",
    ])
    llm = ScriptedLLM(replies=lambda msgs: next(replies))
    s = LLMSummarizer(llm, SummaryConfig(mode="llm", summary_tokens=48))
    reqs = [SummaryRequest(f"n{i}", 1, (f"passage {i} about topic {i}.",), True) for i in range(3)]
    out = s.summarize_batch(reqs)
    assert out[0].startswith("A branchwise Python framework") and out[2].startswith("The entity graph")
    assert not any(o.lower().startswith(("this group", "these passages")) for o in out)
    assert s.usage.llm_calls == 3


def test_prompt_asks_for_distinguishing_topics_first():
    llm = ScriptedLLM(replies=["Laser beams."])
    s = LLMSummarizer(llm, SummaryConfig(mode="llm"))
    s.summarize_batch([SummaryRequest("n1", 1, ("laser beams.", "optical fibres."), True)])
    system, user = llm.calls[0]
    assert "Start directly with the most distinguishing topics" in system.content
    assert "Do not open with 'This group'" in system.content
    assert "sibling" in system.content and "starting with its most specific topics" in user.content
    # a new prompt version: summaries checkpointed under the old prompt are not reused
    assert PROMPT_VERSION >= 2 and f":p{PROMPT_VERSION}:" in s.name
