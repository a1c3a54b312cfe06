// The UI in a real browser: Debian's Chromium, headless, driven by
// playwright-core against a querier that serves the built UI and holds
// profiles the caller pushed (tests/integration/test_ui.py starts the
// cluster, pushes them and writes what go tool pprof says about them to
// the expectations file). Prints one line per check, saves a screenshot
// per view in OUT, and ends with "N passed, N failed".
//
//   node ui.test.mjs QUERIER_URL EXPECTATIONS_JSON OUT_DIR
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, expectFile, out] = process.argv.slice(2);
const X = JSON.parse(readFileSync(expectFile, "utf8"));
mkdirSync(out, { recursive: true });
let passed = 0;
let failed = 0;

function check(cond, what) {
  if (cond) passed++;
  else failed++;
  console.log(`${cond ? "ok" : "FAIL"} - ${what}`);
  return cond;
}

const url = (params) => {
  const q = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  return `${base}/?${q}`;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) pageErrors.push(m.text()); });
const shot = (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

/** Waits until the selector's canvas has drawn something; its dataset. */
async function drawn(sel, timeout = 20000) {
  await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.drawn ?? 0) > 0, sel, { timeout });
  return page.$eval(sel, (c) => ({ ...c.dataset }));
}

/** The number of pixels of a canvas that are not blank. */
function inkedPixels(sel) {
  return page.$eval(sel, (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(false, `${name}: ${e.message.split("\n")[0]}`);
    await shot(`error-${name}`).catch(() => {});
  }
}

const single = { query: X.prodQuery, from: "now-1h", until: "now" };

await step("single view", async () => {
  const requests = [];
  page.on("request", (r) => requests.push(r));
  const resp = await page.goto(url(single));
  check(resp.status() === 200 && /text\/html/.test(resp.headers()["content-type"]) && resp.headers()["cache-control"] === "no-cache",
    `GET / answers the page (${resp.status()} ${resp.headers()["content-type"]}, cache-control ${resp.headers()["cache-control"]})`);
  const ds = await drawn(".flame-card .flame-canvas");
  check(Number(ds.drawn) > 10, `the flame graph canvas is drawn (${ds.drawn} bars of ${ds.nodes} nodes)`);
  check((await inkedPixels(".flame-card .flame-canvas")) > 10000, "the flame graph canvas has pixels on it");
  const total = await page.$eval(".summary .total", (e) => Number(e.dataset.total));
  check(total === X.prodTotal, `the total is go tool pprof's: ${total} == ${X.prodTotal}`);
  await page.waitForFunction(() => Number(document.querySelector(".timeline-canvas")?.dataset.points ?? 0) > 0, null, { timeout: 15000 });
  const tl = await page.$eval(".timeline-canvas", (c) => ({ ...c.dataset }));
  check(Number(tl.max) > 0, `the timeline shows the selection's series (${tl.points} points, max ${tl.max})`);
  const rows = await page.$$eval(".top-table tbody tr", (trs) => trs.map((t) => ({ name: t.dataset.name, self: Number(t.dataset.self), total: Number(t.dataset.total) })));
  for (const [i, ref] of X.prodTop.entries()) {
    const row = rows.find((r) => r.name === ref.name);
    check(row && row.self === ref.flat && row.total === ref.cum,
      `top table: ${ref.name} self ${row?.self} total ${row?.total} == pprof flat ${ref.flat} cum ${ref.cum}`);
    if (i === 0) check(rows[0]?.name === ref.name, `top table's first row is pprof's top function ${ref.name} (got ${rows[0]?.name})`);
  }
  const asset = requests.find((r) => /\/assets\/index-.*\.js$/.test(r.url()));
  const ar = asset && (await asset.response());
  check(ar && /javascript/.test(ar.headers()["content-type"]) && /immutable/.test(ar.headers()["cache-control"] ?? ""),
    `hashed assets are served as JavaScript, cached immutably (${ar?.headers()["content-type"]}; ${ar?.headers()["cache-control"]})`);
  await shot("01-single");
});

await step("table", async () => {
  await page.click(".top-table th.col-name");
  const names = await page.$$eval(".top-table tbody tr", (trs) => trs.map((t) => t.dataset.name));
  const up = [...names].sort(), down = [...up].reverse();
  const same = (a) => a.every((n, i) => n === names[i]);
  check(names.length > 1 && (same(up) || same(down)), `sorting by name orders every row (first: ${names[0]})`);
  await page.click(".top-table th.col-self"); // a number column sorts largest first
  const selfs = await page.$$eval(".top-table tbody tr", (trs) => trs.map((t) => Number(t.dataset.self)));
  check(selfs.every((v, i) => i === 0 || selfs[i - 1] >= v), "sorting by self orders the rows, largest first");
});

await step("copy link", async () => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.click(".copy-link");
  await page.waitForFunction(() => document.querySelector(".copy-status")?.textContent === "Link copied", null, { timeout: 5000 });
  await shot("01b-copy-link");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === page.url(), `"Copy link" puts the page's URL on the clipboard and says "Link copied" (${copied.slice(0, 80)}…)`);
  // without the Clipboard API (plain http from another host) the link is shown, selected
  const bare = await context.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined }));
  await bare.goto(url(single));
  await bare.click(".copy-link");
  const f = await bare.$eval(".copy-link-input", (i) => ({
    hidden: i.hidden, value: i.value, focused: document.activeElement === i,
    selected: i.selectionStart === 0 && i.selectionEnd === i.value.length,
  }));
  const said = await bare.$eval(".copy-status", (e) => e.textContent);
  check(!f.hidden && f.value === bare.url() && f.focused && f.selected && /Link copied|Ctrl\+C/.test(said),
    `without the Clipboard API the link is shown selected in a read-only field (${said}; ${f.value === bare.url() ? "the page's URL" : f.value})`);
  await bare.screenshot({ path: join(out, "01c-copy-link-fallback.png") });
  await bare.close();
});

await step("search", async () => {
  await page.fill(".toolbar .search", X.searchTerm);
  await page.waitForFunction(() => Number(document.querySelector(".flame-card .flame-canvas")?.dataset.matches ?? 0) > 0, null, { timeout: 5000 });
  const m = await page.$eval(".flame-card .flame-canvas", (c) => Number(c.dataset.matches));
  check(m > 0, `searching "${X.searchTerm}" highlights ${m} frames`);
  const dimmed = await page.$eval(".flame-card .flame-canvas", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 228 && d[i + 1] === 228 && d[i + 2] === 228) n++;
    return n;
  });
  check(dimmed > 1000, `frames that do not match are greyed (${dimmed} grey pixels)`);
  const rows = await page.$$eval(".top-table tbody tr", (trs) => trs.map((t) => t.dataset.name));
  check(rows.length > 0 && rows.every((n) => n.toLowerCase().includes(X.searchTerm.toLowerCase())), `the table keeps only matching functions (${rows.length})`);
  const inUrl = await page
    .waitForFunction((t) => new URLSearchParams(location.search).get("search") === t, X.searchTerm, { timeout: 5000 })
    .then(() => true, () => false);
  check(inUrl, "the search is in the URL");
  await shot("02-search");
  await page.reload();
  await drawn(".flame-card .flame-canvas");
  const kept = await page.$eval(".toolbar .search", (e) => e.value);
  check(kept === X.searchTerm, `reloading the URL restores the search (${kept})`);
  await page.fill(".toolbar .search", "");
  await page.waitForFunction(() => Number(document.querySelector(".flame-card .flame-canvas")?.dataset.matches ?? 1) === 0, null, { timeout: 5000 });
});

await step("hover and zoom", async () => {
  const c = await page.$(".flame-card .flame-canvas");
  const box = await c.boundingBox();
  // the widest frame of level 2 sits at the left edge on a CPU profile of workers
  await page.mouse.move(box.x + 40, box.y + 2 * 18 + 9);
  await page.waitForSelector(".flame-card .tooltip:not([hidden])", { timeout: 5000 });
  const tip = await page.$eval(".flame-card .tooltip", (t) => t.textContent);
  check(/Self:/.test(tip) && /Total:/.test(tip) && /%/.test(tip), `hovering shows self, total and share: ${tip.slice(0, 120)}`);
  const before = await page.$eval(".flame-card .flame-canvas", (c) => Number(c.dataset.drawn));
  await page.mouse.click(box.x + 40, box.y + 3 * 18 + 9);
  await page.waitForFunction(() => (document.querySelector(".flame-card .flame-canvas")?.dataset.zoom ?? "") !== "", null, { timeout: 5000 });
  const z = await page.$eval(".flame-card .flame-canvas", (c) => ({ ...c.dataset }));
  check(z.zoom !== "", `clicking a frame zooms on it (${z.zoom}; ${before} → ${z.drawn} bars)`);
  await shot("03-zoom");
  await page.click(".toolbar .reset");
  const after = await page.$eval(".flame-card .flame-canvas", (c) => c.dataset.zoom);
  check(after === "", "reset zoom shows the whole graph again");
});

await step("sandwich", async () => {
  const fn = X.prodTop[1].name;
  await page.click(`.top-table tbody tr[data-name="${fn}"]`);
  await page.click('.toolbar button[data-display="sandwich"]');
  const callers = await drawn(".sandwich-callers");
  const callees = await drawn(".sandwich-callees");
  check(Number(callers.drawn) > 1 && Number(callees.drawn) >= 1, `the sandwich view of ${fn} draws its callers (${callers.drawn}) and callees (${callees.drawn})`);
  const u = new URL(page.url());
  check(u.searchParams.get("fn") === fn && u.searchParams.get("display") === "sandwich", "the sandwich's function is in the URL");
  await shot("04-sandwich");
  await page.click('.toolbar button[data-display="both"]');
  await drawn(".flame-card .flame-canvas");
});

await step("downloads", async () => {
  const save = async (cls, name) => {
    const [d] = await Promise.all([page.waitForEvent("download", { timeout: 20000 }), page.click(`.toolbar .${cls}`)]);
    const path = join(out, name);
    await d.saveAs(path);
    return readFileSync(path);
  };
  const pprof = await save("dl-pprof", "merged.pb.gz");
  check(pprof[0] === 0x1f && pprof[1] === 0x8b, `the pprof download is gzipped pprof (${pprof.length} bytes; go tool pprof is checked by the caller)`);
  const svg = (await save("dl-svg", "flamegraph.svg")).toString();
  check(svg.startsWith("<svg") && svg.includes(X.prodTop[0].name.replace(/&/g, "&amp;")), `the SVG download draws the flame graph (${svg.length} bytes)`);
  const png = await save("dl-png", "flamegraph.png");
  check(png.subarray(1, 4).toString() === "PNG" && png.length > 2000, `the PNG download is an image (${png.length} bytes)`);
});

await step("diff", async () => {
  await page.goto(url({ view: "diff", query: X.serviceQuery, from: "now-1h", until: "now",
    leftQuery: X.prodQuery, leftFrom: "now-1h", leftUntil: "now", rightQuery: X.stagingQuery, rightFrom: "now-1h", rightUntil: "now" }));
  const ds = await drawn(".diff-card .flame-canvas");
  check(Number(ds.drawn) > 10, `the diff flame graph is drawn (${ds.drawn} bars)`);
  const lt = await page.$eval(".diff-summary .left-total", (e) => ({ v: Number(e.dataset.total), t: e.textContent }));
  const rt = await page.$eval(".diff-summary .right-total", (e) => ({ v: Number(e.dataset.total), t: e.textContent }));
  check(lt.v === X.prodTotal && rt.v === X.stagingTotal, `the diff shows both totals: ${lt.t} (${lt.v}), ${rt.t} (${rt.v})`);
  const legend = await page.$$eval(".legend-item", (l) => l.map((e) => e.textContent));
  check(legend.length >= 5 && legend.includes("+100%") && legend.includes("-100%"), `the diff legend: ${legend.join(" ")}`);
  const colors = await page.$eval(".diff-card .flame-canvas", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let red = 0;
    let green = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > d[i + 1] + 60) red++;
      if (d[i + 1] > d[i] + 60) green++;
    }
    return { red, green };
  });
  check(colors.red > 500 && colors.green > 500, `the diff is red where it grew and green where it shrank (${colors.red} red, ${colors.green} green pixels)`);
  const heads = await page.$$eval(".diff-card .top-table thead th", (ths) => ths.map((t) => t.textContent.replace(/ [▼▲]$/, "")));
  check(heads.join("|") === "Function|Baseline self|Comparison self|Self change|Total change", `the diff table's columns: ${heads.join(" | ")}`);
  const D = X.diffFn;
  const rows = await page.$$eval(".diff-card .top-table tbody tr", (trs) => trs.map((t) => ({ ...t.dataset, cells: [...t.cells].map((c) => c.textContent) })));
  const row = rows.find((r) => r.name === D.name);
  check(row && Number(row.lSelf) === D.lSelf && Number(row.rSelf) === D.rSelf,
    `diff table: ${D.name} self ${row?.lSelf} / ${row?.rSelf} == pprof's flat ${D.lSelf} / ${D.rSelf}`);
  const pct = (p) => `${p >= 10 ? p.toFixed(1) : p.toFixed(2)}%`;
  check(row && row.cells[1].endsWith(`(${pct(D.lSelfShare)})`) && row.cells[2].endsWith(`(${pct(D.rSelfShare)})`),
    `…each with its share of its side's total: ${row?.cells[1]}, ${row?.cells[2]}`);
  const change = (c) => `${c > 0 ? "+" : ""}${Math.abs(c) >= 10 ? c.toFixed(0) : c.toFixed(1)}%`;
  const near = (a, b) => Math.abs(a - b) < 1e-6 * Math.max(1, Math.abs(b));
  check(row && near(Number(row.selfChange), D.selfChange) && near(Number(row.totalChange), D.totalChange) &&
    row.cells[3] === change(D.selfChange) && row.cells[4] === change(D.totalChange),
    `…and the change of its self and total shares: ${row?.cells[3]} (${change(D.selfChange)}), ${row?.cells[4]} (${change(D.totalChange)})`);
  await page.click(".diff-card .top-table th.col-selfChange");
  const byChange = await page.$$eval(".diff-card .top-table tbody tr", (trs) => trs.map((t) => Number(t.dataset.selfChange)));
  check(byChange.length > 1 && byChange.every((v, i) => i === 0 || byChange[i - 1] >= v), `sorting by self change orders the rows, largest first (${byChange.slice(0, 3)}…)`);
  await page.click(".diff-card .top-table th.col-totalChange");
  await page.click(".diff-card .top-table th.col-totalChange");
  const byTotal = await page.$$eval(".diff-card .top-table tbody tr", (trs) => trs.map((t) => Number(t.dataset.totalChange)));
  check(byTotal.every((v, i) => i === 0 || byTotal[i - 1] <= v), `clicking total change twice sorts it smallest first (${byTotal.slice(0, 3)}…)`);
  await page.click(".diff-card .top-table th.col-lSelf");
  await shot("05-diff");
});

await step("comparison", async () => {
  await page.click('.tab[data-view="compare"]');
  const l = await drawn(".compare-left .flame-canvas");
  const r = await drawn(".compare-right .flame-canvas");
  check(Number(l.drawn) > 10 && Number(r.drawn) > 10, `the comparison draws both flame graphs side by side (${l.drawn}, ${r.drawn})`);
  await shot("06-comparison");
});

await step("tag explorer", async () => {
  await page.goto(url({ view: "tags", query: X.serviceQuery, from: "now-1h", until: "now", groupBy: "env" }));
  await page.waitForSelector(".tag-row", { timeout: 20000 });
  const rows = await page.$$eval(".tag-row", (trs) => trs.map((t) => [t.dataset.value, Number(t.dataset.total)]));
  const got = Object.fromEntries(rows);
  check(got.prod === X.prodTotal && got.staging === X.stagingTotal, `the tag explorer lists env's values with their totals: ${JSON.stringify(rows)}`);
  await shot("07-tags");
  await page.click('.tag-row[data-value="staging"]');
  await drawn(".flame-card .flame-canvas");
  const u = new URL(page.url());
  check((u.searchParams.get("query") ?? "").includes('env="staging"') && !u.searchParams.get("view"), `clicking a value filters the single view on it (${u.searchParams.get("query")})`);
  const total = await page.$eval(".summary .total", (e) => Number(e.dataset.total));
  check(total === X.stagingTotal, `…and shows that value's flame graph (${total})`);
});

await step("profiles", async () => {
  await page.goto(url({ view: "profiles", query: X.serviceQuery, from: "now-1h", until: "now" }));
  await page.waitForSelector(".profile-row", { timeout: 20000 });
  const rows = await page.$$eval(".profile-row", (trs) => trs.map((t) => Number(t.dataset.total)));
  check(rows.length === 2 && rows[0] === X.stagingTotal && rows[1] === X.prodTotal, `the profile list shows both profiles, newest first: ${rows}`);
  await page.click(".profile-row >> nth=1");
  const ds = await drawn(".profile-open .flame-canvas");
  const total = await page.$eval(".profile-open .summary .total", (e) => Number(e.dataset.total));
  check(Number(ds.drawn) > 10 && total === X.prodTotal, `opening a profile draws its flame graph with its total (${total})`);
  check(new URL(page.url()).searchParams.get("profile")?.includes("@"), "the opened profile is in the URL");
  await shot("08-profile");
});

await step("profile pages", async () => {
  const onPage = () => page.$eval(".profile-list", (l) => ({
    totals: [...l.querySelectorAll(".profile-row")].map((t) => Number(t.dataset.total)),
    title: l.querySelector(".card-title").textContent,
    newer: !l.querySelector(".page-newer")?.disabled, older: !l.querySelector(".page-older")?.disabled,
  }));
  const rows = (n) => page.waitForFunction((k) => document.querySelectorAll(".profile-row").length === k, n, { timeout: 20000 });
  const n = X.pagerProfiles; // profile i (1…n, oldest first) has i samples of 10 ms
  await page.goto(url({ view: "profiles", query: X.pagerQuery, from: "now-1h", until: "now" }));
  await rows(200);
  const first = await onPage();
  check(first.totals[0] === n * 1e7 && first.totals.at(-1) === 2 * 1e7 && !first.newer && first.older && /Profiles 1–200/.test(first.title),
    `the first page holds the newest 200 profiles, Older enabled (${first.title})`);
  await page.click(".page-older");
  await rows(1);
  const second = await onPage();
  check(second.totals[0] === 1e7 && second.newer && !second.older && new URL(page.url()).searchParams.get("offset") === "200",
    `Older shows the next page, the oldest profile, and puts offset=200 in the URL (${second.title})`);
  await shot("09-profile-pages");
  await page.reload();
  await rows(1);
  check((await onPage()).totals[0] === 1e7, "reloading the URL keeps the page");
  await page.click(".page-newer");
  await rows(200);
  check((await onPage()).totals[0] === n * 1e7 && !new URL(page.url()).searchParams.has("offset"), "Newer goes back to the newest page");
});

await step("errors", async () => {
  await page.goto(url({ query: X.badRegexQuery, from: "now-1h", until: "now" }));
  await page.waitForSelector(".error", { timeout: 20000 });
  const msg = await page.$eval(".error", (e) => e.textContent);
  check(/400/.test(msg) && /regex|parse|missing/i.test(msg), `a bad regex shows the API's message: ${msg.slice(0, 160)}`);
  await shot("10-error");
});

await step("tenant", async () => {
  await page.goto(url(single));
  await drawn(".flame-card .flame-canvas");
  const seen = [];
  page.on("request", (r) => { if (r.url().includes("QuerierService")) seen.push(r.headers()["x-scope-orgid"]); });
  await page.fill(".tenant", "team-ui");
  await page.press(".tenant", "Enter");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("tenant") === "team-ui", null, { timeout: 5000 });
  await page.waitForTimeout(500);
  check(seen.includes("team-ui"), `the tenant field is sent as X-Scope-OrgID (${[...new Set(seen)]})`);
  await page.fill(".tenant", "");
  await page.press(".tenant", "Enter");
});

check(pageErrors.length === 0, `no script errors in the page${pageErrors.length ? ": " + pageErrors.slice(0, 3).join(" | ") : ""}`);
await browser.close();
writeFileSync(join(out, "result.json"), JSON.stringify({ passed, failed }));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
