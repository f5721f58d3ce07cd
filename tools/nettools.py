"""nettools.py — small helpers shared by the Python tools: safetensors and .npy writers that need
only numpy (no safetensors package on Debian 12)."""
import json
import struct

import numpy as np


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float32 written as F32). Sorted by name, like the
    reference implementation."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name], dtype=np.float32))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_npy(path, a):
    np.save(path, np.ascontiguousarray(np.asarray(a, dtype="<f4")))
