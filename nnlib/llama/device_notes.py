"""What notebooks 03 and 03b print about this machine's devices, as functions of the facts.

Why here and not in the notebooks: the same cell says different things on a CPU, one CUDA GPU,
two GPUs or a Mac, and a notebook saved on a CPU shows only one of those texts. Each function
takes the facts it needs (``devices.DeviceFacts``, what a call raised, where a tensor was) and
returns the lines to print, so the tests can check every machine's text on a CPU, and the cell
only gathers the facts and prints.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .devices import DeviceFacts, auto_device_map_devices, bf16_is_native

#: The seed's first error, as torch words it (torch/distributed/distributed_c10d.py).
NCCL_MISSING = "Distributed package doesn't have NCCL built in"
#: The seed's second error, as torch words it for a CUDA model and CPU ids.
SAME_DEVICE = "Expected all tensors to be on the same device"
#: The rest of the seed's (2023) message, as its log shows it; torch has since reworded the
#: embedding's (index_select's) error: "... but got index is on cpu, different from other
#: tensors on cuda:0 (when checking argument in method wrapper_CUDA__index_select)".
SEED_WORDS = "but found at least two devices, cuda:0 and cpu!"
#: What ``forward_outcome`` returns when the call raised nothing.
NO_ERROR = "no error"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def machine_kind(facts: DeviceFacts) -> str:
    """A few words for the machine: 'CPU only', 'one CUDA GPU (Tesla T4, sm 7.5)',
    '2 CUDA GPUs', 'a Mac with MPS'."""
    if facts.n_cuda == 1:
        gpu = facts.gpus[0]
        return f"one CUDA GPU ({gpu.name}, sm {gpu.major}.{gpu.minor})"
    if facts.n_cuda > 1:
        return f"{facts.n_cuda} CUDA GPUs"
    return "a Mac with MPS" if facts.mps else "CPU only"


#: The first macOS on which torch's MPS backend takes bfloat16 tensors: older macOS gets
#: "MPS bfloat16 type is supported on MacOS 14.0 or newer." (aten/src/ATen/native/mps/OperationUtils).
MPS_BF16_MACOS = (14, 0)


def _macos_at_least(version: str, wanted: tuple[int, int]) -> bool:
    """Whether a macOS version string such as '13.6.1' (``platform.mac_ver()[0]``) is ``wanted`` or newer."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts))) >= wanted


def dtype_rule_lines(facts: DeviceFacts, macos_version: str | None = None) -> list[str]:
    """Notebook 03 §3: the dtype rule per device, then what it gives for each GPU here, and on a
    Mac (``macos_version``, e.g. ``platform.mac_ver()[0]``) whether its MPS takes bfloat16 too."""
    lines = [
        f"dtype on cpu: {dtype_name(facts.default_dtype('cpu'))} | on mps: "
        f"{dtype_name(facts.default_dtype('mps'))} (works on every macOS with MPS; MPS takes bfloat16 "
        "only on macOS 14 or newer) | on cuda: bfloat16 where "
        "the GPU computes it natively (compute capability 8.0 or newer: A100, RTX 30xx and later, "
        "H100), else float16 (T4, V100, P100, where torch.cuda.is_bf16_supported() is True only "
        "because torch can emulate bf16)"]
    if not facts.gpus:
        lines.append("this machine has no CUDA GPU")
    for i, gpu in enumerate(facts.gpus):
        native = "native bf16" if bf16_is_native(gpu.major, facts.rocm) else "no native bf16"
        lines.append(f"cuda:{i} {gpu.name}, sm {gpu.major}.{gpu.minor} ({native}) -> "
                     f"{dtype_name(facts.default_dtype(f'cuda:{i}'))}")
    if facts.mps and macos_version:
        if _macos_at_least(macos_version, MPS_BF16_MACOS):
            lines.append(f"mps: this Mac runs macOS {macos_version}, so MPS here takes bfloat16 too "
                         "(NNLIB_DTYPE=bfloat16 asks for it)")
        else:
            lines.append(f"mps: this Mac runs macOS {macos_version}, older than 14: MPS here refuses "
                         "bfloat16; keep float16")
    return lines


def nccl_call_lines(facts: DeviceFacts, error: BaseException | None) -> list[str]:
    """Notebook 03 §1: what ``init_process_group("nccl")`` under torchrun's variables did here
    (``error`` is what it raised, None when it worked)."""
    if isinstance(error, ValueError):  # a CUDA torch (NCCL built in) that sees no GPU
        return [f"{type(error).__name__}: {error}",
                "This torch has NCCL built in but sees no GPU, so NCCL has nothing to run on; "
                "the seed's error is a different one, from a torch without NCCL (a Mac, a "
                f'CPU-only torch, Windows): "RuntimeError: {NCCL_MISSING}".']
    if error is not None:
        return [f"{type(error).__name__}: {error}"]
    return [f'init_process_group("nccl") worked: this torch has NCCL and sees {facts.n_cuda} '
            "GPU(s), so the seed's error cannot happen here. Where torch has no NCCL (a Mac, a "
            f'CPU-only torch, Windows) the same call raises "RuntimeError: {NCCL_MISSING}".']


#: The line ``example_text_completion.py`` prints once ``Llama.build`` has loaded:
#: "Loaded in 0.25 seconds on cpu (float32)".
LOADED_LINE = re.compile(r"^Loaded in [\d.]+ seconds on (\S+) \((\w+)\)$", re.MULTILINE)

#: torchrun's port when told none, before torch let a single-node run pick a free one.
OLD_TORCHRUN_PORT = 29500


def seed_run_lines(returncode: int, stdout: str, backend_for: Callable[[str], str]) -> list[str]:
    """Notebook 03 §1: what the seed's torchrun command did here, read off its own output (the
    device and dtype ``Llama.build`` printed) and, for that device, the process-group backend
    nnlib's ``init_process_group_if_needed`` starts under torchrun (``backend_for``:
    ``devices.process_group_backend``)."""
    loaded = LOADED_LINE.search(stdout)
    if returncode != 0 or loaded is None:
        return [f"the command failed (exit code {returncode}): its error is above"]
    device, dtype = loaded.groups()
    return [f"exit code 0: one process; Llama.build loaded the model on {device} ({dtype}) and, "
            f"under torchrun, started a process group with backend {backend_for(device)!r}"]


def torchrun_port_line(master_port: str | int, torch_version: str) -> str:
    """Notebook 03 §1: the ``MASTER_PORT`` torchrun (given no port, one node) gave its process,
    and what that means for this torch (``master_port`` "" when the run printed none)."""
    if not str(master_port).strip().isdigit():
        return f"torch {torch_version}: torchrun's run printed no port here ({master_port!r})"
    if int(master_port) == OLD_TORCHRUN_PORT:
        return (f"torch {torch_version}: torchrun, given no --master_port, used port "
                f"{OLD_TORCHRUN_PORT}, its fixed default: two runs at once clash on it "
                "(--standalone makes it pick a free port)")
    return (f"torch {torch_version}: torchrun, given no --master_port, picked a free port by "
            f"itself ({master_port}), so the command needs no --standalone; older torch (the "
            f"seed's 2.0.1) used port {OLD_TORCHRUN_PORT}")


def _device_name(where: Any) -> str:
    """accelerate's names (0, 1, 'cpu', 'mps', 'disk') as torch's ('cuda:0', ...)."""
    return f"cuda:{where}" if isinstance(where, int) else str(where)


def placed_devices(model_device: torch.device | str,
                   hf_device_map: Mapping[str, Any] | None) -> list[str]:
    """The devices a transformers model's weights are on: those of its ``hf_device_map`` (set
    only when accelerate spread it), else the one device it was moved to."""
    if hf_device_map:
        return sorted({_device_name(d) for d in hf_device_map.values()})
    dev = torch.device(model_device)
    if dev.type == "cuda":
        return [f"cuda:{dev.index or 0}"]
    return [dev.type] if dev.type == "mps" else [str(dev)]  # a Mac has one MPS device: "mps"


def placement_lines(facts: DeviceFacts, model_device: torch.device | str, model_dtype: torch.dtype,
                    hf_device_map: Mapping[str, Any] | None) -> list[str]:
    """Notebook 03b §1: where ``device_map="auto"`` put the model, and why on this machine."""
    rule = auto_device_map_devices(facts)
    placed = placed_devices(model_device, hf_device_map)
    lines = [f"model.device: {model_device} | model.dtype: {model_dtype}",
             "hf_device_map: " + (str(dict(hf_device_map)) if hf_device_map else
                                  "(none: the model is on one device, with no accelerate hooks)")]
    if len(rule) == 1:
        why = (f"device_map='auto' on this machine ({machine_kind(facts)}) fills {rule[0]} only: "
               "the whole model was moved there, with no hooks, so nothing moves your inputs")
    else:
        why = (f"device_map='auto' on this machine ({machine_kind(facts)}) balances the layers over "
               f"{', '.join(rule)}; accelerate's hooks move each layer's inputs to its device")
    lines.append(why)
    if placed != list(rule):
        lines.append(f"here the weights are on {', '.join(placed)}, not {', '.join(rule)} as the "
                     "rule says (another transformers or accelerate version, a GPU too small, or a "
                     "map of your own)")
    return lines


def source_lines(obj: Any, *needles: str) -> list[str]:
    """The lines of ``obj``'s source holding each of ``needles`` (stripped), to print what the
    installed library does rather than what a comment remembers. A needle not found gives a line
    saying so, naming the object."""
    source = inspect.getsource(obj)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    out = []
    for needle in needles:
        found = next((line.strip() for line in source.splitlines() if needle in line), None)
        out.append(found if found is not None else
                   f"(not in this version's {name}: {needle!r}; read its source)")
    return out


def forward_outcome(model: torch.nn.Module, input_ids: torch.Tensor) -> str:
    """What a forward call ``model(input_ids=input_ids)`` did: ``NO_ERROR``, or the RuntimeError's
    type and message (the seed's mistake, when the ids are not where the model is)."""
    try:
        with torch.inference_mode():
            model(input_ids=input_ids)
    except RuntimeError as err:
        return f"{type(err).__name__}: {err}"
    return NO_ERROR


def generate_move_lines(model_device: torch.device | str, ids_device: torch.device | str,
                        forward_ids_device: torch.device | str) -> list[str]:
    """Notebook 03b §2: where ``generate`` got the ids and where its forward call saw them."""
    model_device, ids_device = torch.device(model_device), torch.device(ids_device)
    forward_ids_device = torch.device(forward_ids_device)
    lines = [f"model on {model_device}, input_ids given to generate on {ids_device}: the forward "
             f"calls inside generate got input_ids on {forward_ids_device}"]
    if ids_device != forward_ids_device:
        lines.append("generate moved them: the seed's exact call passes with this transformers")
    elif ids_device == model_device:
        lines.append("nothing to move here: the model is where the tokenizer puts the ids (the "
                     "CPU); on a GPU or a Mac this line shows generate moving them")
    else:
        lines.append("generate did not move them: put them there yourself, input_ids.to(model.device)")
    return lines


def mismatch_lines(facts: DeviceFacts, model_device: torch.device | str,
                   hf_device_map: Mapping[str, Any] | None, cpu_ids_outcome: str,
                   fixed_outcome: str) -> list[str]:
    """Notebook 03b §2: the seed's mistake, a forward call ``model(input_ids)`` with ids left on
    the CPU, and the fix, ``input_ids.to(model.device)``. The outcomes are what those calls did
    here ("no error" or "RuntimeError: ...")."""
    dev = torch.device(model_device)
    placed = placed_devices(model_device, hf_device_map)
    failed = cpu_ids_outcome != NO_ERROR
    if len(placed) > 1:
        head = (f"{machine_kind(facts)}: device_map='auto' spread the layers over "
                f"{', '.join(placed)}; model.device (where the embedding is) = {dev}")
        why = ("accelerate's hooks move each layer's inputs to that layer's device, the first "
               "one included, so CPU ids pass: the seed's error is a one-device error"
               if not failed else
               "the hooks did not move the CPU ids here: put them on model.device yourself")
    elif dev.type == "cpu":
        head = f"{machine_kind(facts)}: the model is on the cpu and so are the ids"
        why = ("the seed's error needs the model on another device than the ids (one CUDA GPU, "
               "or a Mac's MPS); this machine has none, so it cannot happen here. On those, this cell "
               "prints it, and the fix is the same line")
        if facts.mps:
            why = ("device_map='auto' left the model on the CPU (not what it does on a Mac with "
                   "accelerate 1.15); device_map='mps' puts it on the Mac's GPU, and then this cell shows "
                   "MPS's wording of the error")
    else:
        head = f"{machine_kind(facts)}: the model is on {dev}, the ids on the cpu"
        if failed:
            if dev.type == "mps":
                words = "; MPS words it its own way"
            elif SEED_WORDS in cpu_ids_outcome:
                words = ", in the seed's words"
            else:
                words = (f" (the same mistake; torch's wording has changed since the seed's (2023) "
                         f"log, \"{SAME_DEVICE}, {SEED_WORDS}\"; this torch's words are above)")
            why = ("a forward call does not move the ids: this is the seed's mistake" + words
                   + "; the fix puts the ids on model.device")
        else:
            why = ("this forward call passed with CPU ids: something in this torch or transformers "
                   "moved them; input_ids.to(model.device) is still the line that works everywhere")
    return [head,
            f"  model(input_ids), ids on the cpu -> {cpu_ids_outcome}",
            f"  model(input_ids.to(model.device)), ids on {dev} -> {fixed_outcome}",
            why]
