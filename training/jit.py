"""TorchScript save/load helpers: TorchScript is the artifact contract.

torch 2.14 marks ``torch.jit`` deprecated with a FutureWarning on every call;
``quiet_jit`` silences exactly those warnings where we call it, nothing broader.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from bounds import CERTIFICATE_METHODS, Bounded


@contextmanager
def quiet_jit():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def freeze(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """Script and freeze an eval-mode copy on the CPU (it loads on CPU and CUDA), keeping the methods a
    certifiable model exports (``bounds.CERTIFICATE_METHODS``)."""
    keep = [name for name in CERTIFICATE_METHODS if hasattr(model, name)]
    if isinstance(model, Bounded):
        model = model.for_export()
    with quiet_jit():
        return torch.jit.freeze(torch.jit.script(model.cpu().eval()), preserved_attrs=keep)


def load(path: Path, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    with quiet_jit():
        return torch.jit.load(str(path), map_location=device).eval()
