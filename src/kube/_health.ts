/**
 * Health of one connection to the API server, the way client-go checks its HTTP/2 connections
 * (`ReadIdleTimeout` 30 s + `PingTimeout` 15 s), for transports that have no HTTP/2 PING and no
 * TCP keep-alive to offer — Deno's `fetch` has neither.
 *
 * The transport reports what goes on: {@linkcode ConnectionHealth.begin} when a request or a
 * watch starts (and the returned function when it ends), {@linkcode ConnectionHealth.received}
 * whenever bytes arrive from the server (response headers, body chunks, watch stream chunks).
 * While anything is in flight and nothing was received for `readIdleTimeoutMs`, the health
 * check sends one probe over the same connection (a cheap request the transport supplies) and
 * waits at most `pingTimeoutMs` for it. An answer — any answer, an error status too — or any
 * other bytes received meanwhile prove the connection alive, and the silence is measured anew.
 * No answer, or a failed probe, declares the connection dead: `onDead` is called once, and the
 * transport replaces the connection and fails whatever was in flight on it.
 *
 * Nothing is probed while nothing is in flight (an idle client makes no requests) or while
 * bytes keep arriving. Its cost is at most one probe per `readIdleTimeoutMs` of silence while a
 * request or a watch is open; the timer is re-armed from the last byte, not on every byte, so
 * the hot path ({@linkcode ConnectionHealth.received}) is one clock read and one assignment.
 *
 * @module
 */

import type { Clock } from "./time.ts";

/** Timers the health check runs on (the real ones, or a fake clock in tests). */
export type HealthTimers = Pick<Clock, "now" | "setTimeout" | "clearTimeout">;

/** Options of a {@linkcode ConnectionHealth}. */
export interface ConnectionHealthOptions {
  /** Silence (nothing received while something is in flight) before a probe, ms; `0`: never. */
  readIdleTimeoutMs: number;
  /** How long a probe may take before the connection counts as dead, ms. */
  pingTimeoutMs: number;
  /**
   * Sends one probe over the connection. Resolves when the server answered anything; rejects
   * when the request failed. Must stop when `signal` aborts.
   */
  probe(signal: AbortSignal): Promise<void>;
  /** Called once, when the connection is found dead; `reason` says why, for messages. */
  onDead(reason: string): void;
  /** Called after each probe the connection survived (for logs); `ms` is how long it took. */
  onAlive?(ms: number): void;
  /** Timers (default: the real ones). */
  timers?: HealthTimers;
}

/** The real timers; health timers never keep the process alive on their own. */
export const REAL_TIMERS: HealthTimers = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number) => {
    const id = setTimeout(callback, ms);
    Deno.unrefTimer(id);
    return id;
  },
  clearTimeout: (handle: unknown) => clearTimeout(handle as number),
});

/** The health check of one connection; see the module docs. */
export class ConnectionHealth {
  /** Probes sent. */
  probes = 0;
  #options: ConnectionHealthOptions;
  #timers: HealthTimers;
  #busy = 0;
  /** When bytes last arrived (ms of `timers.now()`). */
  #lastReceived: number;
  /** When the connection last went from idle to busy: silence while idle does not count. */
  #busySince: number;
  #timer: unknown;
  #probing = false;
  #dead = false;
  #closed = false;
  #probeAbort?: AbortController;

  constructor(options: ConnectionHealthOptions) {
    this.#options = options;
    this.#timers = options.timers ?? REAL_TIMERS;
    this.#lastReceived = this.#busySince = this.#timers.now();
  }

  /** Whether the connection was declared dead. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Requests and watches in flight right now. */
  get inFlight(): number {
    return this.#busy;
  }

  /** A request or watch starts; call the returned function (once or more) when it ends. */
  begin(): () => void {
    if (this.#busy++ === 0) this.#busySince = this.#timers.now();
    this.#arm();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#busy === 0) this.#disarm();
    };
  }

  /** Bytes arrived from the server. */
  received(): void {
    this.#lastReceived = this.#timers.now();
  }

  /**
   * Probes at once, busy or idle: another connection to the same server was found dead, and this
   * one may be too (a frozen network path freezes every connection on it). Nothing while a probe
   * runs, or once dead or closed.
   */
  probeNow(): void {
    if (this.#probing || this.#dead || this.#closed) return;
    this.#disarm();
    void this.#probe();
  }

  /** Stops the timers and any probe; the connection is being closed. */
  close(): void {
    this.#closed = true;
    this.#disarm();
    this.#probeAbort?.abort(new Error("the connection is closed"));
  }

  /** Silence counts from the last byte, or from when work started if that is later. */
  #quietSince(): number {
    return Math.max(this.#lastReceived, this.#busySince);
  }

  #arm(): void {
    const idle = this.#options.readIdleTimeoutMs;
    if (idle <= 0 || this.#timer !== undefined || this.#probing || this.#dead || this.#closed) {
      return;
    }
    if (this.#busy === 0) return;
    const due = this.#quietSince() + idle - this.#timers.now();
    this.#timer = this.#timers.setTimeout(() => this.#check(), Math.max(0, due));
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#busy === 0 || this.#dead || this.#closed) return;
    if (this.#timers.now() - this.#quietSince() < this.#options.readIdleTimeoutMs) {
      this.#arm(); // bytes arrived since the timer was set: wait for the new silence to last
      return;
    }
    void this.#probe();
  }

  async #probe(): Promise<void> {
    this.#probing = true;
    this.probes++;
    const started = this.#timers.now();
    const abort = new AbortController();
    this.#probeAbort = abort;
    const pingTimeout = this.#options.pingTimeoutMs;
    const timer = this.#timers.setTimeout(
      () => abort.abort(new ProbeTimeout(`no answer to a probe within ${seconds(pingTimeout)}`)),
      pingTimeout,
    );
    let failure: string | undefined;
    try {
      await raceAbort(this.#options.probe(abort.signal), abort.signal);
    } catch (error) {
      failure = error instanceof ProbeTimeout ? error.message : `the probe failed: ${text(error)}`;
    } finally {
      this.#timers.clearTimeout(timer);
      this.#probing = false;
      this.#probeAbort = undefined;
    }
    if (this.#closed) return;
    // Bytes from other streams while the probe waited prove the connection alive as well: a
    // server slow to answer the probe is not a dead connection.
    if (failure === undefined || this.#lastReceived > started) {
      if (failure === undefined) this.received();
      this.#options.onAlive?.(this.#timers.now() - started);
      this.#arm();
      return;
    }
    this.#dead = true;
    this.#options.onDead(
      `nothing received for ${seconds(started - this.#quietSince())}, ${failure}`,
    );
  }
}

/** The probe ran out of time. */
class ProbeTimeout extends Error {
  override name = "ProbeTimeout";
}

/** Settles like `promise`, or rejects with the abort reason as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function text(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
