"""nnlib.widgets.SentenceExplorer driven headless on the installed English pipeline and GiNZA.

What a learner relies on: the controls exist under the CSS classes the docstring promises; the
token table says what spaCy says (checked against a pipeline loaded separately, with the same
components excluded by ``spacy.load``); switching a component off empties exactly the columns it
fills and never changes the pipelines themselves; Japanese goes to GiNZA; the three word lists
match Sudachi and SentencePiece called directly.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nnlib import DATA_DIR, nlp as N
from nnlib.widgets import SentenceExplorer
from nnlib.widgets.sentence import COLUMNS, best_time, is_japanese, token_row

EN = "She saw the mice, and they were running from the saw in London."
JA = "彼女は東京大学で自然言語処理を研究しています。"




@pytest.fixture(scope="module")
def tokenizer():
    from nnlib.llama import load_tokenizer

    return load_tokenizer(DATA_DIR / "tiny-llama")


@pytest.fixture
def explorer(en, ja, tokenizer):
    return SentenceExplorer(en, ja, tokenizer, text=EN)


def reference_rows(lang: str, text: str, exclude: list[str]) -> list[dict[str, str]]:
    """The table computed by a separately loaded pipeline with ``exclude`` left out at load time."""
    nlp = N.load_pipeline(lang, exclude=exclude)
    return [token_row(t) for t in nlp(text)]


def test_controls_have_the_promised_css_classes(explorer):
    classes = {css for part in [explorer.text_box, explorer.checkboxes, explorer.speed,
                                explorer.table, explorer.words, explorer.drawing, explorer.widget]
               for css in part._dom_classes}
    assert {"nnlib-sentence", "nnlib-components", "nnlib-speed", "nnlib-token-table",
            "nnlib-words", "nnlib-drawing", "nnlib-sentence-explorer"} <= classes
    boxes = {box.description: box for box in explorer.checkboxes.children}
    assert list(boxes) == list(explorer.pipelines["en"].component_names)
    assert boxes["tagger"].value and not boxes["senter"].value  # senter ships disabled
    assert "nnlib-component-tagger" in boxes["tagger"]._dom_classes


def test_default_table_is_what_spacy_says(explorer):
    assert explorer.analysis.rows == reference_rows("en", EN, [])
    assert explorer.analysis.empty_columns == []
    assert 'class="displacy"' in explorer.drawing.value and 'class="entities"' in explorer.drawing.value
    assert "London" in explorer.table.value and "GPE" in explorer.table.value


@pytest.mark.parametrize("off, emptied", [
    (["tagger"], {"tag_", "pos_", "morph"}),
    (["parser"], {"dep_", "head"}),
    (["ner"], {"ent_type_"}),
    (["lemmatizer"], set()),  # the attribute_ruler still sets a few lemmas (she, they)
])
def test_switching_a_component_off_empties_its_columns(explorer, en, off, emptied):
    before = list(en.pipe_names)
    for name in off:
        explorer.set_component(name, False)
    a = explorer.analysis
    assert a.rows == reference_rows("en", EN, off)
    assert set(a.empty_columns) == emptied
    assert sorted(a.disabled) == sorted(off + ["senter"])
    assert {b.description: b.value for b in explorer.checkboxes.children}[off[0]] is False
    assert en.pipe_names == before  # select_pipes restored the pipeline
    for name in emptied:
        assert f"{name} <i>(empty)</i>" in explorer.table.value


def test_tagger_off_reports_spacys_warning_and_parser_off_drops_the_arcs(explorer):
    explorer.set_component("tagger", False)
    assert any("W108" in w for w in explorer.analysis.warnings)
    assert "W108" in explorer.speed.value
    explorer.set_component("tagger", True)
    explorer.set_component("parser", False)
    assert 'class="displacy"' not in explorer.drawing.value
    assert 'class="entities"' in explorer.drawing.value


def test_a_ticked_checkbox_in_the_page_reaches_the_logic(explorer):
    box = {b.description: b for b in explorer.checkboxes.children}["ner"]
    box.value = False  # what a click in the browser does
    assert "ner" in explorer.analysis.disabled
    assert explorer.analysis.empty["ent_type_"] == explorer.analysis.n_tokens


def test_typed_japanese_goes_to_ginza_with_its_own_checkboxes(explorer, ja):
    explorer.text_box.value = JA  # what typing and Enter do
    a = explorer.analysis
    assert a.lang == "ja"
    assert a.rows == reference_rows("ja", JA, [])
    assert [b.description for b in explorer.checkboxes.children] == list(ja.component_names)
    explorer.set_component("parser", False)
    assert set(explorer.analysis.empty_columns) >= {"dep_", "head"}


def test_word_lists_match_sudachi_and_sentencepiece_called_directly(explorer, tokenizer):
    import sentencepiece
    import sudachipy

    sp = sentencepiece.SentencePieceProcessor(model_file=str(DATA_DIR / "tiny-llama" / "tokenizer.model"))
    sudachi = sudachipy.Dictionary(dict="core").create(sudachipy.SplitMode.C)
    for text in [EN, JA]:
        a = explorer.set_text(text)
        # spaCy keeps a space as the previous token's whitespace, Sudachi as a token of its own
        assert a.ginza_words == [m.surface() for m in sudachi.tokenize(text) if m.surface().strip()]
        assert a.llama_pieces == sp.encode(text, out_type=str)
        assert "".join(a.spacy_words) == text.replace(" ", "")


def test_timings_are_positive_and_compared_with_the_default_pipeline(explorer):
    a = explorer.set_component("parser", False)
    assert a.ms > 0 and a.full_ms > 0
    assert f"{a.ms:.1f} ms" in explorer.speed.value and "parser" in explorer.speed.value


def test_best_time_returns_the_doc_and_the_fastest_of_its_runs(en):
    calls = []

    def counted(text):
        calls.append(text)
        return en(text)

    doc, ms = best_time(counted, EN, budget_ms=1e9, most=3)
    assert len(calls) == 3 and [t.text for t in doc] == [t.text for t in en(EN)] and ms > 0
    calls.clear()
    best_time(counted, EN, budget_ms=0.0)
    assert len(calls) == 1  # a slow pipeline runs once


def test_bad_input_is_explained(explorer, en):
    with pytest.raises(ValueError, match="not a component"):
        explorer.set_component("textcat", False)
    with pytest.raises(ValueError, match="choose from"):
        explorer.analyse(EN, enabled=["tagger", "nonsense"])
    with pytest.raises(TypeError, match="must be a str"):
        explorer.analyse(42)
    with pytest.raises(TypeError, match="spaCy pipeline"):
        SentenceExplorer(None)


def test_works_without_ginza_or_tokenizer(en):
    explorer = SentenceExplorer(en, text=JA)
    a = explorer.analysis
    assert a.lang == "en" and a.ginza_words == [] and a.llama_pieces == []
    assert "GiNZA" not in explorer.words.value


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer",
                                "ner"])))
def test_any_choice_of_components_leaves_the_pipeline_unchanged(explorer, en, enabled):
    before = list(en.pipe_names)
    a = explorer.analyse(EN, enabled=enabled)
    assert en.pipe_names == before
    assert sorted(a.enabled) == sorted(enabled)
    assert all(0 <= a.empty[name] <= a.n_tokens for name, _ in COLUMNS)
    if "ner" not in enabled:
        assert a.empty["ent_type_"] == a.n_tokens
    if "parser" not in enabled:
        assert a.empty["dep_"] == a.n_tokens


@given(st.text(alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3096), min_size=1),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!?0123456789"))
def test_is_japanese_sees_kana_anywhere(kana, latin):
    assert is_japanese(latin + kana + latin)
    assert not is_japanese(latin)
