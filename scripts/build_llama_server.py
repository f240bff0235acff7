"""Build llama.cpp's ``llama-server`` once into ``$LLAMA_CACHE/bin`` (``make llama-server``).

The sources come from the llama-cpp-python source package on PyPI, which vendors llama.cpp
under ``vendor/llama.cpp``. The build is CPU-only, static and without curl; web UI switches
(``LLAMA_BUILD_UI``, ``LLAMA_USE_PREBUILT_UI``, ...) are turned off where the vendored version
has them (0.3.16's llama.cpp has none: run the server with ``--no-webui``).
It is skipped when ``$LLAMA_CACHE/bin/llama-server --version`` already runs and was built on a
CPU with the same instruction-set flags (the build uses ``GGML_NATIVE=ON`` for speed, so a cache
carried to a different CPU is rebuilt rather than trusted).

Exit status: 0 built or already present, 1 the build failed (one line on stderr says why).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.16"
"""The llama-cpp-python sdist whose vendored llama.cpp is built."""

DEFAULT_CACHE = Path.home() / ".cache" / "rigkit" / "llama.cpp"
JOBS = os.environ.get("LLAMA_BUILD_JOBS", "2")


class BuildFailed(Exception):
    """One line for the person running ``make``."""


def log(msg: str) -> None:
    print(f"[llama-server] {msg}", flush=True)


def cpu_stamp() -> str:
    """A short hash of the CPU's instruction-set flags (the native build depends on them)."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:
        flags = os.uname().machine
    text = f"{LLAMA_CPP_PYTHON_VERSION} {os.uname().machine} {flags}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def existing_ok(binary: Path, stamp_file: Path) -> bool:
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return False
    if not stamp_file.is_file() or stamp_file.read_text().strip() != cpu_stamp():
        log(f"{binary} was built for another CPU or version; rebuilding")
        return False
    try:
        proc = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if proc.returncode != 0:
        return False
    version = (proc.stdout + proc.stderr).strip().splitlines()
    log(f"already built: {binary} ({version[0] if version else 'version unknown'})")
    return True


def run(cmd: list[str], cwd: Path | None = None, log_file: Path | None = None) -> None:
    log("$ " + " ".join(cmd))
    if log_file is None:
        proc = subprocess.run(cmd, cwd=cwd, check=False)
    else:
        with log_file.open("a") as fh:
            proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        where = f" (log: {log_file})" if log_file else ""
        raise BuildFailed(f"command failed with status {proc.returncode}: {cmd[0]} {cmd[1]}{where}")


def fetch_sources(work: Path) -> Path:
    """Download the sdist with pip and return the vendored llama.cpp directory."""
    dl = work / "sdist"
    dl.mkdir()
    log(f"downloading llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} source package")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
            "-d",
            str(dl),
        ]
    )
    archives = sorted(dl.glob("llama_cpp_python-*.tar.gz")) + sorted(
        dl.glob("llama-cpp-python-*.tar.gz")
    )
    if not archives:
        raise BuildFailed(f"pip download produced no source archive in {dl}")
    log(f"extracting {archives[0].name}")
    src_root = work / "src"
    with tarfile.open(archives[0]) as tar:
        tar.extractall(src_root, filter="data")
    found = sorted(src_root.glob("*/vendor/llama.cpp"))
    if not found or not (found[0] / "CMakeLists.txt").is_file():
        raise BuildFailed("the source package has no vendor/llama.cpp/CMakeLists.txt")
    return found[0]


def cmake_options(src: Path) -> list[str]:
    """The -D options, keeping only those this llama.cpp version declares (others are noise)."""
    declared: set[str] = set()
    for cm in [
        src / "CMakeLists.txt",
        *src.glob("*/CMakeLists.txt"),
        *src.glob("*/*/CMakeLists.txt"),
    ]:
        try:
            text = cm.read_text(errors="replace")
        except OSError:
            continue
        declared.update(re.findall(r"option\s*\(\s*([A-Z0-9_]+)", text))
        declared.update(re.findall(r"set\s*\(\s*([A-Z0-9_]+)\s+[^)]*CACHE", text))
    wanted = {
        "LLAMA_BUILD_SERVER": "ON",
        "LLAMA_BUILD_TOOLS": "ON",
        "LLAMA_BUILD_TESTS": "OFF",
        "LLAMA_BUILD_EXAMPLES": "OFF",
        "LLAMA_USE_PREBUILT_UI": "OFF",
        "LLAMA_BUILD_UI": "OFF",
        "LLAMA_BUILD_WEBUI": "OFF",
        "LLAMA_CURL": "OFF",
        "LLAMA_OPENSSL": "OFF",
        "GGML_NATIVE": "ON",
        "GGML_OPENMP": "OFF",
        "BUILD_SHARED_LIBS": "OFF",
    }
    opts = ["-DCMAKE_BUILD_TYPE=Release"]
    for name, value in wanted.items():
        if name in declared or name == "BUILD_SHARED_LIBS":
            opts.append(f"-D{name}={value}")
    return opts


def find_cmake() -> str:
    """cmake from PATH, or the `cmake` package from the Python package index in this environment."""
    found = shutil.which("cmake")
    if found:
        return found
    bindir = Path(sys.executable).parent
    if not (bindir / "cmake").exists():
        log("cmake is not installed: installing the `cmake` package with pip")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "cmake"], check=False
        )
        if proc.returncode != 0 or not (bindir / "cmake").exists():
            raise BuildFailed("cmake is not installed and `pip install cmake` failed")
    return str(bindir / "cmake")


def build(cache: Path) -> Path:
    binary = cache / "bin" / "llama-server"
    stamp_file = cache / "bin" / "llama-server.stamp"
    if existing_ok(binary, stamp_file):
        return binary
    if shutil.which("c++") is None:
        raise BuildFailed("no C++ compiler (`c++`) is installed; install g++ or clang")
    cmake = find_cmake()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rigkit-llama-") as tmp:
        work = Path(tmp)
        src = fetch_sources(work)
        build_dir = work / "build"
        log_file = cache / "build.log"
        log_file.write_text("")
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        log(f"configuring (log: {log_file})")
        run(
            [cmake, "-S", str(src), "-B", str(build_dir), *gen, *cmake_options(src)],
            log_file=log_file,
        )
        log(f"building llama-server with -j{JOBS} (several minutes on 2 cores)")
        run(
            [cmake, "--build", str(build_dir), "--target", "llama-server", "-j", JOBS],
            log_file=log_file,
        )
        built = next(iter(sorted(build_dir.rglob("llama-server"))), None)
        if built is None or not built.is_file():
            raise BuildFailed(f"the build finished but produced no llama-server (log: {log_file})")
        (cache / "bin").mkdir(exist_ok=True)
        tmp_target = binary.with_suffix(".new")
        shutil.copy2(built, tmp_target)
        tmp_target.replace(binary)
        stamp_file.write_text(cpu_stamp() + "\n")
    log(f"built {binary} in {time.monotonic() - started:.0f} s")
    if not existing_ok(binary, stamp_file):
        raise BuildFailed(f"{binary} was built but `--version` fails")
    return binary


def main() -> int:
    cache = Path(os.environ.get("LLAMA_CACHE") or DEFAULT_CACHE).expanduser()
    try:
        build(cache)
    except BuildFailed as err:
        sys.stderr.write(f"llama-server build failed: {err}\n")
        return 1
    except (OSError, tarfile.TarError) as err:
        sys.stderr.write(f"llama-server build failed: {type(err).__name__}: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("llama-server build interrupted\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
