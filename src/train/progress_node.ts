import cliProgress from 'cli-progress';
import type { TrainProgress } from './trainer';

/** Options of {@link terminalProgress}. */
export interface TerminalProgressOptions {
  /** Output stream. Default `process.stderr`. */
  stream?: NodeJS.WritableStream;
  /** Total epochs, shown as `epoch e/E`. Default: not shown. */
  epochs?: number;
  /** Also redraw when the stream is not a terminal (CI logs). Default false: one line per epoch then. */
  noTTYOutput?: boolean;
}

/** A terminal progress display: pass `onProgress` to a `Trainer`; call `stop()` when done. */
export interface TerminalProgress {
  /** Updates the bar; pass it as the trainer's `onProgress`. */
  onProgress: (p: TrainProgress) => void;
  /** Stops the bar and restores the terminal. */
  stop: () => void;
}

/**
 * A terminal progress bar for the `Trainer` (cli-progress): one bar per epoch with the step
 * count, running loss and accuracy, images per second and the ETA of the epoch. When the
 * stream is not a terminal, one summary line per finished epoch is printed instead.
 *
 * @example
 * const progress = terminalProgress({ epochs: 10 });
 * const trainer = new Trainer(model, { schedule, onProgress: progress.onProgress });
 */
export function terminalProgress(options: TerminalProgressOptions = {}): TerminalProgress {
  const stream = options.stream ?? process.stderr;
  const tty = (stream as { isTTY?: boolean }).isTTY === true || options.noTTYOutput === true;
  let bar: cliProgress.SingleBar | null = null;
  const label = (epoch: number) =>
    options.epochs == null ? `epoch ${epoch + 1}` : `epoch ${epoch + 1}/${options.epochs}`;
  const payload = (p: TrainProgress) => ({
    label: label(p.epoch),
    loss: p.loss.toFixed(4),
    acc: (100 * p.accuracy).toFixed(2),
    ips: p.imagesPerSecond.toFixed(1),
    eta: formatSeconds(p.etaSeconds),
  });
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (p: TrainProgress) => {
    if (!tty) {
      if (p.batch === p.batches) {
        const f = payload(p);
        stream.write(
          `${f.label}: ${p.batches} steps, loss ${f.loss}, acc ${f.acc}%, ${f.ips} img/s\n`,
        );
      }
      return;
    }
    if (bar == null || p.batch === 1) {
      stop();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format:
            '{label} [{bar}] {value}/{total} | loss {loss} | acc {acc}% | {ips} img/s | ETA {eta}',
          hideCursor: false,
          noTTYOutput: options.noTTYOutput ?? false,
          barsize: 24,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.batches, 0, payload(p));
    }
    bar.update(p.batch, payload(p));
    if (p.batch === p.batches) stop();
  };
  return { onProgress, stop };
}

/** `75` -> `1m15s`, `4000` -> `1h06m`. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
