/**
 * A TCP relay in front of the real API server, for the one network fault a server never makes on
 * demand: a connection that goes silent without closing (packets dropped by a dead NAT entry, a
 * load balancer that forgot the flow, a peer that vanished) — no FIN, no RST, just nothing.
 *
 * The relay copies bytes and does not look at them: TLS runs end to end between the client and
 * the API server, whose certificate has the IP SAN 127.0.0.1, so a kubeconfig that points at
 * `https://127.0.0.1:<relay port>` with the cluster's own CA and token verifies as usual. HTTP/2
 * multiplexing, ALPN and everything else are the real client's and the real server's.
 *
 * {@linkcode TcpRelay.freeze} stops every connection open at that moment in both directions: a
 * read that was under way completes into the relay's buffer and is held, and no further reads
 * are made, so the peers' kernels buffer whatever they send and nothing arrives on either side.
 * Connections accepted later are relayed normally, as a fresh path through a network would be.
 * {@linkcode TcpRelay.thaw} releases the held bytes; {@linkcode TcpRelay.close} closes everything.
 *
 * @example
 * ```ts ignore
 * const c = await cluster();
 * const relay = await TcpRelay.start(c);
 * const client = await KubeClient.connect({ kubeconfig: relay.kubeconfig });
 * await client.request("GET", "/version");   // one connection, relayed
 * relay.freeze();                             // it stops; new connections still pass
 * await relay.close();
 * ```
 *
 * @module
 */

/** Where the relay forwards to: the fields of the test cluster it needs. */
export interface RelayUpstream {
  /** `https://127.0.0.1:<port>` of the API server. */
  server: string;
  /** The cluster CA (PEM), written into the relay's kubeconfig. */
  caPem: string;
  /** The bearer token, written into the relay's kubeconfig. */
  token: string;
}

/** Counters of the relay's connections. */
export interface RelayStats {
  /** Connections accepted since the start. */
  accepted: number;
  /** Connections open right now (frozen ones included). */
  open: number;
  /** Connections frozen right now. */
  frozen: number;
  /** Times a connection was frozen (each connection counts once per freeze). */
  freezes: number;
}

/** One relayed connection: the client side, the server side, and the gate both pumps pass. */
class Pair {
  readonly id: number;
  frozen = false;
  closed = false;
  #thawed = Promise.withResolvers<void>();

  constructor(readonly client: Deno.TcpConn, readonly server: Deno.TcpConn, id: number) {
    this.id = id;
  }

  freeze(): void {
    if (this.frozen || this.closed) return;
    this.frozen = true;
    this.#thawed = Promise.withResolvers<void>();
  }

  thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    this.#thawed.resolve();
  }

  /** Resolves at once while the pair flows; while it is frozen, when it thaws or closes. */
  gate(): Promise<void> {
    return this.frozen ? this.#thawed.promise : Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.frozen = false;
    this.#thawed.resolve();
    for (const conn of [this.client, this.server]) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }
}

/** The relay. Start it with {@linkcode TcpRelay.start}; {@linkcode TcpRelay.close} it after. */
export class TcpRelay {
  /** `https://127.0.0.1:<port>`: the API server's address as seen through the relay. */
  readonly server: string;
  /** A kubeconfig file pointing at the relay (the cluster's CA and token). */
  readonly kubeconfig: string;
  /** The relay's port on 127.0.0.1. */
  readonly port: number;

  #listener: Deno.TcpListener;
  #upstream: { hostname: string; port: number };
  #dir: string;
  #pairs = new Map<number, Pair>();
  #pumps = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #stats = { accepted: 0, freezes: 0 };
  #closed = false;

  private constructor(
    listener: Deno.TcpListener,
    upstream: { hostname: string; port: number },
    dir: string,
    kubeconfig: string,
  ) {
    this.#listener = listener;
    this.#upstream = upstream;
    this.#dir = dir;
    this.port = listener.addr.port;
    this.server = `https://127.0.0.1:${this.port}`;
    this.kubeconfig = kubeconfig;
    this.#accepting = this.#accept();
  }

  /** Starts a relay in front of `upstream` (e.g. the object returned by `cluster()`). */
  static async start(upstream: RelayUpstream): Promise<TcpRelay> {
    const target = new URL(upstream.server);
    const dir = await Deno.makeTempDir({ prefix: "kopf-tcp-relay-" });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = `https://127.0.0.1:${listener.addr.port}`;
    const kubeconfig = `${dir}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: tcp-relay",
        "  cluster:",
        `    server: ${url}`,
        `    certificate-authority-data: ${btoa(upstream.caPem)}`,
        "users:",
        "- name: admin",
        "  user:",
        `    token: ${upstream.token}`,
        "contexts:",
        "- name: tcp-relay",
        "  context: {cluster: tcp-relay, user: admin, namespace: default}",
        "current-context: tcp-relay",
        "",
      ].join("\n"),
    );
    return new TcpRelay(
      listener,
      { hostname: target.hostname, port: Number(target.port || 443) },
      dir,
      kubeconfig,
    );
  }

  /**
   * Stops every connection open now, in both directions, without closing it. Returns how many
   * were frozen. Connections accepted afterwards are relayed normally.
   */
  freeze(): number {
    let count = 0;
    for (const pair of this.#pairs.values()) {
      if (pair.frozen || pair.closed) continue;
      pair.freeze();
      count++;
    }
    this.#stats.freezes += count;
    return count;
  }

  /** Lets frozen connections flow again (with whatever they held); returns how many. */
  thaw(): number {
    let count = 0;
    for (const pair of this.#pairs.values()) {
      if (!pair.frozen) continue;
      pair.thaw();
      count++;
    }
    return count;
  }

  /** The connection counters, as of now. */
  get stats(): RelayStats {
    const pairs = [...this.#pairs.values()];
    return {
      accepted: this.#stats.accepted,
      open: pairs.length,
      frozen: pairs.filter((p) => p.frozen).length,
      freezes: this.#stats.freezes,
    };
  }

  /** Closes the listener and every connection (frozen ones too), and removes the kubeconfig. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const pair of this.#pairs.values()) pair.close();
    await this.#accepting;
    await Promise.allSettled([...this.#pumps]);
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async #accept(): Promise<void> {
    let nextId = 1;
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        break; // the listener was closed
      }
      let server: Deno.TcpConn;
      try {
        server = await Deno.connect(this.#upstream);
      } catch {
        client.close(); // the API server is down: the client sees a reset, as it would directly
        continue;
      }
      if (this.#closed) {
        client.close();
        server.close();
        break;
      }
      this.#stats.accepted++;
      const pair = new Pair(client, server, nextId++);
      this.#pairs.set(pair.id, pair);
      const done = Promise.allSettled([
        this.#pump(pair, client, server),
        this.#pump(pair, server, client),
      ]).then(() => {
        pair.close();
        this.#pairs.delete(pair.id);
      });
      this.#pumps.add(done);
      done.finally(() => this.#pumps.delete(done));
    }
  }

  /** Copies one direction. Every chunk passes the pair's gate before it is written on. */
  async #pump(pair: Pair, from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (!pair.closed) {
        const n = await from.read(buffer);
        // While frozen, even the end of the stream is held: a dropped path carries no FIN.
        await pair.gate();
        if (pair.closed) return;
        if (n === null) {
          await to.closeWrite().catch(() => {});
          return;
        }
        let written = 0;
        while (written < n) written += await to.write(buffer.subarray(written, n));
      }
    } catch {
      // A reset on one side: held while frozen (the other side must not learn of it), else
      // passed on by closing both sides.
      await pair.gate();
      pair.close();
    }
  }
}
