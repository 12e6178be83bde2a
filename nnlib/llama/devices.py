"""Where a Llama runs: device, dtype, process-group backend, and the facts about this machine's
devices. Whether it fits (memory arithmetic, free memory, bandwidth) is ``memory``'s job; its
names are re-exported here, where notebooks 03, 03b and 05 import them.

Meta's reference code assumes CUDA everywhere (``init_process_group("nccl")``, ``.cuda()``,
``torch.cuda.HalfTensor``). Here the device is chosen once, explicitly, and everything else
follows it; no process group is needed on one device.
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from .memory import (  # noqa: F401 - re-exported: the notebooks import these from devices
    BYTES_PER_PARAM,
    KNOWN_MODELS,
    LLAMA_3_2_MODELS,
    MODEL_LABELS,
    MPS_OOM_MESSAGE,
    SHORT_DTYPE_NAMES,
    VM_STAT_AVAILABLE,
    count_parameters,
    decode_bytes_per_token,
    explain_out_of_memory,
    format_of_bytes,
    free_memory_bytes,
    host_free_bytes,
    is_llama_3_2_shape,
    kv_cache_bytes,
    kv_cache_bytes_per_token,
    macos_free_bytes,
    memory_table,
    model_memory,
    mps_headroom_bytes,
    parse_vm_stat,
    read_bandwidth,
    short_dtype_name,
    storage_by_format,
    synchronize,
    weight_bytes,
)

DeviceLike = str | torch.device | None

#: Every name a dtype may be given by (argument or NNLIB_DTYPE) -> the torch dtype.
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
          "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
          "half": torch.float16}

#: Environment variables that override the automatic choice (an explicit argument still wins).
DEVICE_ENV, DTYPE_ENV = "NNLIB_DEVICE", "NNLIB_DTYPE"


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


#: The first CUDA compute capability (major version) with bf16 in hardware: Ampere (sm 8.0).
NATIVE_BF16_MAJOR = 8


def bf16_is_native(major: int, rocm: bool = False) -> bool:
    """Whether a CUDA GPU of compute capability ``major``.x computes in bf16 natively: sm 8.0 and
    newer (A100, RTX 30xx and later, H100) do; a T4 (7.5), V100 (7.0) or P100 (6.0) does not.
    Why not ``torch.cuda.is_bf16_supported()``: by default it also answers True where torch can
    merely *emulate* bf16 (it creates a bf16 tensor and reports success), so on Colab's T4 it says
    True, yet there fp16 is the half precision the hardware runs. ROCm: torch says every AMD
    architecture it supports has bf16 (``is_bf16_supported`` returns True under HIP)."""
    return rocm or major >= NATIVE_BF16_MAJOR


def cuda_native_bf16(device: DeviceLike = "cuda") -> bool:
    """``bf16_is_native`` for a visible CUDA device (``cuda`` alone: the current one). The same
    rule as ``torch.cuda.is_bf16_supported(including_emulation=False)``, but for ``device``
    rather than torch's current device."""
    dev = torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return bf16_is_native(torch.cuda.get_device_capability(index)[0], rocm=bool(torch.version.hip))


@dataclass(frozen=True)
class CudaGpu:
    """One visible CUDA GPU: its name and compute capability (``major``.``minor``)."""

    name: str
    major: int
    minor: int


@dataclass(frozen=True)
class DeviceFacts:
    """What torch reports about this machine's devices, as one value.

    Why a value: the notebooks say different things on a CPU, one GPU, several GPUs or a Mac.
    Functions that take these facts (rather than asking torch) can be tested for every kind of
    machine on a CPU; ``device_facts()`` reads the real ones.
    """

    gpus: tuple[CudaGpu, ...] = ()
    mps: bool = False
    nccl: bool = False   # torch.distributed was built with NCCL
    rocm: bool = False   # a ROCm (HIP) build: torch.cuda means AMD GPUs

    @property
    def n_cuda(self) -> int:
        return len(self.gpus)

    def default_device(self) -> torch.device:
        """``choose_device()``'s automatic choice on such a machine: cuda, else mps, else cpu."""
        return torch.device("cuda" if self.gpus else "mps" if self.mps else "cpu")

    def default_dtype(self, device: DeviceLike = None) -> torch.dtype:
        """``choose_dtype``'s automatic choice for ``device`` (default: ``default_device()``)."""
        dev = self.default_device() if device is None else torch.device(device)
        if dev.type == "cuda":
            if not self.gpus:
                raise ValueError(f"No CUDA GPU in these facts, so no dtype for {dev}.")
            gpu = self.gpus[dev.index or 0]
            return torch.bfloat16 if bf16_is_native(gpu.major, self.rocm) else torch.float16
        return torch.float16 if dev.type == "mps" else torch.float32


def device_facts() -> DeviceFacts:
    """This machine's ``DeviceFacts``, read from torch."""
    import torch.distributed as dist

    gpus: tuple[CudaGpu, ...] = ()
    if torch.cuda.is_available():
        props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        gpus = tuple(CudaGpu(str(p.name), int(p.major), int(p.minor)) for p in props)
    nccl = bool(dist.is_available() and dist.is_nccl_available())
    return DeviceFacts(gpus=gpus, mps=mps_available(), nccl=nccl, rocm=bool(torch.version.hip))


def auto_device_map_devices(facts: DeviceFacts) -> tuple[str, ...]:
    """The devices ``from_pretrained(..., device_map="auto")`` fills for a model that fits, in
    the order accelerate fills them. accelerate's ``get_max_memory`` (1.15) lists every CUDA GPU,
    then ``"mps"`` on a Mac *instead of* ``"cpu"`` (unified memory: one budget, not two), else
    ``"cpu"``; transformers balances the layers over all GPUs (``get_balanced_memory``). So: every
    GPU, else mps, else cpu. With one device there, ``from_pretrained`` moves the model there
    whole and attaches no hooks; only two or more get accelerate's hooks (``dispatch_model``)."""
    if facts.gpus:
        return tuple(f"cuda:{i}" for i in range(facts.n_cuda))
    return ("mps",) if facts.mps else ("cpu",)


def choose_device(device: DeviceLike = None) -> torch.device:
    """``None`` -> the ``NNLIB_DEVICE`` environment variable if set, else cuda if present, else
    mps, else cpu. A named device this torch cannot use raises ValueError saying why (e.g. "this
    torch was built without CUDA"); a bad ``NNLIB_DEVICE`` says so by name."""
    if device is None and os.environ.get(DEVICE_ENV):
        try:
            return choose_device(os.environ[DEVICE_ENV])
        except ValueError as err:
            raise ValueError(f"{DEVICE_ENV}={os.environ[DEVICE_ENV]!r}: {err} Valid values: "
                             "cpu, cuda, cuda:N, mps; or unset it to choose automatically.") from err
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{device!r} is not a device name torch knows ({err}); use 'cpu', "
                         "'cuda', 'cuda:1' or 'mps'.") from err
    if dev.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise ValueError(f"Cannot use device {device!r}: this torch was built without CUDA "
                             f"(torch {torch.__version__}). Use device='cpu' (or 'mps' on a Mac), "
                             "or install a CUDA build of torch.")
        if not torch.cuda.is_available():
            raise ValueError(f"Cannot use device {device!r}: torch has CUDA support but sees no "
                             "GPU (driver missing or CUDA_VISIBLE_DEVICES empty). Use device='cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"Cannot use device {device!r}: only {torch.cuda.device_count()} "
                             "CUDA device(s) are visible.")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            raise ValueError(f"Cannot use device {device!r}: this torch was built without MPS "
                             "(Apple GPU) support. Use device='cpu'.")
        if not mps.is_available():
            raise ValueError(f"Cannot use device {device!r}: MPS needs an Apple-silicon Mac with "
                             "macOS 12.3 or later. Use device='cpu'.")
    elif dev.type != "cpu":
        raise ValueError(f"Device type {dev.type!r} is not supported here; use 'cuda', 'mps' or 'cpu'.")
    return dev


def choose_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """``dtype`` if given, else the ``NNLIB_DTYPE`` environment variable if set, else bf16 on a
    CUDA GPU that computes it natively (compute capability 8.0+; ``bf16_is_native``), fp16 on
    older ones (T4, V100, P100, which only emulate bf16), fp16 on MPS (every macOS with MPS takes
    it; bf16 only from macOS 14), fp32 on the CPU (CPU half matmuls are slow or missing in older
    torch). Unknown names raise ValueError listing the valid ones."""
    if dtype is None and os.environ.get(DTYPE_ENV):
        name = os.environ[DTYPE_ENV]
        if name not in DTYPES:
            raise ValueError(f"{DTYPE_ENV}={name!r} is not a dtype name; use one of "
                             f"{sorted(DTYPES)}, or unset it to choose by device.")
        return DTYPES[name]
    if dtype is not None:
        if isinstance(dtype, torch.dtype):
            return dtype
        if dtype not in DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use one of {sorted(DTYPES)} or a torch.dtype.")
        return DTYPES[dtype]
    device = torch.device(device)
    if device.type == "cuda":  # bf16 only where the GPU computes it natively (not T4/V100/P100)
        return torch.bfloat16 if cuda_native_bf16(device) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def process_group_backend(device: DeviceLike = None) -> str:
    """The ``torch.distributed`` backend for ``device``: ``nccl`` only with CUDA *and* a torch built
    with NCCL, else ``gloo``. This is the fix for "Distributed package doesn't have NCCL built in"."""
    import torch.distributed as dist

    dev = choose_device(device) if device is None else torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available() and dist.is_available() and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def init_process_group_if_needed(device: DeviceLike = None) -> bool:
    """Join the group of WORLD_SIZE processes torchrun started, only when launched by torchrun
    (RANK/WORLD_SIZE set); with ``--nproc_per_node 1`` that is a group of one.

    In a notebook there is no torchrun and nothing to start: returns False. Loading on one device
    never needs a group; this exists for scripts that are launched with torchrun anyway.
    """
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        return False
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    dist.init_process_group(backend=process_group_backend(device))
    return True


# ---- torchrun's variables, for showing Meta's first line in one process (notebook 03) ---------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now: the one the operating system gives for port 0."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


#: The variables ``init_process_group`` reads under torchrun (``init_method="env://"``: torch's
#: ``rendezvous._env_rendezvous_handler``), and ``LOCAL_RANK``, which Meta's ``build`` reads to
#: pick its GPU. torchrun sets more that neither reads (LOCAL_WORLD_SIZE, GROUP_RANK, ROLE_RANK,
#: TORCHELASTIC_*).
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def torchrun_variables(port: int | None = None) -> dict[str, str]:
    """``TORCHRUN_VARIABLES`` as ``torchrun --nproc_per_node 1`` gives them to its one process:
    rank 0 of 1, GPU 0, meeting on ``port`` (default: a free one). For ``MASTER_ADDR`` torchrun
    gives rank 0's host: ``--local-addr`` (env ``PET_LOCAL_ADDR``) if given, else
    ``socket.getfqdn()`` (torch's ``RendezvousStoreInfo.build``); here it is "localhost", which
    names this machine on every host, so one process can meet itself."""
    return {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "localhost",
            "MASTER_PORT": str(free_port() if port is None else port)}


@contextlib.contextmanager
def torchrun_environment(variables: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """Inside the block this process looks as if ``torchrun --nproc_per_node 1`` had started it:
    ``variables`` (default ``torchrun_variables()``) are set in ``os.environ``, and the block
    gets them. Afterwards every one of them is back as it was (unset if it was unset) and any
    process group started inside is destroyed, so a notebook can run Meta's
    ``init_process_group`` and go on as a plain single process."""
    import torch.distributed as dist

    variables = dict(torchrun_variables() if variables is None else variables)
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
