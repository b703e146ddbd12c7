// The shape of src/: each folder is one layer of the data path, and imports run one way only, from
// the command line down to the wire and the shared pieces (docs/protocol.md describes the path).
// The import lines of every src/**/*.ts file are read (static, export-from and dynamic import()),
// and a file in no known layer, an import against the direction, an import out of src/ or a cycle
// between layers fails the test, so the layering stays as the folders show it.
import assert from "node:assert/strict";

const SRC = new URL("../../src/", import.meta.url).pathname;

/**
 * The layers, top to bottom: a file may import its own layer and any layer after it, never one
 * before. The order is the data path's: the entries start a command; the command line (cli/) asks
 * the resident helper or runs a request itself; the resident helper (daemon/) serves the module's
 * requests; the request (pam/) decides with what the wire to the server (kopano/) returns; common/
 * holds what all of them use and knows none of them.
 */
const LAYERS = ["entry", "cli", "daemon", "pam", "kopano", "common"] as const;
/** The files at the top of src/: the helper's entries, the only files outside a layer folder. */
const ENTRIES = ["main.ts", "pam_main.ts"];

interface SourceFile {
  /** Path below src/, with "/" separators ("pam/args.ts"). */
  path: string;
  /** The module specifiers it imports, as written. */
  imports: string[];
}

/** A layer's place from the top (0 for the entries). */
const rank = (layer: string) => (LAYERS as readonly string[]).indexOf(layer);

/** The layer of a path below src/, or null when it is in none. */
function layerOf(path: string): string | null {
  const parts = path.split("/");
  if (parts.length === 1) return ENTRIES.includes(path) ? "entry" : null;
  return parts.length === 2 && rank(parts[0]) > 0 ? parts[0] : null;
}

/** `spec` resolved against `from` (both below src/); null when it leaves src/. */
function resolve(from: string, spec: string): string | null {
  const parts = from.split("/").slice(0, -1);
  for (const part of spec.split("/")) {
    if (part === "..") {
      if (parts.pop() === undefined) return null;
    } else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

/**
 * Every way `files` breaks the layering, one line each (empty when it holds). Specifiers that are
 * not relative (npm:, node:, the import map's names) are outside src/'s layering and not checked.
 */
function layerViolations(files: SourceFile[]): string[] {
  const found: string[] = [];
  const edges = new Map<string, Set<string>>(); // layer -> layers it imports
  for (const file of files) {
    const from = layerOf(file.path);
    if (from === null) found.push(`${file.path}: in no known layer (${LAYERS.join(", ")})`);
    for (const spec of file.imports.filter((s) => s.startsWith("./") || s.startsWith("../"))) {
      const target = resolve(file.path, spec);
      if (target === null) {
        found.push(`${file.path}: imports ${spec}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (from === null || to === null) continue; // reported as a file in no layer
      if (rank(to) < rank(from)) {
        found.push(`${file.path} (${from}) imports ${target} (${to}), against the direction`);
      }
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  return [...found, ...layerCycles(edges)];
}

/** Each cycle between layers, found by a depth-first walk, as "a -> b -> a". */
function layerCycles(edges: Map<string, Set<string>>): string[] {
  const cycles: string[] = [];
  const done = new Set<string>();
  const walk = (layer: string, path: string[]) => {
    if (path.includes(layer)) {
      cycles.push(`layer cycle: ${[...path.slice(path.indexOf(layer)), layer].join(" -> ")}`);
      return;
    }
    if (done.has(layer)) return;
    for (const next of edges.get(layer) ?? []) walk(next, [...path, layer]);
    done.add(layer);
  };
  for (const layer of edges.keys()) walk(layer, []);
  return cycles;
}

// import/export ... from "x" (across lines), import "x", and import("x").
const STATIC = /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/gm;
const BARE = /^\s*import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

/** The specifiers a module's text imports. */
function importsOf(text: string): string[] {
  return [STATIC, BARE, DYNAMIC].flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

/** Every .ts file below src/, read. */
function sourceFiles(dir = ""): SourceFile[] {
  return [...Deno.readDirSync(SRC + dir)].flatMap((e) => {
    const path = dir + e.name;
    if (e.isDirectory) return sourceFiles(path + "/");
    if (!e.name.endsWith(".ts")) return [];
    return [{ path, imports: importsOf(Deno.readTextFileSync(SRC + path)) }];
  });
}

Deno.test("src/: every file is in a layer and every import runs down the layers", () => {
  const files = sourceFiles();
  assert.ok(files.length > 40, `only ${files.length} files read`);
  assert.ok(files.flatMap((f) => f.imports).length > 100, "too few imports read");
  assert.deepEqual(layerViolations(files), []);
});

/** An import in `deno info --json`: `code` for a value import, `type` for `import type`. */
interface Dependency {
  code?: { specifier: string };
  type?: { specifier: string };
}

/** The modules below src/ that Deno's own graph reaches from `entry`, each with its local imports. */
async function denoGraph(entry: string): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", SRC + entry],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, `deno info ${entry} failed`);
  const { modules } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { local?: string; dependencies?: Dependency[] }[];
  };
  const below = (file?: string) => file?.startsWith(SRC) ? file.slice(SRC.length) : null;
  const targets = (deps: Dependency[]) =>
    deps.flatMap((d) => [d.code, d.type]).flatMap((t) =>
      t ? [below(new URL(t.specifier).pathname)] : []
    )
      .filter((p): p is string => p !== null);
  return new Map(
    modules.filter((m) => below(m.local) !== null)
      .map((m) => [below(m.local)!, [...new Set(targets(m.dependencies ?? []))].sort()]),
  );
}

Deno.test("src/: the import reader finds every local import of Deno's own module graph", async () => {
  const read = new Map(
    sourceFiles().map((f) => [
      f.path,
      [...new Set(f.imports.filter((s) => s.startsWith(".")).map((s) => resolve(f.path, s)))]
        .sort(),
    ]),
  );
  let compared = 0;
  for (const entry of ENTRIES) {
    for (const [path, deps] of await denoGraph(entry)) {
      assert.deepEqual(read.get(path), deps, path);
      compared++;
    }
  }
  assert.ok(compared > 40, `only ${compared} modules in the graphs`);
});

Deno.test("layer check: a correct graph passes", () => {
  assert.deepEqual(
    layerViolations([
      { path: "main.ts", imports: ["./cli/check.ts", "./pam/request.ts", "node:process"] },
      { path: "cli/check.ts", imports: ["../daemon/trust.ts", "./help.ts", "../common/x.ts"] },
      { path: "daemon/trust.ts", imports: ["../pam/request.ts"] },
      { path: "pam/request.ts", imports: ["../kopano/attempt.ts", "npm:fast-xml-parser"] },
      { path: "kopano/attempt.ts", imports: ["../common/x.ts"] },
      { path: "common/x.ts", imports: [] },
    ]),
    [],
  );
});

Deno.test("layer check: an import against the direction is reported, with the cycle it makes", () => {
  assert.deepEqual(
    layerViolations([
      { path: "pam/args.ts", imports: ["../kopano/socket.ts"] },
      { path: "kopano/socket.ts", imports: ["../pam/args.ts"] },
    ]),
    [
      "kopano/socket.ts (kopano) imports pam/args.ts (pam), against the direction",
      "layer cycle: pam -> kopano -> pam",
    ],
  );
  // The common layer may import nothing above it, not even through a dynamic import.
  assert.deepEqual(layerViolations([{ path: "common/log.ts", imports: ["../cli/help.ts"] }]), [
    "common/log.ts (common) imports cli/help.ts (cli), against the direction",
  ]);
});

Deno.test("layer check: a file in an unknown folder, or beside the entries, is reported", () => {
  assert.deepEqual(
    layerViolations([
      { path: "util/misc.ts", imports: [] },
      { path: "helpers.ts", imports: [] },
      { path: "pam/deeper/x.ts", imports: [] },
    ]),
    [
      "util/misc.ts: in no known layer (entry, cli, daemon, pam, kopano, common)",
      "helpers.ts: in no known layer (entry, cli, daemon, pam, kopano, common)",
      "pam/deeper/x.ts: in no known layer (entry, cli, daemon, pam, kopano, common)",
    ],
  );
});

Deno.test("layer check: an import out of src/ is reported", () => {
  assert.deepEqual(layerViolations([{ path: "pam/a.ts", imports: ["../../tests/lib/x.ts"] }]), [
    "pam/a.ts: imports ../../tests/lib/x.ts, outside src/",
  ]);
});

Deno.test("import reader: multi-line, export-from, side-effect and dynamic imports", () => {
  const text = [
    'import { a } from "./a.ts";',
    "import {\n  b,\n  type C,\n} from '../kopano/b.ts';",
    'export { d } from "./d.ts";',
    'export * from "./e.ts";',
    'import "./f.ts";',
    'import type { G } from "../common/g.ts";',
    '  const { h } = await import("./h.ts");',
    'import assert from "node:assert/strict";',
    'const s = "not an import from here";',
  ].join("\n");
  assert.deepEqual(importsOf(text).sort(), [
    "../common/g.ts",
    "../kopano/b.ts",
    "./a.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./h.ts",
    "node:assert/strict",
  ]);
});
