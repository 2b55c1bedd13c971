"""The flashable image's parts that can be checked without building it: the partition layout,
fstab and cmdline.txt (image/layout.sh), the package list, the first-boot units and scripts,
and the build's plan. No root, no network; seconds."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "image"
ROOTFS = IMAGE / "rootfs"
UNITS = ROOTFS / "etc/systemd/system"
SBIN = ROOTFS / "usr/local/sbin"
MIB = 1024 * 1024


def layout(command: str, **env: str) -> str:
    res = subprocess.run([str(IMAGE / "layout.sh"), command], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], **env}, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout


def sfdisk_script(**env: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header and the partitions of the sfdisk script the build writes the table with."""
    header, parts = {}, []
    for line in layout("sfdisk", **env).splitlines():
        if line.startswith("start="):
            fields = [f.strip() for f in line.split(",")]
            parts.append({k: v for k, _, v in (f.partition("=") for f in fields)})
        elif ":" in line:
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    return header, parts


# --- the partition table ---------------------------------------------------------------------

def test_layout_is_an_mbr_table_of_boot_root_and_data_in_that_order():
    header, parts = sfdisk_script()
    # A Pi 3 boots only from MBR.
    assert header["label"] == "dos" and header["unit"] == "sectors" and header["sector-size"] == "512"
    assert re.fullmatch(r"0x[0-9a-f]{8}", header["label-id"])
    assert [p["type"] for p in parts] == ["c", "83", "83"]  # FAT32 (LBA), Linux, Linux
    assert ["bootable" in p for p in parts] == [True, False, False]


def test_layout_sizes_alignment_and_no_gaps_or_overlaps():
    _, parts = sfdisk_script()
    starts = [int(p["start"]) * 512 for p in parts]
    sizes = [int(p["size"]) * 512 for p in parts]
    assert starts[0] == 4 * MIB
    assert sizes == [512 * MIB, 3072 * MIB, 256 * MIB]
    for start in starts:
        assert start % (4 * MIB) == 0  # SD erase blocks
    for i in range(2):
        assert starts[i] + sizes[i] == starts[i + 1]
    # The data partition is last: the only one that can grow to the end of the card.
    assert int(layout("bytes")) == starts[2] + sizes[2]
    # The image fits a card sold as 4 GB (4,000,000,000 bytes)... only just not: it needs 8 GB.
    assert int(layout("bytes")) < 8_000_000_000 * 0.9


def test_layout_sizes_come_from_the_environment():
    _, parts = sfdisk_script(PBX_BOOT_MIB="256", PBX_ROOT_MIB="4096", PBX_DATA_MIB="64")
    assert [int(p["size"]) * 512 // MIB for p in parts] == [256, 4096, 64]
    assert int(parts[1]["start"]) * 512 == (4 + 256) * MIB


def test_table_for_people_names_each_partition():
    text = layout("table")
    assert re.search(r"p1\s+4\s+512\s+0xc\s+yes\s+vfat\s+PBX-BOOT\s+/boot/firmware", text)
    assert re.search(r"p2\s+516\s+3072\s+0x83\s+no\s+ext4\s+pbx-root\s+/$", text, re.M)
    assert re.search(r"p3\s+3588\s+256\s+0x83\s+no\s+ext4\s+pbx-data\s+/var/lib/pbx", text)
    assert "3844 MiB" in text


# --- fstab, cmdline.txt, raspi-firmware's settings -------------------------------------------

def partuuid(nr: int) -> str:
    header, _ = sfdisk_script()
    return f"{int(header['label-id'], 16):08x}-{nr:02d}"


def test_fstab_mounts_the_three_partitions_by_partuuid():
    lines = [line.split() for line in layout("fstab").splitlines() if line and not line.startswith("#")]
    by_mount = {fields[1]: fields for fields in lines}
    assert set(by_mount) == {"/", "/boot/firmware", "/var/lib/pbx"}
    assert all(len(fields) == 6 for fields in lines)
    assert by_mount["/"][:3] == [f"PARTUUID={partuuid(2)}", "/", "ext4"]
    assert by_mount["/"][5] == "1"  # fsck'd first
    assert by_mount["/boot/firmware"][:3] == [f"PARTUUID={partuuid(1)}", "/boot/firmware", "vfat"]
    data = by_mount["/var/lib/pbx"]
    assert data[:3] == [f"PARTUUID={partuuid(3)}", "/var/lib/pbx", "ext4"]
    options = data[3].split(",")
    # The partition is widened before the mount, the file system after it.
    assert "x-systemd.requires=pbx-grow-data.service" in options and "x-systemd.growfs" in options
    assert (UNITS / "pbx-grow-data.service").exists()
    for fields in lines:
        assert "noatime" in fields[3].split(",")  # spare the card


def test_cmdline_is_one_line_booting_the_root_partition():
    text = layout("cmdline")
    assert text.endswith("\n") and text.count("\n") == 1
    args = text.split()
    assert f"root=PARTUUID={partuuid(2)}" in args
    assert "rootwait" in args and "rw" in args
    assert args[-1] != "" and "quiet" not in args  # boot messages stay visible on the screen
    consoles = [a for a in args if a.startswith("console=")]
    assert consoles[-1] == "console=tty0"  # the screen gets the boot log and an emergency shell


def test_cmdline_is_what_raspi_firmware_writes_from_the_image_settings():
    """A kernel upgrade rewrites cmdline.txt from /etc/default/raspi-firmware: it must come out the same.

    The format is z50-raspi-firmware's (raspi-firmware 1.20240424): consoles, root, "rw
    fsck.repair=yes net.ifnames=0", cma (none when CMA=0), rootwait, extra; the build compares
    the real hook's output with image/layout.sh's too, and stops if they differ."""
    settings = dict(line.split("=", 1) for line in layout("raspi-defaults").splitlines()
                    if line and not line.startswith("#"))
    consoles = settings["CONSOLES"].strip('"').split()
    assert settings["CMA"] == "0"  # no cma= (64M breaks a Pi 4)
    hook = " ".join([*(f"console={c}" for c in consoles), f"root={settings['ROOTPART']}", "rw",
                     "fsck.repair=yes", "net.ifnames=0", "rootwait"])
    assert layout("cmdline").strip() == hook


def test_disk_id_can_be_set_and_reaches_every_file():
    env = {"PBX_DISK_ID": "0x1234abcd"}
    assert "label-id: 0x1234abcd" in layout("sfdisk", **env)
    assert layout("fstab", **env).count("PARTUUID=1234abcd-0") == 3
    assert "root=PARTUUID=1234abcd-02" in layout("cmdline", **env)
    assert "ROOTPART=PARTUUID=1234abcd-02" in layout("raspi-defaults", **env)


# --- packages ----------------------------------------------------------------------------------

def packages() -> list[str]:
    names = []
    for line in (IMAGE / "packages.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def test_package_list_is_present_without_duplicates_and_well_formed():
    names = packages()
    assert len(names) > 20
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    # Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters, starting
    # with a letter or digit. One name a line.
    for name in names:
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name), name


def test_package_list_boots_a_pi_and_reaches_the_appliance():
    names = set(packages())
    for needed in ("raspi-firmware", "linux-image-arm64", "initramfs-tools", "systemd-sysv", "udev",
                   "avahi-daemon", "openssh-server", "systemd-timesyncd", "systemd-resolved",
                   "fdisk", "dosfstools", "python3-venv"):
        assert needed in names, needed


def test_package_list_holds_what_setup_and_the_engine_build_install():
    """scripts/setup finds them installed and needs no apt in the arm64 root; pjbuild can rebuild."""
    sys.path.insert(0, str(REPO))
    from appliance.pjbuild import BUILD_PACKAGES

    setup = (REPO / "scripts/setup").read_text()
    runtime = re.search(r'runtime_pkgs="([^"]*)"', setup).group(1).split()
    names = set(packages())
    assert set(runtime) - names == set()
    assert set(BUILD_PACKAGES) - names == set()


def test_build_plan_uses_the_package_list_for_arm64_with_the_firmware_component():
    res = subprocess.run([str(IMAGE / "build"), "--plan"], capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ["PATH"]})
    assert res.returncode == 0, res.stderr
    cmd = next(line for line in res.stdout.splitlines() if line.startswith("root: "))
    assert "mmdebstrap" in cmd and "--architectures=arm64" in cmd
    assert "--components=main,non-free-firmware" in cmd  # raspi-firmware is in non-free-firmware
    include = re.search(r"--include=(\S+)", cmd).group(1).split(",")
    assert include == packages()
    assert "trixie" in cmd.split()


# --- first-boot units and scripts --------------------------------------------------------------

def test_first_boot_units_pass_systemd_analyze_verify(tmp_path):
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    for script in SBIN.iterdir():
        (sbin / script.name).write_text(script.read_text())
        (sbin / script.name).chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for src in UNITS.glob("*.service"):
        (units / src.name).write_text(src.read_text().replace("/usr/local/sbin/", f"{sbin}/"))
    # The appliance's own units sit beside them in the image (pbx-first-login requires one).
    pbx = Path(sys.executable).with_name("pbx")
    for name in ("pbx-appliance.service", "pbx-web.service"):
        text = (REPO / "systemd" / name).read_text()
        (units / name).write_text(text.replace("/opt/pbx/.venv/bin/pbx", str(pbx)))
    res = subprocess.run(["systemd-analyze", "verify", *sorted(map(str, units.glob("*.service")))],
                         capture_output=True, text=True, timeout=60)
    ours = [line for line in (res.stdout + res.stderr).splitlines() if "pbx" in line]
    assert res.returncode == 0 and ours == [], res.stdout + res.stderr


def unit_text(name: str) -> str:
    return (UNITS / name).read_text()


def test_grow_unit_runs_before_the_data_mount_without_default_dependencies():
    text = unit_text("pbx-grow-data.service")
    assert "DefaultDependencies=no" in text
    assert re.search(r"^Before=.*\bvar-lib-pbx\.mount\b", text, re.M)
    assert "Type=oneshot" in text


def test_ssh_is_off_unless_the_boot_partition_asks_and_keys_are_made_per_machine():
    assert "ConditionPathExists=/boot/firmware/ssh" in unit_text("pbx-ssh-request.service")
    keys = unit_text("pbx-ssh-keys.service")
    assert "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key" in keys and "Before=ssh.service" in keys
    build = (IMAGE / "build").read_text()
    assert "systemctl disable ssh.service" in build
    assert re.search(r'rm -f "\$root"/etc/ssh/ssh_host_\*', build)
    assert 'echo uninitialized >"$root/etc/machine-id"' in build


def test_journal_is_kept_in_memory_and_rate_limited():
    text = (ROOTFS / "etc/systemd/journald.conf.d/50-pbx-image.conf").read_text()
    assert "Storage=volatile" in text and "RuntimeMaxUse=" in text and "RateLimitBurst=" in text


def test_scripts_are_executable_and_parse():
    for path in [IMAGE / "build", IMAGE / "boot-test", IMAGE / "layout.sh", *SBIN.iterdir()]:
        assert path.stat().st_mode & stat.S_IXUSR, path
        shell = "bash" if path.read_text().startswith("#!/usr/bin/env bash") else "sh"
        res = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, (path, res.stderr)


def test_first_login_copies_the_printed_password_to_the_screen_and_the_boot_partition(tmp_path):
    journal = tmp_path / "journal"
    journal.write_text("Phones: register to 10.0.2.15:5060 (UDP or TCP)\n"
                       "  panel password for the first login: k3mpq7xz2abc (you then choose your own)\n"
                       "  extension 101: user 101, password aaaa\nready\n")
    boot, issue = tmp_path / "boot", tmp_path / "issue.d"
    boot.mkdir()
    res = subprocess.run([str(SBIN / "pbx-first-login")], capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ["PATH"], "PBX_JOURNAL_FILE": str(journal),
                              "PBX_BOOT": str(boot), "PBX_ISSUE_DIR": str(issue)})
    assert res.returncode == 0, res.stderr
    note = (boot / "pbx-first-login.txt").read_bytes().decode()
    assert "log in with this password: k3mpq7xz2abc\r\n" in note and "pbx.local:8080" in note
    assert stat.S_IMODE((boot / "pbx-first-login.txt").stat().st_mode) == 0o600
    assert "k3mpq7xz2abc" in (issue / "50-pbx-first-login.issue").read_text()
    assert "aaaa" not in note  # the extensions' passwords stay in the journal


def test_first_login_writes_nothing_on_a_boot_without_the_line(tmp_path):
    journal = tmp_path / "journal"
    journal.write_text("Phones: register to 10.0.2.15:5060 (UDP or TCP)\nready\n")
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "pbx-first-login.txt").write_text("from the first boot")
    res = subprocess.run([str(SBIN / "pbx-first-login")], capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ["PATH"], "PBX_JOURNAL_FILE": str(journal),
                              "PBX_BOOT": str(boot), "PBX_ISSUE_DIR": str(tmp_path / "issue.d")})
    assert res.returncode == 0, res.stderr
    assert (boot / "pbx-first-login.txt").read_text() == "from the first boot"
    assert not (tmp_path / "issue.d").exists()


def fake_commands(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """Commands that only record their arguments (and stdin) in calls.log."""
    bindir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bindir.mkdir()
    for name in names:
        (bindir / name).write_text(f'#!/bin/sh\nstdin=""\n[ -t 0 ] || stdin=$(cat)\n'
                                   f'echo "{name} $* <$stdin>" >>"{calls}"\n')
        (bindir / name).chmod(0o755)
    return bindir, calls


def test_ssh_request_installs_the_keys_enables_ssh_and_removes_the_file(tmp_path):
    bindir, calls = fake_commands(tmp_path, "systemctl")
    request, home = tmp_path / "ssh", tmp_path / "root"
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfakefakefakefakefakefakefakefakefakefake owner@laptop"
    request.write_text(f"{key}\r\nnot a key\n")
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "ROOT_HOME": str(home), "SYSTEMCTL": str(bindir / "systemctl")}
    for _ in range(2):  # a second request with the same key adds it once
        res = subprocess.run([str(SBIN / "pbx-ssh-request"), str(request)], capture_output=True, text=True,
                             env=env, timeout=30, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr
        assert not request.exists()
        request.write_text(key + "\n")
    assert (home / ".ssh/authorized_keys").read_text() == key + "\n"
    assert stat.S_IMODE((home / ".ssh/authorized_keys").stat().st_mode) == 0o600
    log = calls.read_text()
    assert "systemctl enable ssh.service" in log and "systemctl start --no-block ssh.service" in log


def fake_sysfs(tmp_path: Path, disk_sectors: int, parts: list[tuple[int, int]]) -> Path:
    """/sys/class/block for an mmcblk0 holding the given (start, size) partitions."""
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices/mmcblk0"
    disk.mkdir(parents=True)
    (disk / "size").write_text(f"{disk_sectors}\n")
    block = sysfs / "class/block"
    block.mkdir(parents=True)
    (block / "mmcblk0").symlink_to(disk)
    for nr, (start, size) in enumerate(parts, 1):
        part = disk / f"mmcblk0p{nr}"
        part.mkdir()
        for key, value in (("partition", nr), ("start", start), ("size", size)):
            (part / key).write_text(f"{value}\n")
        (block / f"mmcblk0p{nr}").symlink_to(part)
    return sysfs


def run_grow(tmp_path: Path, sysfs: Path, device: str) -> tuple[subprocess.CompletedProcess, str]:
    bindir, calls = fake_commands(tmp_path, "sfdisk", "partx")
    res = subprocess.run([str(SBIN / "pbx-grow-data"), "/var/lib/pbx"], capture_output=True, text=True,
                         timeout=30, env={"PATH": f"{bindir}:{os.environ['PATH']}", "SYSFS": str(sysfs),
                                          "PBX_GROW_DEVICE": device})
    return res, calls.read_text() if calls.exists() else ""


def image_parts() -> list[tuple[int, int]]:
    _, parts = sfdisk_script()
    return [(int(p["start"]), int(p["size"])) for p in parts]


def test_grow_widens_the_last_partition_to_the_end_of_a_larger_card(tmp_path):
    card = 32 * 1000**3 // 512  # a "32 GB" card
    res, calls = run_grow(tmp_path, fake_sysfs(tmp_path, card, image_parts()), "/dev/mmcblk0p3")
    assert res.returncode == 0, res.stderr
    assert "sfdisk --quiet --no-reread --no-tell-kernel -N 3 /dev/mmcblk0 <, +>" in calls
    assert "partx --update --nr 3 /dev/mmcblk0" in calls


def test_grow_does_nothing_when_the_partition_reaches_the_end(tmp_path):
    parts = image_parts()
    start, size = parts[-1]
    res, calls = run_grow(tmp_path, fake_sysfs(tmp_path, start + size + 100, parts), "/dev/mmcblk0p3")
    assert res.returncode == 0 and calls == "" and "already reaches the end" in res.stdout


def test_grow_leaves_a_partition_that_is_not_the_last(tmp_path):
    parts = image_parts()
    res, calls = run_grow(tmp_path, fake_sysfs(tmp_path, 64 * 1000**3 // 512, parts), "/dev/mmcblk0p2")
    assert res.returncode == 0 and calls == "" and "not the last partition" in res.stdout


@pytest.mark.parametrize("doc", ["README.md"])
def test_image_readme_covers_boards_updates_and_build_needs(doc):
    text = (IMAGE / doc).read_text()
    for words in ("Pi 3", "Pi 4", "Pi 5", "Moving to a newer image", "pbx config export", "ssh",
                  "pbx.local", "boot-test", "disk", "minutes"):
        assert words in text, words


# --- moving to a newer image: update-card ------------------------------------------------------

def mbr(disk_id: int, parts: list[tuple[int, int, int, bool]]) -> bytes:
    """An MBR with (type, start, size, bootable) partitions, as sfdisk writes one."""
    sector = bytearray(512)
    sector[440:444] = disk_id.to_bytes(4, "little")
    for i, (kind, start, size, boot) in enumerate(parts):
        entry = bytes([0x80 if boot else 0, 0, 0, 0, kind, 0, 0, 0]) + start.to_bytes(4, "little") + size.to_bytes(4, "little")
        sector[446 + 16 * i:462 + 16 * i] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def small_layout(**sizes: str) -> list[tuple[int, int, int, bool]]:
    env = {"PBX_BOOT_MIB": "1", "PBX_ROOT_MIB": "2", "PBX_DATA_MIB": "1", **sizes}
    rows = [line.split() for line in layout("layout", **env).splitlines()]
    return [(int(r[3], 16), int(r[1]), int(r[2]), r[4] == "yes") for r in rows]


def disk(path: Path, table: bytes, total: int, fill: dict[int, bytes]) -> None:
    with open(path, "wb") as f:
        f.truncate(total)
        f.write(table)
        for offset, data in fill.items():
            f.seek(offset)
            f.write(data)


def test_update_card_writes_boot_and_root_and_keeps_the_table_and_the_data(tmp_path):
    import lzma

    parts = small_layout()
    (_, boot, _, _), (_, root, root_size, _), (_, data, _, _) = parts
    end = (parts[-1][1] + parts[-1][2]) * 512
    image = tmp_path / "new.img"
    disk(image, mbr(0x70627801, parts), end, {boot * 512: b"NEW BOOT", root * 512: b"NEW ROOT",
                                              (root + root_size) * 512 - 8: b"ROOT END", data * 512: b"EMPTY"})
    (tmp_path / "new.img.xz").write_bytes(lzma.compress(image.read_bytes()))
    card = tmp_path / "card"
    grown = [*parts[:2], (0x83, data, 40960 - data, False)]  # 20 MiB: the data partition took the card
    disk(card, mbr(0x70627801, grown), 40960 * 512, {boot * 512: b"OLD BOOT", root * 512: b"OLD ROOT",
                                                     data * 512: b"OFFICE DATA"})
    before = card.read_bytes()
    res = subprocess.run([sys.executable, str(IMAGE / "update-card"), str(tmp_path / "new.img.xz"), str(card), "--yes"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    after = card.read_bytes()
    assert after[:512] == before[:512]  # the table, with the grown data partition
    assert after[boot * 512:boot * 512 + 8] == b"NEW BOOT" and after[root * 512:root * 512 + 8] == b"NEW ROOT"
    assert after[(root + root_size) * 512 - 8:(root + root_size) * 512] == b"ROOT END"
    assert after[data * 512:] == before[data * 512:]  # the office's data untouched


def test_update_card_refuses_a_card_of_another_layout(tmp_path):
    parts = small_layout()
    image = tmp_path / "new.img"
    disk(image, mbr(0x70627801, parts), 8 * MIB, {})
    other = small_layout(PBX_ROOT_MIB="3")
    for name, table in (("other-root", mbr(0x70627801, other)), ("other-id", mbr(0x12345678, parts))):
        card = tmp_path / name
        disk(card, table, 16 * MIB, {})
        before = card.read_bytes()
        res = subprocess.run([sys.executable, str(IMAGE / "update-card"), str(image), str(card), "--yes"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and "update-card:" in res.stderr, res.stderr
        assert card.read_bytes() == before
