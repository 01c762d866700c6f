/**
 * A fault-injecting HTTPS proxy in front of the real API server, for faults the server will not
 * make on demand: 429 storms, 5xx answers, watch streams cut mid-way, 410 Gone on a watch, and
 * streams that stay open but go silent (a half-open connection).
 *
 * Everything not faulted is the real server's answer, streamed through untouched (the client's
 * `Authorization` header is passed on). The proxy listens on 127.0.0.1 with its own CA and a leaf
 * certificate (rustls refuses a CA certificate used as a server certificate), and writes a
 * kubeconfig pointing at itself with the same token, so any client can be aimed at it.
 *
 * Faults are armed by method calls from the test and apply to the next matching requests (or to
 * the streams open right now); every request is recorded with its status and fault.
 *
 * @example
 * ```ts ignore
 * const c = await cluster();
 * const proxy = await FaultProxy.start(c);
 * proxy.reply(429, { count: 5, retryAfter: 1 });   // the next 5 requests get 429
 * proxy.cutWatches({ afterEvents: 3 });            // the next watch is closed after 3 events
 * proxy.cutOpenWatches("gone");                    // open watches get an ERROR 410 event
 * proxy.silenceOpenWatches();                      // open watches stop forwarding bytes
 * await proxy.close();
 * ```
 *
 * @module
 */

/** Which requests a fault applies to. Omitted fields match anything. */
export interface Match {
  /** HTTP method, e.g. `"GET"`. */
  method?: string;
  /** Tested against the path (without the query). */
  path?: RegExp;
  /** Only watch requests (`true`), or only non-watch requests (`false`). */
  watch?: boolean;
}

/** One request the proxy saw. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  /** The status the client got (the real server's, or the injected one). */
  status: number;
  /** The fault applied, if any (e.g. `"reply 429"`, `"cut after 3"`, `"silenced"`). */
  fault?: string;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

/** How a watch stream is broken. */
export type CutMode =
  /** End the response body normally (the server closed the stream). */
  | "close"
  /** Break the response mid-way (a connection reset). */
  | "reset"
  /** Send an `ERROR` event with a 410 Status, then end the body. */
  | "gone";

/** Where the proxy forwards to: the fields of the test cluster it needs. */
export interface Upstream {
  server: string;
  caPem: string;
  token: string;
}

type Rule =
  | { kind: "reply"; match: Match; left: number; status: number; retryAfter?: number }
  | { kind: "cut"; match: Match; left: number; afterEvents: number; mode: CutMode }
  | { kind: "silence"; match: Match; left: number; afterEvents: number };

interface OpenStream {
  id: number;
  /** Path and query, as requested. */
  url: string;
  events: number;
  silent: boolean;
  cut(mode: CutMode): void;
}

const GONE_EVENT = JSON.stringify({
  type: "ERROR",
  object: {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "too old resource version (injected by the fault proxy)",
    reason: "Expired",
    code: 410,
  },
}) + "\n";

const REASONS: Record<number, string> = {
  410: "Gone",
  429: "TooManyRequests",
  500: "InternalError",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "Timeout",
};

function statusBody(status: number, retryAfter?: number): string {
  return JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `injected by the fault proxy: ${status}`,
    reason: REASONS[status] ?? "Unknown",
    details: retryAfter === undefined ? undefined : { retryAfterSeconds: retryAfter },
    code: status,
  });
}

function matches(match: Match, method: string, path: string, watch: boolean): boolean {
  return (match.method === undefined || match.method.toUpperCase() === method) &&
    (match.path === undefined || match.path.test(path)) &&
    (match.watch === undefined || match.watch === watch);
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes a throwaway CA and a 127.0.0.1 server certificate signed by it. */
async function makeCertificates(
  dir: string,
): Promise<{ caPem: string; cert: string; key: string }> {
  await openssl(
    dir,
    ..."req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout ca.key -out ca.crt".split(" "),
    ...["-subj", "/CN=kopf-fault-proxy-ca"],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  );
  await openssl(
    dir,
    ..."req -newkey rsa:2048 -nodes -sha256 -keyout proxy.key -out proxy.csr".split(" "),
    ...["-subj", "/CN=kopf-fault-proxy"],
  );
  await Deno.writeTextFile(
    `${dir}/proxy.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
      "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await openssl(
    dir,
    ..."x509 -req -in proxy.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256".split(
      " ",
    ),
    ..."-out proxy.crt -extfile proxy.ext".split(" "),
  );
  return {
    caPem: await Deno.readTextFile(`${dir}/ca.crt`),
    cert: await Deno.readTextFile(`${dir}/proxy.crt`),
    key: await Deno.readTextFile(`${dir}/proxy.key`),
  };
}

/** The proxy. Start it with {@linkcode FaultProxy.start}; {@linkcode FaultProxy.close} it after. */
export class FaultProxy {
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  /** The CA that signed the proxy's certificate (PEM). */
  readonly caPem: string;
  /** The bearer token of the upstream cluster, for clients of the proxy. */
  readonly token: string;
  /** A kubeconfig file pointing at the proxy (same token, the proxy's CA). */
  readonly kubeconfig: string;
  /** Every request seen, in arrival order. */
  readonly requests: RecordedRequest[] = [];

  #upstream: Upstream;
  #client: Deno.HttpClient;
  #server: Deno.HttpServer;
  #dir: string;
  #rules: Rule[] = [];
  #open = new Map<number, OpenStream>();
  #nextId = 1;

  private constructor(
    init: {
      upstream: Upstream;
      server: Deno.HttpServer;
      url: string;
      caPem: string;
      dir: string;
      kubeconfig: string;
    },
  ) {
    this.#upstream = init.upstream;
    this.#client = Deno.createHttpClient({ caCerts: [init.upstream.caPem] });
    this.#server = init.server;
    this.#dir = init.dir;
    this.server = init.url;
    this.caPem = init.caPem;
    this.token = init.upstream.token;
    this.kubeconfig = init.kubeconfig;
  }

  /** Starts a proxy in front of `upstream` (e.g. the object returned by `cluster()`). */
  static async start(upstream: Upstream): Promise<FaultProxy> {
    const dir = await Deno.makeTempDir({ prefix: "kopf-fault-proxy-" });
    const { caPem, cert, key } = await makeCertificates(dir);
    // The handler needs the proxy, which needs the server's port: tie the knot through a box.
    const box: { proxy?: FaultProxy } = {};
    const listening = Promise.withResolvers<number>();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert,
      key,
      onListen: ({ port }) => listening.resolve(port),
      onError: (error) => new Response(`fault proxy error: ${error}`, { status: 502 }),
    }, (request, info) => box.proxy!.#handle(request, info));
    const url = `https://127.0.0.1:${await listening.promise}`;
    const kubeconfig = `${dir}/kubeconfig`;
    const b64 = btoa(caPem);
    await Deno.writeTextFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: fault-proxy",
        "  cluster:",
        `    server: ${url}`,
        `    certificate-authority-data: ${b64}`,
        "users:",
        "- name: admin",
        "  user:",
        `    token: ${upstream.token}`,
        "contexts:",
        "- name: fault-proxy",
        "  context: {cluster: fault-proxy, user: admin, namespace: default}",
        "current-context: fault-proxy",
        "",
      ].join("\n"),
    );
    box.proxy = new FaultProxy({ upstream, server, url, caPem, dir, kubeconfig });
    return box.proxy;
  }

  /** Answers the next `count` matching requests with `status` (e.g. 429 with `retryAfter`, 503). */
  reply(
    status: number,
    options: { count?: number; match?: Match; retryAfter?: number } = {},
  ): void {
    this.#rules.push({
      kind: "reply",
      match: options.match ?? {},
      left: options.count ?? 1,
      status,
      retryAfter: options.retryAfter,
    });
  }

  /**
   * Breaks the next `count` matching watch streams after `afterEvents` events were forwarded
   * (0: at once). `mode` says how (default `"close"`); `"gone"` sends an ERROR 410 event.
   */
  cutWatches(
    options: { count?: number; afterEvents?: number; mode?: CutMode; match?: Match } = {},
  ): void {
    this.#rules.push({
      kind: "cut",
      match: { ...options.match, watch: true },
      left: options.count ?? 1,
      afterEvents: options.afterEvents ?? 0,
      mode: options.mode ?? "close",
    });
  }

  /** Answers the next `count` matching watch requests with 410 Gone: an HTTP 410, or an ERROR event. */
  goneWatches(options: { count?: number; as?: "http" | "event"; match?: Match } = {}): void {
    if ((options.as ?? "http") === "http") {
      this.reply(410, { count: options.count, match: { ...options.match, watch: true } });
    } else {
      this.cutWatches({ count: options.count, mode: "gone", match: options.match });
    }
  }

  /**
   * Makes the next `count` matching watch streams go silent after `afterEvents` events: the
   * connection stays open, nothing more is forwarded.
   */
  silenceWatches(options: { count?: number; afterEvents?: number; match?: Match } = {}): void {
    this.#rules.push({
      kind: "silence",
      match: { ...options.match, watch: true },
      left: options.count ?? 1,
      afterEvents: options.afterEvents ?? 0,
    });
  }

  /** Breaks every watch stream open right now; returns how many. */
  cutOpenWatches(mode: CutMode = "close"): number {
    const open = [...this.#open.values()];
    for (const stream of open) stream.cut(mode);
    return open.length;
  }

  /** Makes every watch stream open right now go silent; returns how many. */
  silenceOpenWatches(): number {
    const open = [...this.#open.values()].filter((s) => !s.silent);
    for (const stream of open) stream.silent = true;
    return open.length;
  }

  /** Watch streams open right now (optionally only those whose path and query match). */
  openWatches(url?: RegExp): number {
    return [...this.#open.values()].filter((s) => !url || url.test(s.url)).length;
  }

  /** Drops all armed faults that have not fired yet. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Armed faults that have not fired yet (their remaining counts summed). */
  get pendingFaults(): number {
    return this.#rules.reduce((sum, rule) => sum + rule.left, 0);
  }

  /** Recorded requests matching a filter. */
  seen(match: Match = {}): RecordedRequest[] {
    return this.requests.filter((r) => matches(match, r.method, r.path, r.watch));
  }

  /** Stops listening, drops open streams, removes the temporary files. */
  async close(): Promise<void> {
    this.clearFaults();
    this.cutOpenWatches("reset");
    await this.#server.shutdown();
    this.#client.close();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  #take(method: string, path: string, watch: boolean): Rule | undefined {
    const index = this.#rules.findIndex((r) => r.left > 0 && matches(r.match, method, path, watch));
    if (index === -1) return undefined;
    const rule = this.#rules[index];
    if (--rule.left === 0) this.#rules.splice(index, 1);
    return rule;
  }

  async #handle(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    // Settles when the response was delivered or the client went away: either way the upstream
    // request has nothing more to do.
    const done = new AbortController();
    info.completed.then(() => done.abort(), () => done.abort());
    const url = new URL(request.url);
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === "true" || query.watch === "1" ||
      url.pathname.includes("/watch/");
    const record: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      query,
      watch,
      status: 0,
      at: Date.now(),
    };
    this.requests.push(record);
    const rule = this.#take(request.method, url.pathname, watch);

    if (rule?.kind === "reply") {
      record.status = rule.status;
      record.fault = `reply ${rule.status}`;
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (rule.retryAfter !== undefined) headers["Retry-After"] = String(rule.retryAfter);
      await request.body?.cancel();
      return new Response(statusBody(rule.status, rule.retryAfter), {
        status: rule.status,
        headers,
      });
    }

    const headers = new Headers();
    for (const name of ["authorization", "content-type", "accept", "user-agent"]) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    let upstream: Response;
    try {
      upstream = await fetch(`${this.#upstream.server}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body: request.body,
        client: this.#client,
        signal: done.signal,
      });
    } catch (error) {
      record.status = 502;
      record.fault = `upstream unreachable: ${error instanceof Error ? error.message : error}`;
      return new Response(statusBody(502), { status: 502 });
    }
    record.status = upstream.status;
    const responseHeaders = new Headers();
    for (const [name, value] of upstream.headers) {
      if (
        !["connection", "content-length", "content-encoding", "transfer-encoding"].includes(name)
      ) {
        responseHeaders.set(name, value);
      }
    }
    if (!watch || !upstream.body || upstream.status !== 200) {
      return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
    }
    if (rule) {
      record.fault = rule.kind === "cut"
        ? `cut (${rule.mode}) after ${rule.afterEvents}`
        : `silenced after ${rule.afterEvents}`;
    }
    const body = this.#watchBody(upstream.body, url.pathname + url.search, done.signal, rule);
    return new Response(body, { status: 200, headers: responseHeaders });
  }

  /** Forwards a watch body event by event, so it can be cut or silenced at an event boundary. */
  #watchBody(
    source: ReadableStream<Uint8Array>,
    url: string,
    clientGone: AbortSignal,
    rule: Rule | undefined,
  ): ReadableStream<Uint8Array> {
    const reader = source.getReader();
    const encoder = new TextEncoder();
    const open = this.#open;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let finished = false;
    const stream: OpenStream = {
      id: this.#nextId++,
      url,
      events: 0,
      silent: false,
      cut: (mode) => {
        if (finished) return;
        finished = true;
        open.delete(stream.id);
        reader.cancel().catch(() => {});
        try {
          if (mode === "gone") {
            controller.enqueue(encoder.encode(GONE_EVENT));
            controller.close();
          } else if (mode === "close") {
            controller.close();
          } else {
            controller.error(new Error("connection reset by the fault proxy"));
          }
        } catch { /* the client is gone already */ }
      },
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      open.delete(stream.id);
      reader.cancel().catch(() => {});
    };
    clientGone.addEventListener("abort", finish, { once: true });
    // Applies the armed rule once `stream.events` reaches its threshold; true if the stream ended.
    const applyRule = (): boolean => {
      if (!rule || rule.kind === "reply" || stream.events < rule.afterEvents) return false;
      if (rule.kind === "cut") {
        stream.cut(rule.mode);
        return true;
      }
      stream.silent = true;
      return false;
    };
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
        open.set(stream.id, stream);
        applyRule();
      },
      pull: async (c) => {
        // Reads until something is forwarded (or the stream ends), so a silenced stream keeps
        // draining the server without the client seeing a byte.
        while (!finished) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (error) {
            if (finished) return;
            finished = true;
            open.delete(stream.id);
            c.error(error);
            return;
          }
          if (finished) return;
          if (chunk.done) {
            finished = true;
            open.delete(stream.id);
            if (!stream.silent) c.close();
            return;
          }
          if (stream.silent) continue;
          let bytes = chunk.value;
          let forwarded = false;
          // Forward whole events one at a time, checking the rule between them.
          while (bytes.length > 0 && !finished && !stream.silent) {
            const newline = bytes.indexOf(10);
            const piece = newline === -1 ? bytes : bytes.subarray(0, newline + 1);
            c.enqueue(piece);
            forwarded = true;
            bytes = newline === -1 ? new Uint8Array() : bytes.subarray(newline + 1);
            if (newline !== -1) {
              stream.events++;
              if (applyRule()) return;
            }
          }
          if (forwarded) return;
        }
      },
      cancel: finish,
    });
  }
}
