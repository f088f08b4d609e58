"""Which device and precision a command runs on, and why.

`--device auto` picks CUDA, then Apple's MPS, then CPU. Training uses bf16 autocast on CUDA
(when the GPU supports it) and fp32 elsewhere. The choice comes back with a one-line reason so
commands can say what they picked.
"""

from contextlib import nullcontext
from dataclasses import dataclass

from gptkit.errors import UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu" | "cuda" | "cuda:N" | "mps"
    dtype: str  # autocast dtype for training/inference: "bfloat16" | "float32"
    reason: str  # why this device: "no CUDA or MPS device found"

    @property
    def label(self) -> str:
        """The device first, then why: "cpu, fp32 (no CUDA or MPS device found)"."""
        return f"{self.device}, {'bf16 autocast' if self.dtype == 'bfloat16' else 'fp32'} ({self.reason})"

    @property
    def type(self) -> str:
        return self.device.split(":")[0]

    def autocast(self):
        import torch

        if self.dtype == "bfloat16":
            return torch.autocast(device_type=self.type, dtype=torch.bfloat16)
        return nullcontext()


def pick_device(spec: str = "auto") -> DeviceChoice:
    import torch

    kind = spec.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise UsageError(f"--device: expected one of {', '.join(DEVICE_CHOICES)}, got '{spec}'")
    cuda_ok = torch.cuda.is_available()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        if cuda_ok:
            kind, why = "cuda", f"CUDA GPU found ({torch.cuda.get_device_name(0)})"
        elif mps_ok:
            kind, why = "mps", "Apple MPS found, no CUDA"
        else:
            kind, why = "cpu", "no CUDA or MPS device found"
        spec = kind
    else:
        why = "asked for with --device"
    if kind == "cuda" and not cuda_ok:
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if kind == "mps" and not mps_ok:
        raise UsageError("--device mps: Apple MPS is not available on this machine")
    if kind == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls: free speed, fine for training
        torch.backends.cudnn.allow_tf32 = True
        if torch.cuda.is_bf16_supported():
            return DeviceChoice(spec, "bfloat16", why)
        return DeviceChoice(spec, "float32", why + "; this GPU lacks bf16")
    # MPS autocast support varies by torch version; fp32 is the safe, documented choice there.
    return DeviceChoice(spec, "float32", why)


def to_device(tensor, device):
    """A host batch on `device`. To a GPU it goes through pinned (page-locked) memory with a
    non-blocking copy, so the transfer runs alongside the previous step instead of stalling it."""
    if str(device).startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


# Dense bf16 peak FLOP/s by GPU name, for MFU (model FLOPs utilisation) in the progress display.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12, "4090": 165e12}


def peak_flops(dc: DeviceChoice) -> float | None:
    """The GPU's peak for MFU, or None (CPU, MPS, an unknown GPU)."""
    if dc.type != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)
