"""nnlib.llama.devices' torchrun helpers (notebook 03 §1): the variables ``torchrun
--nproc_per_node 1`` gives its process, set only inside a ``with`` block, and what the notebook
prints about the seed's torchrun run and torchrun's port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnlib.llama import device_notes
from nnlib.llama.devices import (
    TORCHRUN_VARIABLES,
    free_port,
    process_group_backend,
    torchrun_environment,
    torchrun_variables,
)

ROOT = Path(__file__).resolve().parent.parent


def test_free_port_is_bindable():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nobody holds it


def test_torchrun_variables_are_those_init_process_group_reads_plus_local_rank():
    variables = torchrun_variables(port=12345)
    assert tuple(variables) == TORCHRUN_VARIABLES
    assert variables == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "localhost",
                         "MASTER_PORT": "12345"}
    assert torchrun_variables()["MASTER_PORT"].isdigit()


def test_the_variables_are_what_torch_reads_and_a_subset_of_what_torchrun_sets():
    """The names init_process_group's env:// rendezvous reads are in torch's source, and a real
    ``torchrun --nproc_per_node 1`` gives its process every one of ours, with our values (but the
    port, and MASTER_ADDR: torchrun gives rank 0's --local-addr, else socket.getfqdn()), and more
    besides. The run passes PET_LOCAL_ADDR=127.0.0.1 (= --local-addr) as the notebook does: on a
    Mac whose host name does not resolve, torchrun otherwise hangs retrying address lookups."""
    import importlib
    import inspect
    import json

    rendezvous = importlib.import_module("torch.distributed.rendezvous")  # the module, not the function
    source = inspect.getsource(rendezvous._env_rendezvous_handler)
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        assert f'"{name}"' in source
    show = "import os, json; print(json.dumps(dict(os.environ)))"
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                          "--no-python", sys.executable, "-c", show],
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PET_LOCAL_ADDR": "127.0.0.1"}).stdout
    env = json.loads(out.strip().splitlines()[-1])
    ours = torchrun_variables()
    assert all(name in env for name in ours)
    same = [k for k in ours if k not in ("MASTER_ADDR", "MASTER_PORT")]
    assert {k: env[k] for k in same} == {k: ours[k] for k in same}
    assert env["MASTER_ADDR"] == "127.0.0.1"  # the --local-addr given; without it, socket.getfqdn()
    assert "GROUP_RANK" in env and "LOCAL_WORLD_SIZE" in env  # torchrun sets more than we do


def test_torchrun_environment_sets_then_restores_and_unsets(monkeypatch):
    monkeypatch.setenv("RANK", "7")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with torchrun_environment() as variables:
        assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"
        assert variables["MASTER_PORT"] == os.environ["MASTER_PORT"]
    assert os.environ["RANK"] == "7"          # put back as it was
    assert "WORLD_SIZE" not in os.environ     # unset again


def test_torchrun_environment_restores_after_an_error(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(KeyError), torchrun_environment({"RANK": "3"}):
        assert os.environ["RANK"] == "3"
        raise KeyError("a failing cell")
    assert "RANK" not in os.environ


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_a_group_started_inside_is_destroyed_afterwards():
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group already exists in this process")
    with torchrun_environment():
        dist.init_process_group("gloo")
        assert dist.get_world_size() == 1
    assert not dist.is_initialized()


# ---- what notebook 03 prints about the runs --------------------------------------------------


def test_seed_run_lines_read_the_device_off_the_run_and_name_its_backend():
    out = "Loaded in 0.25 seconds on cpu (float32)\nROMEO:\n> is that?\n"
    assert device_notes.seed_run_lines(0, out, process_group_backend) == [
        "exit code 0: one process; Llama.build loaded the model on cpu (float32) and, under "
        "torchrun, started a process group with backend 'gloo'"]
    cuda = device_notes.seed_run_lines(0, out.replace("cpu (float32)", "cuda (bfloat16)"),
                                       lambda device: "nccl")
    assert "on cuda (bfloat16)" in cuda[0] and "'nccl'" in cuda[0]
    assert device_notes.seed_run_lines(1, "", process_group_backend)[0].startswith("the command failed")


def test_the_loaded_line_is_the_one_the_example_prints():
    """The pattern matches the line example_text_completion.py writes (its f-string)."""
    source = (ROOT / "example_text_completion.py").read_text()
    assert 'print(f"Loaded in {llama.load_seconds or 0.0:.2f} seconds on {llama.device} ({dtype})")' in source
    assert device_notes.LOADED_LINE.search("Loaded in 1.00 seconds on mps (float16)").groups() == (
        "mps", "float16")


def test_torchrun_port_line_for_new_and_old_torch():
    new = device_notes.torchrun_port_line("35389", "2.13.0")
    assert "picked a free port by itself (35389)" in new and "29500" in new
    old = device_notes.torchrun_port_line(29500, "2.0.1")
    assert "used port 29500" in old and "--standalone" in old
    assert "printed no port" in device_notes.torchrun_port_line("", "2.13.0")


def test_this_torchs_torchrun_picks_a_free_port_on_one_node():
    """What the notebook's port cell prints, checked against the installed torch's run.py: one
    node and no --master_port means a c10d rendezvous at localhost:0 (torch/distributed/run.py,
    ``run``), unless this torch is older and still defaults to 29500."""
    import inspect

    import torch.distributed.run as run

    picks_free = "max_nodes == 1" in inspect.getsource(run.run)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                          "--no-python", sys.executable, "-c",
                          "import os; print(os.environ['MASTER_PORT'])"],
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PET_LOCAL_ADDR": "127.0.0.1"}).stdout.strip()
    assert (out != "29500") == picks_free, (out, picks_free)


def test_pet_local_addr_is_torchruns_local_addr_flag(monkeypatch):
    """The notebook's torchrun cells pass PET_LOCAL_ADDR=127.0.0.1: this torch's run.py has
    --local-addr, read from PET_<dest> by its ``env`` action."""
    import inspect

    import torch.distributed.argparse_util as argparse_util
    import torch.distributed.run as run

    assert '"--local-addr"' in inspect.getsource(run.get_args_parser)
    assert 'f"PET_{dest.upper()}"' in inspect.getsource(argparse_util.env)
    monkeypatch.delenv("PET_LOCAL_ADDR", raising=False)
    assert run.parse_args(["x.py"]).local_addr is None
    monkeypatch.setenv("PET_LOCAL_ADDR", "127.0.0.1")
    assert run.parse_args(["x.py"]).local_addr == "127.0.0.1"


def test_nccl_call_lines_for_a_cuda_torch_without_a_gpu():
    from nnlib.llama.devices import device_facts

    err = ValueError("ProcessGroupNCCL is only supported with GPUs, no GPUs found!")
    lines = device_notes.nccl_call_lines(device_facts(), err)
    assert lines[0].startswith("ValueError: ProcessGroupNCCL")
    assert "sees no GPU" in lines[1] and device_notes.NCCL_MISSING in lines[1]
