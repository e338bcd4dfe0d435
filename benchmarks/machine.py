"""What the figures were measured on: recorded with them in the JSON."""

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

import relu_ext


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device, threads):
    info = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "device": device,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "relu_ext": relu_ext.build_info(),
        # Other processes' demand on the CPUs while the benchmark ran.
        "load_average_at_start": list(os.getloadavg()),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def code_version():
    """The commit measured, flagged when relu_ext/ or csrc/ differ from it: a
    study's figures (coverage, the cost of a summary) are those of the code
    that ran, and it changes."""
    root = Path(__file__).resolve().parents[1]

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip()
    if not commit:
        return "unknown (not a git checkout)"
    changed = git("diff", "--quiet", "HEAD", "--", "relu_ext", "csrc").returncode != 0
    return commit + (" with local changes to relu_ext/ or csrc/" if changed else "")
