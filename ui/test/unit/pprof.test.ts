import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeLayout } from "../../src/flame/layout";
import { functionStats, treeToFlamegraph } from "../../src/flame/tree";
import { decodePprof, pprofToTree, sampleIndex } from "../../src/pprof";


const testdata = process.env.HP_TESTDATA ?? join(process.cwd(), "..", "..", "shared", "testdata");
const file = join(testdata, "corpus", "go", "go_mix.cpu.pb.gz");

describe("pprof reader on a real Go CPU profile", () => {
  const p = decodePprof(new Uint8Array(gunzipSync(readFileSync(file))));
  const summary = JSON.parse(readFileSync(file + ".ref/summary.json", "utf8"));

  it("reads the sample types and every sample", () => {
    expect(p.sampleTypes.map((t) => t.type)).toEqual(summary.sample_types.map((t: { type: string }) => t.type));
    expect(p.samples.length).toBe(summary.num_samples);
  });

  it("gives the same total and top function as go tool pprof", () => {
    const idx = sampleIndex(p, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    expect(p.sampleTypes[idx].type).toBe("cpu");
    const fg = treeToFlamegraph(pprofToTree(p, idx));
    const ref = summary.per_sample_type[idx];
    expect(fg.total).toBe(ref.total_pprof_top);
    const top = functionStats(decodeLayout(fg))[0];
    const refTop = ref.top10_flat[0];
    expect(top.name).toBe(refTop.name.replace(/ \(inline\)$/, ""));
    expect(top.self).toBe(Number(String(refTop.flat).replace(/\D+$/, "")));
  });
});
