"""Shared data of the graph tests: a small film corpus, scripted extractions, a hand-built graph.

The hand-built graph has a known answer path for "What is the nationality of the director
of Inception?": Inception --directed by--> Christopher Nolan --has nationality--> British,
with a distractor branch (Leonardo DiCaprio, the Academy Award, London).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence

from branchwise.graph.types import KnowledgeGraph, Mention, Relation
from branchwise.models.base import Message
from branchwise.types import Chunk

FILM_CHUNKS = [
    Chunk("films#0", "films", "Inception is a 2010 science fiction film directed by Christopher Nolan. "
          "It stars Leonardo DiCaprio.", title="Inception"),
    Chunk("people#0", "people", "Christopher Nolan is a British film director. Nolan was born in London.",
          title="Christopher Nolan"),
    Chunk("people#1", "people", "Leonardo DiCaprio is an American actor. DiCaprio won an Academy Award.",
          title="Leonardo DiCaprio"),
    Chunk("places#0", "places", "London is the capital city of England.", title="London"),
]

# what a well-behaved model would extract from each chunk
FILM_EXTRACTIONS: dict[str, dict[str, Any]] = {
    "Inception": {
        "entities": [
            {"name": "Inception", "type": "work", "description": "2010 science fiction film"},
            {"name": "Christopher Nolan", "type": "person", "description": "director of Inception"},
            {"name": "Leonardo DiCaprio", "type": "person", "description": "star of Inception"},
        ],
        "relations": [
            {"subject": "Inception", "predicate": "directed by", "object": "Christopher Nolan",
             "description": "Inception was directed by Christopher Nolan"},
            {"subject": "Inception", "predicate": "stars", "object": "Leonardo DiCaprio", "description": ""},
        ],
    },
    "Christopher Nolan": {
        "entities": [
            {"name": "Nolan, Christopher", "type": "person", "description": "British film director"},
            {"name": "London", "type": "location", "description": "birthplace of Nolan"},
            {"name": "British", "type": "other", "description": "nationality"},
        ],
        "relations": [
            {"subject": "Nolan, Christopher", "predicate": "born in", "object": "London", "description": ""},
            {"subject": "Nolan, Christopher", "predicate": "has nationality", "object": "British",
             "description": "Christopher Nolan is British"},
        ],
    },
    "Leonardo DiCaprio": {
        "entities": [
            {"name": "Leonardo DiCaprio", "type": "person", "description": "American actor"},
            {"name": "Academy Award", "type": "event", "description": "award won by DiCaprio"},
        ],
        "relations": [{"subject": "Leonardo DiCaprio", "predicate": "won", "object": "Academy Award",
                       "description": "DiCaprio won an Academy Award"}],
    },
    "London": {
        "entities": [{"name": "London", "type": "location", "description": "capital city of England"},
                     {"name": "England", "type": "location", "description": ""}],
        "relations": [{"subject": "London", "predicate": "capital of", "object": "England", "description": ""}],
    },
}

_TITLE = re.compile(r'<passage title="([^"]*)">')


def passage_title(messages: Sequence[Message]) -> str:
    m = _TITLE.search(messages[-1].content)
    assert m, "the extraction prompt must quote the passage in <passage> tags"
    return m.group(1)


def scripted_extractor(table: dict[str, Any]) -> Callable[[Sequence[Message]], str]:
    """A ScriptedLLM reply function: the table entry of the passage's title (str or JSON)."""

    def reply(messages: Sequence[Message]) -> str:
        value = table[passage_title(messages)]
        return value if isinstance(value, str) else json.dumps(value)

    return reply


def _mention(eid: str, chunk: str, name: str, etype: str, desc: str) -> tuple[str, Mention]:
    return eid, Mention(chunk, chunk.split("#")[0], name, etype, desc)


def make_film_graph() -> KnowledgeGraph:
    """The film graph built by hand (independent of extraction and resolution)."""
    kg = KnowledgeGraph()
    for eid, m in [
        _mention("inception", "films#0", "Inception", "work", "2010 science fiction film"),
        _mention("nolan", "films#0", "Christopher Nolan", "person", "director of Inception"),
        _mention("nolan", "people#0", "Christopher Nolan", "person", "British film director"),
        _mention("dicaprio", "films#0", "Leonardo DiCaprio", "person", "star of Inception"),
        _mention("dicaprio", "people#1", "Leonardo DiCaprio", "person", "American actor"),
        _mention("british", "people#0", "British", "other", "nationality of Christopher Nolan"),
        _mention("london", "people#0", "London", "location", "birthplace of Nolan"),
        _mention("london", "places#0", "London", "location", "capital city of England"),
        _mention("oscar", "people#1", "Academy Award", "event", "film award won by DiCaprio"),
        _mention("england", "places#0", "England", "location", "country"),
    ]:
        kg.add_mention(eid, m)
    for s, p, o, c, d in [
        ("inception", "directed by", "nolan", "films#0", "Inception was directed by Christopher Nolan"),
        ("inception", "stars", "dicaprio", "films#0", "Inception stars Leonardo DiCaprio"),
        ("nolan", "has nationality", "british", "people#0", "Christopher Nolan's nationality is British"),
        ("nolan", "born in", "london", "people#0", "Nolan was born in London"),
        ("dicaprio", "won", "oscar", "people#1", "DiCaprio won an Academy Award"),
        ("london", "capital of", "england", "places#0", "London is the capital city of England"),
    ]:
        kg.add_relation(Relation(Relation.make_id(s, p, o, c), s, p, o, c, c.split("#")[0], d))
    return kg
