/**
 * What one request costs the operator's process: N merge patches of a ConfigMap's labels, sent
 * 16 at a time, in alternating rounds, by
 *
 * - the engine's client (`KubeClient.patch`);
 * - bare `fetch` on one `Deno.HttpClient` (HTTP/2: the same bytes on the wire, nothing of ours);
 * - HTTP/1.1 written by hand on 16 `Deno.connectTls` sockets (no `fetch` at all: what the
 *   request costs below Deno's HTTP client, so what a transport of our own could save);
 * - bare `fetch` again with a patch that changes nothing, which the server answers without
 *   writing to etcd: the same bytes both ways, but a fast answer.
 *
 * Prints the process's CPU µs per request for each round.
 *
 *     deno run -A bench/http_bench.ts [--n 2000] [--rounds 3]
 *
 * On the 2-core VM of the README (2026-12-03, two runs): the client 495–630 and 513–540 µs, bare
 * `fetch` 393–640 µs, HTTP/1.1 by hand 187–260 µs, and bare `fetch` of a patch that changes
 * nothing 153–173 µs: most of a write's cost on the client side comes while the server writes
 * (the event loop wakes per answer), not from building or reading the request. Why the engine still uses `fetch`: its requests share
 * one HTTP/2 connection whose health check probes that very connection (docs/settings.md, "Dead
 * connections"); an HTTP/1.1 socket busy with a request cannot carry a probe, so a frozen socket
 * would be found out only by the request's deadline (60–75 s), not within 45 s. client-go makes
 * the same choice (HTTP/2 with pings by default).
 *
 * Uses the tests' plane (`tests/cluster/cluster.sh up`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { KubeClient } from "../src/kube/client.ts";
import { loadConfig } from "../src/kube/config/mod.ts";
import { cluster } from "../tests/support/cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } },
});
const N = Number(values.n);
const c = await cluster();
const ns = await c.namespace("httpbench");
await c.api("POST", `/api/v1/namespaces/${ns}/configmaps`, {
  metadata: { name: "target" },
  data: { a: "x".repeat(1000) },
});
const client = await KubeClient.connect({ kubeconfig: c.kubeconfig, qps: 0 });
const configMaps = {
  group: "",
  version: "v1",
  plural: "configmaps",
  kind: "ConfigMap",
  namespaced: true,
};
const config = await loadConfig({ kubeconfig: c.kubeconfig });
const auth = await config.credentials.get();
const bare = Deno.createHttpClient({
  caCerts: config.tls.caPem ? [config.tls.caPem] : undefined,
  cert: auth.certPem ?? config.tls.certPem,
  key: auth.keyPem ?? config.tls.keyPem,
} as Deno.CreateHttpClientOptions);
const url = `${config.server}/api/v1/namespaces/${ns}/configmaps/target`;

/**
 * One HTTP/1.1 keep-alive socket, as little as a merge patch needs: a `Content-Length` or chunked
 * body, no redirects, no `Connection: close`. A measuring tool, not a client.
 */
class Http1Socket {
  #buffer = new Uint8Array(64 * 1024);
  #length = 0;
  #chunk = new Uint8Array(64 * 1024);

  private constructor(readonly conn: Deno.TlsConn) {}

  static async open(): Promise<Http1Socket> {
    const target = new URL(config.server);
    const conn = await Deno.connectTls({
      hostname: target.hostname,
      port: Number(target.port || 443),
      caCerts: config.tls.caPem ? [config.tls.caPem] : undefined,
      cert: auth.certPem ?? config.tls.certPem,
      key: auth.keyPem ?? config.tls.keyPem,
    } as Deno.ConnectTlsOptions);
    return new Http1Socket(conn);
  }

  async request(method: string, path: string, body: string, type: string): Promise<string> {
    const payload = encoder.encode(body);
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${new URL(config.server).host}\r\n` +
      `Accept: application/json\r\nContent-Type: ${type}\r\nContent-Length: ${payload.length}\r\n`;
    for (const [name, value] of auth.headers) head += `${name}: ${value}\r\n`;
    const bytes = encoder.encode(head + "\r\n");
    const message = new Uint8Array(bytes.length + payload.length);
    message.set(bytes);
    message.set(payload, bytes.length);
    for (let sent = 0; sent < message.length;) {
      sent += await this.conn.write(message.subarray(sent));
    }
    const headEnd = await this.#until(() => find(this.#view(), CRLF2));
    const lines = decoder.decode(this.#view().subarray(0, headEnd)).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    let length = -1;
    for (const line of lines) {
      const [name, value] = [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1)];
      if (/^content-length$/i.test(name)) length = Number(value);
    }
    this.#consume(headEnd + 4);
    let text: string;
    if (length >= 0) {
      await this.#until(() => this.#length >= length ? length : -1);
      text = decoder.decode(this.#view().subarray(0, length));
      this.#consume(length);
    } else {
      const parts: string[] = []; // chunked: size line, data, CRLF; a size of 0 ends it
      for (;;) {
        const sizeEnd = await this.#until(() => find(this.#view(), CRLF));
        const size = parseInt(decoder.decode(this.#view().subarray(0, sizeEnd)), 16);
        this.#consume(sizeEnd + 2);
        await this.#until(() => this.#length >= size + 2 ? size : -1);
        if (size === 0) {
          this.#consume(2);
          break;
        }
        parts.push(decoder.decode(this.#view().subarray(0, size)));
        this.#consume(size + 2);
      }
      text = parts.join("");
    }
    if (status >= 300) throw new Error(`HTTP ${status}: ${text}`);
    return text;
  }

  #view(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  #consume(count: number): void {
    this.#buffer.copyWithin(0, count, this.#length);
    this.#length -= count;
  }

  /** Reads until `found()` is not -1, and returns what it found. */
  async #until(found: () => number): Promise<number> {
    for (let at = found();; at = found()) {
      if (at >= 0) return at;
      const read = await this.conn.read(this.#chunk);
      if (read === null) throw new Error("the server closed the connection");
      if (this.#length + read > this.#buffer.length) {
        const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + read));
        grown.set(this.#view());
        this.#buffer = grown;
      }
      this.#buffer.set(this.#chunk.subarray(0, read), this.#length);
      this.#length += read;
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = encoder.encode("\r\n");
const CRLF2 = encoder.encode("\r\n\r\n");

function find(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const sockets = await Promise.all(Array.from({ length: 16 }, () => Http1Socket.open()));

/** One merge patch of the label `i` by bare `fetch`. */
async function bareFetchPatch(label: string): Promise<void> {
  const response = await fetch(url, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/merge-patch+json",
      Accept: "application/json",
      ...Object.fromEntries(auth.headers),
    },
    body: JSON.stringify({ metadata: { labels: { i: label } } }),
    client: bare,
  });
  JSON.parse(await response.text());
}

async function inFlight(each: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < N) await each(next++);
  }));
}

const senders: Record<string, (i: number) => Promise<unknown>> = {
  "KubeClient.patch": (i) =>
    client.patch(configMaps as never, "target", { metadata: { labels: { i: String(i) } } }, {
      namespace: ns,
    }),
  "HTTP/1.1 by hand": async (i) => {
    const socket = sockets.pop()!;
    try {
      const path = new URL(url).pathname;
      const patch = JSON.stringify({ metadata: { labels: { i: String(i) } } });
      JSON.parse(await socket.request("PATCH", path, patch, "application/merge-patch+json"));
    } finally {
      sockets.push(socket);
    }
  },
  "bare fetch": (i) => bareFetchPatch(String(i)),
  // The same request and bytes, but the server writes nothing (the label is already there) and
  // answers at once: what the client side of a request costs when the server is fast.
  "bare fetch, nothing to change": () => bareFetchPatch("0"),
};

function cpuUs(): number {
  const [utime, stime] = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ").slice(
    11,
    13,
  )
    .map(Number);
  return (utime + stime) * 10_000;
}

const rows: Record<string, number[]> = {};
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, send] of Object.entries(senders)) {
    const before = cpuUs();
    const t0 = performance.now();
    await inFlight(send);
    const wall = performance.now() - t0;
    (rows[name] ??= []).push((cpuUs() - before) / N);
    console.error(`round ${round + 1} ${name}: ${(N / wall * 1000).toFixed(0)} req/s`);
  }
}
console.log("| sender | CPU µs per request (each round) |\n| --- | --- |");
for (const [name, us] of Object.entries(rows)) {
  console.log(`| ${name} | ${us.map((u) => u.toFixed(0)).join(" / ")} |`);
}
client.close();
bare.close();
for (const socket of sockets) socket.conn.close();
await c.deleteNamespace(ns);
