// The shape of src/: its folders are layers (a module uses what sits below it, never what uses
// it), with no import cycle between them, and the whole tree type-checks.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

interface Cruised {
  modules: { source: string; dependencies: { resolved: string; coreModule: boolean; couldNotResolve: boolean }[] }[];
}

/** src/cli/program.ts -> "cli"; files directly in src/ are their own unit ("start.ts"). */
function unit(path: string): string | undefined {
  const m = /^src\/([^/]+)(\/)?/.exec(path);
  return m ? m[1] : undefined;
}

/** Every elementary cycle of the folder graph, as "a -> b -> a" (Johnson-style DFS; the graph is tiny). */
function cycles(graph: Map<string, Set<string>>): string[] {
  const found = new Set<string>();
  const walk = (start: string, at: string, path: string[]) => {
    for (const next of graph.get(at) ?? []) {
      if (next === start) {
        // One name per cycle: rotate it to start at its smallest member.
        const i = path.indexOf([...path].sort()[0]!);
        const rotated = [...path.slice(i), ...path.slice(0, i)];
        found.add([...rotated, rotated[0]].join(" -> "));
      } else if (!path.includes(next) && next > start) {
        walk(start, next, [...path, next]);
      }
    }
  };
  for (const node of graph.keys()) walk(node, node, [node]);
  return [...found].sort();
}

/**
 * The layers of src/, lowest first: a unit may import its own layer (without cycles) and the
 * ones below, never one above. The library (rpc, worker) never reaches up into the CLI.
 */
const LAYERS: string[][] = [
  ["config.ts", "log.ts", "format.ts", "signals.ts", "retry.ts"], // shared helpers
  ["rpc"], // transports, the typed client, migrations, the embedded database
  ["worker", "reaper", "supervise.ts"], // the runtime
  ["dashboard"],
  ["cli"],
  ["demo", "start.ts", "index.ts"], // entry points
];
const layerOf = (u: string) => LAYERS.findIndex((l) => l.includes(u));

describe("architecture", () => {
  it("no import cycle between the folders of src/ (dependency-cruiser)", async () => {
    const { stdout } = await run(
      resolve(ROOT, "node_modules/.bin/depcruise"),
      ["--config", ".dependency-cruiser.cjs", "--output-type", "json", "src"],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
    );
    const cruised = JSON.parse(stdout) as Cruised;
    expect(cruised.modules.length).toBeGreaterThan(20);
    const graph = new Map<string, Set<string>>();
    const edges: string[] = [];
    for (const m of cruised.modules) {
      const from = unit(m.source);
      if (!from) continue;
      for (const d of m.dependencies) {
        const to = unit(d.resolved);
        if (!to || to === from) continue;
        if (!graph.has(from)) graph.set(from, new Set());
        graph.get(from)!.add(to);
        edges.push(`${m.source} -> ${d.resolved}`);
      }
    }
    const unknown = [...graph.keys()].filter((u) => layerOf(u) < 0);
    expect(unknown, "every folder and top-level file of src/ has a layer in LAYERS").toEqual([]);
    const upward = edges.filter((e) => {
      const [from, to] = e.split(" -> ").map((p) => unit(p)!);
      return layerOf(to!) > layerOf(from!);
    });
    expect(upward, "imports that reach up a layer").toEqual([]);
    const found = cycles(graph);
    const culprits = found.length ? edges.filter((e) => found.some((c) => c.includes(unit(e.split(" -> ")[0]!)!))) : [];
    expect(found, `folder cycles; the imports behind them:\n${culprits.join("\n")}`).toEqual([]);
  });

  it("type-checks (tsc --noEmit)", async () => {
    const r = await run(resolve(ROOT, "node_modules/.bin/tsc"), ["--noEmit", "-p", "."], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
      .then(() => ({ out: "" }), (e: { stdout: string }) => ({ out: e.stdout }));
    expect(r.out).toBe("");
  }, 120_000);
});
