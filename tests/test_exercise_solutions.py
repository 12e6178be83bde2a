"""Every exercise's hidden solution, read from the notebook sources themselves, passes its checker;
a typical wrong answer gets its hint; the notebook's own stub is "not attempted yet".

The format this test reads (described in CONTRIBUTING.md, "Exercises"):

- an exercise is a code cell that defines the learner's function(s) as stubs raising
  ``NotImplementedError`` and calls one checker, ``check_<name>(<learner functions>, <notebook
  variables>)`` (a bare call, ``_ = ...`` or ``exercises.check_<name>(...)``);
- the next cell is markdown starting with ``<details><summary>Solution</summary>``; the fenced
  ```` ```python ```` blocks inside that ``<details>`` define the same function names;
- a solution may use what the notebook imports (its top-level ``import`` statements) and the
  notebook variables the checker call passes (``train``, ``dev``, ``nlp``...), nothing else.

Nothing here is copied from the notebooks, so a solution edited in a notebook is tested as edited,
and a new exercise written in the same format is picked up without touching this file, except for
its wrong answers in ``WRONG`` below (the coverage test asks for one).
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jupytext
import numpy as np
import pytest
import torch

import nnlib.exercises
from nnlib.exercises import Verdict

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]*_*.py"))
DETAILS = re.compile(r"\A\s*<details>\s*<summary>\s*Solution\s*</summary>(.*?)</details>", re.S | re.I)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@dataclass(frozen=True)
class Exercise:
    """One exercise as a notebook source writes it."""

    notebook: str  # "01_sgd_from_scratch"
    checker: str  # "check_sgd_update"
    call: str  # the checker call's function expression, e.g. "exercises.check_count_pos"
    learner: tuple[str, ...]  # the functions the learner writes, in the checker's argument order
    arguments: tuple[str, ...]  # every argument of the call: learner functions and notebook variables
    stub: str  # the exercise cell's function definitions (the stubs)
    solution: str  # the code of the <details> block

    @property
    def id(self) -> str:
        return f"{self.notebook.split('_')[0]}-{self.checker}"


def _checker_call(tree: ast.Module) -> ast.Call | None:
    """The one top-level ``check_*(...)`` call in a cell, or None."""
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("check_"):
                return value
    return None


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:  # a cell with IPython magics: never an exercise or an import cell
        return None


def read_exercises(path: Path) -> list[Exercise]:
    """Every exercise of one notebook source, with its stub and hidden solution."""
    cells = jupytext.read(path).cells
    found = []
    for i, cell in enumerate(cells):
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        call = _checker_call(tree) if tree else None
        if call is None:
            continue
        stubs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        defined = {f.name for f in stubs}
        arguments = tuple(ast.unparse(a) for a in call.args)
        where = f"{path.name}, exercise calling {ast.unparse(call.func)}"
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        match = DETAILS.match(nxt.source) if nxt is not None and nxt.cell_type == "markdown" else None
        assert match, f"{where}: the next cell must be markdown opening <details><summary>Solution</summary>"
        solution = "\n".join(PYTHON_BLOCK.findall(match.group(1)))
        assert solution.strip(), f"{where}: the <details> block has no ```python block"
        func = ast.unparse(call.func)
        found.append(Exercise(
            notebook=path.stem, checker=func.rsplit(".", 1)[-1], call=func,
            learner=tuple(a for a in arguments if a in defined), arguments=arguments,
            stub="\n\n".join(ast.unparse(f) for f in stubs), solution=solution))
    return found


@cache
def notebook_imports(notebook: str) -> dict[str, Any]:
    """The namespace a notebook's top-level imports make: what its solutions may use."""
    lines = []
    for cell in jupytext.read(ROOT / "notebooks" / "src" / f"{notebook}.py").cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        imports = [n for n in (tree.body if tree else []) if isinstance(n, (ast.Import, ast.ImportFrom))]
        lines += [ast.unparse(n) for n in imports]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - the repository's own notebook code
    return namespace


def define(exercise: Exercise, code: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``code`` (a stub cell or a solution) over the notebook's imports and the notebook
    ``variables`` its checker call passes; return its namespace."""
    namespace = {**notebook_imports(exercise.notebook), **(variables or {})}
    exec(code, namespace)  # noqa: S102 - the repository's own notebook code
    missing = [name for name in exercise.learner if not callable(namespace.get(name))]
    assert not missing, f"{exercise.id}: the code does not define {missing}"
    return namespace


EXERCISES = [e for path in SOURCES for e in read_exercises(path)]


# ---- the usual wrong answers per checker, each with the hint it must get -------------------------
# Each entry maps the solution's namespace to the learner functions to replace: a wrong answer is
# the notebook's own solution with one mistake, so it stays in step when the solution changes.

Namespace = dict[str, Any]
Mistake = tuple[Callable[[Namespace], Namespace], str]


def _top_k_unnormalised(sol: Namespace) -> Namespace:
    def top_k_probs(probs: torch.Tensor, k: int) -> torch.Tensor:
        values, ids = torch.topk(probs, k, dim=-1)
        return torch.zeros_like(probs).scatter(-1, ids, values)

    return {"top_k_probs": top_k_probs}


def _split_on_dim0_everywhere(sol: Namespace) -> Namespace:
    def split(name: str, tensor: torch.Tensor, n_shards: int) -> list[torch.Tensor]:
        return list(torch.chunk(tensor, n_shards, dim=0)) if tensor.dim() == 2 else [tensor] * n_shards

    return {"split": split}


def _norms_split(sol: Namespace) -> Namespace:
    def split(name: str, tensor: torch.Tensor, n_shards: int) -> list[torch.Tensor]:
        if tensor.dim() == 1:
            return list(torch.chunk(tensor, n_shards, dim=0))
        return sol["split"](name, tensor, n_shards)

    return {"split": split}


def _mean_over_batch(nablas: tuple[list, list], m: int) -> tuple[list, list]:
    nabla_b, nabla_w = nablas
    return [nb / m for nb in nabla_b], [nw / m for nw in nabla_w]


def _transposed_nabla_w(nablas: tuple[list, list]) -> tuple[list, list]:
    nabla_b, nabla_w = nablas
    return nabla_b, [nw.T for nw in nabla_w]


def _tuple_remove(doc: Any) -> Any:
    """The broken component of notebook 02's Exercise 5: removes from the ``doc.ents`` tuple."""
    for ent in doc.ents:
        if ent.label_ == "CARDINAL":
            doc.ents.remove(ent)
    return doc


def _dev_rows() -> list[tuple[str, str]]:
    from nnlib.nlp import load_textcat_splits

    return load_textcat_splits()[1]


def _test_rows() -> list[tuple[str, str]]:
    from nnlib.nlp import load_textcat_splits

    return load_textcat_splits()[2]


def _without_gold(example: Any) -> Any:
    from spacy.training import Example

    return Example.from_dict(example.predicted.copy(), {"entities": []})


def _loop_with(start_pos_of: Callable[[int], int], refeed: bool = False, row: int = -1) -> Namespace:
    """A greedy cached loop with one mistake: the decode calls' start_pos (given the number of
    tokens before the new one), re-feeding the whole sequence, or the logits row it reads."""
    def my_generate(llama: Any, prompt_tokens: list[int], max_gen_len: int) -> list[int]:
        tokens = list(prompt_tokens)
        with torch.inference_mode():
            logits = llama.model.forward(torch.tensor([tokens], device=llama.device), 0)
            for _ in range(max_gen_len):
                tokens.append(int(logits[0, row].argmax()))
                fed = tokens if refeed else tokens[-1:]
                start = 0 if refeed else start_pos_of(len(tokens) - 1)
                logits = llama.model.forward(torch.tensor([fed], device=llama.device), start)
        return tokens[len(prompt_tokens):]

    return {"my_generate": my_generate}


CONTENT = {"NOUN", "PROPN", "VERB", "ADJ"}

WRONG: dict[str, list[Mistake]] = {
    # 01
    "check_largest_stable_eta": [
        (lambda sol: {"largest_stable_eta": lambda xs, average: sol["largest_stable_eta"](xs, True)},
         "same limit"),
        (lambda sol: {"largest_stable_eta": lambda xs, average: sol["largest_stable_eta"](xs, average) / 2},
         "lands exactly on the minimum"),
        (lambda sol: {"largest_stable_eta": lambda xs, average: 2 / np.mean(xs) ** 2 if average
                      else sol["largest_stable_eta"](xs, average)}, "square of the mean")],
    "check_sum_band": [
        (lambda sol: {"sum_band": lambda band, m: (band[0] * m, band[1] * m)}, "*smaller*"),
        (lambda sol: {"sum_band": lambda band, m: band}, "step m times further")],
    "check_parameter_count": [
        (lambda sol: {"parameter_count": lambda s: sum(a * b + a + b for a, b in zip(s[:-1], s[1:]))},
         "Not yet"),
        (lambda sol: {"parameter_count": lambda s: sum(a * b for a, b in zip(s[:-1], s[1:]))}, "Not yet")],
    "check_cross_entropy_delta": [
        (lambda sol: {"cross_entropy_delta": lambda a, y, z: (a - y) * a * (1 - a)}, "quadratic")],
    "check_backprop_matrix": [
        (lambda sol: {"backprop_matrix": lambda w, b, X, Y: _mean_over_batch(
            sol["backprop_matrix"](w, b, X, Y), X.shape[1])}, "*mean*"),
        (lambda sol: {"backprop_matrix": lambda w, b, X, Y: _transposed_nabla_w(
            sol["backprop_matrix"](w, b, X, Y))}, "transposed")],
    # 02
    "check_ner_only_folders": [
        (lambda sol: {"ner_only_folders": lambda: {*sol["ner_only_folders"](), "tok2vec"}}, "tok2vec"),
        (lambda sol: {"ner_only_folders": lambda: {"ner"}}, "vocab")],
    "check_sentence_pipeline": [(lambda sol: {"sentence_pipeline": lambda: "en_core_web_sm"}, "Language")],
    "check_lemma_components": [
        (lambda sol: {"lemma_components": lambda: [*sol["lemma_components"](), "ner"]}, "can go"),
        (lambda sol: {"lemma_components": lambda: ["lemmatizer"]}, "different lemmas"),
        (lambda sol: {"lemma_components": lambda: [c for c in sol["lemma_components"]() if c != "parser"]},
         "reads that dep_")],
    "check_pos_without_parser": [
        (lambda sol: {"pos_without_parser": lambda: {**sol["pos_without_parser"](), "do": "VERB"}},
         "no pattern that reads DEP"),
        (lambda sol: {"pos_without_parser": lambda: dict(list(sol["pos_without_parser"]().items())[:1])},
         "changes too"),
        (lambda sol: {"pos_without_parser": lambda: {k: v for k, v in sol["pos_without_parser"]().items()
                                                     if k != "is"}}, "the dep_ of 'There' (expl)")],
    "check_empty_columns": [
        (lambda sol: {"empty_columns": lambda c: {*sol["empty_columns"](c), "pos_"}
                      if c == "tagger" else sol["empty_columns"](c)}, "parser's dep_"),
        (lambda sol: {"empty_columns": lambda c: {"lemma_"} if c == "lemmatizer"
                      else sol["empty_columns"](c)}, "sets LEMMA")],
    "check_percent_pattern": [
        (lambda sol: {"percent_pattern": lambda: [{"IS_DIGIT": True}, {"LOWER": "percent"}]}, "Not yet")],
    "check_drop_cardinals": [
        (lambda sol: {"drop_cardinals": lambda doc: doc}, "Not yet"),
        (lambda sol: {"drop_cardinals": _tuple_remove}, "tuple"),
        (lambda sol: {"drop_cardinals": lambda doc: sol["drop_cardinals"](doc) and None}, "returns None"),
        (lambda sol: {"placement": lambda: {"before": "ner"}}, "before the ner")],
    "check_content_lemmas": [
        (lambda sol: {"content_lemmas": lambda doc: [t.text for t in doc if t.pos_ in CONTENT]}, "Not yet")],
    "check_textcat_gradient": [
        (lambda sol: {"textcat_gradient": lambda s, t: sol["textcat_gradient"](s, t) / len(s)},
         "divided by the batch size"),
        (lambda sol: {"textcat_gradient": lambda s, t: 2 * sol["textcat_gradient"](s, t)}, "the 2"),
        (lambda sol: {"textcat_gradient": lambda s, t: t - s}, "sign")],
    "check_matching_learn_rates": [
        (lambda sol: {"matching_learn_rates": lambda lr, m: (lr / m, lr)}, "multiply by m"),
        (lambda sol: {"matching_learn_rates": lambda lr, m: (lr * m, lr * m)}, "keep learn_rate")],
    "check_added_examples": [
        (lambda sol: {"my_questions": lambda: [*sol["my_questions"](), *_dev_rows()[:1]]}, "dev question"),
        (lambda sol: {"my_questions": lambda: [*sol["my_questions"](), *_test_rows()[:1]]},
         "test question"),
        (lambda sol: {"my_questions": lambda: sol["my_questions"]()[:1]}, "at least two")],
    "check_rehearsal_examples": [
        (lambda sol: {"rehearsal_examples": lambda nlp, texts: sol["rehearsal_examples"](nlp, texts)[:-1]},
         "one spacy.training.Example per text"),
        (lambda sol: {"rehearsal_examples": lambda nlp, texts: [_without_gold(e) for e in
                                                                 sol["rehearsal_examples"](nlp, texts)]},
         "no gold entities")],
    # 03
    "check_kv_cache_bytes": [
        (lambda sol: {"kv_cache_size": lambda p, s, b, n: sol["kv_cache_size"](p, s, b, n) // 2}, "keys"),
        (lambda sol: {"kv_cache_size": lambda p, s, b, n: sol["kv_cache_size"](
            {**p, "n_kv_heads": None}, s, b, n)}, "grouped-query"),
        (lambda sol: {"kv_cache_size": lambda p, s, b, n: sol["kv_cache_size"](p, s, b, 1)},
         "bytes per value")],
    "check_llama_parameter_count": [
        (lambda sol: {"llama_parameter_count": lambda p: sol["llama_parameter_count"](p)
                      - p["vocab_size"] * p["dim"]}, "output matrix"),
        (lambda sol: {"llama_parameter_count": lambda p: sol["llama_parameter_count"](p)
                      - (2 * p["n_layers"] + 1) * p["dim"]}, "RMSNorm"),
        (lambda sol: {"llama_parameter_count": lambda p: "seven billion"}, "return a number")],
    "check_mp_split": [
        (_split_on_dim0_everywhere, "dim 1"),
        (_norms_split, "norm"),
        (lambda sol: {"merge": lambda name, shards: torch.cat(shards, dim=0)},
         "concatenate on the same dim")],
    "check_forward_on_model_device": [
        (lambda sol: {"failing_line": lambda: 2}, "line 2 moves the mask"),
        (lambda sol: {"failing_line": lambda: 3}, "nothing is computed yet"),
        (lambda sol: {"fixed_forward": lambda model, inputs: model(**inputs).logits},
         "ids are still on the cpu"),
        (lambda sol: {"fixed_forward": lambda model, inputs: model(
            input_ids=inputs.input_ids.to(model.device)).logits}, "pass the attention_mask too")],
    # 04
    "check_top_p_prediction": [
        (lambda sol: {"top_p_prediction": lambda: "more"}, "passes 0.9 sooner"),
        (lambda sol: {"top_p_prediction": lambda: "the same"}, "temperature is applied first"),
        (lambda sol: {"top_p_prediction": lambda: 3}, "return one of")],
    "check_top_k": [
        (_top_k_unnormalised, "renormalise"),
        (lambda sol: {"top_k_probs": lambda p, k: sol["top_k_probs"](p, max(1, k - 1))}, "exactly")],
    "check_zero_temperature_limit": [
        (lambda sol: {"limit": lambda z: torch.softmax(z, -1)}, "T = 1"),
        (lambda sol: {"limit": lambda z: torch.nn.functional.one_hot(z.argmax(), z.numel()).float()},
         "tie")],
    "check_top_p_mask": [
        (lambda sol: {"top_p_mask": lambda ps, p: torch.cumsum(ps, -1) > p}, "carries the running total"),
        (lambda sol: {"top_p_mask": lambda ps, p: torch.cumsum(ps, -1) - ps >= p}, "exactly p"),
        (lambda sol: {"top_p_mask": lambda ps, p: ~sol["top_p_mask"](ps, p)}, "kept set")],
    "check_prompt_logprobs": [
        (lambda sol: {"prompt_logprobs": lambda logits, tokens, pad_id: -torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), tokens, reduction="none", ignore_index=pad_id)}, "off-by-one"),
        (lambda sol: {"prompt_logprobs": lambda logits, tokens, pad_id:
                      sol["prompt_logprobs"](logits, tokens, pad_id).roll(-1, dims=1)}, "column"),
        (lambda sol: {"prompt_logprobs": lambda logits, tokens, pad_id: torch.where(
            tokens == pad_id, torch.tensor(-1.0), sol["prompt_logprobs"](logits, tokens, pad_id))},
         "pad_id")],
    # 05
    "check_cache_fill": [
        (lambda sol: {"cache_fill": lambda p, n: p + n}, "never fed"),
        (lambda sol: {"cache_fill": lambda p, n: n}, "prefill writes every prompt position"),
        (lambda sol: {"cache_fill": lambda p, n: "all"}, "whole number")],
    "check_generation_loop": [
        (lambda sol: _loop_with(lambda n_before: n_before + 1),
         "your loop never wrote itself: it reads what an earlier call left there"),
        (lambda sol: _loop_with(lambda n_before: 0), "pass start_pos = prev_pos"),
        (lambda sol: _loop_with(lambda n_before: n_before, refeed=True), "redoes the prefix"),
        (lambda sol: _loop_with(lambda n_before: n_before, row=0), "LAST row"),
        (lambda sol: {"my_generate": lambda llama, p, n: p + sol["my_generate"](llama, p, n)},
         "only the new tokens")],
    "check_position_ids": [
        (lambda sol: {"position_ids_from_mask": lambda m: torch.arange(m.shape[1]).expand_as(m)},
         "column 0"),
        (lambda sol: {"position_ids_from_mask": lambda m: m.long().cumsum(-1)}, "one too high")],
}


# ---- the notebooks' variables a checker takes, made once per session -----------------------------


@pytest.fixture(scope="session")
def nlp(en):
    """The notebooks' name for conftest's English pipeline (one load per session)."""
    return en


@pytest.fixture(scope="session")
def nlp_ja(ja):
    """The notebooks' name for conftest's Japanese pipeline."""
    return ja


@pytest.fixture(scope="session")
def textcat_nlp(train):
    from nnlib.nlp import train_textcat

    return train_textcat(train, n_epochs=10, seed=0)


@pytest.fixture(scope="session")
def train():
    from nnlib.nlp import load_textcat_splits

    return load_textcat_splits()[0]


@pytest.fixture(scope="session")
def dev():
    return _dev_rows()


@pytest.fixture(scope="session", name="test_rows")
def _test_rows_fixture():
    """02b's test split (named so that pytest does not collect it as a test)."""
    return _test_rows()


@pytest.fixture(scope="session")
def llama():
    from nnlib.llama import load_tiny

    # Llama.build seeds torch as Meta's does; built lazily inside a test, that must not count as
    # the checker moving torch's global RNG.
    with torch.random.fork_rng(devices=[]):
        return load_tiny(max_seq_len=64, max_batch_size=1)


@pytest.fixture(scope="session")
def first_logits(llama):
    """Notebook 04 §3's row of logits for the first position after a prompt (there SmolLM2's, on
    the seed's prompt; here the tiny model's, on a prompt where the two temperatures differ)."""
    from nnlib.llama.stepper import GenerationStepper

    with torch.random.fork_rng(devices=[]):
        return GenerationStepper(llama, "ROMEO:\n", seed=0).next_logits


@pytest.fixture(scope="session")
def tiny(llama):
    """Notebook 04 names the tiny model ``tiny`` (its ``llama`` is SmolLM2)."""
    return llama


def notebook_variables(exercise: Exercise, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The notebook variables the checker call takes (a pipeline, a Llama...), from fixtures."""
    return {a: request.getfixturevalue(a) for a in exercise.arguments if a not in exercise.learner}


def run(exercise: Exercise, functions: dict[str, Any], request: pytest.FixtureRequest) -> Verdict:
    """Call the exercise's checker as the notebook does, with ``functions`` for the learner's."""
    checker = eval(exercise.call, dict(notebook_imports(exercise.notebook)))  # noqa: S307 - a dotted name
    given = notebook_variables(exercise, request)
    args = [functions[a] if a in exercise.learner else given[a] for a in exercise.arguments]
    verdict = checker(*args)
    assert isinstance(verdict, Verdict), f"{exercise.checker} returned {verdict!r}, not a Verdict"
    return verdict


def test_every_notebook_with_exercises_is_read():
    assert {e.notebook[:2] for e in EXERCISES} >= {"01", "02", "03", "04"}


def test_every_checker_has_a_notebook_solution_and_a_wrong_answer():
    checkers = {name for info in pkgutil.iter_modules(nnlib.exercises.__path__)
                for name in dir(importlib.import_module(f"nnlib.exercises.{info.name}"))
                if name.startswith("check_")}
    in_notebooks = {e.checker for e in EXERCISES}
    no_exercise = checkers - in_notebooks
    assert not no_exercise, f"checkers with no exercise and hidden solution in a notebook: {no_exercise}"
    assert not checkers - set(WRONG), f"checkers with no wrong answer in WRONG: {checkers - set(WRONG)}"
    assert not set(WRONG) - checkers, f"WRONG names checkers that do not exist: {set(WRONG) - checkers}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_hidden_solution_passes(exercise: Exercise, request, capsys):
    solution = define(exercise, exercise.solution, notebook_variables(exercise, request))
    rng = torch.get_rng_state()  # taken after the fixtures: building a Llama seeds torch, as Meta's does
    verdict = run(exercise, solution, request)
    out = capsys.readouterr().out
    assert torch.equal(torch.get_rng_state(), rng), (
        f"{exercise.checker} changed torch's default RNG, so the learner's next seeded samples change: "
        "run its random work under `torch.random.fork_rng()` or with its own torch.Generator")
    assert verdict, f"{exercise.id}: the notebook's solution fails its checker:\n{out}"
    assert out.startswith("Right!"), out


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_usual_wrong_answers_get_their_hints(exercise: Exercise, request, capsys):
    assert exercise.checker in WRONG, f"{exercise.id}: add its usual wrong answers to WRONG in this file"
    solution = define(exercise, exercise.solution, notebook_variables(exercise, request))
    for number, (mistake, hint) in enumerate(WRONG[exercise.checker], 1):
        verdict = run(exercise, {**solution, **mistake(solution)}, request)
        out = capsys.readouterr().out
        assert not verdict, f"{exercise.id}: the checker accepted wrong answer {number}"
        assert "Not attempted" not in out and hint in out, f"{exercise.id}, wrong answer {number}: {out}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_notebooks_stub_is_not_attempted_yet(exercise: Exercise, request, capsys):
    verdict = run(exercise, define(exercise, exercise.stub), request)
    out = capsys.readouterr().out
    assert not verdict and "Not attempted yet" in out, out


def test_top_p_prediction_accepts_the_same_where_a_few_tokens_already_hold_more_than_p(capsys):
    """04 §3: the count can stay the same, e.g. two tied top logits over a flat tail hold more
    than 0.9 at both temperatures; not only where one token holds almost everything."""
    from nnlib.exercises.step_through_generation import _top_p_counts, check_top_p_prediction

    logits = torch.tensor([10.0, 10.0] + [0.0] * 50)
    # T = 1: each tied token holds e^10 / (2 e^10 + 50) = 22026.47 / 44102.93 = 0.4994; the mass
    # before the second is 0.4994 <= 0.9, before the third 0.9989 > 0.9: 2 kept. T = 0.6 is
    # sharper (e^16.7 against 50): 2 again.
    assert _top_p_counts(logits) == {0.6: 2, 1.0: 2}
    right = check_top_p_prediction(lambda: "the same", logits)
    assert isinstance(right, Verdict) and right
    assert "fewer of them" not in capsys.readouterr().out
    wrong = check_top_p_prediction(lambda: "fewer", logits)
    assert isinstance(wrong, Verdict) and not wrong
    assert capsys.readouterr().out.startswith("Not yet")
