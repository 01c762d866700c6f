# An image of this repository's examples: Kopf for Deno and one handler file, started by
# `kopf run`, which runs the operator in a `deno run` that may only reach the API server and read
# the files it needs. Its build context is this checkout and its lockfile is the framework's.
#
# For an operator of your own, use the Dockerfile that `kopf init` writes into your project: it is
# built from your project's deno.json and deno.lock (your dependencies too), with a Deployment
# and the RBAC of `kopf rbac` beside it (docs/project.md).
#
#   docker build -t my-operator --build-arg HANDLERS=examples/01-minimal/example.ts .
#   deno run -A cli.ts rbac examples/01-minimal/example.ts -A | kubectl apply -f -
#   # then a Deployment with `serviceAccountName: kopf-operator` and `image: my-operator`
#
# Handler files import the framework as "@kopf/kopf" (the package's own name in deno.json), so
# the file works wherever it is copied under /app. An operator of several files: copy their
# directory instead and name its main file in CMD.
FROM denoland/deno:2.9.6

WORKDIR /app
COPY deno.json deno.lock mod.ts cli.ts ./
COPY src/ ./src/
ARG HANDLERS=examples/01-minimal/example.ts
COPY ${HANDLERS} ./handlers/operator.ts

# The image's non-root `deno` user owns DENO_DIR: cache the dependencies as that user, run as it.
USER deno
# Type-checked here, once: the container's `kopf run` skips the check (--no-check).
RUN deno cache --frozen cli.ts src/cli/child.ts handlers/operator.ts && \
  deno check handlers/operator.ts

# The launcher reads the handler files (and lists their module graph with `deno info`: /bin/deno
# is what it runs) and the service account (or a kubeconfig: add its path and the files it names to
# --allow-read and set KUBECONFIG) and replaces itself (execve through FFI, hence --allow-ffi)
# with the operator: `deno run` with scoped grants, as PID 1, which gets Kubernetes' SIGTERM and
# stops gracefully. The launcher runs no handler code. Without --allow-ffi it would stay resident
# (about 55 MiB) and forward signals to the operator as its child (docs/cli.md).
ENTRYPOINT ["deno", "run", "--no-prompt", \
  "--allow-read=/app,/var/run/secrets/kubernetes.io/serviceaccount", \
  "--allow-env=KUBECONFIG,HOME,KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,POD_ID,KOPF_LOG_FORMAT,KOPF_RUN_LIVENESS,KOPF_RUN_STANDALONE,KOPF_RUN_PRIORITY,KOPF_LAUNCHER", \
  "--ignore-env", \
  "--allow-run=/bin/deno", \
  "--allow-ffi", \
  "/app/cli.ts", "run"]
CMD ["--no-check", "--all-namespaces", "--log-format=json", "/app/handlers/operator.ts"]
