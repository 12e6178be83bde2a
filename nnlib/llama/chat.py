"""Chat prompts: a dialog (a list of ``{"role", "content"}`` messages) -> the token ids a chat
model was trained on, in Meta's two formats.

- **Llama 3** (tiktoken or a Llama 3 ``tokenizer.json``): every message is
  ``<|start_header_id|>role<|end_header_id|>\\n\\n`` + content + ``<|eot_id|>``; the dialog starts
  with ``<|begin_of_text|>`` and ends with an open assistant header, so the model writes the
  reply and ends it with ``<|eot_id|>``. ``ChatFormat`` follows Meta's class of that name.
- **Llama 2** (SentencePiece): each user/assistant exchange is
  ``<s>[INST] user [/INST] answer </s>``, the last user message ``<s>[INST] user [/INST]``, and a
  system message is folded into the first user message between ``<<SYS>>`` and ``<</SYS>>``.

Both start with ``check_dialog``: an optional leading system message, then user and assistant
taking turns, ending with the user. Not here: tool calls, images, the ``ipython`` role.

A checkpoint that carries its own chat template (GGUF's ``tokenizer.chat_template``, or
``chat_template`` in a Hugging Face folder's ``tokenizer_config.json`` / ``chat_template.jinja``)
is prompted with *that* template instead, rendered by Jinja in a sandbox with
``add_generation_prompt=True``, as transformers' ``apply_chat_template`` does: SmolLM2 gets
ChatML (``<|im_start|>user\n...<|im_end|>``), whatever its vocabulary looks like.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Message = Mapping[str, str]
Dialog = Sequence[Message]

ROLES = ("system", "user", "assistant")
# Llama 2's markers (Meta's names).
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
LLAMA2_TAGS = (B_INST, E_INST, "<<SYS>>", "<</SYS>>")


def check_dialog(dialog: Any) -> None:
    """Raise ValueError (naming the fix) unless ``dialog`` is an optional system message, then
    user, assistant, user, ... ending with a user message (the one the model answers)."""
    if isinstance(dialog, Mapping):
        raise ValueError("A dialog is a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]; "
                         "got a single message. Wrap it in a list.")
    if isinstance(dialog, (str, bytes)) or not isinstance(dialog, Sequence):
        raise ValueError("A dialog is a list of {'role', 'content'} messages, got "
                         f"{type(dialog).__name__}.")
    if len(dialog) == 0:
        raise ValueError("The dialog is empty: give at least one {'role': 'user', 'content': ...} message.")
    for i, m in enumerate(dialog):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"Message {i} must be a dict with 'role' and 'content', got {m!r}.")
        if m["role"] not in ROLES:
            raise ValueError(f"Message {i} has role {m['role']!r}; use one of {', '.join(ROLES)}.")
        if not isinstance(m["content"], str):
            raise ValueError(f"Message {i}'s content must be a str, got {type(m['content']).__name__}.")
    start = 1 if dialog[0]["role"] == "system" else 0
    for i in range(start, len(dialog)):
        want = "user" if (i - start) % 2 == 0 else "assistant"
        role = dialog[i]["role"]
        if role == want:
            continue
        if role == "system":
            raise ValueError(f"Message {i} is a system message, but only the first message may be "
                             "one. Move it to the front, or fold it into a user message.")
        if role == "user":
            raise ValueError(f"Messages {i - 1} and {i} are both from the user; roles must take "
                             "turns. Join them into one user message, or put the assistant's "
                             "reply between them.")
        raise ValueError(
            f"Message {i} is from the assistant, but a user message must come "
            + ("first (after the optional system message)." if i == start else
               f"between it and message {i - 1}; roles must take turns. Join the two assistant "
               "messages, or put the user's message between them."))
    if dialog[-1]["role"] == "system":
        raise ValueError("The dialog is only a system message: add the user's message after it.")
    if dialog[-1]["role"] != "user":
        raise ValueError("The dialog ends with an assistant message, but the model writes the "
                         "assistant's next reply: the last message must be from the user. Drop "
                         "the trailing assistant message or add the user's next one.")


#: A vocabulary with these can write Meta's Llama 3 chat format (``ChatFormat``).
LLAMA3_CHAT_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def chat_format_for(special_tokens: Mapping[str, int], template: str | None) -> str:
    """What a tokenizer's ``chat_format`` says: "template" when the checkpoint carries its own
    chat template, else the Meta format its vocabulary was made for ("llama3" or "llama2")."""
    if template:
        return "template"
    return "llama3" if "<|start_header_id|>" in special_tokens else "llama2"


def template_end_of_turn(template: str | None, special: Mapping[str, int]) -> int | None:
    """The id of the token a chat template closes every message with: the special token that
    appears in the template right after ``message['content']`` (``<|im_end|>`` in ChatML,
    ``<|eot_id|>`` in Llama 3's), else ``None``. A generation from that template stops there."""
    if not template:
        return None
    m = re.search(r"message\[['\"]content['\"]\]\s*(?:\|\s*trim\s*)?(?:\}\}\s*\{\{)?\s*\+?\s*['\"]"
                  r"([^'\"]+)['\"]", template)
    if m:
        for token, i in special.items():
            if m.group(1).startswith(token):
                return i
    return None


def chat_format_of(tokenizer: Any) -> str:
    """'llama3' or 'llama2': from the tokenizer's ``chat_format``, else from its special tokens."""
    fmt = getattr(tokenizer, "chat_format", None)
    if fmt in ("llama2", "llama3"):
        return fmt
    return chat_format_for(getattr(tokenizer, "special_tokens", {}), None)


class ChatFormat:
    """Llama 3's chat format over a tokenizer that has its special tokens (Meta's class name)."""

    def __init__(self, tokenizer: Any):
        special = getattr(tokenizer, "special_tokens", {})
        missing = [t for t in LLAMA3_CHAT_TOKENS if t not in special]
        if missing:
            raise ValueError(f"This tokenizer has no {missing}: it cannot write a Llama 3 chat "
                             "prompt. Use the tokenizer that came with a Llama 3 model.")
        self.tokenizer = tokenizer
        self.start_header_id = special["<|start_header_id|>"]
        self.end_header_id = special["<|end_header_id|>"]
        self.eot_id = special["<|eot_id|>"]

    def encode_header(self, message: Message) -> list[int]:
        """``<|start_header_id|>role<|end_header_id|>\\n\\n``."""
        tok = self.tokenizer
        return ([self.start_header_id] + tok.encode(message["role"], bos=False, eos=False)
                + [self.end_header_id] + tok.encode("\n\n", bos=False, eos=False))

    def encode_message(self, message: Message) -> list[int]:
        """Header, the content stripped of surrounding whitespace, ``<|eot_id|>``. Special-token
        text inside the content stays plain text."""
        body = self.tokenizer.encode(message["content"].strip(), bos=False, eos=False)
        return self.encode_header(message) + body + [self.eot_id]

    def encode_dialog_prompt(self, dialog: Dialog) -> list[int]:
        """BOS, every message, then an empty assistant header for the model to continue."""
        check_dialog(dialog)
        ids = [self.tokenizer.bos_id]
        for message in dialog:
            ids += self.encode_message(message)
        return ids + self.encode_header({"role": "assistant", "content": ""})


def encode_llama2_dialog(tokenizer: Any, dialog: Dialog) -> list[int]:
    """Llama 2's ``[INST]`` format (Meta's Llama 2 ``chat_completion``)."""
    check_dialog(dialog)
    for i, m in enumerate(dialog):
        tags = [t for t in LLAMA2_TAGS if t in m["content"]]
        if tags:
            raise ValueError(f"Message {i} contains {tags}, Llama 2's own prompt markers; a message "
                             "may not (they would fake a turn). Remove or reword them.")
    msgs = [dict(m) for m in dialog]
    if msgs[0]["role"] == "system":
        first = B_SYS + msgs[0]["content"] + E_SYS + msgs[1]["content"]
        msgs = [{"role": "user", "content": first}] + msgs[2:]
    ids: list[int] = []
    for prompt, answer in zip(msgs[:-1:2], msgs[1::2]):
        text = f"{B_INST} {prompt['content'].strip()} {E_INST} {answer['content'].strip()} "
        ids += tokenizer.encode(text, bos=True, eos=True)
    ids += tokenizer.encode(f"{B_INST} {msgs[-1]['content'].strip()} {E_INST}", bos=True, eos=False)
    return ids


def chat_template_of(tokenizer: Any) -> str | None:
    """The Jinja chat template that came with the tokenizer: its ``chat_template`` attribute (a
    GGUF file's), else the one saved next to a ``tokenizer.json`` (``tokenizer_config.json``'s
    ``chat_template``, or ``chat_template.jinja`` as transformers 5 writes it), else ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if template:
        return template
    path = getattr(tokenizer, "model_path", None)
    if getattr(tokenizer, "kind", None) != "tokenizer.json" or not path:
        return None  # Meta's folders carry no template: Meta's formats apply
    folder = Path(path).parent
    config = folder / "tokenizer_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(value, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
            value = next((t.get("template") for t in value if t.get("name") == "default"), None)
        if value:
            return value
    jinja = folder / "chat_template.jinja"
    return jinja.read_text(encoding="utf-8") if jinja.is_file() else None


def render_chat_template(template: str, dialog: Dialog, bos_token: str = "", eos_token: str = ""
                         ) -> str:
    """The prompt text of ``dialog`` under ``template``, ending with the opening of the
    assistant's turn (``add_generation_prompt=True``). Jinja runs sandboxed (a template is code
    from the model's author: it may not touch Python objects beyond what it is given), with
    transformers' settings: ``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, ``tojson``."""
    from jinja2.exceptions import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(f"The model's chat template refused this dialog: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=[dict(m) for m in dialog], add_generation_prompt=True,
            bos_token=bos_token, eos_token=eos_token)
    except TemplateError as err:
        raise ValueError(f"The model's chat template could not be rendered ({err}). Check the "
                         "chat_template that came with the checkpoint.") from err


def encode_template_dialog(tokenizer: Any, template: str, dialog: Dialog) -> list[int]:
    """Render ``dialog`` with the checkpoint's template, then tokenize the text with its control
    tokens (``<|im_start|>``) read as such and no BOS/EOS added: the template writes them."""
    check_dialog(dialog)
    special = {v: k for k, v in getattr(tokenizer, "special_tokens", {}).items()}
    text = render_chat_template(template, dialog, special.get(tokenizer.bos_id, ""),
                                special.get(tokenizer.eos_id, ""))
    return tokenizer.encode(text, bos=False, eos=False, allowed_special="all")


def encode_dialog(tokenizer: Any, dialog: Dialog) -> list[int]:
    """The prompt ids for one dialog: the checkpoint's own chat template when it carries one,
    else Meta's format for the tokenizer's vocabulary (Llama 3 headers or Llama 2 ``[INST]``)."""
    template = chat_template_of(tokenizer)
    if template:
        return encode_template_dialog(tokenizer, template, dialog)
    if chat_format_of(tokenizer) == "llama3":
        return ChatFormat(tokenizer).encode_dialog_prompt(dialog)
    return encode_llama2_dialog(tokenizer, dialog)
