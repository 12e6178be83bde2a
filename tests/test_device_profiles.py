"""Five machines, tested on a CPU: CPU only, one T4 (sm 7.5), one A100 (sm 8.0), two T4s (Kaggle's
pair) and a Mac (MPS). Each profile answers torch's capability queries (``torch.cuda.*``,
``torch.backends.mps``, NCCL) as that machine would; the tests then check what nnlib chooses, what
accelerate's ``device_map="auto"`` really computes there (transformers' and accelerate's own code,
run under the profile), and the text notebooks 03 and 03b print for it."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from nnlib.llama import device_notes, devices
from nnlib.llama.devices import choose_device, choose_dtype, device_facts

GIB = 2**30


@dataclass(frozen=True)
class Profile:
    name: str
    gpus: tuple[tuple[str, int, int, int], ...]   # (name, major, minor, memory in bytes)
    mps: bool
    device: str              # what choose_device() must give
    dtype: torch.dtype       # what choose_dtype must give there (published hardware facts)


PROFILES = [
    Profile("cpu", (), False, "cpu", torch.float32),
    Profile("t4", (("Tesla T4", 7, 5, 15 * GIB),), False, "cuda", torch.float16),  # Turing: no bf16
    Profile("a100", (("NVIDIA A100-SXM4-40GB", 8, 0, 40 * GIB),), False, "cuda", torch.bfloat16),
    Profile("two_t4", (("Tesla T4", 7, 5, 15 * GIB),) * 2, False, "cuda", torch.float16),
    Profile("mps", (), True, "mps", torch.float16),                              # nnlib: fp16 on MPS
]


def _index(device=None) -> int:
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    return torch.device(device).index or 0


@pytest.fixture(params=PROFILES, ids=lambda p: p.name)
def profile(request, monkeypatch) -> Profile:
    """Make torch (and accelerate) answer as this profile's machine would."""
    import accelerate.utils.modeling as acc_modeling
    import torch.distributed as dist

    prof: Profile = request.param
    gpus = prof.gpus
    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    monkeypatch.delenv(devices.DTYPE_ENV, raising=False)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(gpus))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: bool(gpus))

    def properties(device=None):
        name, major, minor, memory = gpus[_index(device)]
        return SimpleNamespace(name=name, major=major, minor=minor, total_memory=memory,
                               is_integrated=False)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda device=None: (properties(device).major, properties(device).minor))
    monkeypatch.setattr(torch.cuda, "mem_get_info",
                        lambda device=None: (properties(device).total_memory - GIB,
                                             properties(device).total_memory))

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        # torch/cuda/__init__.py: False without CUDA; True from sm 8.0; below, True when a bf16
        # tensor can be made, which succeeds on a T4 (emulation) unless including_emulation=False.
        if not gpus:
            return False
        return gpus[0][1] >= 8 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: prof.mps)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: prof.mps)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: bool(gpus))
    monkeypatch.setattr(acc_modeling, "is_mps_available", lambda *a, **k: prof.mps)
    real_tensor = torch.tensor

    def tensor(data, *args, device=None, **kwargs):  # accelerate touches each GPU: tensor([0], device=i)
        if isinstance(device, int) or (device is not None and torch.device(device).type == "cuda"):
            device = None
        return real_tensor(data, *args, device=device, **kwargs)

    monkeypatch.setattr(torch, "tensor", tensor)
    return prof


def auto_map_under_profile() -> dict:
    """transformers' own ``device_map="auto"`` computation (accelerate's ``get_max_memory``
    included) for a small Llama built on ``meta``, on the machine the profile pretends to be."""
    from transformers import AutoModelForCausalLM, LlamaConfig
    from transformers.integrations.accelerate import _get_device_map

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return dict(_get_device_map(model, "auto", None, None))


def as_torch_name(where) -> str:
    return f"cuda:{where}" if isinstance(where, int) else str(where)


# ---- device and dtype --------------------------------------------------------------------------


def test_device_and_dtype(profile):
    dev = choose_device()
    assert dev.type == profile.device
    assert choose_dtype(dev) == profile.dtype
    facts = device_facts()
    assert (facts.n_cuda, facts.mps) == (len(profile.gpus), profile.mps)
    assert facts.default_device() == dev and facts.default_dtype() == profile.dtype


def test_a_t4_says_bf16_is_supported_yet_gets_float16(monkeypatch):
    t4 = next(p for p in PROFILES if p.name == "t4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: t4.gpus[0][1:3])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert torch.cuda.is_bf16_supported()          # the trap: emulated bf16 counts as supported
    assert choose_dtype(torch.device("cuda")) == torch.float16


def test_rocm_keeps_bf16(monkeypatch):
    # torch.cuda.is_bf16_supported returns True under HIP for every architecture.
    monkeypatch.setattr(torch.version, "hip", "6.2")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    assert choose_dtype(torch.device("cuda")) == torch.bfloat16


def test_a_second_gpu_is_judged_by_its_own_capability(monkeypatch):
    caps = {0: (7, 5), 1: (8, 6)}  # a T4 next to an RTX 3090
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: caps[_index(d)])
    assert choose_dtype(torch.device("cuda:0")) == torch.float16
    assert choose_dtype(torch.device("cuda:1")) == torch.bfloat16


# ---- device_map="auto" ---------------------------------------------------------------------------


def test_auto_device_map_is_what_transformers_computes(profile):
    placed = auto_map_under_profile()
    want = {"cpu": ["cpu"], "t4": ["cuda:0"], "a100": ["cuda:0"], "two_t4": ["cuda:0", "cuda:1"],
            "mps": ["mps"]}[profile.name]
    assert sorted({as_torch_name(d) for d in placed.values()}) == want
    assert list(devices.auto_device_map_devices(device_facts())) == want


# ---- what the notebooks print ---------------------------------------------------------------------


def test_notebook_03_dtype_lines(profile):
    lines = device_notes.dtype_rule_lines(device_facts())
    assert "on cuda: bfloat16 where the GPU computes it natively" in lines[0]
    assert "T4" in lines[0] and "float16" in lines[0]
    per_gpu = lines[1:]
    if not profile.gpus:
        assert per_gpu == ["this machine has no CUDA GPU"]
    else:
        assert len(per_gpu) == len(profile.gpus)
        want = str(profile.dtype).replace("torch.", "")
        for i, (line, (name, major, minor, _)) in enumerate(zip(per_gpu, profile.gpus)):
            assert line.startswith(f"cuda:{i} {name}, sm {major}.{minor}") and line.endswith(f"-> {want}")


def test_notebook_03_says_which_macos_lets_mps_take_bf16():
    mac = devices.DeviceFacts(mps=True)
    assert "MPS takes bfloat16 only on macOS 14 or newer" in device_notes.dtype_rule_lines(mac)[0]
    assert device_notes.dtype_rule_lines(mac)[-1] == "this machine has no CUDA GPU"  # version unknown
    sonoma = device_notes.dtype_rule_lines(mac, "14.0")[-1]
    assert sonoma.startswith("mps: this Mac runs macOS 14.0, so MPS here takes bfloat16 too")
    assert "takes bfloat16 too" in device_notes.dtype_rule_lines(mac, "15.3.1")[-1]
    assert "refuses bfloat16" in device_notes.dtype_rule_lines(mac, "13.6.1")[-1]
    linux = device_notes.dtype_rule_lines(devices.DeviceFacts(), "14.0")
    assert linux[-1] == "this machine has no CUDA GPU"  # no MPS: no Mac line


def test_notebook_03_nccl_lines(profile):
    facts = device_facts()
    error = None if facts.nccl else RuntimeError("Distributed package doesn't have NCCL built in")
    lines = device_notes.nccl_call_lines(facts, error)
    if profile.gpus:
        assert lines[0].startswith('init_process_group("nccl") worked') and "word for word" not in lines[0]
        assert f"sees {len(profile.gpus)} GPU(s), so the seed's error cannot happen here" in lines[0]
    else:  # the CPU text of the saved notebook, unchanged
        assert lines == ["RuntimeError: Distributed package doesn't have NCCL built in"]


def test_notebook_03b_placement_lines(profile):
    placed = auto_map_under_profile()
    where = sorted({as_torch_name(d) for d in placed.values()})
    hf_device_map = placed if len(where) > 1 else None  # from_pretrained dispatches only then
    lines = device_notes.placement_lines(device_facts(), torch.device(where[0]), profile.dtype,
                                         hf_device_map)
    assert lines[0] == f"model.device: {torch.device(where[0])} | model.dtype: {profile.dtype}"
    assert len(lines) == 3  # no line saying the placement disagrees with the rule
    if len(where) == 1:
        assert lines[1].startswith("hf_device_map: (none")
        assert f"fills {where[0]} only" in lines[2] and "no hooks" in lines[2]
    else:
        assert "balances the layers over cuda:0, cuda:1" in lines[2] and "hooks move" in lines[2]


def test_placement_lines_say_when_the_model_is_not_where_the_rule_puts_it():
    mac = devices.DeviceFacts(mps=True)  # an older accelerate left the model on a Mac's CPU
    lines = device_notes.placement_lines(mac, torch.device("cpu"), torch.float16, None)
    assert "here the weights are on cpu, not mps" in lines[-1]


SEED_ERROR = ("RuntimeError: Expected all tensors to be on the same device, but found at least two "
              "devices, cuda:0 and cpu!")
MPS_ERROR = "RuntimeError: Placeholder storage has not been allocated on MPS device!"


def test_notebook_03b_generate_and_forward_lines(profile):
    facts = device_facts()
    model_device = {"cpu": "cpu", "mps": "mps"}.get(profile.device, "cuda:0")
    # generate: transformers 5's prepare_inputs_for_generation moves CPU ids to model.device
    move = device_notes.generate_move_lines(model_device, "cpu", model_device)
    # the forward call with CPU ids: fails on one accelerator; accelerate's hooks move them on two
    two = len(profile.gpus) > 1
    hf_device_map = {"model.embed_tokens": 0, "model.layers.3": 1} if two else None
    cpu_ids = {"cpu": "no error", "mps": MPS_ERROR}.get(profile.device, "no error" if two else SEED_ERROR)
    lines = device_notes.mismatch_lines(facts, model_device, hf_device_map, cpu_ids, "no error")
    assert lines[1] == f"  model(input_ids), ids on the cpu -> {cpu_ids}"
    assert lines[2] == f"  model(input_ids.to(model.device)), ids on {model_device} -> no error"
    if profile.device == "cpu":
        assert "nothing to move here" in move[1]
        assert lines[0] == "CPU only: the model is on the cpu and so are the ids"
        assert "this machine has none, so it cannot happen here" in lines[3]
    elif two:
        assert "generate moved them" in move[1]
        assert "spread the layers over cuda:0, cuda:1" in lines[0] and "hooks" in lines[3]
    else:
        assert "generate moved them" in move[1]
        assert lines[0].endswith(f"the model is on {model_device}, the ids on the cpu")
        assert "seed's mistake" in lines[3]
        assert ("MPS words it its own way" in lines[3]) == (profile.device == "mps")


def test_a_forward_call_that_unexpectedly_passes_is_reported_as_such():
    t4 = devices.DeviceFacts(gpus=(devices.CudaGpu("Tesla T4", 7, 5),), nccl=True)
    lines = device_notes.mismatch_lines(t4, "cuda:0", None, "no error", "no error")
    assert "this forward call passed with CPU ids" in lines[3]


# ---- the same cells on this CPU, against the installed transformers -------------------------------


@pytest.fixture(scope="module")
def tiny_hf_model():
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, pad_token_id=0, eos_token_id=1)
    return AutoModelForCausalLM.from_config(cfg).eval()


def test_the_lines_03b_prints_from_sources_exist_in_the_installed_versions(tiny_hf_model):
    import transformers
    import transformers.integrations.accelerate as hf_accelerate
    from accelerate.utils import get_max_memory

    found = [
        *device_notes.source_lines(type(tiny_hf_model).prepare_inputs_for_generation,
                                   "Move the tensors the forward consumes", 'if self.device.type != "meta"'),
        *device_notes.source_lines(transformers.modeling_utils, "If the device_map has more than 1 device",
                                   'torch_dtype = kwargs.pop("torch_dtype", None)'),
        *device_notes.source_lines(get_max_memory, "for i in range(torch.cuda.device_count())",
                                   "if is_mps_available():", 'max_memory["mps"] =', 'max_memory["cpu"] ='),
        *device_notes.source_lines(hf_accelerate, "= get_balanced_memory(",
                                   "device_map = infer_auto_device_map("),
        *device_notes.source_lines(transformers.configuration_utils, "if hasattr(config, key):",
                                   "`torch_dtype` is deprecated"),
    ]
    assert not [line for line in found if line.startswith("(not in this version")]
    assert device_notes.source_lines(get_max_memory, "no such line")[0].startswith("(not in this version")



def test_the_seeds_torch_dtype_warns_from_the_config_not_from_the_model(tmp_path, tiny_hf_model):
    """What 03b §1's optional part says: the model's from_pretrained takes torch_dtype= silently;
    AutoModelForCausalLM.from_pretrained warns, because AutoConfig reads the config's old attribute."""
    import logging
    import traceback
    from pathlib import Path

    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    tiny_hf_model.save_pretrained(tmp_path)
    warned_from: dict[str, list[str]] = {}

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "`torch_dtype` is deprecated" in record.getMessage():
                warned_from[current].append(next(
                    f"{Path(f.filename).name}:{f.name}" for f in reversed(traceback.extract_stack())
                    if "/transformers/" in f.filename.replace("\\", "/")
                    and not f.filename.replace("\\", "/").endswith("utils/logging.py")))

    catch, verbosity = Catch(), hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    logging.getLogger("transformers").addHandler(catch)
    try:
        for cls in (type(tiny_hf_model), AutoModelForCausalLM):
            current = cls.__name__
            warned_from[current] = []
            hf_logging.warning_once.cache_clear()  # so each call may warn again
            model = cls.from_pretrained(tmp_path, torch_dtype=torch.float16)
            assert model.dtype == torch.float16
    finally:
        logging.getLogger("transformers").removeHandler(catch)
        hf_logging.set_verbosity(verbosity)
    assert warned_from == {"LlamaForCausalLM": [],
                           "AutoModelForCausalLM": ["configuration_utils.py:torch_dtype"]}


def test_on_this_cpu_generate_and_forward_see_cpu_ids(tiny_hf_model):
    ids = torch.tensor([[2, 3, 4]])
    seen = []
    handle = tiny_hf_model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["input_ids"].device), with_kwargs=True)
    try:
        with torch.inference_mode():
            tiny_hf_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2,
                                   do_sample=False, pad_token_id=0)
    finally:
        handle.remove()
    assert seen and all(d.type == "cpu" for d in seen)
    assert device_notes.forward_outcome(tiny_hf_model, ids) == device_notes.NO_ERROR
    assert device_notes.forward_outcome(tiny_hf_model, ids.float()).startswith("RuntimeError: ")


def test_device_check_runs_every_notebook_that_uses_a_device(monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "device_check.py"
    spec = importlib.util.spec_from_file_location("device_check", script)
    device_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_check", device_check)  # dataclasses look it up there
    spec.loader.exec_module(device_check)
    ran = []
    monkeypatch.setattr(device_check, "run_command", lambda nb, *a, **k: ran.append(nb))
    device_check.notebook_rows(torch.device("cpu"), torch.float32)
    assert [name.split("/")[-1].split("_")[0] for name in ran] == ["03", "03b", "04", "05"]


def test_a_mac_model_on_mps_index_0_is_where_the_rule_says():
    mac = devices.DeviceFacts(mps=True)
    # a Mac's parameters report torch.device("mps", 0); the rule names "mps": the same device
    assert device_notes.placed_devices(torch.device("mps", 0), None) == ["mps"]
    lines = device_notes.placement_lines(mac, torch.device("mps", 0), torch.float16, None)
    assert len(lines) == 3 and "fills mps only" in lines[2]
    assert not any("not mps as the rule says" in line for line in lines)


def test_one_gpu_says_when_torch_words_the_seeds_error_its_own_way():
    t4 = devices.DeviceFacts(gpus=(devices.CudaGpu("Tesla T4", 7, 5),), nccl=True)
    today = ("RuntimeError: Expected all tensors to be on the same device, but got index is on cpu, "
             "different from other tensors on cuda:0 (when checking argument in method "
             "wrapper_CUDA__index_select)")
    lines = device_notes.mismatch_lines(t4, "cuda:0", None, today, "no error")
    assert lines[1] == f"  model(input_ids), ids on the cpu -> {today}"
    assert "the same mistake; torch's wording has changed since the seed's (2023) log" in lines[3]
    assert "in the seed's words" not in lines[3]
    seed = device_notes.mismatch_lines(t4, "cuda:0", None, SEED_ERROR, "no error")
    assert "in the seed's words" in seed[3]
