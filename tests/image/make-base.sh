#!/bin/sh
# A stand-in for the Dockerfile's python base image, for tests/test_image.py:
# Debian 12 (bookworm) from the Debian mirror, with Debian's Python 3.11, as a
# tarball that `podman import` turns into an image. The test uses it where the
# image registry cannot be reached; the Dockerfile takes it as --build-arg BASE.
#
#   tests/image/make-base.sh OUT.tar [MIRROR [PACKAGE...]]
#
# MIRROR defaults to the Debian mirror apt uses here. PACKAGEs are installed
# too: the compose stack's stand-ins for its postgres and prometheus images are
# this base with Debian's postgresql and prometheus. The tarball holds no
# package lists, and its sources.list names MIRROR, which the builder stage's
# apt-get update reads. Needs root and debootstrap. The test caches the tarball
# keyed by this file's content: any edit here builds a new one.
set -eu

out=${1:?usage: make-base.sh OUT.tar [MIRROR [PACKAGE...]]}
mirror=${2:-http://deb.debian.org/debian}
shift $(($# < 2 ? $# : 2))
extra=$(echo "$@" | tr ' ' ',')
root=$(mktemp -d "${TMPDIR:-/tmp}/loadgen-base.XXXXXX")
trap 'rm -rf "$root"' EXIT

# minbase: essential packages and apt. What the official python image also has
# and the Dockerfile uses: python3 and venv (with ensurepip's pip wheel),
# useradd/groupadd (passwd), the CA bundle (ca-certificates).
debootstrap --variant=minbase \
    --include=python3,python3-venv,passwd,ca-certificates${extra:+,$extra} \
    bookworm "$root" "$mirror" >&2

chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
# The image's /etc/resolv.conf and hostname are the engine's, at run time.
: > "$root/etc/resolv.conf"

# Numeric owners: the build host's user names must not remap the image's.
tar --sort=name --numeric-owner --one-file-system -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
