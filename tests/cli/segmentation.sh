#!/bin/bash
# segmentation.sh NETC SRC_DIR — examples/segmentation (torchvision's DeepLabV3 converted,
# compiled and run from Python) at small sizes against PyTorch: tests/models/test_segmentation.py.
# Exit 77 (ctest: skipped) when /usr/bin/python3 lacks torch, torchvision, numpy or PIL, and in a
# sanitizer build (a whole model against PyTorch, like models.sh: the plain build runs it).
set -u
netc=$1 src=$2
PY=/usr/bin/python3
if ! "$PY" -c 'import torch, torchvision, numpy, PIL' 2>/dev/null; then
    echo "segmentation: skipped: $PY lacks torch/torchvision/numpy/PIL" \
         "(apt-get install python3-torchvision python3-pil)"
    exit 77
fi
lib=$(dirname "$netc")/libnetrt.so.3
if readelf -d "$lib" 2>/dev/null | grep -q libasan; then
    echo "segmentation: skipped in a sanitizer build (the plain build runs it)"
    exit 77
fi
export NETC_BIN=$netc NETC_LIBNETRT=$lib PYTHONDONTWRITEBYTECODE=1
exec "$PY" "$src/tests/models/test_segmentation.py" "$src"
