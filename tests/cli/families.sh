#!/bin/bash
# families.sh — every torchvision model family (tools/families.py's table) through torch2net and
# onnx2net, `netc run`, -O0 and -O2 against PyTorch at small input sizes, and the families the
# language cannot express refused with their reason (tests/models/test_families.py, about 2 min
# on 2 cores). Usage: bash families.sh NETC SRC_DIR [FAMILY...]; exit 77 (skipped) when
# /usr/bin/python3 has no torch, torchvision or onnx.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import onnx, torch, torchvision' 2>/dev/null; then
    echo "families.sh: $PY has no onnx/torch/torchvision (Debian: python3-onnx python3-torchvision): skipped" >&2
    exit 77
fi
exec "$PY" "$2/tests/models/test_families.py" "$@"
