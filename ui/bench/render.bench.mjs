// Flame graph render benchmark: the built UI in headless Chromium, with
// the API answered by synthetic flame graphs of exactly N nodes (so the
// figures are the browser's alone: JSON, layout, table, canvas). Prints,
// per size, the time from navigation to the drawn flame graph, the
// layout, table and first-draw costs, and the median redraw for a zoom,
// a search and a hover.
//
//   node render.bench.mjs UI_DIR [8192 100000 …]
import { readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const [dir, ...sizesArg] = process.argv.slice(2);
const sizes = sizesArg.length ? sizesArg.map(Number) : [8192, 100000];
const TYPE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/** A deterministic call tree of exactly n nodes in the levels encoding
 * (proto3 JSON: int64 as strings): fan-out 1–6 with widths within a
 * factor of 3 of each other, 5 % self per node, names reused across the tree like real functions. */
function flamegraph(n) {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const names = ["total"];
  const nameCount = Math.max(50, Math.floor(n / 4));
  for (let i = 1; i <= nameCount; i++) names.push(`pkg${i % 97}/module.Function${i}`);
  const root = { name: 0, total: 1e12, children: [] };
  const queue = [root];
  let made = 1;
  while (made < n && queue.length) {
    const node = queue.shift();
    const k = Math.min(1 + Math.floor(rnd() * 6), n - made);
    let left = Math.floor(node.total * 0.95);
    const even = left / k;
    for (let i = 0; i < k && left > k; i++) {
      const share = i === k - 1 ? left : Math.min(left, Math.floor(even * (0.5 + rnd())));
      left -= share;
      const c = { name: 1 + Math.floor(rnd() * nameCount), total: share, children: [] };
      node.children.push(c);
      queue.push(c);
      made++;
    }
  }
  const levels = [];
  const ends = [];
  const walk = (node, depth, x) => {
    levels[depth] ??= [];
    ends[depth] ??= 0;
    const self = node.total - node.children.reduce((a, c) => a + c.total, 0);
    levels[depth].push(String(x - ends[depth]), String(node.total), String(self), String(node.name));
    ends[depth] = x + node.total;
    let cx = x;
    for (const c of node.children) {
      walk(c, depth + 1, cx);
      cx += c.total;
    }
  };
  walk(root, 0, 0);
  return { flamegraph: { names, levels: levels.map((v) => ({ values: v })), total: String(root.total), maxSelf: "0" }, nodes: made };
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const results = [];
for (const n of sizes) {
  const fg = flamegraph(n);
  const body = JSON.stringify({ flamegraph: fg.flamegraph });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    const m = /QuerierService\/(\w+)/.exec(u.pathname)?.[1];
    const json = (o) => route.fulfill({ status: 200, contentType: "application/json", body: typeof o === "string" ? o : JSON.stringify(o) });
    if (m === "SelectMergeStacktraces") return json(body);
    if (m === "ProfileTypes") return json({ profileTypes: [{ ID: TYPE, name: "process_cpu", sampleType: "cpu", sampleUnit: "nanoseconds", periodType: "cpu", periodUnit: "nanoseconds" }] });
    if (m === "LabelValues") return json({ names: ["bench"] });
    if (m === "SelectSeries") return json({ series: [{ points: [{ value: 1e12, timestamp: String(Date.now() - 60000) }] }] });
    const file = normalize(u.pathname === "/" ? "index.html" : u.pathname.slice(1));
    try {
      return route.fulfill({ status: 200, contentType: TYPES[extname(file)] ?? "application/octet-stream", body: readFileSync(join(dir, file)) });
    } catch {
      return route.fulfill({ status: 404, body: "" });
    }
  });
  await page.goto(`http://ui.bench/?query=${TYPE}{service_name="bench"}&from=now-1h&until=now&maxNodes=${n}`);
  await page.waitForFunction(() => Number(document.querySelector(".flame-card .flame-canvas")?.dataset.drawn ?? 0) > 0, null, { timeout: 120000 });
  const first = await page.evaluate(() => {
    const c = document.querySelector(".flame-card .flame-canvas");
    return { loadMs: performance.now(), layoutMs: +c.dataset.layoutMs, statsMs: +c.dataset.statsMs, drawMs: +c.dataset.renderMs, nodes: +c.dataset.nodes, drawn: +c.dataset.drawn };
  });
  await page.waitForTimeout(300);
  const box = await (await page.$(".flame-card .flame-canvas")).boundingBox();
  const zoom = [];
  for (let i = 0; i < 5; i++) {
    await page.mouse.click(box.x + 20 + i * 7, box.y + 3 * 18 + 9);
    zoom.push(await page.$eval(".flame-card .flame-canvas", (c) => +c.dataset.renderMs));
    await page.click(".toolbar .reset");
    zoom.push(await page.$eval(".flame-card .flame-canvas", (c) => +c.dataset.renderMs));
  }
  const search = [];
  for (const term of ["Function1", "pkg7/", "Function42", "module", "zzz"]) {
    await page.evaluate((t) => {
      const c = document.querySelector(".flame-card .flame-canvas");
      const before = c.dataset.renderMs;
      const i = document.querySelector(".toolbar .search");
      i.value = t;
      i.dispatchEvent(new Event("input"));
      return new Promise((resolve) => {
        const poll = () => (c.dataset.renderMs !== before ? resolve() : setTimeout(poll, 5));
        poll();
      });
    }, term);
    search.push(await page.$eval(".flame-card .flame-canvas", (c) => +c.dataset.renderMs));
  }
  const hover = await page.evaluate(async (b) => {
    const c = document.querySelector(".flame-card .flame-canvas");
    const t0 = performance.now();
    for (let i = 0; i < 200; i++)
      c.dispatchEvent(new MouseEvent("mousemove", { clientX: b.x + 5 + ((i * 37) % (b.width - 10)), clientY: b.y + 9 + (i % 12) * 18, bubbles: true }));
    return (performance.now() - t0) / 200;
  }, box);
  results.push({ nodes: fg.nodes, ...first, zoomMs: median(zoom), searchMs: median(search), hoverMs: hover });
  await page.close();
}
await browser.close();
for (const r of results) {
  console.log(`ui render ${r.nodes} nodes: load→drawn ${r.loadMs.toFixed(0)} ms (layout ${r.layoutMs.toFixed(1)} ms, table ${r.statsMs.toFixed(1)} ms, first draw ${r.drawMs.toFixed(1)} ms, ${r.drawn} bars); redraw: zoom ${r.zoomMs.toFixed(1)} ms, search ${r.searchMs.toFixed(1)} ms; hover ${r.hoverMs.toFixed(2)} ms`);
}
