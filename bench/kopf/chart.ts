/**
 * A small hand-written SVG chart: handled objects over time in each burst phase, one line per
 * operator.
 *
 * @module
 */
import type { PhaseResult, TargetResult } from "./scenario.ts";

const COLORS: Record<string, string> = {
  kopf: "#d62728",
  "kopf-best": "#ff7f0e",
  ours: "#1f77b4",
  "ours-best": "#9467bd",
  "ours-metrics": "#17becf",
  floor: "#2ca02c",
};

const PANEL_W = 300, PANEL_H = 220, PAD_L = 48, PAD_B = 34, PAD_T = 26, PAD_R = 12;

function escapeXml(text: string): string {
  return text.replace(
    /[<>&"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!,
  );
}

/** Round axis steps: 1, 2, 5 × 10^k, about `count` of them up to `max`. */
export function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Cumulative points (seconds, count) of a timeline, thinned to at most `limit` points. */
export function cumulative(timelineMs: number[], limit = 400): [number, number][] {
  const points: [number, number][] = [[0, 0]];
  const stride = Math.max(1, Math.ceil(timelineMs.length / limit));
  for (let i = 0; i < timelineMs.length; i++) {
    if (i % stride === stride - 1 || i === timelineMs.length - 1) {
      points.push([timelineMs[i] / 1000, i + 1]);
    }
  }
  return points;
}

/** The SVG of one variant's targets: three panels (create, update, delete). */
export function handledChart(targets: TargetResult[], title: string): string {
  const phases: PhaseResult["phase"][] = ["create", "update", "delete"];
  const width = PANEL_W * phases.length + 20;
  const legendH = 24;
  const height = PANEL_H + legendH + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  phases.forEach((phase, index) => {
    const x0 = 10 + index * PANEL_W, y0 = 30;
    const plotW = PANEL_W - PAD_L - PAD_R, plotH = PANEL_H - PAD_T - PAD_B;
    const series = targets.map((t) => ({ t, p: t.phases.find((p) => p.phase === phase) }));
    const maxT = Math.max(0.001, ...series.map(({ p }) => (p?.timeline.at(-1) ?? 0) / 1000));
    const maxN = Math.max(1, ...series.map(({ p }) => p?.expected ?? 0));
    const sx = (s: number) => x0 + PAD_L + (s / maxT) * plotW;
    const sy = (n: number) => y0 + PAD_T + plotH - (n / maxN) * plotH;
    parts.push(
      `<text x="${x0 + PAD_L}" y="${y0 + 14}" font-weight="bold">${phase}</text>`,
      `<rect x="${x0 + PAD_L}" y="${
        y0 + PAD_T
      }" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    );
    for (const v of ticks(maxT)) {
      if (v > maxT) continue;
      parts.push(
        `<line x1="${sx(v)}" y1="${y0 + PAD_T + plotH}" x2="${sx(v)}" y2="${
          y0 + PAD_T + plotH + 4
        }" stroke="#999"/>`,
        `<text x="${sx(v)}" y="${y0 + PAD_T + plotH + 16}" text-anchor="middle">${v}</text>`,
      );
    }
    parts.push(
      `<text x="${x0 + PAD_L + plotW / 2}" y="${
        y0 + PANEL_H - 4
      }" text-anchor="middle">seconds</text>`,
    );
    for (const v of ticks(maxN, 4)) {
      parts.push(
        `<line x1="${x0 + PAD_L - 4}" y1="${sy(v)}" x2="${x0 + PAD_L}" y2="${
          sy(v)
        }" stroke="#999"/>`,
        `<text x="${x0 + PAD_L - 6}" y="${sy(v) + 4}" text-anchor="end">${v}</text>`,
      );
    }
    for (const { t, p } of series) {
      if (!p || p.timeline.length === 0) continue;
      const points = cumulative(p.timeline).map(([s, n]) =>
        `${sx(s).toFixed(1)},${sy(n).toFixed(1)}`
      );
      parts.push(
        `<polyline fill="none" stroke-width="1.8" stroke="${COLORS[t.id] ?? "#555"}" points="${
          points.join(" ")
        }"/>`,
      );
    }
  });
  let lx = 10;
  const ly = height - 12;
  for (const t of targets) {
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${COLORS[t.id] ?? "#555"}"/>`,
      `<text x="${lx + 18}" y="${ly - 4}">${escapeXml(t.label)}</text>`,
    );
    lx += 30 + t.label.length * 6.5;
  }
  parts.push("</svg>");
  return parts.join("\n");
}
