#!/bin/bash
# torch2net.sh — tools/torch2net.py's own tests (mapping, naming, refusals, CLI exit status):
# tests/models/test_torch2net.py. Usage: bash torch2net.sh NETC SRC_DIR (NETC runs one converted
# model; the rest needs no netc).
set -u
SRC=$2
NETC=$1 exec /usr/bin/python3 "$SRC/tests/models/test_torch2net.py" "$SRC"
