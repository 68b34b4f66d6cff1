// Small line charts on a canvas: a few series over time, a y axis from 0, the newest value of each
// series in its legend. Written here rather than taken from a chart library: this is all the page
// needs, and it keeps the jar free of another dependency.

const AXIS = "#8a94a6";
const GRID = "rgba(138, 148, 166, 0.25)";

/** A "nice" ceiling for the y axis: 1, 2 or 5 times a power of ten, at least `minimum`. */
export function niceCeiling(value, minimum = 1) {
  const top = Math.max(value, minimum);
  const power = 10 ** Math.floor(Math.log10(top));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= top) {
      return step * power;
    }
  }
  return 10 * power;
}

/**
 * Draws `series` ([{label, color, points: [[ms, value], …]}]) on `canvas` for the time span
 * [now - spanMillis, now]; `format` writes a value for the axis and the legend; `legend` is the
 * element that lists the series.
 */
export function drawChart(canvas, legend, series, { now, spanMillis, format = String, minimumTop = 1 }) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) {
    return;
  }
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);

  const start = now - spanMillis;
  let highest = 0;
  for (const line of series) {
    for (const [at, value] of line.points) {
      if (at >= start && value !== null && value > highest) {
        highest = value;
      }
    }
  }
  const top = niceCeiling(highest, minimumTop);
  const left = 48;
  const right = width - 6;
  const upper = 6;
  const lower = height - 18;
  const x = (at) => left + ((at - start) / spanMillis) * (right - left);
  const y = (value) => lower - (value / top) * (lower - upper);

  context.font = "11px system-ui, sans-serif";
  context.fillStyle = AXIS;
  context.strokeStyle = GRID;
  context.lineWidth = 1;
  context.textBaseline = "middle";
  context.textAlign = "right";
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    context.beginPath();
    context.moveTo(left, y(value));
    context.lineTo(right, y(value));
    context.stroke();
    context.fillText(format(value), left - 4, y(value));
  }
  context.textAlign = "left";
  context.textBaseline = "alphabetic";
  context.fillText(`-${Math.round(spanMillis / 60_000)} min`, left, height - 4);
  context.textAlign = "right";
  context.fillText("now", right, height - 4);

  context.lineWidth = 1.5;
  for (const line of series) {
    context.strokeStyle = line.color;
    context.beginPath();
    let drawing = false;
    for (const [at, value] of line.points) {
      if (at < start || value === null) {
        drawing = false;
        continue;
      }
      if (drawing) {
        context.lineTo(x(at), y(value));
      } else {
        context.moveTo(x(at), y(value));
        drawing = true;
      }
    }
    context.stroke();
  }

  legend.replaceChildren(...series.map((line) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("i");
    swatch.className = "swatch";
    swatch.style.background = line.color;
    const newest = line.points.length ? line.points[line.points.length - 1][1] : null;
    item.append(swatch, `${line.label} ${newest === null ? "—" : format(newest)}`);
    return item;
  }));
}
