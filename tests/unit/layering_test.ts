// The layers of src/ (docs/architecture.md): a folder imports only from its own layer's folder and
// from lower layers, and folders import each other in no cycle. The import graph is Deno's own
// (`deno info --json` over a module importing every file of src/), so dynamic imports count too.
// The suite shows the check failing on a deliberately reversed import, in a scratch tree.

import assert from "node:assert/strict";

/** Low to high. Folders of one rank are rooms side by side and do not import each other. */
const LAYERS: readonly (readonly string[])[] = [
  ["kube", "code"],
  ["cache"],
  ["queue"],
  ["storage"],
  ["settings"],
  ["kits"],
  ["registry"],
  ["actions"],
  ["handling"],
  ["engines"],
  ["health", "webhooks", "peering", "metrics"],
  ["reactor"],
  ["testing"],
  ["cli"],
];

const ROOT = new URL("../../", import.meta.url).pathname;

/** Folder-to-folder imports of the tree at `root` (a directory holding `src/`), with an example. */
async function folderImports(root: string): Promise<Map<string, string>> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk(`${root}src`);
  const all = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(all, files.map((f) => `import "file://${f}";\n`).join(""));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", all],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
      }[];
    };
    const src = `file://${root}src/`;
    const folder = (specifier: string) =>
      specifier.startsWith(src) ? specifier.slice(src.length).split("/")[0] : undefined;
    const edges = new Map<string, string>();
    for (const module of graph.modules) {
      const from = folder(module.specifier);
      if (!from) continue;
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
          const to = target && folder(target);
          if (to && to !== from && !edges.has(`${from} → ${to}`)) {
            edges.set(
              `${from} → ${to}`,
              `${module.specifier.slice(src.length)} → ${target!.slice(src.length)}`,
            );
          }
        }
      }
    }
    return edges;
  } finally {
    await Deno.remove(all);
  }
}

/** Imports that go up or sideways in the layers, or from a folder the layers do not know. */
function violations(edges: Map<string, string>): string[] {
  const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));
  const found: string[] = [];
  for (const [edge, example] of edges) {
    const [from, to] = edge.split(" → ");
    const a = rank.get(from);
    const b = rank.get(to);
    if (a === undefined || b === undefined) {
      found.push(`${edge}: a folder not in the layers (${example})`);
    } else if (b >= a) found.push(`${edge}: ${to} is not below ${from} (${example})`);
  }
  return found;
}

/** Cycles between folders (each as a path), whatever the layers say. */
function cycles(edges: Map<string, string>): string[] {
  const next = new Map<string, string[]>();
  for (const edge of edges.keys()) {
    const [from, to] = edge.split(" → ");
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  const found = new Set<string>();
  const visit = (node: string, path: string[]) => {
    for (const to of next.get(node) ?? []) {
      if (path.includes(to)) found.add([...path.slice(path.indexOf(to)), to].join(" → "));
      else visit(to, [...path, to]);
    }
  };
  for (const node of next.keys()) visit(node, [node]);
  return [...found];
}

Deno.test("src/ folders import only their own and lower layers, in no cycle", async () => {
  const edges = await folderImports(ROOT);
  assert.ok(edges.size > 10, "the graph was read");
  assert.deepEqual(violations(edges), []);
  assert.deepEqual(cycles(edges), []);
});

Deno.test("the check fails on a reversed import (a scratch tree: kube importing reactor)", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/src/kube`, { recursive: true });
    await Deno.mkdir(`${root}/src/reactor`, { recursive: true });
    await Deno.writeTextFile(`${root}/src/reactor/running.ts`, "export const run = 1;\n");
    await Deno.writeTextFile(
      `${root}/src/kube/client.ts`,
      'import { run } from "../reactor/running.ts";\nexport const client = run;\n',
    );
    const edges = await folderImports(`${root}/`);
    assert.deepEqual(violations(edges), [
      "kube → reactor: reactor is not below kube (kube/client.ts → reactor/running.ts)",
    ]);
    // And the way back closes a cycle.
    await Deno.writeTextFile(
      `${root}/src/reactor/running.ts`,
      'import { client } from "../kube/client.ts";\nexport const run = 1;\nexport { client };\n',
    );
    assert.deepEqual(cycles(await folderImports(`${root}/`)).length > 0, true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
