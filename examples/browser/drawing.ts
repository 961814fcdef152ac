/**
 * Freehand drawing on a canvas and its conversion to an MNIST-like 28x28 input.
 *
 * MNIST digits were size-normalised to fit a 20x20 box (aspect kept) and then placed so their
 * centre of mass sits at the centre of the 28x28 field. A drawing is converted the same way;
 * without that a small or off-centre drawing is a different distribution from the training data.
 */

/** Side of the model input. */
export const INPUT_SIZE = 28;
/** Side of the box the digit's bounding box is scaled into. */
const BOX = 20;

/** Lets the user draw white strokes on a black canvas; calls `onStroke` when a stroke ends. */
export function attachDrawing(canvas: HTMLCanvasElement, onStroke: () => void): { clear(): void } {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx == null) throw new Error('attachDrawing: 2d context unavailable');
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last: [number, number] | null = null;
  const point = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) * canvas.width) / r.width,
      ((e.clientY - r.top) * canvas.height) / r.height,
    ];
  };
  const line = (a: [number, number], b: [number, number]) => {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
    line(last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (last == null) return;
    const p = point(e);
    line(last, p);
    last = p;
  });
  const end = () => {
    if (last == null) return;
    last = null;
    onStroke();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  return { clear };
}

/**
 * The drawing as a 28x28 grey image in [0, 1] (row-major), MNIST-normalised: bounding box scaled
 * into 20x20, centre of mass moved to the centre. Returns null for an empty canvas.
 */
export function drawingToInput(canvas: HTMLCanvasElement): Float32Array | null {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx == null) return null;
  const { width, height } = canvas;
  const rgba = ctx.getImageData(0, 0, width, height).data;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (rgba[(y * width + x) * 4] > 20) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = BOX / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  // The browser's own high-quality downscale (area averaging) keeps thin strokes visible.
  const small = document.createElement('canvas');
  small.width = sw;
  small.height = sh;
  const sctx = small.getContext('2d', { willReadFrequently: true });
  if (sctx == null) return null;
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(canvas, x0, y0, bw, bh, 0, 0, sw, sh);
  const boxed = sctx.getImageData(0, 0, sw, sh).data;
  const grey = new Float32Array(sw * sh);
  for (let i = 0; i < grey.length; i++) grey[i] = boxed[i * 4] / 255;
  return placeByCentreOfMass(grey, sw, sh);
}

/** Places a `w x h` grey patch in a 28x28 field so that its centre of mass is at the centre. */
export function placeByCentreOfMass(grey: Float32Array, w: number, h: number): Float32Array {
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = grey[y * w + x];
      mass += v;
      cx += v * x;
      cy += v * y;
    }
  }
  const out = new Float32Array(INPUT_SIZE * INPUT_SIZE);
  if (mass === 0) return out;
  const ox = Math.round(INPUT_SIZE / 2 - 0.5 - cx / mass);
  const oy = Math.round(INPUT_SIZE / 2 - 0.5 - cy / mass);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const tx = x + ox;
      const ty = y + oy;
      if (tx >= 0 && tx < INPUT_SIZE && ty >= 0 && ty < INPUT_SIZE)
        out[ty * INPUT_SIZE + tx] = grey[y * w + x];
    }
  }
  return out;
}
