import { native, type NativePoller } from './native';

const calls = native.poller;

/**
 * Watches one fd on Node's event loop, for applications that drive a
 * 'manual' Multi themselves. `events` and the callback's events are
 * CURL_CSELECT_IN / CURL_CSELECT_OUT bits; status is 0 or a negative errno.
 */
export class Poller {
  readonly #native: NativePoller;
  #closed = false;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`Poller takes an fd (integer >= 0), not ${fd}`);
    this.#native = new native.NativePoller(fd);
  }

  start(events: number, callback: (status: number, events: number) => void): void {
    if (this.#closed) throw new Error('Poller is closed');
    if (typeof callback !== 'function') throw new TypeError('Poller.start takes a callback');
    calls.start(this.#native.id, events, callback);
  }

  stop(): void {
    if (!this.#closed) calls.stop(this.#native.id);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    calls.close(this.#native.id);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
