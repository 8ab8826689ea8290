// Figures, the printed table and the one-JSON-line-per-figure output of `npm run bench`.

export const SYSTEMS = ["taskwarden", "taskwarden-batch", "pg-boss", "graphile-worker", "pgmq"] as const;
export type SystemName = (typeof SYSTEMS)[number];
export const PEERS = ["pg-boss", "graphile-worker", "pgmq"] as const satisfies readonly SystemName[];
/** Short names for the ratio columns. */
const ABBREV: Record<(typeof PEERS)[number], string> = { "pg-boss": "pgb", "graphile-worker": "gw", pgmq: "pgmq" };

/** A measured number, or a sentence when a system does not do the thing within the bench (e.g. "after 4 h by design"). */
export type Value = number | string;

export interface Figure {
  id: string;
  label: string;
  unit: string;
  /** Which direction is better, for the ratio's reading. */
  better: "higher" | "lower";
  values: Partial<Record<SystemName, Value>>;
  /** Extra numbers worth keeping in the JSON line (samples, breakdowns). */
  details?: Record<string, unknown>;
  target?: { text: string; met: boolean };
  /** A separate table this figure is printed in (undefined: the main one). */
  table?: string;
}

export function ratio(a: Value | undefined, b: Value | undefined): number | null {
  if (typeof a !== "number" || typeof b !== "number" || b === 0) return null;
  const r = a / b;
  // Two significant digits, so a 0.0034 ratio does not print as 0.
  return r >= 10 ? Math.round(r * 10) / 10 : Number(r.toPrecision(2));
}

const OURS = ["taskwarden", "taskwarden-batch"] as const satisfies readonly SystemName[];

export function jsonLine(f: Figure): string {
  const ratios: Record<string, number | null> = {};
  for (const ours of OURS) {
    for (const peer of PEERS) {
      if (f.values[ours] !== undefined && f.values[peer] !== undefined) ratios[`${ours}/${peer}`] = ratio(f.values[ours], f.values[peer]);
    }
  }
  return JSON.stringify({
    figure: f.id,
    label: f.label,
    unit: f.unit,
    better: f.better,
    ...f.values,
    ratio: ratios,
    ...(f.table ? { table: f.table } : {}),
    ...(f.target ? { target: f.target.text, met: f.target.met } : {}),
    ...(f.details ? { details: f.details } : {}),
  });
}

function cell(v: Value | undefined): string {
  if (v === undefined) return "–";
  if (typeof v === "string") return v;
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (v !== 0 && Math.abs(v) < 1) return String(Number(v.toPrecision(2))); // CPU ms per job: 0.062
  return v.toFixed(2);
}

function ratioCell(f: Figure, ours: SystemName): string {
  const parts: string[] = [];
  for (const peer of PEERS) {
    const r = ratio(f.values[ours], f.values[peer]);
    if (r !== null) parts.push(`${r}× ${ABBREV[peer]}`);
  }
  return parts.join(", ") || "–";
}

/** A Markdown table (it reads fine in a terminal and pastes into the README as is). */
export function table(figures: Figure[]): string {
  const header = [
    "figure", "unit", "taskwarden Worker", "taskwarden batch RPCs", "pg-boss", "graphile-worker",
    // Beside its figure, because it is not the same job: nothing stops a second reader.
    "pgmq (no fencing, no heartbeats, no retry budget: visibility timeout only)",
    "Worker / peer", "batch / peer", "target",
  ];
  const rows = figures.map((f) => [
    f.label,
    f.unit,
    cell(f.values.taskwarden),
    cell(f.values["taskwarden-batch"]),
    cell(f.values["pg-boss"]),
    cell(f.values["graphile-worker"]),
    cell(f.values.pgmq),
    ratioCell(f, "taskwarden"),
    ratioCell(f, "taskwarden-batch"),
    f.target ? `${f.target.met ? "met" : "MISSED"}: ${f.target.text}` : "",
  ]);
  const lines = [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`);
  return lines.join("\n");
}
