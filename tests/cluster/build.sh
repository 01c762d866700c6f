#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy
# (wrapper modules in gobin/, no Go source of ours) into a cache outside the repo,
# keyed by versions. Prints the directory holding the binaries as its last line.
set -euo pipefail
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
ROOT=$(cd "$(dirname "$0")" && pwd)

KV=$(cd "$ROOT/gobin/k8s" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
EV=$(cd "$ROOT/gobin/etcd" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
OUT="${KTEST_BIN_CACHE:-$HOME/.cache/kopf-testbin}/k8s-$KV-etcd-$EV-$(go env GOVERSION)"

fail() {
  echo "cluster build: $1 failed; last lines of $2:" >&2
  tail -n 30 "$2" >&2 || true
  echo "retry with: bash $ROOT/build.sh" >&2
  exit 1
}

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ] && [ -x "$OUT/etcd" ]; then
  echo "cluster build: reusing $OUT" >&2
else
  rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
  start=$(date +%s)
  MIN=$(echo "$KV" | cut -d. -f2)
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$MIN -X $p.gitTreeState=clean"
  done
  echo "cluster build: building kube-apiserver and kube-controller-manager $KV (cold: ~20 min on 2 cores)" >&2
  (cd "$ROOT/gobin/k8s" && go build -trimpath -pgo=off -tags selinux,notest -ldflags "$LDF" -o "$OUT.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) \
    >"$OUT.tmp/build-k8s.log" 2>&1 || fail "go build of kube-apiserver/kube-controller-manager" "$OUT.tmp/build-k8s.log"
  echo "cluster build: building etcd $EV" >&2
  (cd "$ROOT/gobin/etcd" && go build -trimpath -ldflags "-s -w" -o "$OUT.tmp/etcd" go.etcd.io/etcd/server/v3) \
    >"$OUT.tmp/build-etcd.log" 2>&1 || fail "go build of etcd" "$OUT.tmp/build-etcd.log"
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
  echo "cluster build: done in $(( $(date +%s) - start )) s" >&2
fi
"$OUT/kube-apiserver" --version >&2
echo "$OUT"
