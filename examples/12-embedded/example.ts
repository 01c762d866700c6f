/**
 * An operator embedded in an application: the application starts `kopf.run()` in the background,
 * waits until it is ready (every served resource listed and watched), does its own work — here it
 * creates and deletes a few objects — and then stops the operator, which finishes gracefully.
 *
 * There are no threads to start: the operator runs on the same event loop as the application.
 * `kopf.configure()` gives the operator's logs Kopf's format, as Kopf's example does (the library
 * never configures logging by itself: an application may as well configure LogTape its own way).
 *
 * ```sh
 * deno run -A examples/12-embedded/example.ts        # KUBECONFIG, namespace $EXAMPLE_NAMESPACE or default
 * ```
 *
 * @module
 */
import * as kopf from "@kopf/kopf";
import * as k8s from "@kubernetes/client-node";

const NAMESPACE = Deno.env.get("EXAMPLE_NAMESPACE") ?? "default";

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn() {});

kopf.on.delete("kopf.dev", "v1", "kopfexamples", function delete_fn() {});

const config = new k8s.KubeConfig();
config.loadFromDefault();
const api = config.makeApiClient(k8s.CustomObjectsApi);
const kopfexamples = { group: "kopf.dev", version: "v1", plural: "kopfexamples" };

function status(error: unknown): number | undefined {
  return (error as { code?: number; statusCode?: number })?.code ??
    (error as { statusCode?: number })?.statusCode;
}

async function createObject(step: number): Promise<void> {
  try {
    await api.createNamespacedCustomObject({
      ...kopfexamples,
      namespace: NAMESPACE,
      body: {
        apiVersion: "kopf.dev/v1",
        kind: "KopfExample",
        metadata: { name: `kopf-example-${step}` },
      },
    });
  } catch (error) {
    if (status(error) !== 409) throw error;
  }
}

async function deleteObject(step: number): Promise<void> {
  const name = `kopf-example-${step}`;
  try {
    await api.deleteNamespacedCustomObject({ ...kopfexamples, namespace: NAMESPACE, name });
  } catch (error) {
    if (status(error) !== 404) throw error;
  }
  // The operator holds the object with its finalizer until delete_fn has run.
  while (true) {
    try {
      await api.getNamespacedCustomObject({ ...kopfexamples, namespace: NAMESPACE, name });
    } catch (error) {
      if (status(error) === 404) return;
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The application: start the operator, do the work, stop the operator. */
async function main(steps = 3): Promise<void> {
  kopf.configure({ verbose: true }); // log formatting

  // Start the operator and let it initialise.
  console.log("Starting the main app.");
  const stop = new AbortController();
  const ready = Promise.withResolvers<void>();
  const operator = kopf.run({
    namespaces: [NAMESPACE],
    signal: stop.signal,
    ready: () => ready.resolve(),
  });
  await Promise.race([ready.promise, operator]);

  // The operator is active: run the app's activity.
  for (let step = 0; step < steps; step++) {
    console.log(`Do the main app activity here. Step ${step + 1}/${steps}.`);
    await createObject(step);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await deleteObject(step);
  }

  // Ask the operator to terminate gracefully (it can take a couple of seconds).
  console.log("Exiting the main app.");
  stop.abort();
  await operator;
}

if (import.meta.main) await main();
