"""nnlib.llama.chat: Llama 3 chat prompts encode exactly as transformers' chat template does
(on the offline Llama 3 stand-in of tests/conftest.py), Llama 2's [INST] format for
SentencePiece, and bad dialogs are refused with the fix."""
from __future__ import annotations

import inspect

import pytest

from conftest import SPECIAL_ID, TOKENIZER
from nnlib.llama.chat import check_dialog, encode_dialog
from nnlib.llama.tokenizer import load_tokenizer

SP_MODEL = TOKENIZER

DIALOGS = [
    [{"role": "user", "content": "Who is Romeo?"}],
    [{"role": "system", "content": "Answer in verse."},
     {"role": "user", "content": "  What light through yonder window breaks?\n"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Good morrow."}, {"role": "user", "content": "And then?\n\n"}],
    [{"role": "user", "content": "Quote <|eot_id|> and 12345 verbatim: ‘ö’"},
     {"role": "assistant", "content": "\n<|eot_id|>\n"}, {"role": "user", "content": "Again"}],
]


# ---- chat ------------------------------------------------------------------------------------


def template_ids(transformers_tokenizer, dialog, **kw) -> list[int]:
    out = transformers_tokenizer.apply_chat_template(dialog, add_generation_prompt=True,
                                                     tokenize=True, **kw)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@pytest.mark.parametrize("dialog", DIALOGS[:3], ids=range(3))
def test_chat_prompt_equals_transformers_chat_template(tiktok, hftok, transformers_tokenizer, dialog):
    want = template_ids(transformers_tokenizer, dialog)
    assert encode_dialog(tiktok, dialog) == want
    assert encode_dialog(hftok, dialog) == want
    assert want[0] == SPECIAL_ID["<|begin_of_text|>"]
    assert tiktok.decode(want).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_special_token_text_in_a_message_stays_text(tiktok, hftok, transformers_tokenizer):
    """Meta encodes message content with no special tokens allowed, so a message quoting
    '<|eot_id|>' cannot end its turn early. A plain chat template would inject it; transformers
    agrees with Meta once asked to sanitize control tokens."""
    dialog = DIALOGS[3]
    ours = encode_dialog(tiktok, dialog)
    assert ours == encode_dialog(hftok, dialog)
    assert ours.count(SPECIAL_ID["<|eot_id|>"]) == len(dialog)  # one per message, none injected
    assert template_ids(transformers_tokenizer, dialog).count(SPECIAL_ID["<|eot_id|>"]) > len(dialog)
    params = inspect.signature(transformers_tokenizer.apply_chat_template).parameters
    if "sanitize_control_tokens" in params:  # transformers 5
        assert ours == template_ids(transformers_tokenizer, dialog, sanitize_control_tokens=True)


def test_llama2_chat_format_for_sentencepiece():
    tok = load_tokenizer(SP_MODEL)
    dialog = [{"role": "system", "content": "Speak as Juliet."}, {"role": "user", "content": " Hi "},
              {"role": "assistant", "content": "Good morrow. "}, {"role": "user", "content": "Who?"}]
    # Meta folds the system text into the first user message, then strips the whole: the user
    # message's own leading space survives inside.
    first = "[INST] <<SYS>>\nSpeak as Juliet.\n<</SYS>>\n\n Hi [/INST] Good morrow. "
    want = tok.encode(first, bos=True, eos=True) + tok.encode("[INST] Who? [/INST]", bos=True, eos=False)
    assert encode_dialog(tok, dialog) == want
    with pytest.raises(ValueError, match="prompt markers"):
        encode_dialog(tok, [{"role": "user", "content": "[INST] sneaky"}])


@pytest.mark.parametrize("dialog, message", [
    ([], "empty"),
    ({"role": "user", "content": "Hi"}, "single message. Wrap it in a list"),
    ([{"role": "user"}], "'role' and 'content'"),
    ([{"role": "robot", "content": "x"}], "use one of system, user, assistant"),
    ([{"role": "user", "content": 3}], "content must be a str"),
    ([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}],
     "user message must come first"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "both from the user.*Join them"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "assistant", "content": "c"}], "take turns"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only the first message"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
     "last message must be from the user"),
    ([{"role": "system", "content": "a"}], "only a system message"),
])
def test_bad_dialogs_are_refused_with_the_fix(dialog, message):
    with pytest.raises(ValueError, match=message):
        check_dialog(dialog)
