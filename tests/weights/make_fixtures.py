"""make_fixtures.py — writes the safetensors and .npy fixtures of tests/weights and the fuzzers' seed
corpora, with numpy and PyTorch as the reference for dtype conversion and the .npy format.
Run with /usr/bin/python3 (it needs numpy and torch); the outputs are committed, so this runs
only when they change. Deterministic."""
import io
import json
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ST = os.path.join(ROOT, "tests", "fixtures", "st")
NPY = os.path.join(ROOT, "tests", "fixtures", "npy")
CST = os.path.join(ROOT, "tests", "fuzz", "corpus_safetensors")
CNPY = os.path.join(ROOT, "tests", "fuzz", "corpus_npy")


def st_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes), in data order."""
    header, off, blobs = {}, 0, []
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def torch_raw(t):
    """little-endian bytes of a tensor of any dtype (bf16 has no numpy dtype: view as int16)"""
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    return t.contiguous().numpy().tobytes()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def dtypes_file():
    # half: normals, the smallest and largest subnormal, max, infinities, NaN, signed zero
    f16 = torch.tensor([1.0, -2.5, 1 / 3, 65504.0, 2.0 ** -24, 2.0 ** -14 - 2.0 ** -24,
                        3 * 2.0 ** -24, -(2.0 ** -20), float("inf"), float("-inf"),
                        float("nan"), -0.0], dtype=torch.float16)
    # bfloat16: the same classes at bf16's range (subnormals below 2^-126)
    bf16 = torch.tensor([1.0, -2.5, 1 / 3, 3.0e38, 2.0 ** -133, 2.0 ** -127, -(2.0 ** -130),
                         1.17549435e-38, float("inf"), float("-inf"), float("nan"), -0.0],
                        dtype=torch.bfloat16)
    f64 = torch.tensor([1.0, 1 / 3, -1e-40, 1e300, -1e300, 2.0 ** -149, 0.1, float("nan")],
                       dtype=torch.float64)
    f32 = torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1
    cnt = torch.tensor(7, dtype=torch.int64)
    with np.errstate(over="ignore"):  # 1e300 narrows to inf on purpose
        f64_narrow = np.asarray(f64.numpy(), dtype=np.float32).tobytes()
    items = [
        ("bf16", "BF16", [3, 4], torch_raw(bf16.reshape(3, 4))),
        ("bf16_ref", "F32", [3, 4], torch_raw(bf16.float().reshape(3, 4))),
        ("bn.num_batches_tracked", "I64", [], torch_raw(cnt)),
        ("f16", "F16", [12], torch_raw(f16)),
        ("f16_ref", "F32", [12], torch_raw(f16.float())),
        ("f32", "F32", [2, 3], torch_raw(f32)),
        ("f64", "F64", [8], torch_raw(f64)),
        ("f64_ref", "F32", [8], f64_narrow),
    ]
    # odd-sized I64 after F16 puts later tensors at unaligned offsets: the reader must not care
    return st_bytes(items, metadata={"format": "pt", "source": "make_fixtures.py"})


def npy_bytes(a, version=None, fortran=False):
    b = io.BytesIO()
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    a = np.asfortranarray(a) if fortran else np.require(a, requirements="C")
    np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def main():
    d = dtypes_file()
    write(os.path.join(ST, "dtypes.safetensors"), d)
    write(os.path.join(CST, "dtypes.safetensors"), d)
    rng = np.random.default_rng(1)
    small = st_bytes([("c1.weight", "F32", [2, 1, 1, 1], rng.standard_normal(2).astype("<f4").tobytes()),
                      ("c1.bias", "F32", [2], rng.standard_normal(2).astype("<f4").tobytes())])
    write(os.path.join(CST, "small.safetensors"), small)
    write(os.path.join(CST, "empty.safetensors"), st_bytes([]))
    write(os.path.join(CST, "zero_dim.safetensors"),
          st_bytes([("a", "F32", [0, 3], b""), ("b", "F16", [1], b"\x00\x3c")]))
    h = (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
         b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
    write(os.path.join(CST, "overlap.safetensors"), struct.pack("<Q", len(h)) + h + bytes(8))
    write(os.path.join(CST, "bad_json.safetensors"), struct.pack("<Q", 8) + b'{"a":{  ')

    x = (np.arange(24, dtype="<f4").reshape(2, 3, 4) - 12) / 8
    npys = {
        "v1_2x3x4.npy": npy_bytes(x, (1, 0)),
        "v2_2x3x4.npy": npy_bytes(x, (2, 0)),
        "v3_2x3x4.npy": npy_bytes(x, (3, 0)),
        "v1_scalar.npy": npy_bytes(np.array(2.5, dtype="<f4"), (1, 0)),
        "v1_vec5.npy": npy_bytes(np.arange(5, dtype="<f4"), (1, 0)),
        "v1_empty.npy": npy_bytes(np.zeros((0, 3), dtype="<f4"), (1, 0)),
        "f8.npy": npy_bytes(np.arange(3, dtype="<f8"), (1, 0)),
        "be_f4.npy": npy_bytes(np.arange(3, dtype=">f4"), (1, 0)),
        "fortran.npy": npy_bytes(np.arange(6, dtype="<f4").reshape(2, 3), (1, 0), fortran=True),
    }
    v1 = npys["v1_2x3x4.npy"]
    npys["truncated.npy"] = v1[:-5]
    npys["trailing.npy"] = v1 + b"\0\0\0\0"
    npys["bad_magic.npy"] = b"\x93NUMPX" + v1[6:]
    for name, data in npys.items():
        write(os.path.join(NPY, name), data)
        write(os.path.join(CNPY, name), data)


if __name__ == "__main__":
    main()
