/**
 * Summarises a V8 `.heapsnapshot`: self size by constructor (as DevTools' Summary view), the
 * largest single retainers by retained size (dominator tree), what dominates them, and repeated
 * string values (bytes that de-duplication could save).
 *
 * ```sh
 * deno run -A bench/heap_summary.ts bench/results/memory-…/1.heapsnapshot [--top 40]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values: args, positionals } = parseArgs({
  options: { top: { type: "string", default: "40" } },
  allowPositionals: true,
});
const TOP = Number(args.top);
const path = positionals[0];
if (!path) throw new Error("usage: heap_summary.ts <file.heapsnapshot>");

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
    node_count: number;
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const data = JSON.parse(await Deno.readTextFile(path)) as Snapshot;
const meta = data.snapshot.meta;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nType = meta.node_fields.indexOf("type");
const nName = meta.node_fields.indexOf("name");
const nSelf = meta.node_fields.indexOf("self_size");
const nEdges = meta.node_fields.indexOf("edge_count");
const eType = meta.edge_fields.indexOf("type");
const eTo = meta.edge_fields.indexOf("to_node");
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const weak = edgeTypes.indexOf("weak");
const shortcut = edgeTypes.indexOf("shortcut");
const { nodes, edges, strings } = data;
const count = nodes.length / NF;

const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e;
  e += nodes[i * NF + nEdges] * EF;
}
firstEdge[count] = edges.length;

const typeOf = (i: number) => nodeTypes[nodes[i * NF + nType]];
const nameOf = (i: number) => strings[nodes[i * NF + nName]];
const selfOf = (i: number) => nodes[i * NF + nSelf];
function label(i: number): string {
  const type = typeOf(i);
  const name = nameOf(i);
  if (type === "string" || type === "concatenated string" || type === "sliced string") {
    return "(string)";
  }
  if (type === "object" || type === "closure") return `${name}${type === "closure" ? "()" : ""}`;
  if (type === "array") return `(array ${name})`;
  if (type === "code") return "(code)";
  if (type === "hidden") return `(hidden ${name.slice(0, 40)})`;
  if (type === "number") return "(number)";
  return `(${type} ${name.slice(0, 40)})`;
}

// --- Self size by label ---------------------------------------------------------------------
let total = 0;
const byLabel = new Map<string, { count: number; self: number }>();
for (let i = 0; i < count; i++) {
  const self = selfOf(i);
  total += self;
  const key = label(i);
  const entry = byLabel.get(key) ?? { count: 0, self: 0 };
  entry.count++;
  entry.self += self;
  byLabel.set(key, entry);
}
const MiB = (n: number) => (n / 1024 / 1024).toFixed(2).padStart(8);
console.log(`${path}: ${count} nodes, ${MiB(total)} MiB in total (self sizes)\n`);
console.log("Self size by constructor / type:");
for (const [key, v] of [...byLabel].sort((a, b) => b[1].self - a[1].self).slice(0, TOP)) {
  console.log(`${MiB(v.self)} MiB ${String(v.count).padStart(9)}  ${key}`);
}

// --- Dominators (Cooper, Harvey, Kennedy), from the root (node 0), ignoring weak edges --------
const edgeIsStrong = (e: number) => {
  const t = edges[e + eType];
  return t !== weak && t !== shortcut;
};
const order = new Int32Array(count).fill(-1); // postorder number
const post: number[] = [];
{
  const stack: number[] = [0];
  const cursor = new Uint32Array(count);
  const visited = new Uint8Array(count);
  visited[0] = 1;
  for (let i = 0; i < count; i++) cursor[i] = firstEdge[i];
  while (stack.length) {
    const v = stack[stack.length - 1];
    let pushed = false;
    while (cursor[v] < firstEdge[v + 1]) {
      const e = cursor[v];
      cursor[v] += EF;
      if (!edgeIsStrong(e)) continue;
      const w = edges[e + eTo] / NF;
      if (visited[w]) continue;
      visited[w] = 1;
      stack.push(w);
      pushed = true;
      break;
    }
    if (!pushed) {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
}
// Predecessors of reachable nodes.
const predCount = new Uint32Array(count + 1);
for (let v = 0; v < count; v++) {
  if (order[v] < 0) continue;
  for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
    if (!edgeIsStrong(e)) continue;
    const w = edges[e + eTo] / NF;
    if (order[w] >= 0) predCount[w + 1]++;
  }
}
for (let i = 0; i < count; i++) predCount[i + 1] += predCount[i];
const preds = new Uint32Array(predCount[count]);
{
  const fill = predCount.slice(0, count);
  for (let v = 0; v < count; v++) {
    if (order[v] < 0) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
      if (!edgeIsStrong(e)) continue;
      const w = edges[e + eTo] / NF;
      if (order[w] >= 0) preds[fill[w]++] = v;
    }
  }
}
const idom = new Int32Array(count).fill(-1);
idom[0] = 0;
const intersect = (a: number, b: number) => {
  while (a !== b) {
    while (order[a] < order[b]) a = idom[a];
    while (order[b] < order[a]) b = idom[b];
  }
  return a;
};
for (let changed = true; changed;) {
  changed = false;
  for (let k = post.length - 1; k >= 0; k--) {
    const v = post[k];
    if (v === 0) continue;
    let dom = -1;
    for (let p = predCount[v]; p < predCount[v + 1]; p++) {
      const u = preds[p];
      if (idom[u] < 0) continue;
      dom = dom < 0 ? u : intersect(u, dom);
    }
    if (dom >= 0 && idom[v] !== dom) {
      idom[v] = dom;
      changed = true;
    }
  }
}
const retained = new Float64Array(count);
for (const v of post) retained[v] += selfOf(v); // postorder: children before parents
for (const v of post) if (v !== 0) retained[idom[v]] += retained[v];

// --- The largest retainers ----------------------------------------------------------------------
function dominators(i: number): string {
  const chain: string[] = [];
  for (let v = idom[i], n = 0; v > 0 && n < 6; v = idom[v], n++) chain.push(label(v));
  return chain.join(" < ");
}
console.log("\nLargest retainers (retained size, excluding the roots' direct synthetic nodes):");
const candidates = post.filter((v) => {
  const t = typeOf(v);
  return v !== 0 && t !== "synthetic" && retained[v] > 64 * 1024;
});
candidates.sort((a, b) => retained[b] - retained[a]);
let shown = 0;
for (const v of candidates) {
  if (shown++ >= TOP) break;
  console.log(
    `${MiB(retained[v])} MiB  ${label(v)} #${nodes[v * NF + 2]}  ⟵ ${dominators(v)}`,
  );
}

// Retained size by label, counting only the outermost instance of each label on a chain.
const byLabelRetained = new Map<string, { count: number; retained: number }>();
for (const v of post) {
  if (v === 0) continue;
  const key = label(v);
  let nested = false;
  for (let u = idom[v], n = 0; u > 0 && n < 50; u = idom[u], n++) {
    if (label(u) === key) {
      nested = true;
      break;
    }
  }
  if (nested) continue;
  const entry = byLabelRetained.get(key) ?? { count: 0, retained: 0 };
  entry.count++;
  entry.retained += retained[v];
  byLabelRetained.set(key, entry);
}
console.log("\nRetained size by constructor (outermost instances):");
for (
  const [key, v] of [...byLabelRetained].sort((a, b) => b[1].retained - a[1].retained).slice(
    0,
    TOP,
  )
) {
  console.log(`${MiB(v.retained)} MiB ${String(v.count).padStart(9)}  ${key}`);
}

// --- Repeated strings ---------------------------------------------------------------------------
const values = new Map<string, { count: number; bytes: number }>();
for (let i = 0; i < count; i++) {
  if (typeOf(i) !== "string") continue;
  const value = nameOf(i);
  const entry = values.get(value) ?? { count: 0, bytes: 0 };
  entry.count++;
  entry.bytes += selfOf(i);
  values.set(value, entry);
}
let wasted = 0;
const repeated = [...values].filter(([, v]) => v.count > 1).map(([value, v]) => {
  const extra = v.bytes - v.bytes / v.count;
  wasted += extra;
  return { value, ...v, extra };
});
repeated.sort((a, b) => b.extra - a.extra);
console.log(`\nRepeated strings: ${MiB(wasted)} MiB in copies beyond the first`);
for (const r of repeated.slice(0, TOP)) {
  console.log(
    `${MiB(r.extra)} MiB ${String(r.count).padStart(7)}×  ${JSON.stringify(r.value.slice(0, 80))}`,
  );
}

// Strings by their first characters (e.g. JSON, resource versions, uids, keys).
const shapes = new Map<string, { count: number; bytes: number }>();
for (let i = 0; i < count; i++) {
  const t = typeOf(i);
  if (t !== "string" && t !== "concatenated string" && t !== "sliced string") continue;
  const value = nameOf(i);
  const shape = `${t === "string" ? "" : t + ": "}${
    value.replace(/[0-9]/g, "9").replace(
      /[a-f9]{8}-[a-f9]{4}-[a-f9]{4}-[a-f9]{4}-[a-f9]{12}/g,
      "<uid>",
    )
      .slice(0, 24)
  }`;
  const entry = shapes.get(shape) ?? { count: 0, bytes: 0 };
  entry.count++;
  entry.bytes += selfOf(i);
  shapes.set(shape, entry);
}
console.log("\nStrings by shape (digits as 9):");
for (const [shape, v] of [...shapes].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, TOP)) {
  console.log(`${MiB(v.bytes)} MiB ${String(v.count).padStart(7)}  ${JSON.stringify(shape)}`);
}
