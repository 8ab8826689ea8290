// Text output for people: aligned tables and short durations. Scripts use --json instead, so
// nothing here needs to be machine-readable.

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
  /** Right-align (numbers). */
  right?: boolean;
  /** Longer cells are cut with an ellipsis. */
  max?: number;
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  // One row per line, whatever the data holds.
  return String(value).replace(/\s+/g, " ");
}

function cut(text: string, max: number | undefined): string {
  return max !== undefined && text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[], empty = "(none)"): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((r) => columns.map((c) => cut(cell(c.value(r)), c.max)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]!.right ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join("\n");
}

/** `key value  key value` on one line, for counters. */
export function pairs(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k} ${cell(v)}`)
    .join("  ");
}

/** 4s, 3m 10s, 2h 05m, 3d 4h: heartbeat ages and staleness. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Seconds between an ISO timestamp and `now`. */
export function ageSeconds(iso: unknown, now: number = Date.now()): number | null {
  if (typeof iso !== "string" && !(iso instanceof Date)) return null;
  const t = new Date(iso).getTime();
  return Number.isNaN(t) ? null : (now - t) / 1000;
}

export function ago(iso: unknown, now?: number): string {
  const s = ageSeconds(iso, now);
  return s === null ? "-" : `${duration(s)} ago`;
}
