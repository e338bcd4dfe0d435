"""Builds relu_ext's C++ (and, where available, CUDA) extension relu_ext.ops._C.

Switches (environment variables):
  RELU_EXT_CUDA=0|1        build the CUDA kernels: 0 never, 1 always (fail if
                           impossible); unset: when torch has CUDA and nvcc is found.
  CUDA_HOME                the CUDA toolkit; unset: found from nvcc on PATH (even
                           when nvcc there is a wrapper script, see find_cuda_home).
  TORCH_CUDA_ARCH_LIST     CUDA architectures, as for any torch extension.
  RELU_EXT_CPU_DISPATCH=0  portable CPU build: only the baseline kernels, no
                           AVX2/AVX-512 code compiled in.
  MAX_JOBS                 parallel compile jobs (ninja).
  RELU_EXT_SANITIZE=...    build with -fsanitize=... (e.g. address,undefined;
                           `make test-asan`), into build/sanitize.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import find_packages, setup
import torch


def is_cuda_toolkit(path):
    return (path / "bin" / "nvcc").is_file() and (path / "include" / "cuda_runtime.h").is_file()


def find_cuda_home():
    """The CUDA toolkit's root, or None. torch guesses it as the parent of the
    folder holding nvcc, which is wrong when nvcc on PATH is a wrapper or a
    link into another tree (/usr/local/bin/nvcc -> /usr/local): so the guess
    is checked, and else nvcc itself is asked where it lives (its --dryrun
    prints TOP=<toolkit>/bin/..)."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    for candidate in (Path(nvcc).parent.parent, Path(nvcc).resolve().parent.parent):
        if is_cuda_toolkit(candidate):
            return str(candidate)
    try:
        dryrun = subprocess.run(
            [nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    top = re.search(r"^#\$ TOP=(.+)$", dryrun.stdout + dryrun.stderr, re.MULTILINE)
    if top and is_cuda_toolkit(Path(top.group(1).strip()).resolve()):
        return str(Path(top.group(1).strip()).resolve())
    return None


# torch.utils.cpp_extension reads CUDA_HOME once, when it is imported.
_cuda_home = find_cuda_home() if torch.version.cuda is not None else None
if _cuda_home:
    os.environ["CUDA_HOME"] = _cuda_home
from torch.utils import cpp_extension  # noqa: E402

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
VERSION = re.search(
    r'__version__ = "([^"]+)"', (ROOT / "relu_ext" / "_version.py").read_text()
).group(1)


def env_switch(name):
    """True/False when the variable says 0 or 1, None when unset."""
    value = os.environ.get(name, "").strip()
    if value in ("", "auto"):
        return None
    if value not in ("0", "1"):
        raise SystemExit(f"{name} must be 0 or 1, but is {value!r}")
    return value == "1"


def cuda_sources():
    return sorted(str(p.relative_to(ROOT)) for p in (CSRC / "cuda").glob("*.cu"))


def build_cuda():
    wanted = env_switch("RELU_EXT_CUDA")
    missing = []
    if torch.version.cuda is None:
        missing.append(f"torch {torch.__version__} is built without CUDA")
    if cpp_extension.CUDA_HOME is None:
        missing.append("no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)")
    elif not is_cuda_toolkit(Path(cpp_extension.CUDA_HOME)):
        missing.append(f"CUDA_HOME={cpp_extension.CUDA_HOME} has no bin/nvcc and "
                       "include/cuda_runtime.h")
    if not cuda_sources():
        missing.append("this source tree has no CUDA kernels")
    if wanted and missing:
        raise SystemExit("RELU_EXT_CUDA=1, but " + "; ".join(missing))
    if wanted is None and missing:
        print("relu_ext: building without CUDA: " + "; ".join(missing))
    return wanted is not False and not missing


# CUDA 13 supports sm_75 and newer; without a visible GPU to ask, build for the
# common data-centre and desktop generations, plus PTX for what comes next.
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"


def cuda_arch_list():
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if not archs and not torch.cuda.is_available():
        archs = os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCHS
    if not archs:  # torch builds for the visible GPUs: name them in build_info()
        archs = ";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i)
                                 for i in range(torch.cuda.device_count())}))
    return archs


def write_build_meta(with_cuda):
    # Read at import, before loading _C: a torch other than this one would
    # fail with an undefined symbol instead of a useful message.
    (ROOT / "relu_ext" / "ops" / "_build_meta.py").write_text(
        "# Written by setup.py: the build this installed copy of relu_ext came from.\n"
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"WITH_CUDA = {with_cuda!r}\n"
    )


def extension():
    with_cuda = build_cuda()
    write_build_meta(with_cuda)
    sources = [str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.cpp"))]
    for folder in ("autograd", "cpu", "breakpoints", "curve"):
        sources += [str(p.relative_to(ROOT)) for p in sorted((CSRC / folder).rglob("*.cpp"))]
    if with_cuda:
        sources.remove("csrc/cuda_unavailable.cpp")
        sources += cuda_sources()
    defines = [
        f'-DRELU_EXT_VERSION="{VERSION}"',
        f'-DRELU_EXT_TORCH_VERSION="{torch.__version__}"',
    ]
    if env_switch("RELU_EXT_CPU_DISPATCH") is False:
        defines.append("-DRELU_EXT_NO_ISA_DISPATCH")
    cxx = [
        "-O3",
        "-std=c++20",
        # One rounding for m·x + b (see csrc/relu_sum_math.h).
        "-ffp-contract=fast",
        # at::parallel_for is OpenMP in torch's headers; the OpenMP runtime
        # resolved at load time is torch's own libgomp.
        "-fopenmp",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
    ] + defines
    sanitize = os.environ.get("RELU_EXT_SANITIZE", "").strip()
    link = ["-fopenmp"]
    if sanitize:
        # -O1 -g: readable reports; no recovery, so a UBSan finding is an error.
        flags = [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
        cxx += flags + ["-O1", "-g"]
        link += flags
    kwargs = dict(
        name="relu_ext.ops._C",
        sources=sources,
        include_dirs=[str(CSRC)],
        extra_compile_args={"cxx": cxx},
        extra_link_args=link,
    )
    if with_cuda:
        archs = cuda_arch_list()
        # Space-separated, as build_info() lists them: "8.0 9.0+PTX".
        arch_words = " ".join(re.split(r"[;,\s]+", archs.strip()))
        defines += ["-DRELU_EXT_WITH_CUDA", f'-DRELU_EXT_CUDA_ARCHS="{arch_words}"']
        cxx += defines[-2:]
        kwargs["extra_compile_args"]["nvcc"] = [
            "-O3",
            "-std=c++20",
            # A spill or local-memory use is a performance bug: fail the build.
            "-Xptxas=-warn-spills,-warn-lmem-usage,-Werror",
        ] + defines
        return cpp_extension.CUDAExtension(**kwargs)
    return cpp_extension.CppExtension(**kwargs)


def dependencies():
    # Exactly the torch compiled against (as its distribution is versioned, e.g.
    # "2.13.0+cpu"; torch.__version__ may add a label: "2.14.1+cu130"): pip then
    # keeps or installs that torch, and `pip check` flags a later change of torch.
    # tqdm draws fit()'s progress bar, matplotlib `relu-ext fit`'s plot (loaded
    # only when plotting: `import relu_ext` does not import it); numpy is
    # imported by `import relu_ext` (curve_summary's tables).
    return [f"torch=={importlib.metadata.version('torch')}", "matplotlib>=3.6", "numpy",
            "tqdm>=4.60"]


setup(
    # A sanitized build keeps its objects apart from the normal build's.
    options={"build": {"build_base": "build/sanitize"}} if os.environ.get("RELU_EXT_SANITIZE") else {},
    version=VERSION,
    install_requires=dependencies(),
    packages=find_packages(include=["relu_ext", "relu_ext.*"]),
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
