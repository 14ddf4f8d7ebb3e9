"""Dataset loaders on the shared public files and on the MuSiQue / 2Wiki fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.evals.datasets import (
    load_2wiki,
    load_beir,
    load_cranfield,
    load_dataset,
    load_hotpotqa,
    load_musique,
    load_nq_long,
    load_quality,
    load_vaswani,
)
from branchwise.evals.datasets.leval import parse_options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_hotpotqa_shared_sample(shared_data: Path) -> None:
    ds = load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl")
    assert ds.name == "hotpotqa" and ds.kind == "qa"
    assert len(ds.questions) == 200
    ids = [d.id for d in ds.corpus]
    assert len(ids) == len(set(ids))
    # 200 questions x 10 paragraphs, with recurring paragraphs collapsed
    assert 1500 < len(ds.corpus) < 2000
    by_id = {d.id: d for d in ds.corpus}
    q = ds.questions[0]
    assert q.id == "5a7f6fd75542992e7d278cfa"
    assert q.answers == ("Rush",)
    assert q.gold_doc_ids == ("Nobody's Hero", "Neil Peart")
    assert dict(q.qrels) == {"Nobody's Hero": 1.0, "Neil Peart": 1.0}
    assert q.type == "bridge" and q.metadata["level"] == "hard"
    for sf in q.supporting_facts:
        assert sf.text and sf.text in by_id[sf.doc_id].text
    assert all(set(q.gold_doc_ids) <= set(by_id) for q in ds.questions)
    assert all(len(q.gold_doc_ids) == 2 for q in ds.questions)
    assert {q.type for q in ds.questions} == {"bridge", "comparison"}


def test_hotpotqa_limit_reads_only_needed_questions(shared_data: Path) -> None:
    ds = load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=3)
    assert len(ds.questions) == 3 and len(ds.corpus) <= 30


def test_vaswani_trec_files(shared_data: Path) -> None:
    ds = load_vaswani(shared_data / "vaswani")
    assert (len(ds.corpus), len(ds.questions), ds.kind) == (11429, 93, "ir")
    assert sum(len(q.qrels) for q in ds.questions) == 2083
    assert ds.corpus[0].id == "1" and ds.corpus[0].text.startswith("compact memories have flexible capacities")
    q1 = ds.questions[0]
    assert q1.id == "1" and q1.text.startswith("MEASUREMENT OF DIELECTRIC CONSTANT")
    assert {"1239", "1502", "4462"} <= set(q1.gold_doc_ids)


def test_cranfield_positions_and_grades(shared_data: Path) -> None:
    ds = load_cranfield(shared_data / "cranfield")
    assert (len(ds.corpus), len(ds.questions)) == (1400, 225)
    # cran.qry's .I numbers have gaps (001, 002, 004, ...): queries are numbered by position
    assert [q.id for q in ds.questions[:3]] == ["1", "2", "3"]
    assert ds.questions[2].text.startswith("what problems of heat conduction in composite slabs")
    q1 = ds.questions[0]
    # cranqrel "1 184 2": code 2 (high relevance) -> gain 5 - 2 = 3; "1 486 -1" -> judged, grade 0
    assert q1.qrels["184"] == 3.0
    assert q1.qrels["486"] == 0.0 and "486" not in q1.gold_doc_ids
    assert all(g in (0.0, 1.0, 2.0, 3.0, 4.0) for q in ds.questions for g in q.qrels.values())
    doc1 = ds.corpus[0]
    assert doc1.title.startswith("experimental investigation of the aerodynamics")
    assert doc1.text.startswith("an experimental study of a wing")  # the repeated title is removed


def test_quality_multiple_choice(shared_data: Path) -> None:
    ds = load_quality(shared_data / "quality" / "quality.jsonl")
    assert (len(ds.corpus), len(ds.questions), ds.kind) == (15, 202, "mc")
    assert all(len(q.choices) == 4 and q.gold_choice is not None for q in ds.questions)
    q = ds.questions[0]
    assert q.text.startswith("Why did the Tr'en leave Korvin's door unlocked")
    assert q.gold_choice == 1 and q.choices[1].startswith("Their subconscious knew")
    assert q.answers == (q.choices[1],)
    assert "(B)" in q.prompt_text()


def test_nq_long_pages(shared_data: Path) -> None:
    ds = load_nq_long(shared_data / "nq_long" / "natural_question.jsonl")
    assert len(ds.questions) == 109 and ds.kind == "qa"
    assert len(ds.corpus) == 20  # one page appears twice in the file, identically
    assert len({q.id for q in ds.questions}) == 109
    doc = ds.corpus[0]
    assert doc.title == "The Handmaid 's Tale ( TV series )"
    assert "<P>" not in doc.text and "<Td" not in doc.text
    assert ds.questions[0].answers == ("April 25 , 2018",)


def test_musique_fixture() -> None:
    ds = load_musique(FIXTURES / "musique_sample.jsonl")
    assert len(ds.questions) == 3
    q0, q1, q2 = ds.questions
    assert q0.answers == ("Miquette Giraudy", "Giraudy") and q0.type == "2hop"
    assert q0.gold_doc_ids == ("Green (Steve Hillage album)", "Miquette Giraudy")
    # same title, different paragraph -> distinct documents; identical paragraph -> shared
    assert q1.gold_doc_ids == ("Lake Victoria", "Kampala", "Kampala (2)")
    assert [d.id for d in ds.corpus].count("Green Party") == 1
    assert q1.type == "3hop1" and q1.supporting_facts[0].sent_id is None
    assert q2.answers == () and q2.metadata["answerable"] is False


def test_2wiki_fixture() -> None:
    ds = load_2wiki(FIXTURES / "2wiki_sample.jsonl")
    assert ds.name == "2wikimultihopqa" and len(ds.questions) == 2
    q0, q1 = ds.questions
    assert q0.answers == ("Ma\u0142gorzata Braunek",)
    assert q0.supporting_facts[1].text.startswith("He is the son of actress")
    assert q0.metadata["evidences"][1] == ["Xawery \u017bu\u0142awski", "mother", "Ma\u0142gorzata Braunek"]
    # ["Blind Shaft", 7] points past the paragraph: skipped, the title still counts as gold
    assert len(q1.supporting_facts) == 2 and q1.gold_doc_ids == ("Blind Shaft", "The Mask of Fu Manchu")
    assert [d.id for d in ds.corpus].count("Maheen Khan") == 1


def test_2wiki_accepts_json_array(tmp_path: Path) -> None:
    records = [json.loads(line) for line in (FIXTURES / "2wiki_sample.jsonl").read_text().splitlines()]
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(records))
    assert [q.id for q in load_2wiki(p).questions] == [r["_id"] for r in records]


def test_beir_directory(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "A", "text": "alpha"}\n{"_id": "d2", "title": "B", "text": "beta"}\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "alpha?"}\n{"_id": "q2", "text": "none"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    ds = load_beir(tmp_path)
    assert [d.id for d in ds.corpus] == ["d1", "d2"]
    assert len(ds.questions) == 1  # q2 has no judgement
    assert dict(ds.questions[0].qrels) == {"d1": 2.0, "d2": 0.0} and ds.questions[0].gold_doc_ids == ("d1",)


def test_parse_options_and_errors() -> None:
    q, opts = parse_options("Who?\n\n (A) one \n (B) two")
    assert q == "Who?" and opts == ("one", "two")
    with pytest.raises(InputError, match="options"):
        parse_options("Who? no options here")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"_id": "x", "question": "q"\n', "not valid JSON"),
        ('{"_id": "x", "question": "q", "answer": "a", "supporting_facts": []}\n', "missing field 'context'"),
        ('[1, 2]\n', "not a JSON object"),
        ('{"_id": "x", "question": "q", "answer": "a", "context": [["t"]], "supporting_facts": []}\n', "context entry"),
    ],
)
def test_malformed_hotpot_files_raise_input_error(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    with pytest.raises(InputError, match=match) as e:
        load_hotpotqa(p)
    assert "Fix:" in str(e.value)


def test_missing_files_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_vaswani(tmp_path)
    with pytest.raises(InputError, match="use one of"):
        load_dataset("squad", tmp_path)
    (tmp_path / "cran.all.1400").write_text(".I 1\n.W\ntext\n")
    (tmp_path / "cran.qry").write_text(".I 001\n.W\nquery\n")
    (tmp_path / "cranqrel").write_text("1 1\n")
    with pytest.raises(InputError, match="qid docid code"):
        load_cranfield(tmp_path)


def test_head_restricts_multihop_corpus_to_the_kept_questions(shared_data: Path) -> None:
    full = load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl")
    part = full.head(5)
    direct = load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=5)
    assert [q.id for q in part.questions] == [q.id for q in direct.questions]
    assert {d.id for d in part.corpus} == {d.id for d in direct.corpus}
    assert all(len(q.context_doc_ids) == 10 for q in part.questions)
    ir = load_cranfield(shared_data / "cranfield")
    assert len(ir.head(3).corpus) == 1400 and len(ir.head(3).questions) == 3


def test_unanswerable_hotpotqa_removes_every_gold_paragraph(shared_data) -> None:
    from branchwise.evals.datasets import load_dataset

    full = load_dataset("hotpotqa", shared_data / "hotpotqa" / "dev_distractor_200.jsonl")
    bare = load_dataset("hotpotqa_unanswerable", shared_data / "hotpotqa" / "dev_distractor_200.jsonl")
    gold = {d for q in full.questions for d in q.gold_doc_ids}
    assert bare.kind == "unanswerable" and len(bare.questions) == len(full.questions) == 200
    assert gold and not gold & {d.id for d in bare.corpus} and len(bare.corpus) == len(full.corpus) - len(gold)
    assert all(not q.gold_doc_ids and not gold & set(q.context_doc_ids) for q in bare.questions)
    assert not gold & {d.id for d in bare.head(20).corpus}  # the shrunken corpus of a --limit run too
    assert bare.questions[0].answers == full.questions[0].answers  # kept, to catch made-up answers
