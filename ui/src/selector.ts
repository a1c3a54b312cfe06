// Queries as the API takes them: `<profile type>{<matchers>}`, e.g.
// process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="myapp",env=~"prod|staging"}.

export type Op = "=" | "!=" | "=~" | "!~";

export interface Matcher {
  name: string;
  op: Op;
  value: string;
}

export interface Query {
  typeId: string;
  matchers: Matcher[];
}

const MATCHER = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*/;

/** Parses a list of matchers (`a="b", c=~"d.*"`; values may go unquoted
 * when they hold no comma or brace). Throws with the position on error. */
export function parseMatchers(text: string): Matcher[] {
  const out: Matcher[] = [];
  let s = text.trim();
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  let pos = 0;
  while (pos < s.length) {
    const rest = s.slice(pos);
    if (/^\s*$/.test(rest)) break;
    const m = MATCHER.exec(rest);
    if (!m) throw new Error(`expected label=value at position ${pos + 1} of "${s}"`);
    pos += m[0].length;
    const [value, next] = readValue(s, pos);
    out.push({ name: m[1], op: m[2] as Op, value });
    pos = next;
    const sep = /^\s*(,|$)/.exec(s.slice(pos));
    if (!sep) throw new Error(`expected "," at position ${pos + 1} of "${s}"`);
    pos += sep[0].length;
  }
  return out;
}

function readValue(s: string, pos: number): [string, number] {
  const q = s[pos];
  if (q === '"' || q === "'" || q === "`") {
    let v = "";
    for (let i = pos + 1; i < s.length; i++) {
      const c = s[i];
      if (c === "\\" && q !== "`" && i + 1 < s.length) {
        const e = s[++i];
        v += e === "n" ? "\n" : e === "t" ? "\t" : e;
      } else if (c === q) {
        return [v, i + 1];
      } else {
        v += c;
      }
    }
    throw new Error(`unterminated quote at position ${pos + 1} of "${s}"`);
  }
  const m = /^[^,{}"\s]*/.exec(s.slice(pos))!;
  return [m[0], pos + m[0].length];
}

function quote(v: string): string {
  return '"' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
}

/** Matchers as selector text, without braces: `a="b", c=~"d"`. */
export function formatMatchers(ms: Matcher[]): string {
  return ms.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(", ");
}

/** A selector with braces, compact: `{a="b",c=~"d"}`. */
export function formatSelector(ms: Matcher[]): string {
  return "{" + ms.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(",") + "}";
}

/** Splits `type{matchers}` into its parts. Throws on a bad selector. */
export function parseQuery(q: string): Query {
  const t = q.trim();
  const brace = t.indexOf("{");
  if (brace < 0) return { typeId: t, matchers: [] };
  if (!t.endsWith("}")) throw new Error(`the query's selector must end with "}": ${t}`);
  return { typeId: t.slice(0, brace).trim(), matchers: parseMatchers(t.slice(brace)) };
}

export function formatQuery(q: Query): string {
  return q.typeId + formatSelector(q.matchers);
}

/** The value of the first `name="…"` matcher, or "". */
export function equalValue(ms: Matcher[], name: string): string {
  return ms.find((m) => m.name === name && m.op === "=")?.value ?? "";
}

/** The query with `name="value"` as its only matcher on name (added, or
 * replacing the others on that name). */
export function withEqual(q: Query, name: string, value: string): Query {
  const rest = q.matchers.filter((m) => m.name !== name);
  return { typeId: q.typeId, matchers: value === "" ? rest : [{ name, op: "=", value }, ...rest] };
}
