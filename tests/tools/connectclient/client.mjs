// A Connect client that hotpath did not write: @connectrpc/connect-node with
// the code @bufbuild/protoc-gen-es generates from hotpath's own .proto files
// (into ./gen, at test time; see tests/integration/test_connect_client.py).
//
//   node client.mjs call QUERIER_URL binary|json PLAN.json
//       Runs each call of PLAN.json ([{name, method, request}], the request
//       in proto3 JSON) through the generated QuerierService client over the
//       Connect protocol on HTTP/1.1, in application/proto (binary) or
//       application/json, and prints one JSON object:
//       {"calls": [{name, method, ok, response | error, strict}]}, where
//       response is the decoded answer re-encoded as proto3 JSON and strict
//       lists every way the answer's encoding departs from what the
//       generated code would write: unknown fields in binary mode; in JSON
//       mode, the same request is also sent raw and every key that is not
//       a field's lowerCamel JSON name, and every value that is not in its
//       canonical form (int64 as a string, enums by name), is listed.
//   node client.mjs span-pprof OUT TIME_NANOS
//       Writes a small gzipped CPU pprof whose samples carry `span_id` pprof
//       labels (built with the generated google.v1.Profile), as the
//       Pyroscope SDKs' span profiling does.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { create, fromJson, toBinary, toJson, toJsonString } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { QuerierService } from './gen/querier/v1/querier_pb.js';
import { ProfileSchema } from './gen/google/v1/profile_pb.js';

const CALL_TIMEOUT_MS = 30000;

// Paths to every message in v (a decoded message) that kept unknown fields.
function unknownFields(v, path, out) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => unknownFields(x, `${path}[${i}]`, out));
  } else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    if (Array.isArray(v.$unknown) && v.$unknown.length > 0) {
      out.push(`${path}: unknown field numbers ${v.$unknown.map((u) => u.no).join(',')}`);
    }
    for (const [k, x] of Object.entries(v)) {
      if (k !== '$unknown' && k !== '$typeName') unknownFields(x, `${path}.${k}`, out);
    }
  }
}

// Where raw (the server's JSON) differs from canon (the same message as the
// generated code writes it, defaults included). A key canon lacks is not a
// proto3 JSON name; null is allowed for any field.
function jsonDiffs(raw, canon, path, out) {
  if (raw === null) return;
  if (Array.isArray(raw)) {
    if (!Array.isArray(canon)) { out.push(`${path}: a list where ${JSON.stringify(canon)} belongs`); return; }
    raw.forEach((x, i) => jsonDiffs(x, canon[i], `${path}[${i}]`, out));
  } else if (typeof raw === 'object') {
    if (canon === null || typeof canon !== 'object' || Array.isArray(canon)) {
      out.push(`${path}: an object where ${JSON.stringify(canon)} belongs`);
      return;
    }
    for (const k of Object.keys(raw)) {
      if (!(k in canon)) out.push(`${path}.${k}: not a field's proto3 JSON name`);
      else jsonDiffs(raw[k], canon[k], `${path}.${k}`, out);
    }
  } else if (raw !== canon) {
    out.push(`${path}: ${JSON.stringify(raw)} (${typeof raw}), canonical ${JSON.stringify(canon)} (${typeof canon})`);
  }
}

// Sends req raw as JSON and lists where the answer is not canonical proto3 JSON.
async function strictJson(baseUrl, method, req) {
  const r = await fetch(`${baseUrl}/${QuerierService.typeName}/${method.name}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1' },
    body: toJsonString(method.input, req),
  });
  const text = await r.text();
  if (r.status !== 200) return [`raw JSON request: HTTP ${r.status} ${text.slice(0, 200)}`];
  const raw = JSON.parse(text);
  const msg = fromJson(method.output, raw, { ignoreUnknownFields: true });
  const out = [];
  jsonDiffs(raw, toJson(method.output, msg, { alwaysEmitImplicit: true }), method.output.typeName, out);
  return out;
}

async function runCall(client, baseUrl, binary, call) {
  const method = QuerierService.methods.find((m) => m.name === call.method);
  if (!method) return { name: call.name, method: call.method, ok: false, error: { code: 'client', message: 'no such method in the generated service' } };
  const req = fromJson(method.input, call.request);
  const res = { name: call.name, method: call.method, ok: false, strict: [] };
  try {
    const answer = await client[method.localName](req, { timeoutMs: CALL_TIMEOUT_MS });
    res.ok = true;
    res.response = toJson(method.output, answer);
    if (binary) unknownFields(answer, method.output.typeName, res.strict);
  } catch (e) {
    const ce = ConnectError.from(e);
    res.error = { code: Code[ce.code], message: ce.rawMessage };
    return res;
  }
  if (!binary) res.strict = await strictJson(baseUrl, method, req);
  return res;
}

async function callAll(baseUrl, mode, planFile) {
  const binary = mode === 'binary';
  const transport = createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: binary });
  const client = createClient(QuerierService, transport);
  const calls = [];
  for (const call of JSON.parse(readFileSync(planFile, 'utf8'))) {
    calls.push(await runCall(client, baseUrl, binary, call));
  }
  process.stdout.write(JSON.stringify({ mode, calls }) + '\n');
}

// A CPU profile: main → handler → work and main → idle, with span ids on
// some samples (16 hex digits, as the SDKs' span profiling writes them).
function spanPprof(out, timeNanos) {
  const strings = ['', 'cpu', 'nanoseconds', 'main', 'handler', 'work', 'idle', 'span_id',
    '9a3f5c1e7b2d4086', '0b1c2d3e4f5a6b7c', '77e1d2c3b4a59687', 'main.go'];
  const s = (x) => BigInt(strings.indexOf(x));
  const fns = ['main', 'handler', 'work', 'idle'];
  const sample = (stack, value, span) => ({
    locationId: stack.map((f) => BigInt(fns.indexOf(f) + 1)),
    value: [BigInt(value)],
    label: span ? [{ key: s('span_id'), str: s(span) }] : [],
  });
  const p = create(ProfileSchema, {
    sampleType: [{ type: s('cpu'), unit: s('nanoseconds') }],
    periodType: { type: s('cpu'), unit: s('nanoseconds') },
    period: 10000000n,
    timeNanos: BigInt(timeNanos),
    durationNanos: 10000000000n,
    stringTable: strings,
    function: fns.map((f, i) => ({ id: BigInt(i + 1), name: s(f), systemName: s(f), filename: s('main.go') })),
    location: fns.map((f, i) => ({ id: BigInt(i + 1), address: BigInt(0x1000 + i * 16), line: [{ functionId: BigInt(i + 1), line: BigInt(10 + i) }] })),
    sample: [
      sample(['work', 'handler', 'main'], 30000000, '9a3f5c1e7b2d4086'),
      sample(['idle', 'main'], 50000000, '0b1c2d3e4f5a6b7c'),
      sample(['handler', 'main'], 70000000, null),
      sample(['work', 'handler', 'main'], 20000000, '77e1d2c3b4a59687'),
    ],
  });
  writeFileSync(out, gzipSync(toBinary(ProfileSchema, p)));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'call' && args.length === 3) {
  await callAll(args[0], args[1], args[2]);
} else if (cmd === 'span-pprof' && args.length === 2) {
  spanPprof(args[0], args[1]);
} else {
  process.stderr.write('usage: node client.mjs call URL binary|json PLAN.json | span-pprof OUT TIME_NANOS\n');
  process.exit(2);
}
