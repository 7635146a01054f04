"""Findings of a review of the session's change, each a behaviour a user notices."""

from __future__ import annotations

from engine.sources.bluesky import link_facets


def _uris(text: str) -> list[str]:
    return [f["features"][0]["uri"] for f in link_facets(text)]


def test_a_bluesky_link_that_ends_in_a_bracket_it_opened_keeps_it():
    # Bluesky's own client keeps a closing bracket the link opened (Wikipedia's links end in one):
    # without it the facet sends readers to a page that does not exist
    assert _uris("See https://en.wikipedia.org/wiki/Mercury_(planet) for more.") == [
        "https://en.wikipedia.org/wiki/Mercury_(planet)"]
    assert _uris("Read it (https://en.wikipedia.org/wiki/Mercury_(planet)).") == [
        "https://en.wikipedia.org/wiki/Mercury_(planet)"]
    # a bracket that only closes the sentence's own is still not part of the link
    assert _uris("(details at https://example.org/help)") == ["https://example.org/help"]
    text = "Ärger? https://example.org/a_[b] ok"
    facet = link_facets(text)[0]
    assert text.encode("utf-8")[facet["index"]["byteStart"]:facet["index"]["byteEnd"]] == b"https://example.org/a_[b]"
