#!/usr/bin/env bash
# The image's disk layout and the boot files that name it: one place for both, so the partition
# table, /etc/fstab, cmdline.txt and raspi-firmware's settings cannot disagree.
# `image/build` sources this file; run it to print what the build would write:
#   image/layout.sh sfdisk            the partition table, as an sfdisk script
#   image/layout.sh table             the same for people: partition, start, size, type, mount
#   image/layout.sh fstab             /etc/fstab of the root file system
#   image/layout.sh cmdline           /boot/firmware/cmdline.txt
#   image/layout.sh raspi-defaults    /etc/default/raspi-firmware (what regenerates cmdline.txt
#                                     whenever a new kernel is installed)
# Sizes come from the environment (MiB): PBX_BOOT_MIB, PBX_ROOT_MIB, PBX_DATA_MIB.

# MBR (dos) label: the Raspberry Pi 3's boot ROM reads only MBR, and a Pi 4 reads GPT only with
# a newer EEPROM. Partition UUIDs on MBR are "<disk id>-<nn>". The disk id is the same for every
# image: a card updated with a newer image's boot and root partitions keeps booting with the same
# PARTUUIDs (image/README.md, "Moving to a newer image").
PBX_DISK_ID=${PBX_DISK_ID:-0x70627801}
PBX_SECTOR=512
# Partitions start on 4 MiB boundaries: SD cards erase in blocks of up to 4 MiB.
PBX_ALIGN_MIB=4
PBX_BOOT_MIB=${PBX_BOOT_MIB:-512}   # firmware, two kernels and initrds during an upgrade
PBX_ROOT_MIB=${PBX_ROOT_MIB:-3072}  # Debian, the kernel's modules, /opt/pbx and its build tools
PBX_DATA_MIB=${PBX_DATA_MIB:-256}   # grows to the end of the card on the first boot
PBX_BOOT_LABEL=PBX-BOOT
PBX_ROOT_LABEL=pbx-root
PBX_DATA_LABEL=pbx-data
PBX_DATA_MOUNT=/var/lib/pbx

pbx_mib_sectors() { echo $(( $1 * 1024 * 1024 / PBX_SECTOR )); }

# "nr start size type bootable label fstype mountpoint", one line per partition, in sectors.
pbx_layout() {
  local start size
  start=$(pbx_mib_sectors "$PBX_ALIGN_MIB")
  size=$(pbx_mib_sectors "$PBX_BOOT_MIB")
  echo "1 $start $size c yes $PBX_BOOT_LABEL vfat /boot/firmware"
  start=$(( start + size )); size=$(pbx_mib_sectors "$PBX_ROOT_MIB")
  echo "2 $start $size 83 no $PBX_ROOT_LABEL ext4 /"
  start=$(( start + size )); size=$(pbx_mib_sectors "$PBX_DATA_MIB")
  echo "3 $start $size 83 no $PBX_DATA_LABEL ext4 $PBX_DATA_MOUNT"
}

# Bytes of the whole image: the last partition's end.
pbx_image_bytes() {
  local _nr start size _rest
  read -r _nr start size _rest < <(pbx_layout | tail -n 1)
  echo $(( (start + size) * PBX_SECTOR ))
}

pbx_partuuid() { printf '%08x-%02d' "$PBX_DISK_ID" "$1"; }

pbx_sfdisk() {
  echo "label: dos"
  echo "label-id: $PBX_DISK_ID"
  echo "unit: sectors"
  echo "sector-size: $PBX_SECTOR"
  echo
  pbx_layout | while read -r nr start size type boot _label _fs _mnt; do
    line="start=$start, size=$size, type=$type"
    [ "$boot" = yes ] && line="$line, bootable"
    echo "$line"
  done
}

pbx_table() {
  printf '%-4s %-10s %-10s %-8s %-5s %-5s %-9s %s\n' part start_MiB size_MiB type boot fs label mount
  pbx_layout | while read -r nr start size type boot label fs mnt; do
    printf '%-4s %-10s %-10s %-8s %-5s %-5s %-9s %s\n' "p$nr" $(( start * PBX_SECTOR / 1048576 )) \
      $(( size * PBX_SECTOR / 1048576 )) "0x$type" "$boot" "$fs" "$label" "$mnt"
  done
  echo "image: $(( $(pbx_image_bytes) / 1048576 )) MiB; p3 grows to the end of the card on the first boot"
}

pbx_fstab() {
  echo "# <file system>  <mount point>  <type>  <options>  <dump>  <pass>"
  echo "# By partition UUID: <disk id>-<partition number> (image/layout.sh)."
  echo "PARTUUID=$(pbx_partuuid 2)  /  ext4  defaults,noatime,errors=remount-ro  0  1"
  # umask: the boot partition holds the first-login password file (pbx-first-login) and the ssh
  # request; only root reads them on the running system.
  echo "PARTUUID=$(pbx_partuuid 1)  /boot/firmware  vfat  defaults,noatime,umask=0077  0  2"
  # The office's data: its own partition, so a new root file system keeps it. pbx-grow-data
  # widens the partition to the card's end before the mount; x-systemd.growfs then grows ext4.
  echo "PARTUUID=$(pbx_partuuid 3)  $PBX_DATA_MOUNT  ext4  defaults,noatime,x-systemd.requires=pbx-grow-data.service,x-systemd.growfs  0  2"
}

# Consoles: the serial header first, the screen (HDMI) last, so boot messages and an emergency
# shell appear on the screen of an office without a serial cable.
PBX_CONSOLES="ttyS1,115200 tty0"

pbx_raspi_defaults() {
  echo "# Written by image/build (image/layout.sh): raspi-firmware reads it to write"
  echo "# /boot/firmware/cmdline.txt and config.txt whenever a kernel is installed."
  echo "ROOTPART=PARTUUID=$(pbx_partuuid 2)"
  echo "CONSOLES=\"$PBX_CONSOLES\""
  # No cma= on the command line: its default (64M) is wrong for a Pi 4, and the device tree's own
  # region serves the other boards.
  echo "CMA=0"
  echo "KERNEL=auto"
  echo "INITRAMFS=auto"
}

# The line raspi-firmware writes from pbx_raspi_defaults (its z50-raspi-firmware hook:
# consoles, root, "rw fsck.repair=yes net.ifnames=0", cma, rootwait, extra), with single spaces.
pbx_cmdline() {
  local consoles="" c
  for c in $PBX_CONSOLES; do consoles="$consoles console=$c"; done
  echo "${consoles# } root=PARTUUID=$(pbx_partuuid 2) rw fsck.repair=yes net.ifnames=0 rootwait"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    sfdisk) pbx_sfdisk ;;
    table) pbx_table ;;
    fstab) pbx_fstab ;;
    cmdline) pbx_cmdline ;;
    raspi-defaults) pbx_raspi_defaults ;;
    layout) pbx_layout ;;
    bytes) pbx_image_bytes ;;
    *) echo "usage: $0 sfdisk|table|fstab|cmdline|raspi-defaults|layout|bytes" >&2; exit 2 ;;
  esac
fi
