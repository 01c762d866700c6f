/**
 * The files `kopf init` writes: a user's operator project, outside this repository. Each
 * template is a function of {@linkcode ProjectParams}; the generated TypeScript passes
 * `deno check`, `deno lint` and `deno fmt --check` as written (tests/e2e/init_project_test.ts).
 *
 * @module
 */

/** What the templates are filled with. */
export interface ProjectParams {
  /** The project's name: a DNS label, used for the image, the ServiceAccount and the Deployment. */
  name: string;
  /** The API group of the project's custom resource, e.g. `example.com`. */
  group: string;
  /** Import map entries that name the framework: `@kopf/kopf`, `@kopf/kopf/testing`, … */
  frameworkImports: Record<string, string>;
  /** The specifier of the framework's command line (`jsr:@kopf/kopf@^1.2.3/cli`, or a path). */
  cli: string;
  /** Whether the framework comes from JSR (the Dockerfile can then fetch it). */
  fromJsr: boolean;
  /** The Deno version of the base image. */
  denoVersion: string;
}

/** The resource the generated handlers serve, as `plural.group`. */
export function resourceOf(params: ProjectParams): string {
  return `greetings.${params.group}`;
}

/** `deno.json`: the import map naming the framework, and the tasks the README lists. */
export function denoJson(params: ProjectParams): string {
  const kopf = `deno run -A ${params.cli}`;
  const config = "--deno-flag=--config=deno.json";
  const sa = `--name ${params.name} --service-account-namespace default`;
  const json = {
    imports: params.frameworkImports,
    tasks: {
      // The lockfile covers the command line too: the image caches both --frozen.
      lock: `deno install --entrypoint handlers.ts ${params.cli}`,
      run: `${kopf} run ${config} handlers.ts`,
      test: "deno test -A handlers_test.ts",
      check: "deno fmt --check && deno lint && deno check handlers.ts handlers_test.ts",
      rbac: `${kopf} rbac ${config} ${sa} -A handlers.ts`,
      bundle: `${kopf} bundle ${config} -o dist/operator.js handlers.ts`,
    },
    fmt: { lineWidth: 100 },
  };
  return JSON.stringify(json, null, 2) + "\n";
}

/** `handlers.ts`: typed handlers of the project's resource. */
export function handlersTs(params: ProjectParams): string {
  return `/**
 * The operator: what it does when a Greeting is created, renamed or deleted. Run it with
 * \`deno task run -n default\`, test it with \`deno task test\` (see README.md).
 *
 * @module
 */
import * as kopf from "@kopf/kopf";

/** The resource the handlers serve: \`plural.group\` of the CRD in crd.yaml. */
export const RESOURCE = "${resourceOf(params)}";

/** The spec of a Greeting, as crd.yaml declares it. */
export interface GreetingSpec {
  /** Whom to greet. */
  name: string;
  /** How to greet; "Hello" by default. */
  greeting?: string;
}

/** The greeting a spec asks for. */
export function messageOf(spec: GreetingSpec): string {
  return \`\${spec.greeting ?? "Hello"}, \${spec.name}!\`;
}

// The function's name is the handler's id: it keys the progress stored on the objects, so keep
// it when the function moves (docs/handler-ids.md of Kopf for Deno).
kopf.on.create<GreetingSpec>(RESOURCE, function greet({ spec, logger }) {
  const message = messageOf(spec);
  logger.info(\`Greeting: \${message}\`);
  // What a handler returns is stored in the object's status, under the handler's id.
  return { message };
});

// Only when spec.name changes, with the old and the new value.
kopf.on.update<GreetingSpec>(
  RESOURCE,
  { field: "spec.name" },
  function rename({ old, new: value, logger }) {
    logger.info(\`Renamed: \${String(old)} -> \${String(value)}\`);
  },
);

kopf.on.delete<GreetingSpec>(RESOURCE, function farewell({ spec, logger }) {
  logger.info(\`Goodbye, \${spec.name}.\`);
});
`;
}

/** `handlers_test.ts`: the operator run by `KopfRunner` against the current cluster. */
export function handlersTestTs(params: ProjectParams): string {
  return `/**
 * The operator against a real cluster (the current kubectl context, or $KUBECONFIG): create a
 * Greeting, see it greeted and its status written, rename it, delete it.
 *
 * \`\`\`sh
 * deno task test          # uses the namespace in $TEST_NAMESPACE, default: "default"
 * \`\`\`
 *
 * @module
 */
import assert from "node:assert/strict";
import { KopfRunner } from "@kopf/kopf/testing";

const here = new URL(".", import.meta.url).pathname;
const NAMESPACE = Deno.env.get("TEST_NAMESPACE") ?? "default";
const NAME = "test-greeting";
// Fully qualified: another CRD's kind may be Greeting too.
const RESOURCE = "${resourceOf(params)}";

async function kubectl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("kubectl", {
    args: ["--namespace", NAMESPACE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, \`kubectl \${args.join(" ")} failed: \${text}\`);
  return text;
}

Deno.test("a Greeting is greeted, renamed and said goodbye to", async () => {
  await kubectl("apply", "-f", \`\${here}crd.yaml\`);
  await kubectl("wait", "--for=condition=Established", \`crd/\${RESOURCE}\`);
  await kubectl("delete", RESOURCE, NAME, "--ignore-not-found", "--wait=true");

  let runner: KopfRunner;
  {
    await using operator = new KopfRunner(
      [
        "run",
        \`--deno-flag=--config=\${here}deno.json\`,
        "--standalone",
        "--namespace",
        NAMESPACE,
        \`\${here}handlers.ts\`,
      ],
      { timeout: 30 },
    );
    runner = operator;
    await kubectl("apply", "-f", \`\${here}example.yaml\`);
    await operator.waitForOutput("Greeting: Hello, world!", { timeout: 60 });
    await operator.waitForOutput("Handler 'greet' succeeded", { timeout: 30 });
    const status = await kubectl("get", RESOURCE, NAME, "-o", "jsonpath={.status.greet}");
    assert.deepEqual(JSON.parse(status), { message: "Hello, world!" });

    await kubectl("patch", RESOURCE, NAME, "--type=merge", "-p", '{"spec":{"name":"Deno"}}');
    await operator.waitForOutput("Renamed: world -> Deno", { timeout: 60 });

    await kubectl("delete", RESOURCE, NAME, "--wait=true");
    await operator.waitForOutput("Goodbye, Deno.", { timeout: 60 });
  } // Stopped here; disposal throws if the operator failed or did not stop.

  assert.equal(runner.exitCode, 0);
  assert.doesNotMatch(runner.output, /failed (temporarily|permanently|with an exception)/);
});
`;
}

/** `crd.yaml`: the project's custom resource. */
export function crdYaml(params: ProjectParams): string {
  return `# The custom resource the operator serves: kubectl apply -f crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${resourceOf(params)}
spec:
  scope: Namespaced
  group: ${params.group}
  names:
    kind: Greeting
    plural: greetings
    singular: greeting
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [name]
              properties:
                name: { type: string }
                greeting: { type: string }
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
      additionalPrinterColumns:
        - name: Message
          type: string
          jsonPath: .status.greet.message
`;
}

/** `example.yaml`: one object of it. */
export function exampleYaml(params: ProjectParams): string {
  return `# An object for the operator: kubectl apply -f example.yaml
apiVersion: ${params.group}/v1
kind: Greeting
metadata:
  name: test-greeting
spec:
  name: world
`;
}

/** Flags of `kopf run` in the image: checked at build time, JSON logs, a liveness endpoint. */
const IMAGE_RUN_FLAGS = [
  "--no-check",
  "--deno-flag=--config=/app/deno.json",
  "--all-namespaces",
  "--log-format=json",
  "--liveness=http://0.0.0.0:8080/healthz",
];

/** `Dockerfile`: the image of this project, from its own deno.json and lockfile. */
export function dockerfile(params: ProjectParams): string {
  const run = [params.cli, "run", ...IMAGE_RUN_FLAGS, "/app/handlers.ts"];
  const local = params.fromJsr ? "" : `#
# This project names the framework by a path (kopf init --framework): the build context must
# contain it, so point deno.json at a copy inside this directory (e.g. ./vendor/kopf) or, once
# published, at JSR (kopf init without --framework).
`;
  return `# The operator's image, built from this project: its deno.json, its lockfile and its files.
#
#   deno task lock                          # once, and after each dependency change: deno.lock
#   docker build -t ${params.name} .
#   deno task rbac | kubectl apply -f -     # the ServiceAccount and the roles (kopf rbac)
#   kubectl apply -f crd.yaml -f deploy/deployment.yaml
${local}
FROM denoland/deno:${params.denoVersion}

WORKDIR /app
COPY deno.json deno.lock ./
COPY *.ts ./

# The image's non-root \`deno\` user owns DENO_DIR: fetch the dependencies (exactly as locked) and
# type-check as that user, then run as it. The check happens here, so the container skips it.
USER deno
RUN deno cache --frozen handlers.ts ${params.cli} && deno check handlers.ts

# \`kopf run\` reads the handler files (and lists their module graph with /bin/deno) and the
# service account, and replaces itself (execve through FFI) with the operator: a \`deno run\` that
# may only reach the API server, as PID 1, which gets Kubernetes' SIGTERM (see the docs of
# \`kopf run\`). Grant the handlers more with --allow-net=… and friends after "run".
ENTRYPOINT ["deno", "run", "--no-prompt", \\
  "--allow-read=/app,/var/run/secrets/kubernetes.io/serviceaccount", \\
  "--allow-env=KUBECONFIG,HOME,KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,POD_ID,KOPF_LOG_FORMAT,KOPF_RUN_LIVENESS,KOPF_RUN_STANDALONE,KOPF_RUN_PRIORITY,KOPF_LAUNCHER", \\
  "--ignore-env", \\
  "--allow-run=/bin/deno", \\
  "--allow-ffi", \\
  ${run.map((word) => JSON.stringify(word)).join(", ")}]
`;
}

/** `deploy/deployment.yaml`: the Deployment, with its probe, under the ServiceAccount. */
export function deploymentYaml(params: ProjectParams): string {
  return `# The operator in the cluster: one replica under the ServiceAccount that \`deno task rbac\`
# prints (kopf rbac: the least roles the handlers need). Build the image first (Dockerfile).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${params.name}
  namespace: default
spec:
  replicas: 1
  # One operator at a time: a new one starts when the old one has stopped.
  strategy: { type: Recreate }
  selector:
    matchLabels: { app: ${params.name} }
  template:
    metadata:
      labels: { app: ${params.name} }
    spec:
      serviceAccountName: ${params.name}
      # SIGTERM lets the handlers finish; this is how long they may take.
      terminationGracePeriodSeconds: 60
      containers:
        - name: operator
          image: ${params.name}:latest
          # The image's CMD runs \`kopf run --all-namespaces --liveness=http://0.0.0.0:8080/healthz\`.
          ports:
            - { name: health, containerPort: 8080 }
          livenessProbe:
            httpGet: { path: /healthz, port: health }
            periodSeconds: 10
            failureThreshold: 3
          startupProbe:
            httpGet: { path: /healthz, port: health }
            periodSeconds: 2
            failureThreshold: 30
          resources:
            requests: { cpu: 50m, memory: 96Mi }
            limits: { memory: 256Mi }
          securityContext:
            allowPrivilegeEscalation: false
            runAsNonRoot: true
# Optional: a Service, for admission webhooks (kopf.on.validate/mutate) or metrics served by the
# operator; the liveness probe above needs none. For webhooks: add "--webhook-server=https://0.0.0.0:9443"
# and "--webhook-managed=<name>" as the container's args (appended to the image's kopf run), a port
# { name: webhooks, containerPort: 9443 } above, point settings.admission.service at this Service
# in a startup handler so that the webhook configurations name it, and uncomment it (the
# framework's docs/admission.md). For metrics: likewise with the flag and port that serve them.
# ---
# apiVersion: v1
# kind: Service
# metadata:
#   name: ${params.name}
#   namespace: default
# spec:
#   selector: { app: ${params.name} }
#   ports:
#     - { name: webhooks, port: 443, targetPort: 9443 }
#     - { name: metrics, port: 9090, targetPort: 9090 }
`;
}

/** `README.md`: the project's commands. */
export function readme(params: ProjectParams): string {
  return `# ${params.name}

A Kubernetes operator written with [Kopf for Deno](https://jsr.io/@kopf/kopf): \`handlers.ts\` reacts
to \`Greeting\` objects (\`crd.yaml\`), greets them, and says goodbye when they are deleted.

| file                       | what it is                                                            |
| -------------------------- | --------------------------------------------------------------------- |
| \`deno.json\`                | the import map that names the framework (\`@kopf/kopf\`), the tasks     |
| \`handlers.ts\`              | the handlers, typed by the spec they read                             |
| \`handlers_test.ts\`         | the operator run by \`KopfRunner\` against a cluster                    |
| \`crd.yaml\`, \`example.yaml\` | the custom resource and one object of it                              |
| \`Dockerfile\`               | the image, built from this project and its lockfile                   |
| \`deploy/deployment.yaml\`   | the Deployment with its probes (the ServiceAccount: \`deno task rbac\`) |

## Commands

\`\`\`sh
deno task check                      # deno fmt --check, deno lint, deno check
kubectl apply -f crd.yaml            # the resource, once per cluster
deno task run -n default             # run the operator (Ctrl-C stops it); -A for all namespaces
kubectl apply -f example.yaml        # … and see it greeted in the operator's log
deno task test                       # the test, against the current cluster
\`\`\`

\`kopf run\` type-checks \`handlers.ts\` before it starts (\`--no-check\` skips it) and runs the operator
with the least permissions: the API server, the handlers' own files, nothing else. A handler that
needs another host or file gets it with \`--allow-net=…\` or \`--allow-read=…\` (\`deno task run --help\`
lists them). The framework's API: \`deno doc jsr:@kopf/kopf\`.

## Deploying

\`\`\`sh
deno task lock                                 # writes deno.lock: commit it
docker build -t ${params.name} .
deno task rbac | kubectl apply -f -            # ServiceAccount ${params.name} and its roles
kubectl apply -f crd.yaml -f deploy/deployment.yaml
\`\`\`

\`deno task rbac\` asks the cluster's discovery about the resources the handlers serve, so apply
\`crd.yaml\` first; run it again when the handlers serve other resources. \`deno task bundle\` writes
the operator as one JavaScript file (\`dist/operator.js\`) and prints the \`deno run\` command, with its
permissions, that runs it.
`;
}
