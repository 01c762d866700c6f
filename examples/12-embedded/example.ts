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

const NAMESPACE = Deno.env.get("EXAMPLE_NAMESPACE") ?? "default";

kopf.on.create("kopf.dev", "v1", "kopfexamples", function create_fn() {});

kopf.on.delete("kopf.dev", "v1", "kopfexamples", function delete_fn() {});

const KOPFEXAMPLES = ["kopf.dev", "v1", "kopfexamples"];

async function createObject(api: kopf.Api, step: number): Promise<void> {
  try {
    await api.create({
      apiVersion: "kopf.dev/v1",
      kind: "KopfExample",
      metadata: { name: `kopf-example-${step}`, namespace: NAMESPACE },
    });
  } catch (error) {
    if (!(error instanceof kopf.ApiError && error.status === 409)) throw error;
  }
}

async function deleteObject(api: kopf.Api, step: number): Promise<void> {
  const name = `kopf-example-${step}`;
  await api.delete(KOPFEXAMPLES, name, { namespace: NAMESPACE, missingOk: true });
  // The operator holds the object with its finalizer until delete_fn has run.
  while (true) {
    try {
      await api.get(KOPFEXAMPLES, name, { namespace: NAMESPACE, cached: false });
    } catch (error) {
      if (error instanceof kopf.ApiError && error.status === 404) return;
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
  // Once ready, the operator hands over its API: the application's own requests share the
  // operator's connection, credentials and rate limit.
  const ready = Promise.withResolvers<kopf.Api>();
  const operator = kopf.run({
    namespaces: [NAMESPACE],
    signal: stop.signal,
    ready: ({ api }) => ready.resolve(api),
  });
  const api = await Promise.race([ready.promise, operator.then(() => null)]);
  if (!api) return;

  // The operator is active: run the app's activity.
  for (let step = 0; step < steps; step++) {
    console.log(`Do the main app activity here. Step ${step + 1}/${steps}.`);
    await createObject(api, step);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await deleteObject(api, step);
  }

  // Ask the operator to terminate gracefully (it can take a couple of seconds).
  console.log("Exiting the main app.");
  stop.abort();
  await operator;
}

if (import.meta.main) await main();
