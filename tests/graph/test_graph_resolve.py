"""Entity resolution: normalised names, embedding merges (real MiniLM), guards and name lookup."""

from __future__ import annotations

from branchwise.graph.resolve import EntityResolver, NameIndex, ResolutionConfig, normalize_name, numbers_conflict
from branchwise.graph.types import KnowledgeGraph, Mention
from branchwise.testing import HashingEmbedder


def test_normalize_name() -> None:
    assert normalize_name("Barack Obama") == normalize_name("barack obama") == normalize_name("Obama, Barack") \
        == normalize_name("  BARACK   OBAMA ") == "barack obama"
    assert normalize_name("The Beatles") == "beatles" and normalize_name("The") == "the"
    assert normalize_name("Beyoncé") == normalize_name("Beyonce") == normalize_name("ＢＥＹＯＮＣＥ")  # NFKC + accents
    assert normalize_name("Washington, D.C.") == "washington d c"  # not inverted: not a "Last, First" name
    assert normalize_name("Nobody's Hero") == "nobody s hero"


def test_numbers_conflict() -> None:
    assert numbers_conflict("world war i", "world war ii")
    assert numbers_conflict("rocky 2", "rocky 3") and not numbers_conflict("rocky 2", "rocky 2 film")


def _graph_with(*names: tuple[str, str, str]) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    for eid, name, etype in names:
        kg.add_mention(eid, Mention("c0", "d0", name, etype))
    return kg


def test_exact_keys_merge_without_embeddings() -> None:
    kg = _graph_with(("e_obama", "Barack Obama", "person"))
    res = EntityResolver(kg, None, ResolutionConfig(use_embeddings=False))
    assert res.resolve("barack obama").entity_id == "e_obama"
    assert res.resolve("Obama, Barack", "other").how == "exact"
    assert res.resolve("President Barack Obama", "person").how == "new"


def test_embedding_merge_with_real_embedder(real_embedder) -> None:
    kg = _graph_with(("e_obama", "Barack Obama", "person"), ("e_bush", "George Bush", "person"),
                     ("e_ww1", "World War I", "event"), ("e_1993", "1993", "date"))
    res = EntityResolver(kg, real_embedder)  # default threshold 0.92
    for variant in ("barack obama", "Obama, Barack", "President Barack Obama", "Barack Hussein Obama"):
        got = res.resolve(variant, "person")
        assert got.entity_id == "e_obama", variant
    assert res.resolve("President Barack Obama", "person").how == "embedding"
    assert res.resolve("President Barack Obama", "person").score >= 0.92
    assert res.resolve("Michelle Obama", "person").entity_id is None  # cosine ~0.74
    assert res.resolve("George W. Bush", "person").entity_id is None  # ~0.916: just below the threshold
    assert res.resolve("World War II", "event").entity_id is None  # numbers differ
    assert res.resolve("President Barack Obama", "location").entity_id is None  # types incompatible
    assert res.resolve("1994", "date").entity_id is None  # dates merge only exactly


def test_register_makes_new_aliases_findable() -> None:
    kg = KnowledgeGraph()
    res = EntityResolver(kg, HashingEmbedder(), ResolutionConfig(merge_threshold=0.99))
    assert res.resolve("Neil Peart", "person").entity_id is None
    res.register("e_peart", "Neil Peart", "person")
    assert res.resolve("neil peart").entity_id == "e_peart"
    assert res.resolve("Peart, Neil", "person").entity_id == "e_peart"
    assert res.resolve("Neil Peart", "person").how == "exact"


def test_name_index_finds_whole_and_partial_names_in_a_query() -> None:
    idx = NameIndex()
    idx.add("e_nolan", ["Christopher Nolan", "Nolan, Christopher"])
    idx.add("e_inception", ["Inception"])
    idx.add("e_mdhof", ["Modern Drummer Hall of Fame"])
    found = idx.find_in_text("Which drummer from the Modern Drummer Hall of Fame worked with Nolan on Inception?")
    assert found["e_inception"] == 1.0 and found["e_mdhof"] == 1.0
    assert found["e_nolan"] == 0.8 * 0.5  # one of the name's two words
    assert idx.find_in_text("nothing relevant here") == {}
