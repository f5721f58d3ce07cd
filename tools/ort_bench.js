// ort_bench.js — times an ONNX model in ONNX Runtime (the npm package onnxruntime-node, CPU
// execution provider) for tools/bench.py.
//
//   node ort_bench.js MODEL.onnx INPUT.npy [--threads T] [--runs N] [--warmup K] [--output OUT.npy]
//       one block: prints one JSON object {threads, runs, warmup, latency_ms: {median, p10, p90,
//       min}}; --output writes the (first) output of one run as float32 .npy.
//   node ort_bench.js MODEL.onnx INPUT.npy --serve [--output OUT.npy]
//       stays up and reads lines "T N K" on stdin; answers each with one such JSON line (the
//       session for T threads is created on first use and kept), so that bench.py can alternate
//       ONNX Runtime with the other contenders without paying session creation every block.
//       Prints {"ready": true, "version": ...} once the model is loaded.
//
// Sessions: intraOpNumThreads = T, interOpNumThreads = 1, executionMode 'sequential',
// graphOptimizationLevel 'all'. The model must have one input (named by the .onnx) fed from
// INPUT.npy (float32, C order). Finds onnxruntime-node through ORT_NODE_DIR (the folder holding
// node_modules/onnxruntime-node) or the normal require() search.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

function loadOrt() {
  const dir = process.env.ORT_NODE_DIR;
  if (dir) return require(path.join(dir, 'node_modules', 'onnxruntime-node'));
  return require('onnxruntime-node');
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not an .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${file}: not little-endian float32`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').map(s => s.trim())
    .filter(s => s.length).map(Number);
  const off = hstart + hlen;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(off + 4 * i);
  return { shape, data };
}

function writeNpy(file, dims, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = { threads: 1, runs: 30, warmup: 3, serve: false, output: null };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--threads') opt.threads = Number(argv[++i]);
    else if (a === '--runs') opt.runs = Number(argv[++i]);
    else if (a === '--warmup') opt.warmup = Number(argv[++i]);
    else if (a === '--output') opt.output = argv[++i];
    else if (a === '--serve') opt.serve = true;
    else pos.push(a);
  }
  if (pos.length !== 2) {
    process.stderr.write('usage: ort_bench.js MODEL.onnx INPUT.npy [--threads T] [--runs N] ' +
                         '[--warmup K] [--output OUT.npy] [--serve]\n');
    process.exit(2);
  }
  const ort = loadOrt();
  const [modelPath, inputPath] = pos;
  const x = readNpy(inputPath);
  const sessions = new Map();
  async function session(threads) {
    if (!sessions.has(threads)) {
      sessions.set(threads, await ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all', executionProviders: ['cpu'],
      }));
    }
    return sessions.get(threads);
  }
  async function block(threads, runs, warmup) {
    const s = await session(threads);
    const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) };
    for (let i = 0; i < warmup; i++) await s.run(feeds);
    const ts = [];
    for (let i = 0; i < runs; i++) {
      const t = process.hrtime.bigint();
      await s.run(feeds);
      ts.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    ts.sort((a, b) => a - b);
    return { threads, runs, warmup, latency_ms: { median: quantile(ts, 0.5), p10: quantile(ts, 0.1),
                                                  p90: quantile(ts, 0.9), min: ts[0] } };
  }
  if (opt.output) {
    const s = await session(opt.threads);
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
    const y = r[s.outputNames[0]];
    writeNpy(opt.output, y.dims, y.data);
  }
  if (!opt.serve) {
    process.stdout.write(JSON.stringify(await block(opt.threads, opt.runs, opt.warmup)) + '\n');
    return;
  }
  process.stdout.write(JSON.stringify({ ready: true, version: ort.env.versions }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length !== 3 || f.some(Number.isNaN)) {
      process.stdout.write(JSON.stringify({ error: `bad request: ${line}` }) + '\n');
      continue;
    }
    process.stdout.write(JSON.stringify(await block(f[0], f[1], f[2])) + '\n');
  }
}

main().catch(e => {
  process.stderr.write(`ort_bench.js: ${e && e.stack || e}\n`);
  process.exit(1);
});
