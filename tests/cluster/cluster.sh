#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1: etcd + kube-apiserver + kube-controller-manager
# (garbage collector, namespace, service-account and PV/PVC binder and protection controllers),
# built from the Go module proxy by build.sh. No containers, no downloads. There is no kubelet and
# no storage provisioner: a PVC stays Pending unless a PV is created for it by hand, but it is
# deleted cleanly (the protection controller removes its finalizer), so garbage collection of a
# PVC child completes as on a real cluster.
#
#   cluster.sh up [--sharded]     start (or reuse) the plane; last line: KUBECONFIG=<path>
#                                 --sharded: kube-apiserver with the ShardedListAndWatch feature
#                                 gate (KEP-5866: `shardSelector` on LIST and WATCH)
#   cluster.sh down               stop what `up` started and remove its data
#   cluster.sh status             say whether the plane is running; exit 1 if not
#   cluster.sh restart-apiserver  stop and start kube-apiserver only (for watch-survival tests)
#   cluster.sh stop-apiserver     stop kube-apiserver only (TERM, KILL after 2 s; etcd keeps the data)
#   cluster.sh start-apiserver    start the stopped kube-apiserver and wait until it is ready
#   cluster.sh stop-etcd          stop etcd only (TERM, KILL after 1 s); kube-apiserver stays up
#                                 and fails its requests
#   cluster.sh start-etcd         start the stopped etcd on its data and wait until the API is ready
#   cluster.sh logs               print the tail of every component's log
#
# Environment: KOPF_CLUSTER_DIR (default /tmp/kopf-cluster) holds pki/, etcd data, logs/,
# *.pid, ports, kubeconfig and env; KOPF_CLUSTER_TIMEOUT (default 120) bounds every wait.
# KOPF_CLUSTER_WEBHOOK_CLIENT_CERT=1 at `up` (off by default) makes kube-apiserver present a client
# certificate (pki/webhook-client.crt, CN=kube-apiserver-webhook-client, signed by pki/ca.crt) to
# every admission webhook it calls: --admission-control-config-file with a kubeconfig for webhooks
# (user "*"). Kept for the plane's life (restart-apiserver too), recorded in $RUN/options.
# KOPF_CLUSTER_FEATURE_GATES (default empty) is kube-apiserver's --feature-gates, e.g.
# ShardedListAndWatch=true (what --sharded sets). The gates are kept with the plane: restarts keep
# them, and `up` refuses to reuse a running plane started with other gates.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
RUN=${KOPF_CLUSTER_DIR:-/tmp/kopf-cluster}
TIMEOUT=${KOPF_CLUSTER_TIMEOUT:-120}
PKI=$RUN/pki
LOGS=$RUN/logs
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

say() { echo "cluster: $*" >&2; }

die() { # component, message
  say "$1 failed: $2"
  if [ -f "$LOGS/$1.log" ]; then
    say "last lines of $LOGS/$1.log:"
    tail -n 25 "$LOGS/$1.log" >&2
  fi
  say "retry with: bash $ROOT/cluster.sh down && bash $ROOT/cluster.sh up"
  exit 1
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for COMPONENT SECONDS CMD...: retry CMD every 0.2 s; fail with the component's log tail when
# it does not succeed in time or the component's process exits meanwhile.
wait_for() {
  local comp=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    alive "$comp" || die "$comp" "the process exited while starting"
    [ "$(date +%s)" -lt "$deadline" ] || die "$comp" "not ready within ${secs}s (waiting for: $*)"
    sleep 0.2
  done
}

load_ports() { # shellcheck disable=SC1091
  . "$RUN/ports"
}

api_get() { # path
  curl --noproxy '*' -fsS --max-time 5 --cacert "$PKI/ca.crt" \
    -H "Authorization: Bearer $(cat "$PKI/token")" "https://127.0.0.1:$APISERVER_PORT$1"
}

make_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=kopf-test-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    leaf() { # name, subject, extensions...
      local name=$1 subj=$2; shift 2
      openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
      printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$@" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
        -out "$name.crt" -extfile "$name.ext" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    }
    leaf apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    leaf admin "/O=system:masters/CN=kube-admin" "extendedKeyUsage=clientAuth"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl rand -hex 32 >token
    printf '%s,kube-admin,kube-admin,"system:masters"\n' "$(cat token)" >tokens.csv
  ) || die pki "openssl could not generate the certificates"
}

write_kubeconfig() {
  local server="https://127.0.0.1:$APISERVER_PORT"
  cat >"$RUN/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kopf-test
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: kube-admin
  user:
    token: $(cat "$PKI/token")
- name: kube-admin-cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI/admin.crt")
    client-key-data: $(base64 -w0 "$PKI/admin.key")
contexts:
- name: ktest
  context: {cluster: kopf-test, user: kube-admin, namespace: default}
- name: ktest-cert
  context: {cluster: kopf-test, user: kube-admin-cert, namespace: default}
current-context: ktest
EOF
  chmod 600 "$RUN/kubeconfig"
  printf 'KUBECONFIG=%s\nK8S_SERVER=%s\nK8S_TOKEN=%s\nK8S_CA_FILE=%s\n' \
    "$RUN/kubeconfig" "$server" "$(cat "$PKI/token")" "$PKI/ca.crt" >"$RUN/env"
}

start_etcd() {
  "$BIN/etcd" --name=kopf-test --data-dir="$RUN/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="kopf-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls="http://127.0.0.1:$ETCD_METRICS_PORT" \
    --unsafe-no-fsync=true --quota-backend-bytes=4294967296 --log-level=warn \
    >>"$LOGS/etcd.log" 2>&1 &
  echo $! >"$RUN/etcd.pid"
  wait_for etcd 30 curl --noproxy '*' -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
}

# The admission configuration that authenticates kube-apiserver to webhooks with a client cert.
make_webhook_client() {
  (
    cd "$PKI"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout webhook-client.key -out webhook-client.csr \
      -subj "/O=kopf-tests/CN=kube-apiserver-webhook-client" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >webhook-client.ext
    openssl x509 -req -in webhook-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -sha256 -out webhook-client.crt -extfile webhook-client.ext 2>/dev/null
    rm -f webhook-client.csr webhook-client.ext
  ) || die pki "openssl could not generate the webhook client certificate"
  cat >"$RUN/webhook-kubeconfig" <<EOF
apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: $PKI/webhook-client.crt
    client-key: $PKI/webhook-client.key
EOF
  cat >"$RUN/admission-config.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $RUN/webhook-kubeconfig
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $RUN/webhook-kubeconfig
EOF
  echo "WEBHOOK_CLIENT_CERT=1" >>"$RUN/options"
}

start_apiserver() {
  local extra=()
  if [ -f "$RUN/options" ] && grep -q '^WEBHOOK_CLIENT_CERT=1$' "$RUN/options"; then
    extra+=(--admission-control-config-file="$RUN/admission-config.yaml")
  fi
  [ -z "${FEATURE_GATES:-}" ] || extra+=("--feature-gates=$FEATURE_GATES")
  "$BIN/kube-apiserver" "${extra[@]}" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.key" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true --profiling=false --v=1 \
    >>"$LOGS/kube-apiserver.log" 2>&1 &
  echo $! >"$RUN/kube-apiserver.pid"
  wait_for kube-apiserver "$TIMEOUT" api_get /readyz
  wait_for kube-apiserver 30 api_get /api/v1/namespaces/default
}

start_kcm() {
  "$BIN/kube-controller-manager" \
    --kubeconfig="$RUN/kubeconfig" \
    --authentication-kubeconfig="$RUN/kubeconfig" --authorization-kubeconfig="$RUN/kubeconfig" \
    --controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --leader-elect=false --use-service-account-credentials=false \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --v=1 \
    >"$LOGS/kube-controller-manager.log" 2>&1 &
  echo $! >"$RUN/kube-controller-manager.pid"
  wait_for kube-controller-manager 60 curl --noproxy '*' -fsSk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-controller-manager 60 api_get /api/v1/namespaces/default/serviceaccounts/default
}

stop_component() { # name [grace seconds, default 10]: TERM, wait up to the grace, then KILL
  local pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $(( ${2:-10} * 5 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cmd_status() {
  [ -f "$RUN/ports" ] || { say "not running (no $RUN/ports)"; return 1; }
  load_ports
  for c in etcd kube-apiserver kube-controller-manager; do
    alive "$c" || { say "not running ($c is down)"; return 1; }
  done
  api_get /readyz >/dev/null 2>&1 || { say "not ready (/readyz fails)"; return 1; }
  say "running: https://127.0.0.1:$APISERVER_PORT"
  echo "KUBECONFIG=$RUN/kubeconfig"
}

cmd_up() {
  local wanted=${KOPF_CLUSTER_FEATURE_GATES:-}
  if [ "${1:-}" = "--sharded" ]; then
    wanted="${wanted:+$wanted,}ShardedListAndWatch=true"
  elif [ -n "${1:-}" ]; then
    echo "usage: cluster.sh up [--sharded]" >&2; exit 2
  fi
  if cmd_status >/dev/null 2>&1; then
    if [ "${FEATURE_GATES:-}" != "$wanted" ]; then
      say "the plane in $RUN runs with feature gates '${FEATURE_GATES:-}', not '$wanted':"
      say "bring it down first (KOPF_CLUSTER_DIR=$RUN bash $ROOT/cluster.sh down) or use another KOPF_CLUSTER_DIR"
      exit 1
    fi
    say "reusing the running plane in $RUN"
    echo "KUBECONFIG=$RUN/kubeconfig"
    return 0
  fi
  cmd_down >/dev/null 2>&1 || true
  local started
  started=$(date +%s.%N)
  BIN=$(bash "$ROOT/build.sh") || die build "see the output above"
  mkdir -p "$RUN" "$LOGS"
  # Data lives in memory when /dev/shm exists: the plane is disposable and fsync buys nothing.
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    local shm
    shm=$(mktemp -d /dev/shm/kopf-etcd.XXXXXX)
    ln -sfn "$shm" "$RUN/etcd"
  fi
  cat >"$RUN/ports" <<EOF
ETCD_PORT=$(free_port)
ETCD_PEER_PORT=$(free_port)
ETCD_METRICS_PORT=$(free_port)
APISERVER_PORT=$(free_port)
KCM_PORT=$(free_port)
BIN=$BIN
FEATURE_GATES=$wanted
EOF
  load_ports
  make_pki
  write_kubeconfig
  if [ "${KOPF_CLUSTER_WEBHOOK_CLIENT_CERT:-}" = 1 ]; then make_webhook_client; fi
  ulimit -n 65536 2>/dev/null || true
  start_etcd
  start_apiserver
  start_kcm
  say "ready in ${FEATURE_GATES:+(feature gates $FEATURE_GATES) }$(python3 -c "import time; print(round(time.time() - $started, 1))") s: https://127.0.0.1:$APISERVER_PORT (logs in $LOGS)"
  echo "KUBECONFIG=$RUN/kubeconfig"
}

cmd_down() {
  for c in kube-controller-manager kube-apiserver etcd; do stop_component "$c"; done
  if [ -L "$RUN/etcd" ]; then rm -rf "$(readlink "$RUN/etcd")"; fi
  rm -rf "$RUN"
  say "stopped; removed $RUN"
}

cmd_restart_apiserver() {
  cmd_status >/dev/null || die kube-apiserver "the plane is not running"
  load_ports
  stop_component kube-apiserver
  start_apiserver
  say "kube-apiserver restarted"
}

cmd_stop_apiserver() {
  cmd_status >/dev/null || die kube-apiserver "the plane is not running"
  load_ports
  # Its graceful shutdown waits for open watches (past 10 s); a crash-like stop is the outage the
  # tests want, and etcd keeps the data.
  stop_component kube-apiserver 2
  say "kube-apiserver stopped"
}

cmd_start_apiserver() {
  [ -f "$RUN/ports" ] || die kube-apiserver "the plane was never started (no $RUN/ports)"
  load_ports
  alive etcd || die etcd "it is not running"
  if alive kube-apiserver; then
    say "kube-apiserver is already running"
  else
    start_apiserver
    say "kube-apiserver started"
  fi
}

cmd_stop_etcd() {
  cmd_status >/dev/null || die etcd "the plane is not running"
  load_ports
  # etcd drains its clients' streams for seconds on TERM; an outage starts at once (the data is
  # in the page cache, so a KILL loses nothing).
  stop_component etcd 1
  say "etcd stopped"
}

cmd_start_etcd() {
  [ -f "$RUN/ports" ] || die etcd "the plane was never started (no $RUN/ports)"
  load_ports
  alive kube-apiserver || die kube-apiserver "it is not running"
  if alive etcd; then
    say "etcd is already running"
  else
    start_etcd
  fi
  wait_for kube-apiserver "$TIMEOUT" api_get /readyz
  say "etcd started"
}

cmd_logs() {
  for f in "$LOGS"/*.log; do echo "== $f"; tail -n 40 "$f"; done
}

case "${1:-}" in
  up) cmd_up "${2:-}" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-apiserver) cmd_restart_apiserver ;;
  stop-apiserver) cmd_stop_apiserver ;;
  start-apiserver) cmd_start_apiserver ;;
  stop-etcd) cmd_stop_etcd ;;
  start-etcd) cmd_start_etcd ;;
  logs) cmd_logs ;;
  *) echo "usage: cluster.sh up [--sharded]|down|status|restart-apiserver|stop-apiserver|start-apiserver|stop-etcd|start-etcd|logs" >&2; exit 2 ;;
esac
