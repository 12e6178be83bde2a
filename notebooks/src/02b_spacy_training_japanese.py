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
# # 02b · spaCy: train, fine-tune, Japanese, and a Llama's tokens
#
# Notebook 02 used a trained pipeline. This one trains: a text classifier of your own from
# labelled questions (the series' own set; yours would go in the same form), by hand with
# `nlp.update` (and, optionally, with spaCy's `spacy train`); then what changes when you fine-tune
# a component that is already trained. Then Japanese, where there are no spaces to split on,
# and the subword pieces a Llama reads instead of words.
#
# **Learning goals.** After this notebook you can
#
# 1. train a spaCy text classifier on labelled data (here the series' own questions; your own
#    data goes in as the same `(text, label)` pairs) by hand with `nlp.update`, score it against
#    a baseline on dev, and score it once on a test split (optional: read its cross-validated
#    mistakes and add data for them; train it with `spacy train`, a config and `DocBin` files);
# 2. say which optimizer spaCy uses, that its gradient is summed over the batch without notebook
#    01's 1/m, why Adam barely notices the 1/m without clipping, and where the scale still
#    matters (plain SGD, gradient clipping);
# 3. say what fine-tuning a pretrained component changes, and why it needs rehearsal to keep its
#    old labels (optional: teach the NER a new label);
# 4. run a Japanese pipeline (GiNZA, a third-party pipeline for spaCy) and say how Japanese
#    tokenization differs from English;
# 5. tell spaCy's *words* from a language model's *subword tokens* (the bridge to notebook 03).
#
# **Time.** The core path (every section without "optional" in its heading, with its exercises)
# adds up to about 58 minutes in the headings: §1 14, §1d with Exercises 2 and 3 16, §1f 4, §2 3,
# §3 with Exercise 5 11, §4 with the summary 10; with about 4 for this introduction and the
# set-up, about 62 minutes. Within about the first quarter hour you have trained a classifier on
# the series' labelled questions. The parts marked "(optional, N min)" add about 68 more: §1b
# (the mistakes, with Exercise 1) 17, §1c (the same training with `spacy train`) 8, §1c′ (its
# config and progress table) 6, §1e (the 1/m on the classifier, gradient clipping) 10, §2a
# (fine-tuning the NER, with Exercise 4) 16, §3b (more of GiNZA) 8, §3c (pipelines per language)
# 3. Top to bottom the notebook runs in well under two minutes.

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
from nnlib.run_report import RunClock

_clock = RunClock()  # the last cell reports how long the whole run took, and the peak memory

# %%
import contextlib
import importlib.metadata
import io
import pkgutil
import random
import tempfile
from collections import Counter
from pathlib import Path

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import SGD, Adam

import nnlib
from nnlib import nlp as nlp_tools
from nnlib.exercises import spacy_pipelines as exercises
from nnlib.llama import load_tokenizer

nlp = nlp_tools.load_pipeline("en")  # spacy.load("en_core_web_sm"), found offline (notebook 02 §1)
print(nlp.pipe_names)

# %%
# NBVAL_IGNORE_OUTPUT
print("loaded package:", nlp_tools.pipeline_package("en"))  # on Colab: en_core_web_sm

# %%
# NBVAL_IGNORE_OUTPUT
print("spaCy", spacy.__version__)  # Colab's and yours may differ: the rest holds for either

# %% [markdown]
# ## 1 · Train your own component: a text classifier (14 min)
#
# Training in spaCy means: make `Example`s (a `Doc` plus the gold annotation), `nlp.initialize`,
# then loop `nlp.update` over shuffled mini-batches. The task is this series' own: given a
# learner's question, which notebook answers it, `SGD`, `SPACY` or `LLAMA`? The data ships in
# `data/textcat/` (questions written for this series, see its README). Three splits: `train` to
# learn from, `dev` to compare choices on, and `test_rows`, scored once at the very end, so that
# its score was never used to choose anything (`load_textcat_splits` deals `dev.jsonl` into the
# last two, label by label).

# %%
train, dev, test_rows = nlp_tools.load_textcat_splits()
print(len(train), "train /", len(dev), "dev /", len(test_rows), "test examples")
print(Counter(label for _, label in train))
for text, label in train[:4]:
    print(f"{label:<6} {text}")
majority_label, baseline = nlp_tools.majority_baseline(train, dev)
probe = [text for text, _ in dev]  # the dev questions alone, to compare two models' scores (§1c, §1e)
print(f"majority baseline: always {majority_label!r} -> accuracy {baseline:.3f} on dev")

# %% [markdown]
# The majority baseline is the score to beat. The loop looks like notebook 01's, but the
# optimizer is not: `nlp.initialize` returns thinc's **Adam**, with settings from the
# `[training.optimizer]` block of the config. Here it is:

# %%
demo = spacy.blank("en")
demo_textcat = demo.add_pipe("textcat")
for label in ["SGD", "SPACY", "LLAMA"]:
    demo_textcat.add_label(label)
optimizer = demo.initialize()  # built from the config's [training.optimizer] block:
print(type(optimizer).__module__ + "." + type(optimizer).__name__, "from",
      demo.config["training"]["optimizer"])
print("weight averages kept:", optimizer.averages is not None)
print("en_core_web_sm's block differs only in:",
      {k: v for k, v in nlp.config["training"]["optimizer"].items()
       if demo.config["training"]["optimizer"].get(k) != v})

# %% [markdown]
# **What to notice.** `beta1` and `beta2` are Adam's moment decay rates: each weight gets its own
# step size from running averages of its gradient and squared gradient, so this is not
# `w - eta/m * nw` with one `eta` for all. `L2` is weight decay; `grad_clip` scales a gradient
# down to norm 1.0 when its norm is larger (thinc does it one parameter array at a time: the
# optional §1e shows it). `use_averages` would make the optimizer also keep a running average of
# every weight, which `spacy train` evaluates and saves instead of the last weights;
# en_core_web_sm's config switches it on, the blank pipeline's default leaves it off, and nothing
# in this notebook uses averages.
#
# `nnlib.nlp.train_textcat` builds `spacy.blank("en")` plus a `textcat` component (bag of words: a
# linear layer over hashed unigrams and bigrams, quick to train on a CPU) and runs this loop,
# seeded with `spacy.util.fix_random_seed(0)` and a seeded shuffle so every run is identical:
#
# ```python
# examples = [Example.from_dict(nlp.make_doc(text), {"cats": {"SGD": 1.0, "SPACY": 0.0, "LLAMA": 0.0}}), ...]
# optimizer = nlp.initialize(lambda: examples)      # thinc's Adam
# for epoch in range(n_epochs):
#     random.shuffle(examples)
#     for batch in spacy.util.minibatch(examples, size=16):
#         nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
# ```

# %%
epoch_losses = []
textcat_nlp = nlp_tools.train_textcat(train, n_epochs=10, seed=0,
                                      on_epoch=lambda epoch, loss: epoch_losses.append(loss))
print("pipeline:", textcat_nlp.pipe_names, "labels:", textcat_nlp.get_pipe("textcat").labels)
print("loss per epoch:", [round(loss, 2) for loss in epoch_losses])
scores = nlp_tools.evaluate_textcat(textcat_nlp, dev)  # nlp.evaluate, i.e. spacy.scorer.Scorer
for name, value in scores.items():
    print(f"{name:<10} {value:.3f}")
print(f"accuracy {scores['accuracy']:.3f} vs majority baseline {baseline:.3f}")

# %% [markdown]
# **What to notice.** The loss falls every epoch, and the classifier beats the majority baseline
# on dev by a wide margin, after seconds of training on a few hundred questions. That is
# training spaCy on labelled data of your choice. The scores: `accuracy` is the share of dev
# questions whose top label is right; `f_LABEL` is one label's F-score (the harmonic mean of its
# precision and recall), `macro_f` their mean over the three labels; `macro_auc` is, averaged over
# the labels, the chance that a question of that label scores higher for it than a question of
# another label (0.5 is guessing), so it reads the scores, not just the top label.
#
# The rest of §1 asks where notebook 01's 1/m went (§1d: spaCy's gradient has none) and scores
# the model once on a test split (§1f). The optional §1b reads its mistakes first, and the optional
# §1c trains the same model with `spacy train`.

# %% [markdown]
# ### 1b · Read the mistakes, on training data the model did not see (optional, 17 min, with Exercise 1)
#
# To improve the data you read the mistakes. Not on `dev`: questions written from dev mistakes are
# dev knowledge in the training set, and the dev score stops measuring anything. And not the
# trained model's mistakes on `train` either: it has seen those questions, and gets them right.
# **Cross-validation** finds honest training mistakes: deal `train` into 5 folds, train on 4,
# predict the fifth, five times over (`nlp_tools.cross_val_mistakes`).

# %%
print(f"the trained model on its own training questions: accuracy {nlp_tools.accuracy(textcat_nlp, train):.3f}")
train_mistakes = nlp_tools.cross_val_mistakes(train, k=5, seed=0)
print(f"cross-validated: {len(train_mistakes)} of {len(train)} training questions wrong; the first eight:")
for text, gold, predicted in train_mistakes[:8]:
    print(f"  gold {gold:<6} predicted {predicted:<6} {text}")

# %% [markdown]
# **What to notice.** Read the mistakes against the labels: words like "load", "tokenizer",
# "training" or "batch" occur under more than one label (the next cell counts them), and a bag of
# words sees only which words and word pairs occur (`ngram_size = 2`, §1c′), not what is asked
# about them.

# %%
for word in ("load", "tokenizer", "training", "batch"):
    counts = Counter(label for text, label in train if word in text.lower())
    print(f"{word!r:12}", dict(sorted(counts.items())))

# %% [markdown]
# #### Exercise 1 · Add examples from the training mistakes, re-score against the baseline
# From the cross-validated mistakes above, write at least two new questions per label in
# `my_questions()`: your own words, aimed at what the model confused (not copied from dev or
# test). Then write `retrain(extra)` returning a classifier trained like the one above on
# `train + extra`. The checker retrains the same way and prints dev accuracy with your questions,
# without them, and the baseline. Predict first: will six questions move the dev score?

# %%
def my_questions() -> list[tuple[str, str]]:
    raise NotImplementedError


def retrain(extra: list[tuple[str, str]]) -> Language:
    raise NotImplementedError


_ = exercises.check_added_examples(my_questions, retrain, train, dev, test_rows)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_questions():
#     return [("Should the step size shrink when the batch grows?", "SGD"),
#             ("Why does my training loop print a loss that goes up?", "SGD"),
#             ("How do I find all the place names in a text?", "SPACY"),
#             ("Which tokens does the dependency parser attach to the verb?", "SPACY"),
#             ("Why does my checkpoint not fit in GPU memory?", "LLAMA"),
#             ("How do I load the tokenizer file that came with the weights?", "LLAMA")]
#
# def retrain(extra):
#     return nlp_tools.train_textcat(train + extra, n_epochs=10, seed=0)
# ```
# A handful of questions among hundreds rarely moves a dev score by more than a question or two,
# and on 39 dev questions that may be no more than another seed changes: `train_textcat(...,
# seed=1)`, `seed=2`, ... trained on the same data score differently too. The baseline only tells
# you that the model learned something. To tell whether the new questions helped, train with and
# without them over several seeds (or cross-validation folds) and compare the two spreads.
# </details>

# %% [markdown]
# ### 1c · The same training with `spacy train`: a config and DocBin files (optional, 8 min)
#
# The hand loop above is what spaCy's own command runs, and it gives the same scores (the second
# cell below checks). `spacy train config.cfg` reads the whole
# recipe from a config (architecture, optimizer, batches, epochs, seed) and the corpora from
# `DocBin` files (`.spacy`: Docs in spaCy's binary format, here with their gold `cats`); it
# evaluates on dev every `eval_frequency` steps and saves `model-last` (the weights after the last
# step) and `model-best` (the evaluated step with the best dev score). We write a base config with
# only the settings we choose (`nlp_tools.TEXTCAT_BASE_CONFIG`, printed in §1c′);
# `spacy init fill-config` adds every other setting with its default and rewrites our score
# weights (printed below), and `spacy train` trains.
# Both are also Python functions, which the next cell calls in a temporary folder (on the command
# line: `python -m spacy init fill-config base.cfg config.cfg`, then `python -m spacy train
# config.cfg --output out --paths.train train.spacy --paths.dev dev.spacy`). Nothing is downloaded.

# %%
from spacy.cli.init_config import fill_config  # noqa: E402
from spacy.cli.train import train as spacy_train  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    nlp_tools.write_docbin(train, folder / "train.spacy")
    nlp_tools.write_docbin(dev, folder / "dev.spacy")
    (folder / "base.cfg").write_text(nlp_tools.TEXTCAT_BASE_CONFIG)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # spaCy's progress table, printed below
        fill_config(folder / "config.cfg", folder / "base.cfg")
        spacy_train(folder / "config.cfg", folder / "out",
                    overrides={"paths.train": str(folder / "train.spacy"),
                               "paths.dev": str(folder / "dev.spacy")})
    cli_nlp = spacy.load(folder / "out" / "model-last")
    best_nlp = spacy.load(folder / "out" / "model-best")
    print("written:", sorted(p.name for p in (folder / "out").iterdir()))
    filled = spacy.util.load_config(folder / "config.cfg")["training"]["score_weights"]
recipe = spacy.util.load_config_from_str(nlp_tools.TEXTCAT_BASE_CONFIG, interpolate=True)["training"]
print("the recipe:", {k: recipe[k] for k in ("seed", "dropout", "max_epochs", "eval_frequency")},
      "| batch size", recipe["batcher"]["size"], "| optimizer", recipe["optimizer"]["@optimizers"])
print("score weights: base", dict(recipe["score_weights"]), "-> after fill-config",
      {k: v for k, v in filled.items() if v is not None})

# %%
same = all(abs(a.cats[k] - b.cats[k]) < 1e-5
           for a, b in zip(cli_nlp.pipe(probe), textcat_nlp.pipe(probe)) for k in a.cats)
print(f"spacy train, dev accuracy: model-last {nlp_tools.accuracy(cli_nlp, dev):.3f}, model-best "
      f"{nlp_tools.accuracy(best_nlp, dev):.3f} | hand loop {nlp_tools.accuracy(textcat_nlp, dev):.3f}")
print("model-last and the hand loop give the same scores on every dev question:", same)

# %% [markdown]
# **What to notice.** The same model: `spacy train` is the hand loop plus a config that records
# every choice, a binary corpus, and evaluation on dev during training. `model-best` is the best
# of the *evaluated* steps only, so it need not beat `model-last`: compare the two dev accuracies
# printed above. Picking it is one more choice made on dev (and one more reason to keep a test
# split). fill-config did more than add defaults: it merged in the textcat's own default weight,
# `cats_score`, and scaled the weights to sum to 1. For exclusive classes `cats_score` *is* the
# macro F, so `model-best` is still chosen by the macro F, and §1c′'s table shows it twice.

# %% [markdown]
# #### 1c′ · The config and the progress table (optional, 6 min)
#
# The base config, with only the settings we choose:

# %%
print(nlp_tools.TEXTCAT_BASE_CONFIG)

# %% [markdown]
# And the progress table `spacy train` printed while it trained (captured by the cell above),
# with the arithmetic of its steps:

# %%
table = [line for line in log.getvalue().splitlines() if line[:3].strip().isdigit() or "LOSS" in line]
print("\n".join(table))
print(f"steps: {len(train)} questions / {recipe['batcher']['size']} per batch = "
      f"{-(-len(train) // recipe['batcher']['size'])} batches x {recipe['max_epochs']} epochs; "
      f"evaluated every {recipe['eval_frequency']} steps")

# %% [markdown]
# **What to notice.** `CATS_SCORE` and `CATS_MACRO_F` are the same macro F-score on dev, in
# percent (the two score weights of §1c), and `SCORE` their weighted sum, as a fraction. Its steps
# count from 0, so the 150th and last batch is step 149: the table's last row is step 135, and
# `model-last` is never scored by `spacy train`. The `LOSS TEXTCAT` column, like §1's "loss per
# epoch", is a sum of per-batch losses (`nlp.update` adds each batch's loss to `losses`).

# %% [markdown]
# ### 1d · Back to notebook 01: spaCy sums the gradient over the batch (16 min, with Exercises 2 and 3)
#
# Notebook 01's update divides by the batch size: `w - (eta/m) * nabla_w`. Does spaCy's? The
# textcat's `get_loss(examples, scores)` (in `spacy/pipeline/textcat.py`) returns two things, and
# they belong to two different functions of the batch's `scores` and gold `truths` (both
# `(m, n_labels)` arrays):
#
# - the **loss it reports** (§1's "loss per epoch" adds these up) is the *mean* squared error,
#   `((scores - truths)**2).mean()` over all `m x n_labels` entries: for display only;
# - the **gradient it passes back** is the gradient of *half the summed* squared error,
#   `L = 1/2 * sum over the m examples and the labels of (score - truth)**2`, with respect to
#   each score.
#
# ### Exercise 2 · Derive: the gradient the textcat passes back
# Derive `dL/dscores` for that `L` and return it from `textcat_gradient(scores, truths)`: an array
# shaped like `scores`, one row per example. Is it divided by `m`? The checker compares with
# spaCy's own `get_loss` on 16 training questions.

# %%
def textcat_gradient(scores: numpy.ndarray, truths: numpy.ndarray) -> numpy.ndarray:
    raise NotImplementedError


_ = exercises.check_textcat_gradient(textcat_gradient, textcat_nlp, train)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def textcat_gradient(scores, truths):
#     return scores - truths
# ```
# The gradient is the derivative of half the *summed* squared error: the derivative of
# `1/2 * (score - truth)**2` is `score - truth`, with no division by `m`. When it reaches the
# weights it is a sum over the batch, Nielsen's `nabla_w` before the `eta/m`.
# </details>
#
# ### Exercise 3 · Predict: which learning rate makes the mean match the sum?
# Suppose you divide every gradient by `m` (notebook 01's way). With plain SGD, which learning
# rate takes the same steps as summing at `learn_rate`? With Adam? Return `(sgd_rate, adam_rate)`.
# The checker runs thinc's `SGD` and `Adam` both ways on the same gradients, without gradient
# clipping or weight decay.

# %%
def matching_learn_rates(learn_rate: float, m: int) -> tuple[float, float]:
    raise NotImplementedError


_ = exercises.check_matching_learn_rates(matching_learn_rates)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def matching_learn_rates(learn_rate, m):
#     return learn_rate * m, learn_rate
# ```
# SGD's step is the rate times the gradient: a gradient `m` times smaller needs a rate `m` times
# larger. Adam divides each weight's step by the root of its running mean squared gradient: a
# factor on every gradient appears above and below and cancels (up to the tiny `eps`).
# </details>
#
# Exercise 3's Adam had no clipping. spaCy's default Adam has `grad_clip = 1.0` (printed in §1).
# The same training as §1, once as spaCy does it (summed) and once divided by `m`, each time with
# a fresh copy of §1's optimizer wrapped in `nlp_tools.ClipCounter`, which counts the gradient
# arrays whose norm reaches `grad_clip` (thinc's test) and passes every update on unchanged:

# %%
for name, average in [("summed (§1)", False), ("divided by m", True)]:
    counter = nlp_tools.ClipCounter(demo.create_optimizer())  # §1's optimizer, from the same config
    model = nlp_tools.train_textcat(train, n_epochs=10, seed=0, optimizer=counter, average=average)
    print(f"{name:<13} dev accuracy {nlp_tools.accuracy(model, dev):.3f} | gradient arrays clipped: "
          f"{counter.clipped} of {counter.updates}")

# %% [markdown]
# **What to notice.** Summed, more than half of the gradient arrays are clipped; divided by `m`,
# only a few (the summed run is §1's training again, same optimizer and seed, and scores the
# same). A clipped array is scaled down to norm 1.0 before Adam sees it, and the summed gradient,
# `m` times longer than the mean, reaches that norm far more often: so under spaCy's default the
# 1/m changes the steps, and the model. Without clipping, Adam's per-weight scaling cancels the
# 1/m (Exercise 3). That is a plausible reason for spaCy to leave notebook 01's 1/m out, but a
# guess: spaCy does not document one. With plain SGD, leaving the 1/m out is the same as a
# learning rate `m` times larger. (The optional §1e shows both without clipping, and how thinc
# clips one array at a time.)

# %% [markdown]
# ### 1e · The 1/m on the classifier, and gradient clipping (optional, 10 min)
#
# Watch Exercise 3's answer on the classifier. Five trainings on `train` in batches of `m = 15`
# (225 = 15 x 15, so every batch has the same `m`), without clipping or weight decay so that only
# the 1/m differs (`train_textcat(..., average=True)` divides each batch's gradient by its size):

# %%
runs = {"Adam, sum": (lambda: Adam(0.001, grad_clip=0.0, L2=0.0), False),
        "Adam, mean": (lambda: Adam(0.001, grad_clip=0.0, L2=0.0), True),
        "SGD 0.05, sum": (lambda: SGD(0.05, grad_clip=0.0, L2=0.0), False),
        "SGD 0.05, mean": (lambda: SGD(0.05, grad_clip=0.0, L2=0.0), True),
        "SGD 0.05 x 15, mean": (lambda: SGD(0.05 * 15, grad_clip=0.0, L2=0.0), True)}
bridge = {}
for name, (make_optimizer, average) in runs.items():
    losses = []
    model = nlp_tools.train_textcat(train, batch_size=15, seed=0, optimizer=make_optimizer(),
                                    average=average, on_epoch=lambda e, loss: losses.append(loss))
    bridge[name] = model
    print(f"{name:<20} loss per epoch {[round(x, 2) for x in losses[::3]]} ... "
          f"dev accuracy {nlp_tools.accuracy(model, dev):.3f}")

# %%
def largest_gap(a: Language, b: Language) -> float:
    """The largest difference between two classifiers' scores over the dev questions."""
    return max(abs(x.cats[k] - y.cats[k]) for x, y in zip(a.pipe(probe), b.pipe(probe)) for k in x.cats)


for first, second in [("Adam, sum", "Adam, mean"), ("SGD 0.05, sum", "SGD 0.05, mean"),
                      ("SGD 0.05, sum", "SGD 0.05 x 15, mean")]:
    print(f"{first:<14} vs {second:<20} largest score difference on dev: "
          f"{largest_gap(bridge[first], bridge[second]):.4f}")

# %% [markdown]
# **What to notice.** With SGD the 1/m is the learning rate divided by `m`: the mean at the same
# rate learns far slower, and multiplying the rate by `m` gives back the same model. With Adam,
# sum and mean train the same model to the printed precision (only Adam's tiny `eps` tells them
# apart): its per-weight scaling makes the 1/m nearly irrelevant, once clipping is off.
#
# **Gradient clipping, one array at a time.** `grad_clip` rescales a gradient whose norm is over
# the limit, and thinc does it **one parameter array at a time**, not for all gradients together.
# A two-array experiment with plain SGD (learn rate 1, so each step is minus the clipped gradient)
# shows it:

# %%
clipping = SGD(1.0, grad_clip=1.0, L2=0.0)
for key, gradient in [("W", numpy.full(4, 1.5, dtype="float32")), ("b", numpy.full(4, 0.1, dtype="float32"))]:
    step, _ = clipping((key, 0), numpy.zeros(4, dtype="float32"), gradient.copy())
    print(f"array {key}: gradient norm {numpy.linalg.norm(gradient):.2f} -> step norm "
          f"{numpy.linalg.norm(step):.2f}")
print(f"the norm of both gradients together: {numpy.sqrt(4 * 1.5**2 + 4 * 0.1**2):.2f}")

# %% [markdown]
# **What to notice.** `W` is cut to norm 1; `b` keeps its own norm. A clip of the global norm
# (printed last) would have shrunk `b` as well. The clipping is not Adam's: thinc's
# `Optimizer.__call__` (`thinc/optimizers.py`) clips each array's gradient before whichever update
# rule follows, SGD's (as here) or Adam's. spaCy only computes the gradients.

# %% [markdown]
# ### 1f · Save, load back, and score once on test (4 min)
#
# Save the trained pipeline and load it back: it is now a folder like the one in notebook 02 §1,
# with its own `config.cfg` and a `textcat/` folder (written to a temporary folder here).

# %%
with tempfile.TemporaryDirectory() as tmp:
    textcat_nlp.to_disk(Path(tmp) / "question_classifier")
    reloaded = spacy.load(Path(tmp) / "question_classifier")
    print("saved:", sorted(e.name for e in nlp_tools.package_contents(reloaded)))
q = "How do I load the tokenizer for Llama?"
print("same prediction after reload:", reloaded(q).cats == textcat_nlp(q).cats)

# %% [markdown]
# Every choice for this model is made: the model, its epochs and its data, `train` alone. The
# model scored here is `textcat_nlp` from §1. (The optional Exercise 1's questions went only into
# the copies its checker retrained; to report a model with them, choose it on dev, train it on
# `train + my_questions()`, and score *that* one here instead.) Now, once, the test split:

# %%
_, test_baseline = nlp_tools.majority_baseline(train, test_rows)
print(f"test accuracy {nlp_tools.accuracy(textcat_nlp, test_rows):.3f} | dev accuracy "
      f"{nlp_tools.accuracy(textcat_nlp, dev):.3f} | majority baseline on test {test_baseline:.3f}")

# %% [markdown]
# **What to notice.** The test score is the one to report: nothing was chosen by it. Dev and test
# differ by a few questions; on a few dozen questions each, one question is worth about three
# points of accuracy.

# %% [markdown]
# ## 2 · Fine-tuning a pretrained component, and rehearsal (3 min)
#
# §1 trained a component from nothing. **Fine-tuning** starts from trained weights, for example
# to teach the English `ner` a new label, `LIBRARY`. Three things differ from §1:
#
# - `ner.add_label("LIBRARY")` adds the label to the trained component;
# - `nlp.resume_training()` returns the same kind of Adam optimizer but keeps the weights
#   (`nlp.initialize()` would reset them);
# - the gold annotation keeps the entities the model already finds: a gold with only the new
#   `LIBRARY` names would teach the NER that `Apple` or `London` in the same sentence are no
#   entities any more.
#
# That last idea is **rehearsal**: training on the model's own earlier answers alongside the new
# ones, so that learning the new label does not make it forget the old ones (*catastrophic
# forgetting*). spaCy also has it built in as `nlp.rehearse`, which nudges a component's
# predictions on raw text back towards those of its initial copy. The optional §2a does it the
# plain way, in the gold, on nine sentences, and Exercise 4 writes the rehearsal examples.

# %% [markdown]
# ### 2a · Teach the NER a new label, LIBRARY (optional, 16 min, with Exercise 4)
#
# The gold of each sentence below is its new `LIBRARY` names plus the entities the pretrained NER
# already finds there. We fine-tune a second copy; `nlp` stays as it was.

# %%
spacy.util.fix_random_seed(0)
nlp_ft = nlp_tools.load_pipeline("en")  # a fresh copy to fine-tune
library_rows = [
    ("I tokenized the text with spaCy in Berlin.", ["spaCy"]),
    ("GiNZA parses Japanese sentences.", ["GiNZA"]),
    ("We compared NumPy and PyTorch on the same data.", ["NumPy", "PyTorch"]),
    ("Install SentencePiece before you train a tokenizer.", ["SentencePiece"]),
    ("The plots are drawn with matplotlib.", ["matplotlib"]),
    ("In 2023 Google moved from NumPy to PyTorch.", ["NumPy", "PyTorch"]),
    ("Tim Cook never used spaCy or GiNZA.", ["spaCy", "GiNZA"]),
    ("Apple bought a startup in London for $1 billion.", []),
    ("Mary flew to Tokyo on Monday with three colleagues.", []),
]


def library_example(text: str, names: list[str]) -> Example:
    """Gold = the new LIBRARY spans plus the entities the pretrained NER already finds."""
    doc = nlp_ft(text)
    new = [doc.char_span(text.index(n), text.index(n) + len(n), label="LIBRARY") for n in names]
    kept = [e for e in doc.ents if not any(e.start < s.end and s.start < e.end for s in new)]
    entities = [(span.start_char, span.end_char, span.label_) for span in new + kept]
    return Example.from_dict(nlp_ft.make_doc(text), {"entities": entities})


ft_examples = [library_example(text, names) for text, names in library_rows]
print("gold of one example:", [(e.text, e.label_) for e in ft_examples[6].reference.ents])

# %%
probes = ["They switched from NumPy to spaCy in Paris last year.",
          "They moved from pandas to Keras in Paris.",
          "In 2023 Google paid 40 engineers in Paris to study spaCy, "
          "and Tim Cook visited Tokyo on Monday."]
ents_before = [[(e.text, e.label_) for e in nlp_ft(text).ents] for text in probes]

nlp_ft.get_pipe("ner").add_label("LIBRARY")
optimizer = nlp_ft.resume_training()
print("resume_training returned", type(optimizer).__name__, "with learn_rate", optimizer.learn_rate,
      "b1", optimizer.b1, "b2", optimizer.b2)
rng_ft = random.Random(0)
with nlp_ft.select_pipes(enable=["ner"]):  # only the NER's weights change
    for epoch in range(30):
        rng_ft.shuffle(ft_examples)
        for batch in spacy.util.minibatch(ft_examples, size=4):
            nlp_ft.update(batch, sgd=optimizer, drop=0.2)

for text, before in zip(probes, ents_before):
    print(text)
    print("  before:", before)
    print("  after: ", [(e.text, e.label_) for e in nlp_ft(text).ents])

# %% [markdown]
# **What to notice.** Compare the "after" lines with the "before" lines: the NER now tags names
# it was taught as `LIBRARY` in sentences it never saw, while most old entities stay. But nine
# sentences teach *names*, not the idea: look at what happened to `pandas` and `Keras`, which it
# never saw. And look for an old answer that moved: the gold came from the model's own guesses,
# and nine sentences rehearse only the labels they happen to contain. Real fine-tuning uses
# hundreds of examples of the new label and mixes in many correctly annotated old ones.
#
# #### Exercise 4 · Keep the old labels: rehearsal examples
# Sentences *without* the new label matter too. Write `rehearsal_examples(nlp, texts)` returning
# one training `Example` per text whose gold entities are those the pretrained `nlp` finds now
# (labels, offsets and all), so that mixing them into fine-tuning rehearses the old labels.

# %%
def rehearsal_examples(nlp: Language, texts: list[str]) -> list[Example]:
    raise NotImplementedError


_ = exercises.check_rehearsal_examples(rehearsal_examples, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def rehearsal_examples(nlp, texts):
#     examples = []
#     for text in texts:
#         spans = [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents]
#         examples.append(Example.from_dict(nlp.make_doc(text), {"entities": spans}))
#     return examples
# ```
# A sentence with an *empty* gold would teach the NER that its words are no entities: that is
# how fine-tuning makes a model forget. The predicted side is `nlp.make_doc(text)`: unannotated.
# </details>

# %% [markdown]
# ## 3 · Japanese with GiNZA (11 min, with Exercise 5)
#
# English words are separated by spaces; Japanese writes none, so a tokenizer cannot split on
# spaces. Here is the English pipeline's tokenizer on a Japanese sentence:

# %%
print("the English pipeline on Japanese:", [t.text for t in nlp("今日は東京に行きました。")])

# %% [markdown]
# It looks for spaces and keeps the whole clause as one token. spaCy's own Japanese language
# class (`spacy.lang.ja`) has a tokenizer that uses **SudachiPy**, a morphological analyser that
# looks the text up in a dictionary (Sudachi's, installed as the package `sudachidict_core`) and
# picks the best segmentation with a cost model (a lattice search). It returns tokens *with* their
# dictionary form, reading and part of speech.
#
# Trained Japanese pipelines come from two places. Explosion, spaCy's makers, publish
# `ja_core_news_sm`, `md`, `lg` and `trf`, installed like `en_core_web_sm` with `python -m spacy
# download` from GitHub (this series does not install them). This series uses **GiNZA** (`ja_ginza`), a
# third-party pipeline by Megagon Labs: it installs from the Python package index with a plain
# `pip install ja-ginza`, and it adds bunsetsu and a compound splitter (the optional §3b). It uses
# spaCy's Japanese tokenizer (printed below) and adds a parser, NER and a morphologizer trained on
# Japanese data.

# %%
nlp_ja = nlp_tools.load_pipeline("ja")
print("package:", nlp_tools.pipeline_package("ja"), "| pipe_names:", nlp_ja.pipe_names)
print("tokenizer:", nlp_ja.config["nlp"]["tokenizer"])
print("vectors:", nlp_ja.vocab.vectors.shape)

# %%
# NBVAL_IGNORE_OUTPUT
print("author:", nlp_ja.meta["author"], "| ja_ginza", nlp_ja.meta["version"],  # differ on Colab
      "| dictionary: sudachidict_core", importlib.metadata.version("sudachidict_core"),
      "| sudachipy", importlib.metadata.version("sudachipy"))

# %%
doc_ja = nlp_ja("彼女は東京大学で自然言語処理を研究しています。")
pad = nlp_tools.pad  # like str.ljust, but counts a Japanese character as two columns
print(pad("text", 14) + pad("lemma_", 14) + pad("reading", 20) + f"{'pos_':<7}{'dep_':<7}"
      + pad("head", 14) + "tag_")
for t in doc_ja:
    reading = t.morph.get("Reading")[0] if t.morph.get("Reading") else ""
    print(pad(t.text, 14) + pad(t.lemma_, 14) + pad(reading, 20) + f"{t.pos_:<7}{t.dep_:<7}"
          + pad(t.head.text, 14) + t.tag_)

# %% [markdown]
# **What to notice.** `し -> する`, `い -> いる`: lemmas are dictionary forms of conjugated verbs
# and auxiliaries. `tag_` is the Japanese (UniDic-style) POS, `pos_` the Universal one shared with
# English. `研究 し て い ます` ("is researching") is one verb phrase in five tokens, headed by the
# verbal noun `研究`; the subject 彼女, the object 自然言語処理 and the oblique 東京大学で attach
# to it too.
#
# ### Exercise 5 · 日本語: content-word lemmas
# Write `content_lemmas(doc)` returning, in order, the lemmas of the tokens whose `pos_` is
# `NOUN`, `PROPN`, `VERB` or `ADJ` (for example `買いました` contributes `買う`).

# %%
def content_lemmas(doc: Doc) -> list[str]:
    raise NotImplementedError


_ = exercises.check_content_lemmas(content_lemmas, nlp_ja)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def content_lemmas(doc):
#     return [t.lemma_ for t in doc if t.pos_ in {"NOUN", "PROPN", "VERB", "ADJ"}]
# ```
# Particles (`ADP`), auxiliaries (`AUX`, e.g. `ます`, `た`) and punctuation drop out.
# </details>

# %% [markdown]
# ### 3b · More of GiNZA: the parse drawn, bunsetsu, split modes, entities, vectors (optional, 8 min)
#
# The parse of the sentence above, drawn:

# %%
nlp_tools.render(doc_ja, style="dep", options={"compact": True, "distance": 90})

# %% [markdown]
# Japanese grammar is often described in **bunsetsu** (文節): one independent word plus the
# dependent words that follow it, such as particles and auxiliaries; GiNZA groups tokens into
# them. Sudachi can also split at three granularities, its split modes: A (short units), B
# (middle) and C (long). Two settings use them. The **tokenizer**'s mode (GiNZA
# sets C) fixes the tokens the parser and the NER see. `ginza.set_split_mode` does *not* change
# it: it sets the mode of the `compound_splitter`, a component that runs after the parser and the
# NER and splits the long tokens into shorter ones.

# %%
import ginza  # noqa: E402  (installed with ja-ginza)

print("bunsetsu:", [span.text for span in ginza.bunsetu_spans(doc_ja)])
print("order:", nlp_ja.pipe_names)
for mode in ["A", "B", "C"]:
    ginza.set_split_mode(nlp_ja, mode)
    print(f"set_split_mode {mode}: tokenizer's mode {nlp_ja.tokenizer.split_mode}, compound_splitter's "
          f"{nlp_ja.get_pipe('compound_splitter').split_mode} ->",
          [t.text for t in nlp_ja("国家公務員の選挙管理委員会")])
ginza.set_split_mode(nlp_ja, None)  # back to the default: the splitter leaves tokens whole

# %% [markdown]
# **What to notice.** Each bunsetsu is one independent word and what depends on it: `彼女は` is a
# pronoun and a particle, `研究しています。` the verbal noun `研究` with the four tokens after it
# in §3's table (`し て い ます`) and the full stop.
#
# The tokenizer's mode is C in all three runs; only the compound_splitter's follows
# `set_split_mode`. So the parser and the NER saw the C units (`国家公務員`, `選挙管理委員会`)
# every time: modes A and B cut those tokens into shorter ones only afterwards, once the parse and
# the entities were set.

# %%
doc_ja = nlp_ja("田中さんは2024年4月に京都の大学で働き始めた。")
print([(ent.text, ent.label_) for ent in doc_ja.ents])
for a, b in [("猫", "犬"), ("猫", "経済")]:
    print(a, b, f"similarity {nlp_ja(a).similarity(nlp_ja(b)):.2f}")

# %% [markdown]
# **What to notice.** GiNZA's entity labels come from the Extended Named Entity hierarchy
# (`Person`, `Province`, `Date`, ...), finer than OntoNotes' `PERSON`/`GPE`/`DATE`. GiNZA ships
# word vectors, so `similarity` means something here.

# %% [markdown]
# ### 3c · Trained pipelines per language (optional, 3 min)
#
# spaCy ships tokenizer rules and language data for many languages (`spacy.blank("de")` works
# offline; the cell below counts them), and trained pipelines for fewer. Names follow
# `lang_type_genre_size`: `en_core_web_sm` = English, core tasks, trained on web text, small;
# `md` and `lg` add word vectors, `trf` uses a transformer. Third-party pipelines such as
# `ja_ginza` are ordinary packages too.

# %%
blank_langs = sorted(m.name for m in pkgutil.iter_modules(spacy.lang.__path__) if m.ispkg)
print(len(blank_langs), "language folders in spacy.lang, e.g.", blank_langs[:10])
print([t.text for t in spacy.blank("de")("Wie geht's dir? Ich heiße Anna.")])

# %%
# NBVAL_IGNORE_OUTPUT
print("installed trained pipelines:", sorted(spacy.util.get_installed_models()))  # differs on Colab

# %% [markdown]
# ## 4 · Bridge to notebook 03: words vs subword tokens (10 min, with the summary)
#
# A Llama does not see spaCy's words. It sees **subword tokens**: a fixed vocabulary learned from
# frequencies in its training text, frequent words one piece, rare words split into pieces, no
# tags, no lemmas, just integer ids into an embedding table. Llama 1 and 2, and the tiny Llama
# below, use a **SentencePiece** model: pieces of characters, `▁` marking a preceding space, and
# raw UTF-8 bytes (`<0xE6>`) as the fallback for anything else (Llama 2's also puts a `▁` before
# the very first word; the tiny Llama's does not). Llama 3 and SmolLM2 (the real Llama of
# notebooks 03b to 05) use **byte-level BPE** (GPT-2's and tiktoken's kind): every piece is a
# sequence of bytes, a space just the first byte of a piece (shown as `Ġ` in Hugging Face
# vocabularies), so no text ever needs a fallback. Below, both tokenizers side by side: the tiny
# Llama's, trained on Shakespeare, and SmolLM2's, a real model's, read from its GGUF file without
# loading its weights.

# %%
from nnlib.llama.gguf import read_gguf, smol_path  # noqa: E402

tokenizer = load_tokenizer(nnlib.DATA_DIR / "tiny-llama")  # notebook 03's loader
smol_tokenizer = read_gguf(smol_path()).tokenizer()  # the tokenizer the GGUF file carries (03b)
tokenizers = {"tiny Llama": tokenizer, "SmolLM2": smol_tokenizer}
for name, tok in tokenizers.items():
    print(f"{name} tokenizer: {tok.n_words} pieces; starts text with BOS (id {tok.bos_id}): {tok.add_bos}")
for sentence in ["Apple is looking at buying U.K. startup for $1 billion.",
                 "The tokenizer doesn't keep unbelievably rare words whole."]:
    print(f"\n{sentence}")
    print(f"  spaCy words  ({len(nlp.make_doc(sentence)):>2}):", [t.text for t in nlp.make_doc(sentence)])
    for name, tok in tokenizers.items():
        ids = tok.encode(sentence, bos=True, eos=False)
        print(f"  {name:<11} ({len(ids):>2}):", [tok.id_to_piece(i) for i in ids])
        print(f"  {'':<11} ids:", ids[:8], "...", "| decode(ids) == sentence:", tok.decode(ids) == sentence)

# %%
sentence = "今日は東京に行きました。"
print("GiNZA words:", [t.text for t in nlp_ja(sentence)])
for name, tok in tokenizers.items():
    pieces = [tok.id_to_piece(i) for i in tok.encode(sentence, bos=False, eos=False)]
    print(f"{name:<11}: {len(pieces)} pieces for {len(sentence)} characters:", pieces[:6], "...")
texts = [t for t, _ in train + dev]
n_words = sum(len(nlp.make_doc(t)) for t in texts)
print(f"\n{len(texts)} English questions, {n_words} spaCy words:")
for name, tok in tokenizers.items():
    n_pieces = sum(len(tok.encode(t, bos=False, eos=False)) for t in texts)
    print(f"  {name:<11} {n_pieces} pieces, {n_pieces / n_words:.2f} pieces per word")

# %% [markdown]
# **What to notice.** spaCy splits by *linguistic* rules: a word stays whole unless a rule splits
# it (`doesn't` -> `does` `n't`, a contraction; `unbelievably` stays one token). A subword
# tokenizer splits by *frequency in its training text*. SmolLM2's keeps most of these words whole
# (`Ġtokenizer`, its space glued to the front) but still cuts some (`unbelievably`), so a little
# more than one piece per spaCy word is normal even for a tokenizer that fits the text. The tiny
# Llama's, made from Shakespeare, breaks modern words into fragments and needs far more pieces for
# the same questions. Japanese, which neither was made for, needs more pieces than it has
# characters, most of them fragments of a character's UTF-8 bytes (SmolLM2's byte alphabet shows
# them as odd Latin letters). The gap between the two pieces-per-word numbers is what a
# mismatched tokenizer costs, because a Llama's context length (`max_seq_len`) and its compute
# are counted in pieces, not in words.
#
# ## Summary
#
# - Training is a loop over `Example`s with `nlp.update`; the optimizer is thinc's Adam from
#   `nlp.initialize` (or `nlp.resume_training` to keep trained weights). `spacy train` runs the
#   same loop from a config and `DocBin` files (§1c). Choose on dev against a baseline, and score on
#   test once; to improve the data, read cross-validated training mistakes (§1b).
# - spaCy's gradient is a sum over the batch. Without clipping, Adam's per-weight scaling makes
#   notebook 01's 1/m nearly irrelevant, while plain SGD needs it (or a learning rate `m` times
#   smaller). spaCy's default clips each gradient array at norm 1.0, and a summed gradient is
#   clipped more often than a mean one, so there the 1/m changes the model (§1d).
# - Fine-tuning adds a label to a trained component (`resume_training`, not `initialize`); keep
#   the old labels in the gold (rehearsal) or the model forgets them.
# - Japanese has no spaces between words: spaCy's Japanese tokenizer finds words with a
#   dictionary (SudachiPy and Sudachi's dictionary). GiNZA, the third-party Japanese pipeline by
#   Megagon Labs that this series uses (spaCy's own are `ja_core_news_*`), runs it and adds a
#   parser, NER and bunsetsu; a subword tokenizer (§4) cuts the same text into pieces instead.
# - A Llama needs none of this: it reads subword ids (notebook 03).
#
# ### 日本語でまとめると
#
# spaCy の学習は `Example` (Doc と正解) を作り、`nlp.initialize` で得た Adam を使って `nlp.update`
# を繰り返すことです (`spacy train` は同じ処理を設定ファイルと DocBin から行います)。選択は dev
# データで多数派ベースラインと比べて行い、間違いは交差検証で学習データから読み、test データでは最後に
# 一度だけ評価します。spaCy の勾配はバッチ全体の和で、ノートブック 01 の 1/m で割りません。勾配の
# クリッピングがなければ Adam ではこの 1/m はほとんど効きませんが、spaCy の既定 (grad_clip = 1.0)
# では和の勾配のほうが多く切り詰められるので、1/m でモデルが変わります。SGD で省くと学習率を m 倍に
# するのと同じです。学習済みの NER に新しいラベルを教えるときは、元のラベルも正解に残さないと忘れて
# しまいます (リハーサル)。日本語は空白で区切れないので、spaCy の日本語トークナイザは SudachiPy の
# 辞書で単語に分けます。このシリーズが使う GiNZA は Megagon Labs によるサードパーティのパイプライン
# です (spaCy 自身のものは `ja_core_news_*`)。Llama はそのどれも使わず、サブワードの ID 列を読みます
# (ノートブック 03)。

# %%
# NBVAL_IGNORE_OUTPUT
print(_clock.report("both pipelines and both tokenizers loaded"))
