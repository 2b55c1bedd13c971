"""The engine build's source handling, against a stand-in Debian mirror on loopback.

The real download and compile run in scripts/setup (once per machine); here
the archive's answers are made to go wrong in the ways a real archive does.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import lzma
import sys
import tarfile
import threading

import pytest

from appliance import pjbuild


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(pjbuild, "MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("PBX_CACHE", str(tmp_path / "cache"))
    yield root
    server.shutdown()


def write_index(root, suite, entries):
    stanza = "Package: asterisk\nVersion: 1:99\nChecksums-Sha256:\n"
    stanza += "".join(f" {digest} 123 {name}\n" for name, digest in entries.items())
    stanza += "Directory: pool/main/a/asterisk\n"
    other = "Package: zlib\nChecksums-Sha256:\n 00 1 zlib.orig-Xpjproject.tar.xz\n"
    path = root / "dists" / suite / "main" / "source"
    path.mkdir(parents=True)
    (path / "Sources.xz").write_bytes(lzma.compress((other + "\n" + stanza).encode()))


def test_the_index_lists_only_asterisks_pjproject_tarballs(mirror):
    write_index(mirror, "unstable", {"asterisk_99.orig-Xpjproject.tar.xz": "ab" * 32, "asterisk_99.orig.tar.xz": "cd" * 32})
    assert pjbuild.index_entries("unstable") == {"asterisk_99.orig-Xpjproject.tar.xz": "ab" * 32}


def test_a_pinned_file_gone_from_the_archive_stops_with_what_the_archive_has(mirror, tmp_path):
    write_index(mirror, "unstable", {"asterisk_99.orig-Xpjproject.tar.xz": "ab" * 32})
    write_index(mirror, "experimental", {})
    with pytest.raises(pjbuild.BuildError) as err:
        pjbuild.download_source(pjbuild.Source(pjbuild.PINNED_NAME, pjbuild.PINNED_SHA256), tmp_path / "cache")
    text = str(err.value)
    assert "no longer has" in text and "asterisk_99.orig-Xpjproject.tar.xz" in text and "--accept-index" in text


def test_a_tarball_that_does_not_match_its_checksum_is_refused_and_removed(mirror, tmp_path):
    pool = mirror / pjbuild.POOL_DIR
    pool.mkdir(parents=True)
    (pool / "asterisk_99.orig-Xpjproject.tar.xz").write_bytes(b"tampered")
    src = pjbuild.Source("asterisk_99.orig-Xpjproject.tar.xz", hashlib.sha256(b"original").hexdigest())
    with pytest.raises(pjbuild.BuildError, match="does not match"):
        pjbuild.download_source(src, tmp_path / "cache")
    assert not (tmp_path / "cache" / "src" / src.name).exists()


def test_accept_index_takes_the_listed_tarball_with_its_checksum(mirror):
    write_index(mirror, "unstable", {"asterisk_99.orig-Xpjproject.tar.xz": "ab" * 32})
    assert pjbuild.resolve_source(accept_index=True) == pjbuild.Source("asterisk_99.orig-Xpjproject.tar.xz", "ab" * 32)
    assert pjbuild.resolve_source(accept_index=False).sha256 == pjbuild.PINNED_SHA256


def test_the_cache_key_changes_with_the_recipe(monkeypatch, tmp_path):
    src = pjbuild.Source(pjbuild.PINNED_NAME, pjbuild.PINNED_SHA256)
    key = pjbuild.cache_key(src, sys.executable)
    assert src.sha256[:16] in key and f"cp{sys.version_info[0]}{sys.version_info[1]}" in key
    site = tmp_path / "config_site.h"
    site.write_text(pjbuild.CONFIG_SITE.read_text().replace("512", "256"))
    monkeypatch.setattr(pjbuild, "CONFIG_SITE", site)
    assert pjbuild.cache_key(src, sys.executable) != key


def test_config_site_sizes_the_library_for_a_pbx():
    text = pjbuild.CONFIG_SITE.read_text()
    limits = {line.split()[1]: line.split()[2] for line in text.splitlines() if line.startswith("#define") and line.split()[2].isdigit()}
    assert int(limits["PJSUA_MAX_CALLS"]) >= 128
    assert int(limits["PJSUA_MAX_ACC"]) >= 32
    assert int(limits["PJSUA_MAX_PLAYERS"]) >= 64 and int(limits["PJSUA_MAX_RECORDERS"]) >= 64
    assert int(limits["PJ_IOQUEUE_MAX_HANDLES"]) >= 1024
    assert "--enable-epoll" in pjbuild.CONFIGURE_FLAGS


def stand_in_source(tmp_path):
    """A tarball laid out like pjproject whose configure and makefiles only note that they ran;
    its binding's `make wheel` fails while FAIL_WHEEL is set, as a stopped compile would."""
    top = tmp_path / "src" / "pjproject-9"
    (top / "pjlib/include/pj").mkdir(parents=True)
    (top / "configure").write_text('#!/bin/sh\necho configure >> "$PJ_CALLS"\n')
    (top / "configure").chmod(0o755)
    (top / "Makefile").write_text(
        'all:\n\techo make >> "$$PJ_CALLS"\ndep:\n\techo dep >> "$$PJ_CALLS"\n')
    swig = top / "pjsip-apps/src/swig/python"
    swig.mkdir(parents=True)
    (swig / "Makefile").write_text(
        'wheel:\n\techo wheel >> "$$PJ_CALLS"\n\ttest -z "$$FAIL_WHEEL"\n'
        '\tmkdir -p dist && touch dist/pjsua2-9-cp3-none-any.whl\n')
    tarball = tmp_path / "pjproject.tar.xz"
    with tarfile.open(tarball, "w:xz") as tf:
        tf.add(top, arcname=top.name)
    return tarball


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """(the stand-in tarball, the file its steps note themselves in); the cache under tmp_path."""
    monkeypatch.setenv("PBX_CACHE", str(tmp_path / "cache"))
    calls = tmp_path / "calls"
    monkeypatch.setenv("PJ_CALLS", str(calls))
    return stand_in_source(tmp_path), calls


def test_a_build_stopped_in_the_binding_goes_on_without_building_the_libraries_again(tmp_path, monkeypatch, stand_in):
    tarball, calls = stand_in
    out_dir = tmp_path / "cache" / "wheels" / "key-1"
    monkeypatch.setenv("FAIL_WHEEL", "1")
    with pytest.raises(pjbuild.BuildError, match="make wheel"):
        pjbuild.build(tarball, sys.executable, out_dir, 2)
    assert calls.read_text().split() == ["configure", "dep", "make", "wheel"]
    kept = tmp_path / "cache" / "build" / "key-1"
    assert (kept / pjbuild.BUILT_STAMP).exists()

    monkeypatch.delenv("FAIL_WHEEL")
    wheel = pjbuild.build(tarball, sys.executable, out_dir, 2)
    assert calls.read_text().split() == ["configure", "dep", "make", "wheel", "wheel"]
    assert wheel == out_dir / "pjsua2-9-cp3-none-any.whl" and wheel.exists()
    assert "resumed=1" in (out_dir / "timings.txt").read_text()
    assert not kept.exists()


def test_a_build_stopped_before_the_libraries_were_built_starts_over(tmp_path, stand_in):
    tarball, calls = stand_in
    out_dir = tmp_path / "cache" / "wheels" / "key-2"
    left = tmp_path / "cache" / "build" / "key-2" / "pjproject-9"
    left.mkdir(parents=True)
    (left / "half-built.o").touch()
    wheel = pjbuild.build(tarball, sys.executable, out_dir, 2)
    assert calls.read_text().split() == ["configure", "dep", "make", "wheel"]
    assert wheel.exists() and "resumed=0" in (out_dir / "timings.txt").read_text()
    assert not (tmp_path / "cache" / "build").joinpath("key-2").exists()
