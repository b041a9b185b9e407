"""The accuracy benchmark's entity set: well formed, and the formatter writes every entity from its spoken form."""

from voxgate.bench.entity_set import entity_found, entity_set
from voxgate.text.entities import format_entities


def test_the_set_is_large_enough_and_covers_every_category() -> None:
    items = entity_set()
    assert len(items) >= 100
    assert len({i.id for i in items}) == len(items)
    assert {i.category for i in items} >= {"email", "phone", "card", "id", "date", "amount", "name", "keyterm"}


def test_the_formatter_writes_every_entity_of_the_set_from_its_spoken_form() -> None:
    missed = [
        (item.id, entity, format_entities(item.spoken))
        for item in entity_set()
        for entity in item.entities
        if not entity_found(entity, format_entities(item.spoken))
    ]
    assert not missed, missed


def test_entity_matching_forgives_case_and_spacing_but_not_digits() -> None:
    assert entity_found("RX-7704132", "my reference is rx-7704132.")
    assert entity_found("March 3", "on march  3 at noon")
    assert not entity_found("555-212-9876", "555-212-9875")
    assert not entity_found("john.smith@example.com", "john smith at example.com")


def test_the_medical_set_names_one_pack_term_per_sentence() -> None:
    """`voxgate bench terms` scores each sentence on its one medication: it must be a pack term, said there."""
    from voxgate.bench.terms import MEDICAL_SET
    from voxgate.text.packs import load_pack

    pack = {t.lower() for t in load_pack("medical")}
    terms = [term.lower() for term, _ in MEDICAL_SET]
    assert len(MEDICAL_SET) >= 40 and len(set(terms)) == len(terms)
    for term, sentence in MEDICAL_SET:
        assert term.lower() in pack and term in sentence
        assert [t for t in pack if t in sentence.lower()] == [term.lower()]
