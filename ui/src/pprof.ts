// A small pprof reader for the single-profile view: GET /api/v1/profile
// answers one profile as gzipped pprof, which becomes a call tree here
// (functions by name, inlined frames as frames of their own, as the
// server's flame graphs show them).
import { addStack, newTree, type TreeNode } from "./flame/tree";

export interface Pprof {
  sampleTypes: { type: string; unit: string }[];
  samples: { locs: number[]; values: number[] }[];
  locations: Map<number, { address: number; lines: number[] }>; // function IDs, leaf-most first
  functions: Map<number, string>;
}

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array, readonly end = b.length) {}
  varint(): number {
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("pprof: truncated varint");
      const c = this.b[this.pos++];
      x += (c & 0x7f) * mul;
      if (c < 0x80) return x;
      mul *= 128;
    }
    throw new Error("pprof: varint too long");
  }
  sub(): Reader {
    const n = this.varint();
    if (this.pos + n > this.end) throw new Error("pprof: truncated field");
    const r = new Reader(this.b, this.pos + n);
    r.pos = this.pos;
    this.pos += n;
    return r;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos = this.sub().end;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`pprof: wire type ${wire}`);
  }
  /** Reads a repeated varint field, packed or not, into out. */
  varints(wire: number, out: number[]): void {
    if (wire !== 2) {
      out.push(this.varint());
      return;
    }
    const r = this.sub();
    while (r.pos < r.end) out.push(r.varint());
  }
}

const text = new TextDecoder();

/** Decodes an uncompressed pprof. */
export function decodePprof(buf: Uint8Array): Pprof {
  const strings: string[] = [];
  const sampleTypes: [number, number][] = [];
  const samples: { locs: number[]; values: number[] }[] = [];
  const locations = new Map<number, { address: number; lines: number[] }>();
  const funcNames = new Map<number, number>();
  const r = new Reader(buf);
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) sampleTypes.push(valueType(r.sub()));
    else if (field === 2 && wire === 2) samples.push(sample(r.sub()));
    else if (field === 4 && wire === 2) location(r.sub(), locations);
    else if (field === 5 && wire === 2) func(r.sub(), funcNames);
    else if (field === 6 && wire === 2) {
      const s = r.sub();
      strings.push(text.decode(buf.subarray(s.pos, s.end)));
    } else r.skip(wire);
  }
  const str = (i: number) => strings[i] ?? "";
  const functions = new Map<number, string>();
  for (const [id, nameIdx] of funcNames) functions.set(id, str(nameIdx));
  return { sampleTypes: sampleTypes.map(([t, u]) => ({ type: str(t), unit: str(u) })), samples, locations, functions };
}

function valueType(r: Reader): [number, number] {
  let t = 0;
  let u = 0;
  while (r.pos < r.end) {
    const key = r.varint();
    if (key === (1 << 3)) t = r.varint();
    else if (key === (2 << 3)) u = r.varint();
    else r.skip(key & 7);
  }
  return [t, u];
}

function sample(r: Reader): { locs: number[]; values: number[] } {
  const locs: number[] = [];
  const raw: number[] = [];
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    if (field === 1) r.varints(key & 7, locs);
    else if (field === 2) r.varints(key & 7, raw);
    else r.skip(key & 7);
  }
  // int64 values arrive as two's complement varints; profiles hold none below 0 in practice
  const values = raw.map((v) => (v >= 2 ** 63 ? v - 2 ** 64 : v));
  return { locs, values };
}

function location(r: Reader, out: Map<number, { address: number; lines: number[] }>): void {
  let id = 0;
  let address = 0;
  const lines: number[] = [];
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    if (field === 1 && (key & 7) === 0) id = r.varint();
    else if (field === 3 && (key & 7) === 0) address = r.varint();
    else if (field === 4 && (key & 7) === 2) {
      const l = r.sub();
      while (l.pos < l.end) {
        const k = l.varint();
        if (k === (1 << 3)) lines.push(l.varint());
        else l.skip(k & 7);
      }
    } else r.skip(key & 7);
  }
  out.set(id, { address, lines });
}

function func(r: Reader, out: Map<number, number>): void {
  let id = 0;
  let name = 0;
  while (r.pos < r.end) {
    const key = r.varint();
    if (key === (1 << 3)) id = r.varint();
    else if (key === (2 << 3)) name = r.varint();
    else r.skip(key & 7);
  }
  out.set(id, name);
}

/** The index of the sample type a profile type ID names
 * (name:sample_type:sample_unit:…), else the last one. */
export function sampleIndex(p: Pprof, typeId: string): number {
  const [, type, unit] = typeId.split(":");
  const i = p.sampleTypes.findIndex((t) => t.type === type && t.unit === unit);
  return i >= 0 ? i : p.sampleTypes.length - 1;
}

/** The call tree of one sample type: root-first frames, a location's
 * inlined lines outermost first; a location without lines is its address. */
export function pprofToTree(p: Pprof, index: number): TreeNode {
  const root = newTree("total");
  for (const s of p.samples) {
    const v = s.values[index] ?? 0;
    if (v === 0) continue;
    const frames: string[] = [];
    for (let i = s.locs.length - 1; i >= 0; i--) {
      const loc = p.locations.get(s.locs[i]);
      if (!loc) continue;
      if (loc.lines.length === 0) frames.push("0x" + loc.address.toString(16));
      for (let k = loc.lines.length - 1; k >= 0; k--) frames.push(p.functions.get(loc.lines[k]) ?? "?");
    }
    addStack(root, frames, v);
  }
  return root;
}

/** Gunzips a body (Chromium and Node both have DecompressionStream). */
export async function gunzip(data: ArrayBuffer): Promise<Uint8Array> {
  const u8 = new Uint8Array(data);
  if (u8.length < 2 || u8[0] !== 0x1f || u8[1] !== 0x8b) return u8;
  const stream = new Blob([u8]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
