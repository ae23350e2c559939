// The keys each query selected, drawn on a canvas: one pixel column per bin
// of keys, one band per query, coloured by the share of the bin's keys the
// query kept; keys past the causal limit in grey.

export interface Selected {
  t: number;
  s: number;
  /** [t, s] 0/1: key j kept by query ti. */
  kept: Uint8Array;
  /** Causal offset (query ti sees j <= ti + offset), or null. */
  offset: number | null;
}

export function drawSelected(canvas: HTMLCanvasElement, sel: Selected, maxWidth = 1024, maxRows = 256): void {
  const { t, s, kept, offset } = sel;
  const cols = Math.min(s, maxWidth);
  const rows = Math.min(t, maxRows);
  const band = Math.max(1, Math.floor(256 / rows));
  canvas.width = cols;
  canvas.height = rows * band;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(cols, rows * band);
  for (let r = 0; r < rows; r++) {
    const ti = Math.floor((r * t) / rows);
    for (let c = 0; c < cols; c++) {
      const j0 = Math.floor((c * s) / cols);
      const j1 = Math.max(j0 + 1, Math.floor(((c + 1) * s) / cols));
      let n = 0;
      for (let j = j0; j < j1; j++) n += kept[ti * s + j];
      const share = n / (j1 - j0);
      const beyond = offset !== null && j0 > ti + offset;
      // White to dark blue by share; grey past the causal limit.
      const [red, green, blue] = beyond ? [200, 200, 200] : [255 - 222 * Math.sqrt(share), 255 - 153 * Math.sqrt(share), 255 - 83 * Math.sqrt(share)];
      for (let y = r * band; y < (r + 1) * band; y++) {
        const p = (y * cols + c) * 4;
        image.data[p] = red;
        image.data[p + 1] = green;
        image.data[p + 2] = blue;
        image.data[p + 3] = 255;
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}
