// Charts as standalone SVG documents, no dependencies: a latency distribution (a histogram,
// count per bin, with the cumulative share over it and the percentiles marked) and a line
// chart (series over evenly spaced x values, e.g. p99 against the number of instances).
import { percentile } from './report.ts';

const WIDTH = 920;
const HEIGHT = 440;
const PLOT = { left: 64, right: 64, top: 64, bottom: 56 };

const entities: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' };
const escape = (text: string) => text.replace(/[<>&"]/g, (c) => entities[c] ?? c);

/** The smallest of 1, 2, 2.5, 5 × 10^k that is at least `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? 10 * power;
}

const fmt = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(1));

const PLOT_W = WIDTH - PLOT.left - PLOT.right;
const PLOT_H = HEIGHT - PLOT.top - PLOT.bottom;

/**
 * What both charts start with: the document's opening, the title, the horizontal grid with the
 * left axis's labels (0 to `yTop` by `yStep`) and its rotated label; and the pen to go on with.
 */
function frame({
  title,
  subtitle,
  yTop,
  yStep,
  yLabel,
}: {
  title: string;
  subtitle: string;
  yTop: number;
  yStep: number;
  yLabel: string;
}) {
  const out: string[] = [];
  const line = (x1: number, y1: number, x2: number, y2: number, style: string) =>
    out.push(
      `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" ${style}/>`,
    );
  const text = (x: number, y: number, content: string, style = '') =>
    out.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${style}>${escape(content)}</text>`);
  const yOf = (y: number) => PLOT.top + PLOT_H - (y / yTop) * PLOT_H;

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
  );
  text(PLOT.left, 24, title, 'font-size="16" font-weight="600"');
  if (subtitle) text(PLOT.left, 44, subtitle, 'fill="#555"');
  for (let y = 0; y <= yTop + 1e-9; y += yStep) {
    line(PLOT.left, yOf(y), PLOT.left + PLOT_W, yOf(y), 'stroke="#eee"');
    text(PLOT.left - 6, yOf(y) + 4, fmt(y), 'text-anchor="end" fill="#555"');
  }
  text(
    16,
    PLOT.top + PLOT_H / 2,
    yLabel,
    `transform="rotate(-90 16 ${PLOT.top + PLOT_H / 2})" text-anchor="middle" fill="#555"`,
  );
  /** The document, closed. */
  const done = () => `${[...out, '</svg>'].join('\n')}\n`;
  return { out, line, text, yOf, done };
}

export interface Chart {
  title: string;
  subtitle?: string;
  /** In ms. */
  values: readonly number[];
  /** E.g. { p50: 12.1, p99: 40 }. */
  markers?: Record<string, number | null | undefined>;
  unit?: string;
}

/** The SVG document of a latency chart. */
export function latencyChart({
  title,
  subtitle = '',
  values,
  markers = {},
  unit = 'ms',
}: Chart): string {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) throw new Error('no values to chart');
  // The x axis covers the body up to past p99; the far tail goes into one overflow bar.
  const p99 = percentile(sorted, 99);
  const max = percentile(sorted, 100);
  const span = max <= p99 * 1.5 ? max : p99 * 1.25;
  const bin = niceStep(span / 80);
  const bins = Math.max(1, Math.ceil(span / bin + 1e-9));
  const xMax = bins * bin;
  const counts = new Array<number>(bins).fill(0);
  let overflow = 0;
  for (const value of sorted) {
    if (value >= xMax) overflow += 1;
    else counts[Math.floor(value / bin)] = (counts[Math.floor(value / bin)] ?? 0) + 1;
  }
  const slots = bins + (overflow > 0 ? 2 : 0); // a gap, then the overflow bar
  const yMax = Math.max(...counts, overflow);
  const yStep = niceStep(yMax / 5);
  const yTop = Math.ceil(yMax / yStep) * yStep;

  const plotW = PLOT_W;
  const plotH = PLOT_H;
  const slotW = plotW / slots;
  const xOf = (ms: number) => PLOT.left + (Math.min(ms, xMax) / xMax) * (bins * slotW);
  const pctY = (share: number) => PLOT.top + plotH - share * plotH;
  // Grid and left axis (count per bin).
  const { out, line, text, yOf, done } = frame({
    title,
    subtitle,
    yTop,
    yStep,
    yLabel: `samples per ${fmt(bin)} ${unit}`,
  });
  // Right axis (cumulative %).
  for (let share = 0; share <= 1; share += 0.25) {
    text(PLOT.left + plotW + 6, pctY(share) + 4, `${share * 100}%`, 'fill="#c0392b"');
  }

  // Bars.
  const bar = (x: number, count: number, fill: string) =>
    out.push(
      `<rect x="${x.toFixed(1)}" y="${yOf(count).toFixed(1)}" width="${Math.max(1, slotW - 1).toFixed(1)}" height="${(PLOT.top + plotH - yOf(count)).toFixed(1)}" fill="${fill}"/>`,
    );
  counts.forEach((count, i) => {
    if (count > 0) bar(PLOT.left + i * slotW + 0.5, count, '#4a78b5');
  });
  if (overflow > 0) {
    const x = PLOT.left + (bins + 1) * slotW;
    bar(x, overflow, '#8e6bb5');
    text(
      x + slotW / 2,
      PLOT.top + plotH + 16,
      `≥${fmt(xMax)}`,
      'text-anchor="middle" fill="#8e6bb5"',
    );
    text(
      x + slotW / 2,
      yOf(overflow) - 4,
      `${overflow} up to ${fmt(Math.round(max))}`,
      'text-anchor="end" fill="#8e6bb5"',
    );
  }

  // Bottom axis (ms).
  const xStep = niceStep(xMax / 10);
  for (let ms = 0; ms <= xMax + 1e-9; ms += xStep) {
    line(xOf(ms), PLOT.top + plotH, xOf(ms), PLOT.top + plotH + 4, 'stroke="#555"');
    text(xOf(ms), PLOT.top + plotH + 16, fmt(ms), 'text-anchor="middle" fill="#555"');
  }
  line(PLOT.left, PLOT.top + plotH, PLOT.left + plotW, PLOT.top + plotH, 'stroke="#555"');
  text(
    PLOT.left + (bins * slotW) / 2,
    HEIGHT - 14,
    `latency (${unit})`,
    'text-anchor="middle" fill="#555"',
  );

  // Cumulative share: a step line through every sample inside the axis.
  const points = [`${xOf(0).toFixed(1)},${pctY(0).toFixed(1)}`];
  sorted.forEach((value, i) => {
    if (value < xMax) points.push(`${xOf(value).toFixed(1)},${pctY((i + 1) / n).toFixed(1)}`);
  });
  out.push(
    `<polyline points="${points.join(' ')}" fill="none" stroke="#c0392b" stroke-width="1.5"/>`,
  );

  // Percentile markers.
  Object.entries(markers).forEach(([label, ms], i) => {
    if (ms === null || ms === undefined || ms >= xMax) return;
    line(xOf(ms), PLOT.top, xOf(ms), PLOT.top + plotH, 'stroke="#333" stroke-dasharray="4 3"');
    text(
      xOf(ms) + 3,
      PLOT.top + 12 + i * 14,
      `${label} ${fmt(Math.round(ms * 10) / 10)} ${unit}`,
      'fill="#333"',
    );
  });

  return done();
}

export interface LineChart {
  title: string;
  subtitle?: string;
  /** The x values, in order (e.g. instance counts), evenly spaced. */
  xs: readonly number[];
  xLabel: string;
  yLabel: string;
  /** Each series: a y value per x (null: not measured). */
  series: { name: string; ys: readonly (number | null)[] }[];
  /** Horizontal dashed lines, e.g. a goal. */
  limits?: { label: string; y: number }[];
}

const SERIES_COLOURS = ['#4a78b5', '#c0392b', '#27ae60', '#8e6bb5'];

/** The SVG document of a line chart with evenly spaced x values and labelled points. */
export function lineChart({
  title,
  subtitle = '',
  xs,
  xLabel,
  yLabel,
  series,
  limits = [],
}: LineChart): string {
  const ys = [...series.flatMap((s) => s.ys), ...limits.map((l) => l.y)].filter(
    (y): y is number => y !== null && Number.isFinite(y),
  );
  if (xs.length === 0 || ys.length === 0) throw new Error('no values to chart');
  const yStep = niceStep(Math.max(...ys) / 5);
  const yTop = Math.ceil((Math.max(...ys) * 1.05) / yStep) * yStep;
  const plotW = PLOT_W;
  const plotH = PLOT_H;
  const xOf = (i: number) => PLOT.left + ((i + 0.5) / xs.length) * plotW;
  const { out, line, text, yOf, done } = frame({ title, subtitle, yTop, yStep, yLabel });
  line(PLOT.left, PLOT.top + plotH, PLOT.left + plotW, PLOT.top + plotH, 'stroke="#555"');
  xs.forEach((x, i) => {
    line(xOf(i), PLOT.top + plotH, xOf(i), PLOT.top + plotH + 4, 'stroke="#555"');
    text(xOf(i), PLOT.top + plotH + 16, fmt(x), 'text-anchor="middle" fill="#555"');
  });
  text(PLOT.left + plotW / 2, HEIGHT - 14, xLabel, 'text-anchor="middle" fill="#555"');
  for (const limit of limits) {
    line(
      PLOT.left,
      yOf(limit.y),
      PLOT.left + plotW,
      yOf(limit.y),
      'stroke="#333" stroke-dasharray="4 3"',
    );
    text(PLOT.left + plotW - 4, yOf(limit.y) - 4, limit.label, 'text-anchor="end" fill="#333"');
  }
  series.forEach(({ name, ys: values }, s) => {
    const colour = SERIES_COLOURS[s % SERIES_COLOURS.length] ?? '#333';
    const points = values.flatMap((y, i) => (y === null ? [] : [[xOf(i), yOf(y), y] as const]));
    out.push(
      `<polyline points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`,
    );
    for (const [x, y, value] of points) {
      out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${colour}"/>`);
      text(x + 6, y - 6, fmt(Math.round(value * 10) / 10), `fill="${colour}"`);
    }
    text(PLOT.left + 8, PLOT.top + 14 + s * 16, `— ${name}`, `fill="${colour}"`);
  });
  return done();
}

/** The same figures as text: one bar per x, for a terminal or a Markdown code block. */
export function textBars(
  rows: { label: string; value: number | null }[],
  { unit = 'ms', width = 40 } = {},
): string[] {
  const top = Math.max(...rows.map((r) => r.value ?? 0), 1e-9);
  const labelWidth = Math.max(...rows.map((r) => r.label.length));
  return rows.map(({ label, value }) =>
    value === null
      ? `${label.padStart(labelWidth)} | (not measured)`
      : `${label.padStart(labelWidth)} | ${'█'.repeat(Math.max(1, Math.round((value / top) * width)))} ${fmt(Math.round(value * 10) / 10)} ${unit}`,
  );
}
