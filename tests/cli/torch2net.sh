#!/bin/bash
# torch2net.sh — tools/torch2net.py's own tests (mapping, naming, refusals, CLI exit status):
# tests/models/test_torch2net.py. Usage: bash torch2net.sh NETC SRC_DIR (NETC is not needed).
set -u
SRC=$2
exec /usr/bin/python3 "$SRC/tests/models/test_torch2net.py" "$SRC"
