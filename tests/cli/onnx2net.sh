#!/bin/bash
# onnx2net.sh — tools/onnx2net.py end to end: torchvision models and PyTorch modules exported to
# ONNX (opsets 11 to 17), converted, run by `netc run` and compiled at -O0 and -O2, against
# PyTorch; external data; refusals (tests/models/test_onnx2net.py).
# Usage: bash onnx2net.sh NETC SRC_DIR.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import onnx, torch, torchvision' 2>/dev/null; then
    echo "onnx2net.sh: $PY has no onnx/torch/torchvision (Debian: python3-onnx python3-torchvision)" >&2
    exit 1
fi
exec "$PY" "$2/tests/models/test_onnx2net.py" "$1" "$2"
