"""TorchScript save/load helpers: TorchScript is the artifact contract.

torch 2.14 marks ``torch.jit`` deprecated with a FutureWarning on every call;
``quiet_jit`` silences exactly those warnings where we call it, nothing broader.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from bounds import Bounded, prepared


@contextmanager
def quiet_jit():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def freeze(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """Script an eval-mode copy on the CPU (it loads on CPU and CUDA), frozen. A certifiable model is scripted
    but not frozen: freezing would fold the layouts its bounds derive from a weight into constants, and the file
    would hold each weight three times; it stores each once and builds the rest when it loads (``load``)."""
    with quiet_jit():
        if isinstance(model, Bounded):
            return torch.jit.script(model.for_export().cpu())
        return torch.jit.freeze(torch.jit.script(model.cpu().eval()))


def load(path: Path, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    with quiet_jit():
        return prepared(torch.jit.load(str(path), map_location=device).eval())
