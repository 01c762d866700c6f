// The operator's /metrics against the real API server (the private plane of KOPF_CLUSTER_DIR):
// handler and cycle counters equal what happened, the queue depth rises during a burst and
// returns to 0, rest_client_requests_total agrees with the API server's own
// apiserver_request_total, the exposition parses with prometheus_client's parser, concurrent
// scrapes and scrapes during shutdown are whole, and the health server answers /metrics when it
// shares the address.

import assert from "node:assert/strict";
import * as kopf from "../../mod.ts";
import { cluster } from "../support/cluster.ts";
import { createObject, startOperator, stripFinalizers, testResource } from "../support/engine.ts";
import { OperatorProcess } from "../support/operator_process.ts";
import {
  freePort,
  parseText,
  prometheusParse,
  type Samples,
  scrape,
} from "../support/prometheus.ts";
import { sleep, waitFor } from "../support/wait.ts";

const c = await cluster();
const res = await testResource(c, "metricsexamples");
const controller = `${res.plural}.${res.group}`;

function quietSettings(): kopf.Settings {
  const settings = new kopf.Settings();
  // No CRD or namespace watching: in the window, the operator's only requests are to its own
  // resource and to Events, which the API server's counters can be compared with.
  settings.scanning.disabled = true;
  settings.posting.enabled = false;
  return settings;
}

Deno.test("after N objects with temporary errors, the counters equal what happened", async () => {
  const ns = await c.namespace("metrics");
  const registry = new kopf.Registry();
  const N = 6;
  const FAILING = 2;
  const calls: string[] = [];
  registry.on.create(res.plural, { id: "flaky" }, ({ name, retry }) => {
    calls.push(`${name}#${retry}`);
    if (Number(name!.split("-")[1]) < FAILING && retry === 0) {
      throw new kopf.TemporaryError("not yet", { delay: 0.5 });
    }
  });
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  try {
    const before = await scrape(url);
    for (let i = 0; i < N; i++) await createObject(c, res, ns, `obj-${i}`);
    await waitFor(() => calls.length === N + FAILING, { message: "every handler call" });
    // Let the last cycles (progress purge, diff-base) end and the queue settle.
    await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("workqueue_depth") === 0 && s.sum("controller_runtime_active_workers") === 0 &&
        s.sum("kopf_queue_delayed") === 0;
    }, { message: "the queue to settle" });
    await sleep(1000);
    const after = await scrape(url);
    const d = after.since(before);
    const runs = (outcome: string) =>
      d.sum("kopf_handler_runs_total", { handler: "flaky", kind: "changing", outcome });
    assert.equal(calls.length, N + FAILING, calls.join(" "));
    assert.equal(runs("success"), N);
    assert.equal(runs("temporary"), FAILING);
    assert.equal(runs("permanent"), 0);
    assert.equal(d.sum("kopf_handler_retries_total", { handler: "flaky" }), FAILING);
    assert.equal(d.sum("kopf_handler_duration_seconds_count", { handler: "flaky" }), N + FAILING);
    // Every cycle is one reconcile, one queue run, one work-duration observation.
    const cycles = d.sum("controller_runtime_reconcile_total", { controller });
    assert.ok(cycles >= N + FAILING, `cycles: ${cycles}`);
    assert.equal(d.sum("controller_runtime_reconcile_time_seconds_count", { controller }), cycles);
    assert.equal(d.sum("controller_runtime_reconcile_errors_total", { controller }), 0);
    assert.equal(d.sum("workqueue_work_duration_seconds_count", { name: "objects" }), cycles);
    assert.equal(d.sum("workqueue_queue_duration_seconds_count", { name: "objects" }), cycles);
    // The failing objects each asked for a retry later.
    assert.ok(
      d.sum("controller_runtime_reconcile_total", { controller, result: "requeue_after" }) >=
        FAILING,
    );
    assert.equal(
      after.sum("kopf_cached_objects", { resource: controller, namespace: ns }),
      N,
    );
    assert.equal(after.sum("kopf_watch_healthy", { resource: controller, namespace: ns }), 1);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("the queue depth rises during a burst and returns to 0", async () => {
  const ns = await c.namespace("metrics-burst");
  const registry = new kopf.Registry();
  const BURST = 12;
  let done = 0;
  registry.on.create(res.plural, { id: "slow" }, async () => {
    await sleep(150);
    done++;
  });
  const settings = quietSettings();
  settings.queueing.workerLimit = 1;
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, { registry, namespaces: [ns], metrics: url, settings });
  try {
    let maxDepth = 0;
    let maxLongest = 0;
    let sawWorker = false;
    const watching = (async () => {
      while (done < BURST) {
        const s = await scrape(url);
        maxDepth = Math.max(maxDepth, s.sum("workqueue_depth", { name: "objects" }));
        maxLongest = Math.max(
          maxLongest,
          s.sum("workqueue_longest_running_processor_seconds", { name: "objects" }),
        );
        sawWorker ||= s.sum("controller_runtime_active_workers", { controller: "objects" }) === 1;
        await sleep(20);
      }
    })();
    await Promise.all(
      Array.from({ length: BURST }, (_, i) => createObject(c, res, ns, `burst-${i}`)),
    );
    await watching;
    await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("workqueue_depth") === 0 && s.sum("controller_runtime_active_workers") === 0;
    }, { message: "the queue to drain" });
    const s = await scrape(url);
    // One worker, 150 ms per handler: keys pile up while it works.
    assert.ok(maxDepth >= BURST / 2, `max depth ${maxDepth}`);
    assert.ok(maxLongest > 0, `longest running ${maxLongest}`);
    assert.ok(sawWorker);
    assert.equal(
      s.sum("controller_runtime_max_concurrent_reconciles", { controller: "objects" }),
      1,
    );
    assert.equal(s.sum("workqueue_depth", { name: "objects" }), 0);
    assert.equal(s.sum("workqueue_unfinished_work_seconds", { name: "objects" }), 0);
    assert.equal(s.sum("kopf_handler_runs_total", { handler: "slow", outcome: "success" }), BURST);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

/** The operator's requests by method and code, from rest_client_requests_total. */
function clientRequests(d: Samples): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of d.series) {
    if (s.name !== "rest_client_requests_total" || s.value === 0) continue;
    const key = `${s.labels.method} ${s.labels.code}`;
    counts.set(key, (counts.get(key) ?? 0) + s.value);
  }
  return counts;
}

Deno.test("rest_client_requests_total agrees with the API server's apiserver_request_total", async () => {
  const ns = await c.namespace("metrics-rest");
  const registry = new kopf.Registry();
  const N = 5;
  let calls = 0;
  registry.on.create(res.plural, { id: "create" }, () => {
    calls++;
  });
  registry.on.update(res.plural, { id: "update" }, () => {});
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  try {
    // The window: from a quiet, ready operator to a quiet one again. In it the harness makes
    // exactly N POSTs to the resource (the objects) and one GET of /metrics per snapshot;
    // every other request to the resource is the operator's. A watch is counted by the client
    // when it opens and by the API server when it ends: the window starts with the watch open
    // (counted by neither side in the window) and ends before it closes.
    await waitFor(async () =>
      (await scrape(url)).sum("kopf_watch_healthy", { resource: controller, namespace: ns }) === 1
    );
    // The namespace controller LISTs and DELETEs every resource (ours too) of a namespace being
    // deleted (earlier tests'): the window opens once none is left.
    await waitFor(async () => {
      const list = await c.api("GET", "/api/v1/namespaces");
      return !list.items.some((n: { status?: { phase?: string } }) =>
        n.status?.phase === "Terminating"
      );
    }, { timeout: 120, message: "no namespace being deleted" });
    await sleep(500);
    const client0 = await scrape(url);
    const server0 = await c.metrics();
    for (let i = 0; i < N; i++) await createObject(c, res, ns, `rest-${i}`);
    await waitFor(() => calls === N, { message: "every create handler" });
    await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("workqueue_depth") === 0 && s.sum("controller_runtime_active_workers") === 0;
    }, { message: "the queue to settle" });
    await sleep(1500);
    const server = (await c.metrics()).since(server0);
    const client = clientRequests((await scrape(url)).since(client0));
    // The API server's verbs as the client's methods: reads (GET, LIST, WATCH) are GETs, and
    // patches of any kind are PATCHes.
    const verbs: Record<string, string[]> = {
      GET: ["GET", "LIST", "WATCH"],
      POST: ["POST"],
      PUT: ["PUT"],
      PATCH: ["PATCH", "APPLY"],
      DELETE: ["DELETE"],
    };
    const serverCounts = new Map<string, number>();
    for (const [method, names] of Object.entries(verbs)) {
      for (const verb of names) {
        for (const s of server.series) {
          if (s.labels.verb !== verb || s.labels.resource !== res.plural) continue;
          const key = `${method} ${s.labels.code}`;
          serverCounts.set(key, (serverCounts.get(key) ?? 0) + s.value);
        }
      }
    }
    // The harness's own N creates.
    serverCounts.set("POST 201", (serverCounts.get("POST 201") ?? 0) - N);
    for (const [key, value] of [...serverCounts]) if (value === 0) serverCounts.delete(key);
    const sorted = (m: Map<string, number>) => [...m].sort(([a], [b]) => a.localeCompare(b));
    assert.ok((client.get("PATCH 200") ?? 0) >= N, JSON.stringify(sorted(client)));
    assert.deepEqual(
      sorted(client),
      sorted(serverCounts),
      `server:\n${server.toString().split("\n").filter((l) => l.includes(res.plural)).join("\n")}`,
    );
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("the exposition parses with prometheus_client; concurrent scrapes are whole", async () => {
  const ns = await c.namespace("metrics-parse");
  const registry = new kopf.Registry();
  // A handler id with a quote, a backslash, a newline and non-ASCII: escaped in label values.
  const id = 'say "hi"\\\nπ-ключ-名前';
  let calls = 0;
  registry.on.create(res.plural, { id }, () => {
    calls++;
  });
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  try {
    await createObject(c, res, ns, "parsed");
    await waitFor(() => calls === 1, { message: "the handler" });
    await waitFor(async () => (await scrape(url)).sum("controller_runtime_reconcile_total") > 0, {
      message: "a whole cycle",
    });
    const texts = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const response = await fetch(url);
        assert.equal(response.status, 200);
        assert.equal(
          response.headers.get("content-type"),
          "text/plain; version=0.0.4; charset=utf-8",
        );
        return await response.text();
      }),
    );
    for (const text of texts) assert.ok(text.endsWith("\n") && text.includes("# TYPE"));
    const parsed = await prometheusParse(texts[0]);
    const families = new Set(parsed.map((s) => s.family));
    for (
      const family of [
        "controller_runtime_reconcile",
        "controller_runtime_reconcile_errors",
        "controller_runtime_reconcile_time_seconds",
        "controller_runtime_max_concurrent_reconciles",
        "controller_runtime_active_workers",
        "workqueue_depth",
        "workqueue_adds",
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "workqueue_retries",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "rest_client_requests",
        "rest_client_request_duration_seconds",
        "kopf_handler_runs",
        "kopf_handler_duration_seconds",
        "kopf_cached_objects",
        "kopf_watch_relists",
      ]
    ) assert.ok(families.has(family), `${family} in ${[...families].join(", ")}`);
    // The real parser reads the escaped id back as it was.
    const run = parsed.find((s) => s.name === "kopf_handler_runs_total");
    assert.equal(run?.labels.handler, id);
    assert.equal(run?.value, 1);
    // And our reader agrees with it on every sample.
    const ours = parseText(texts[0]);
    assert.equal(ours.series.length, parsed.length);
    assert.equal(ours.sum("kopf_handler_runs_total", { handler: id }), 1);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("scrapes during shutdown are whole or refused, never broken", async () => {
  const ns = await c.namespace("metrics-stop");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "quick" }, () => {});
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  const outcomes = { whole: 0, refused: 0 };
  let stopping = true;
  const scraping = (async () => {
    while (stopping) {
      try {
        const response = await fetch(url);
        const text = await response.text();
        assert.equal(response.status, 200, text);
        await prometheusParse(text); // throws if the text is cut or malformed
        outcomes.whole++;
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        if (!(error instanceof TypeError)) throw error; // fetch's "connection refused"
        outcomes.refused++;
        await sleep(20);
      }
    }
  })();
  try {
    await sleep(300);
    await operator.stop();
    await sleep(300);
  } finally {
    stopping = false;
    await scraping;
    await c.deleteNamespace(ns);
  }
  assert.ok(outcomes.whole > 0, JSON.stringify(outcomes));
  assert.ok(outcomes.refused > 0, JSON.stringify(outcomes));
});

Deno.test("the health endpoint's server answers /metrics when the address is the same", async () => {
  const ns = await c.namespace("metrics-shared");
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "quick" }, () => {});
  const port = freePort();
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    liveness: `http://127.0.0.1:${port}/healthz`,
    metrics: `http://127.0.0.1:${port}/metrics`,
    settings: quietSettings(),
  });
  try {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const metrics = await scrape(`http://127.0.0.1:${port}/metrics`);
    assert.ok(metrics.has("workqueue_depth"));
    const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await operator.stop();
    await c.deleteNamespace(ns);
  }
});

Deno.test({
  name: "kopf run with KOPF_RUN_METRICS serves /metrics inside the sandbox (its address granted)",
  async fn() {
    const root = new URL("../../", import.meta.url).pathname;
    const ns = await c.namespace("metrics-cli");
    const dir = await Deno.makeTempDir({ prefix: "kopf-cli-metrics-" });
    await Deno.writeTextFile(
      `${dir}/handlers.ts`,
      `import * as kopf from ${JSON.stringify(`${root}mod.ts`)};
kopf.on.create(${JSON.stringify(res.plural)}, { id: "cli" }, () => {});
`,
    );
    const port = freePort();
    const op = OperatorProcess.start({
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        `${root}cli.ts`,
        "run",
        `${dir}/handlers.ts`,
        "-n",
        ns,
        "--standalone",
        "-v",
      ],
      env: { KUBECONFIG: c.kubeconfig, KOPF_RUN_METRICS: `http://127.0.0.1:${port}/metrics` },
    });
    try {
      const launched = await op.waitForLog(/^kopf: .* run /, 30);
      assert.ok(launched.includes(`127.0.0.1:${port}`), launched);
      await createObject(c, res, ns, "from-cli");
      const samples = await waitFor(async () => {
        const s = await scrape(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        return s && s.sum("kopf_handler_runs_total", { handler: "cli" }) === 1 ? s : undefined;
      }, { timeout: 60, message: "the handler run in /metrics" }).catch((e) => {
        throw new Error(`${e.message}\n${op.output()}`);
      });
      assert.equal(
        samples.sum("kopf_handler_runs_total", { handler: "cli", outcome: "success" }),
        1,
      );
      assert.equal((await op.stop()).code, 0, op.output());
    } finally {
      await op.stop();
      await stripFinalizers(c, res, ns);
      await c.deleteNamespace(ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("daemons running, index sizes and index attempts are counted", async () => {
  const ns = await c.namespace("metrics-bg");
  const registry = new kopf.Registry();
  const N = 3;
  // One key per object (a bare value would go under one key for all).
  registry.index(res.plural, { id: "names" }, ({ name }) => ({ [name!]: true }));
  registry.daemon(res.plural, { id: "idler" }, async ({ stopped }) => {
    await stopped.wait();
  });
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  try {
    for (let i = 0; i < N; i++) await createObject(c, res, ns, `bg-${i}`);
    const s = await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("kopf_daemons_running") === N && s.sum("kopf_index_size") === N ? s : undefined;
    }, { message: "three daemons and three index keys" });
    assert.equal(s.sum("kopf_daemon_objects"), N);
    assert.equal(s.sum("kopf_index_size", { index: "names" }), N);
    assert.equal(
      s.sum("kopf_handler_runs_total", { handler: "names", kind: "indexing", outcome: "success" }),
      N,
    );
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("bad metrics URLs and a taken port fail the start with one message naming the URL", async () => {
  const registry = new kopf.Registry();
  registry.on.create(res.plural, { id: "never" }, () => {});
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = `http://127.0.0.1:${(held.addr as Deno.NetAddr).port}/metrics`;
  const start = (metrics: string) =>
    kopf.run({
      registry,
      metrics,
      namespaces: ["default"],
      kubeconfig: c.kubeconfig,
      settings: quietSettings(),
      signal: AbortSignal.timeout(30_000),
    });
  try {
    await assert.rejects(start(taken), {
      message:
        `the metrics endpoint could not listen on ${taken}: Address already in use (os error 98)`,
    });
    await assert.rejects(start("ftp://127.0.0.1/metrics"), {
      name: "TypeError",
      message: "Unsupported scheme of the metrics endpoint: ftp://127.0.0.1/metrics",
    });
    await assert.rejects(start("not a url"), {
      name: "TypeError",
      message: "Unsupported metrics endpoint (http://host:port/path): not a url",
    });
  } finally {
    held.close();
  }
});

Deno.test("a handler whose writes trigger itself again is a patch-loop suspect; others are not", async () => {
  const ns = await c.namespace("metrics-loop");
  const registry = new kopf.Registry();
  let loops = 0;
  // Each run changes the object's spec while `spec.loop` is set: the change triggers it again.
  const bump = ({ spec, patch }: kopf.ChangingContext) => {
    if (spec.loop) {
      loops++;
      patch.spec.n = ((spec.n as number | undefined) ?? 0) + 1;
    }
  };
  registry.on.create(res.plural, { id: "create" }, bump);
  registry.on.update(res.plural, { id: "update" }, bump);
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, {
    registry,
    namespaces: [ns],
    metrics: url,
    settings: quietSettings(),
  });
  try {
    await createObject(c, res, ns, "calm", { loop: false });
    await createObject(c, res, ns, "looping", { loop: true });
    const s = await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("kopf_patch_loop_suspects") === 1 ? s : undefined;
    }, { message: "the looping object to be suspected" });
    assert.equal(s.sum("kopf_patch_loop_suspects_total", { controller }), 1);
    assert.ok(loops >= 10, `${loops} runs`);
    // The loop is broken: the streak ends, the gauge goes back to 0; the counter stays.
    await c.api("PATCH", res.path(ns, "looping"), { spec: { loop: false } }, {
      contentType: "application/merge-patch+json",
    });
    const after = await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("kopf_patch_loop_suspects") === 0 ? s : undefined;
    }, { message: "the loop to end" });
    assert.equal(after.sum("kopf_patch_loop_suspects_total", { controller }), 1);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("Kubernetes Events posted by handlers are counted", async () => {
  const ns = await c.namespace("metrics-events");
  const registry = new kopf.Registry();
  const N = 3;
  registry.on.create(res.plural, { id: "tell" }, ({ body }) => {
    kopf.info(body, { reason: "Hello", message: `hello from ${body.metadata?.name}` });
  });
  const settings = quietSettings();
  settings.posting.enabled = true;
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, { registry, namespaces: [ns], metrics: url, settings });
  try {
    for (let i = 0; i < N; i++) await createObject(c, res, ns, `ev-${i}`);
    await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("kopf_events_posted_total", { verb: "create" }) >= N;
    }, { message: "the handlers' Events to be posted" });
    await sleep(3000); // the framework's own Events of the outcomes, if any, and flushes
    const s = await scrape(url);
    const events = await c.api("GET", `/api/v1/namespaces/${ns}/events`);
    assert.equal(s.sum("kopf_events_posted_total", { verb: "create" }), events.items.length);
    assert.equal(s.sum("kopf_events_dropped_total"), 0);
  } finally {
    await operator.stop();
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});

Deno.test("admission calls by handler and verdict, and the leader election's status", async () => {
  const ns = await c.namespace("metrics-adm");
  const registry = new kopf.Registry();
  registry.on.validate(res.plural, { id: "positive" }, ({ spec }) => {
    if (typeof spec.size === "number" && spec.size < 1) {
      throw new kopf.AdmissionError("spec.size must be positive.", { code: 422 });
    }
  });
  const settings = quietSettings();
  settings.admission.server = new kopf.WebhookServer();
  settings.admission.managed = `metrics-${ns}.kopf.dev`;
  settings.peering.standalone = true;
  settings.peering.leaderElection = true;
  settings.peering.leaseName = `metrics-${ns}`;
  settings.peering.leaseNamespace = ns;
  const url = `http://127.0.0.1:${freePort()}/metrics`;
  const operator = await startOperator(c, { registry, namespaces: [ns], metrics: url, settings });
  try {
    const leading = await waitFor(async () => {
      const s = await scrape(url);
      return s.sum("leader_election_master_status", { name: `metrics-${ns}` }) === 1 && s;
    }, { message: "the replica to lead" });
    assert.ok(leading);
    await createObject(c, res, ns, "good", { size: 2 });
    await createObject(c, res, ns, "good-too", { size: 3 });
    await assert.rejects(
      createObject(c, res, ns, "bad", { size: 0 }),
      /spec\.size must be positive/,
    );
    const s = await scrape(url);
    const runs = (outcome: string) =>
      s.sum("kopf_handler_runs_total", { handler: "positive", kind: "webhook", outcome });
    assert.equal(runs("success"), 2, "two admitted");
    assert.equal(runs("permanent"), 1, "one denied");
  } finally {
    await operator.stop();
    await c.api(
      "DELETE",
      `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/metrics-${ns}.kopf.dev`,
    ).catch(() => {});
    await stripFinalizers(c, res, ns);
    await c.deleteNamespace(ns);
  }
});
