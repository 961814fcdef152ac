/**
 * Freehand drawing on a canvas and its conversion to a 28x28 input shaped like the training data
 * of the model it is fed to.
 *
 * MNIST digits were size-normalised to fit a 20x20 box (aspect kept) and then placed so their
 * centre of mass sits at the centre of the 28x28 field. Fashion-MNIST images were trimmed to the
 * object, resized so the longest side is 28 px, and centred by their bounding box. A drawing is
 * converted the same way as the chosen model's data; without that a small or off-centre drawing
 * is a different distribution from the training data.
 */

/** Side of the model input. */
export const INPUT_SIZE = 28;

/** How a dataset placed its objects in the 28x28 field. */
export interface DrawingLayout {
  /** Side of the box the drawing's bounding box is scaled into (aspect kept). */
  box: number;
  /** What lands on the field's centre: the centre of mass or the centre of the bounding box. */
  centre: 'mass' | 'box';
}

/** MNIST: 20x20 box, centre of mass at the centre. */
export const MNIST_LAYOUT: DrawingLayout = { box: 20, centre: 'mass' };
/** Fashion-MNIST: longest side 28 px, bounding box centred. */
export const FASHION_MNIST_LAYOUT: DrawingLayout = { box: INPUT_SIZE, centre: 'box' };

/** A drawing area: `clear` blanks it, `setBrush` sets the stroke width as a fraction of its width. */
export interface Drawing {
  clear(): void;
  setBrush(fractionOfWidth: number): void;
}

/** Lets the user draw white strokes on a black canvas; calls `onStroke` when a stroke ends. */
export function attachDrawing(canvas: HTMLCanvasElement, onStroke: () => void): Drawing {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx == null) throw new Error('attachDrawing: 2d context unavailable');
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let brush = 1 / 12;
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
    ctx.lineWidth = canvas.width * brush;
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
  return {
    clear,
    setBrush: (fraction) => {
      brush = fraction;
    },
  };
}

/**
 * The drawing as a 28x28 grey image in [0, 1] (row-major), normalised like the training data:
 * bounding box scaled into `layout.box`, then centred (by centre of mass for MNIST, by bounding
 * box for Fashion-MNIST). Returns null for an empty canvas.
 */
export function drawingToInput(
  canvas: HTMLCanvasElement,
  layout: DrawingLayout = MNIST_LAYOUT,
): Float32Array | null {
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
  const scale = layout.box / Math.max(bw, bh);
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
  return layout.centre === 'mass'
    ? placeByCentreOfMass(grey, sw, sh)
    : placeAt(grey, sw, sh, Math.floor((INPUT_SIZE - sw) / 2), Math.floor((INPUT_SIZE - sh) / 2));
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
  if (mass === 0) return new Float32Array(INPUT_SIZE * INPUT_SIZE);
  const ox = Math.round(INPUT_SIZE / 2 - 0.5 - cx / mass);
  const oy = Math.round(INPUT_SIZE / 2 - 0.5 - cy / mass);
  return placeAt(grey, w, h, ox, oy);
}

/** Copies a `w x h` grey patch into an empty 28x28 field with its top-left corner at (ox, oy). */
function placeAt(grey: Float32Array, w: number, h: number, ox: number, oy: number): Float32Array {
  const out = new Float32Array(INPUT_SIZE * INPUT_SIZE);
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
