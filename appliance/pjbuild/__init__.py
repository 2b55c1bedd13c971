"""Builds the pjsua2 Python binding from pjproject source, once per machine.

The PyPI wheel is compiled for 4 calls and for x86_64 only, so the appliance
builds its own from the pjproject tarball that Debian's archive carries as a
component of the `asterisk` source package.  The result is a wheel cached by
(source hash, build recipe hash, Python version, architecture): a second run
on the same machine only prints where the wheel is.

Standard library only: this runs before the virtual environment has anything.

Example:
    python3 -m appliance.pjbuild --python .venv/bin/python
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MIRROR = os.environ.get("PBX_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# What was tested.  Debian removes old files from the pool once no suite lists
# them; then the build stops and says so (see resolve_source).
PINNED_NAME = "asterisk_22.10.1+dfsg+~cs6.17.60671434.orig-Xpjproject.tar.xz"
PINNED_SHA256 = "6860c2f7604b4eee75f38151a9ef69774eb3f0c5286fc1d14bc1db2dc5a9e8aa"
POOL_DIR = "pool/main/a/asterisk"
SUITES = ("unstable", "experimental")

HERE = Path(__file__).resolve().parent
CONFIG_SITE = HERE / "config_site.h"

CONFIGURE_FLAGS = (
    "--disable-video --disable-v4l2 --disable-sdl --disable-ffmpeg --disable-openh264"
    " --disable-vpx --disable-libyuv --disable-opencore-amr --disable-silk --disable-bcg729"
    " --disable-upnp --disable-libwebrtc --with-external-speex --with-external-gsm"
    " --with-external-srtp --enable-libsamplerate --disable-ilbc-codec"
    " --disable-g7221-codec --disable-resample --enable-epoll"
).split()
CFLAGS = "-fPIC -O2"

# The DFSG tarball drops this file but the makefiles still list it.
MISSING_FILES = ("pjmedia/src/pjmedia-audiodev/bdimad_dev.c",)

# Debian packages the build needs (the appliance's setup script installs them).
BUILD_PACKAGES = (
    "build-essential pkg-config libspeex-dev libspeexdsp-dev libgsm1-dev libsrtp2-dev"
    " libsamplerate0-dev libasound2-dev libopus-dev libssl-dev uuid-dev swig xz-utils"
).split()

RECIPE_VERSION = "1"

# In a build directory: the C libraries are built (and how long they took).
BUILT_STAMP = "c-libraries.built"


class BuildError(RuntimeError):
    """The build cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Source:
    name: str
    sha256: str


def cache_root() -> Path:
    return Path(os.environ.get("PBX_CACHE") or Path.home() / ".cache" / "pbx-appliance")


def log(msg: str) -> None:
    print(f"[pjbuild] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path) -> None:
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
        shutil.copyfileobj(resp, out)
    tmp.replace(dest)


def index_entries(suite: str) -> dict[str, str]:
    """Orig-Xpjproject tarballs that a suite's Sources index lists, name -> SHA-256."""
    url = f"{MIRROR}/dists/{suite}/main/source/Sources.xz"
    with urllib.request.urlopen(url, timeout=60) as resp:
        text = lzma.decompress(resp.read()).decode("utf-8", "replace")
    found: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        if not stanza.startswith("Package: asterisk\n"):
            continue
        in_sha = False
        for line in stanza.splitlines():
            if line.startswith("Checksums-Sha256:"):
                in_sha = True
                continue
            if in_sha and line.startswith(" "):
                digest, _size, name = line.split()
                if "orig-Xpjproject" in name:
                    found[name] = digest
            elif in_sha:
                in_sha = False
    return found


def resolve_source(accept_index: bool) -> Source:
    """The pinned tarball, or with accept_index the one the archive lists now."""
    if not accept_index:
        return Source(PINNED_NAME, PINNED_SHA256)
    for suite in SUITES:
        entries = index_entries(suite)
        if entries:
            name = sorted(entries)[-1]
            log(f"using {name} from {suite}'s Sources index (not the pinned one)")
            return Source(name, entries[name])
    raise BuildError("no orig-Xpjproject tarball is listed for asterisk in unstable or experimental")


def download_source(src: Source, cache: Path) -> Path:
    dest = cache / "src" / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        url = f"{MIRROR}/{POOL_DIR}/{src.name}"
        log(f"downloading {url}")
        try:
            fetch(url, dest)
        except urllib.error.HTTPError as e:
            listed = {}
            for suite in SUITES:
                try:
                    listed.update(index_entries(suite))
                except OSError:
                    pass
            raise BuildError(
                f"Debian's archive no longer has {src.name} (HTTP {e.code}).\n"
                f"The Sources indexes of {', '.join(SUITES)} list: {', '.join(sorted(listed)) or 'nothing'}.\n"
                "Re-run with --accept-index to build from what the archive lists now "
                "(checked against the index's SHA-256), then pin it in appliance/pjbuild."
            ) from e
    digest = sha256_file(dest)
    if digest != src.sha256:
        dest.unlink()
        raise BuildError(f"{src.name}: SHA-256 {digest} does not match the expected {src.sha256}")
    return dest


def python_tag(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys,sysconfig;print(f'cp{sys.version_info[0]}{sys.version_info[1]}', sysconfig.get_platform())"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return f"{out[0]}-{out[1]}"


def recipe_hash() -> str:
    h = hashlib.sha256()
    h.update(CONFIG_SITE.read_bytes())
    h.update(" ".join(CONFIGURE_FLAGS).encode())
    h.update(CFLAGS.encode())
    h.update(RECIPE_VERSION.encode())
    return h.hexdigest()[:16]


def cache_key(src: Source, python: str) -> str:
    return f"{src.sha256[:16]}-{recipe_hash()}-{python_tag(python)}-{platform.machine()}"


def run(cmd: list[str] | str, cwd: Path, env: dict | None = None, logfile: Path | None = None) -> None:
    shown = cmd if isinstance(cmd, str) else " ".join(cmd)
    log(f"$ {shown}  (in {cwd.name})")
    with open(logfile, "ab") if logfile else open(os.devnull, "wb") as out:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, shell=isinstance(cmd, str))
    if res.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:] if logfile else []
        raise BuildError(f"command failed ({res.returncode}): {shown}\n" + "\n".join(tail))


def build(tarball: Path, python: str, out_dir: Path, jobs: int) -> Path:
    """Builds the wheel into out_dir, in a build directory named after out_dir's cache key.

    Once the C libraries are built the directory says so (BUILT_STAMP) and is kept until the
    wheel exists: a build stopped in the binding (a long compile under emulation) goes on from
    there when run again, instead of building the libraries a second time.  A directory left
    earlier without the stamp is started over."""
    work = cache_root() / "build" / out_dir.name
    stamp = work / BUILT_STAMP
    logfile = out_dir / "build.log"
    out_dir.mkdir(parents=True, exist_ok=True)
    resumed = stamp.exists() and len([p for p in work.iterdir() if p.is_dir()]) == 1
    if resumed:
        (root,) = [p for p in work.iterdir() if p.is_dir()]
        c_libraries_s = int(stamp.read_text().split("=", 1)[1])
        log(f"C libraries built earlier ({c_libraries_s} s), kept in {work}")
        with open(logfile, "ab") as f:
            f.write(b"\n[pjbuild] resumed: the C libraries were built earlier\n")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        logfile.write_bytes(b"")
        log(f"unpacking {tarball.name}")
        with tarfile.open(tarball) as tf:
            tf.extractall(work, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(work)
        (root,) = [p for p in work.iterdir() if p.is_dir()]
        for rel in MISSING_FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).touch()
        shutil.copy(CONFIG_SITE, root / "pjlib/include/pj/config_site.h")
    env = dict(os.environ, CFLAGS=CFLAGS, CXXFLAGS=CFLAGS)
    if not resumed:
        t0 = time.monotonic()
        try:
            run(["./configure", *CONFIGURE_FLAGS], root, env, logfile)
            run(["make", "dep"], root, env, logfile)
            run(["make", f"-j{jobs}"], root, env, logfile)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        c_libraries_s = round(time.monotonic() - t0)
        log(f"C libraries built in {c_libraries_s} s")
        stamp.write_text(f"c_libraries_s={c_libraries_s}\n")
    t1 = time.monotonic()
    swig = root / "pjsip-apps/src/swig/python"
    run(["make", "wheel", f"PYTHON_EXE={python}"], swig, env, logfile)
    binding_s = round(time.monotonic() - t1)
    log(f"Python binding built in {binding_s} s")
    wheels = sorted((swig / "dist").glob("pjsua2-*.whl"))
    if not wheels:
        raise BuildError("the binding built but no wheel appeared in dist/")
    dest = out_dir / wheels[0].name
    shutil.copy(wheels[0], dest)
    (out_dir / "timings.txt").write_text(
        f"c_libraries_s={c_libraries_s}\nbinding_s={binding_s}\nresumed={int(resumed)}\n")
    shutil.rmtree(work, ignore_errors=True)
    return dest


def ensure_wheel(python: str, accept_index: bool = False, jobs: int | None = None) -> Path:
    """Path of a pjsua2 wheel for this Python and machine, building it if needed."""
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    src = resolve_source(accept_index)
    key = cache_key(src, python)
    out_dir = cache / "wheels" / key
    found = sorted(out_dir.glob("pjsua2-*.whl"))
    if found:
        log(f"cached wheel {found[0]}")
        return found[0]
    tarball = download_source(src, cache)
    wheel = build(tarball, python, out_dir, jobs or os.cpu_count() or 2)
    log(f"built {wheel} ({wheel.stat().st_size / 1e6:.1f} MB)")
    return wheel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pjbuild", description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default=sys.executable, help="interpreter the wheel is for")
    p.add_argument("--install", action="store_true", help="pip install the wheel into --python")
    p.add_argument("--install-if-needed", action="store_true",
                   help="install unless this very build is installed already")
    p.add_argument("--accept-index", action="store_true",
                   help="build the tarball the archive lists now instead of the pinned one")
    p.add_argument("--jobs", type=int, default=None)
    args = p.parse_args(argv)
    try:
        wheel = ensure_wheel(args.python, args.accept_index, args.jobs)
    except BuildError as e:
        print(f"pjbuild: {e}", file=sys.stderr)
        return 1
    if args.install or args.install_if_needed:
        marker = Path(args.python).resolve().parent.parent / "pjsua2-build.txt"
        if args.install or not marker.exists() or marker.read_text().strip() != str(wheel) or not _importable(args.python):
            subprocess.run([args.python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)],
                           check=True)
            marker.write_text(f"{wheel}\n")
            log(f"installed into {args.python}")
    print(wheel)
    return 0


def _importable(python: str) -> bool:
    return subprocess.run([python, "-c", "import pjsua2"], capture_output=True).returncode == 0
