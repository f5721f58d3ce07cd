#!/bin/bash
# onnx_conformance.sh — ONNX's own node test cases through tools/onnx2net.py, `netc run` and the
# compiled .so, against ONNX's reference outputs: the first cases of every mapped op
# (tests/models/onnx_conformance.py; pass --all there for every case).
# Usage: bash onnx_conformance.sh NETC SRC_DIR.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import onnx' 2>/dev/null; then
    echo "onnx_conformance.sh: $PY has no onnx (Debian: python3-onnx)" >&2
    exit 1
fi
exec "$PY" "$2/tests/models/onnx_conformance.py" "$1" "$2"
