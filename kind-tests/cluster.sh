#!/usr/bin/env bash
# A real Kubernetes control plane as plain processes, for machines without Docker.
#
#   kind-tests/cluster.sh up control-plane   etcd + kube-apiserver + kube-controller-manager
#   kind-tests/cluster.sh down               stops every process it started (by PID), removes state
#   kind-tests/cluster.sh kubeconfig         prints the admin kubeconfig path
#   kind-tests/cluster.sh status             which components run
#
# Binaries are built once from the Go module proxy into a versioned cache (lib/build-k8s.sh).
# Everything listens on 127.0.0.1 only. State lives in $REMOTEMEDIA_CLUSTER_DIR
# (default /var/lib/remotemedia-cluster); etcd's data on tmpfs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/versions.sh"

STATE=${REMOTEMEDIA_CLUSTER_DIR:-/var/lib/remotemedia-cluster}
PKI=$STATE/pki
PIDS=$STATE/pids
LOGS=$STATE/logs
ETCD_DATA=/dev/shm/remotemedia-cluster-etcd
APISERVER_PORT=${REMOTEMEDIA_APISERVER_PORT:-16443}
ETCD_PORT=${REMOTEMEDIA_ETCD_PORT:-12379}
KCM_PORT=${REMOTEMEDIA_KCM_PORT:-10357}
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  say "$what ready"
}

start() { # name command...
  local name=$1; shift
  alive "$name" && return 0
  "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

stop() { # name: TERM, then KILL after 10 s
  local name=$1 pid
  [ -f "$PIDS/$name.pid" ] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

APISERVER_SANS="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1"

make_pki() {
  # Remade whenever the names it must cover change.
  [ "$(cat "$PKI/.complete" 2>/dev/null)" = "$APISERVER_SANS" ] && return
  rm -rf "$PKI"
  mkdir -p "$PKI" && cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -noenc -keyout ca.key -out ca.crt -days 365 \
    -subj "/CN=remotemedia-test-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  leaf() { # file CN O EKU [SAN]
    openssl req -newkey rsa:2048 -noenc -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
    { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$4"; [ -n "${5:-}" ] && echo "subjectAltName=$5"; } >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  leaf apiserver kube-apiserver "" serverAuth "$APISERVER_SANS"
  leaf admin remotemedia-admin system:masters clientAuth
  leaf kcm system:kube-controller-manager "" clientAuth
  openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  echo "$APISERVER_SANS" >.complete
  cd - >/dev/null
}

kubeconfig() { # user file
  local ca crt key
  ca=$(base64 -w0 <"$PKI/ca.crt"); crt=$(base64 -w0 <"$PKI/$1.crt"); key=$(base64 -w0 <"$PKI/$1.key")
  cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: remotemedia
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority-data: "$ca"}
users:
- name: $1
  user: {client-certificate-data: "$crt", client-key-data: "$key"}
contexts:
- name: remotemedia
  context: {cluster: remotemedia, user: $1, namespace: default}
current-context: remotemedia
EOF
}

up_control_plane() {
  for tool in curl openssl; do
    command -v "$tool" >/dev/null || apt-get install -y -qq "$tool" >/dev/null || die "$tool is missing and could not be installed"
  done
  "$here/lib/build-k8s.sh"
  mkdir -p "$PIDS" "$LOGS"
  make_pki
  kubeconfig admin "$ADMIN_KUBECONFIG"
  kubeconfig kcm "$STATE/kcm.kubeconfig"

  if ! alive etcd; then
    port_free "$ETCD_PORT" || die "port $ETCD_PORT (etcd) is in use; set REMOTEMEDIA_ETCD_PORT"
    rm -rf "$ETCD_DATA"
    start etcd "$K8S_BIN/etcd" --name=remotemedia --data-dir="$ETCD_DATA" \
      --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" \
      --initial-advertise-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" \
      --initial-cluster="remotemedia=http://127.0.0.1:$((ETCD_PORT + 1))" --initial-cluster-state=new \
      --unsafe-no-fsync=true --auto-compaction-retention=1 --quota-backend-bytes=2147483648 --log-level=warn
  fi
  wait_for etcd 30 curl -fs "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not start: $LOGS/etcd.log"

  if ! alive kube-apiserver; then
    port_free "$APISERVER_PORT" || die "port $APISERVER_PORT (apiserver) is in use; set REMOTEMEDIA_APISERVER_PORT"
    start kube-apiserver "$K8S_BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
      --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --client-ca-file="$PKI/ca.crt" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --service-cluster-ip-range=10.96.0.0/16 \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
      --allow-privileged=true --enable-priority-and-fairness=false \
      --endpoint-reconciler-type=none --v=1
  fi
  wait_for kube-apiserver 120 curl -fsk "https://127.0.0.1:$APISERVER_PORT/readyz" \
    || die "kube-apiserver did not become ready: $LOGS/kube-apiserver.log"

  if ! alive kube-controller-manager; then
    port_free "$KCM_PORT" || die "port $KCM_PORT (controller-manager) is in use; set REMOTEMEDIA_KCM_PORT"
    start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
      --kubeconfig="$STATE/kcm.kubeconfig" \
      --authentication-kubeconfig="$STATE/kcm.kubeconfig" --authorization-kubeconfig="$STATE/kcm.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
      --use-service-account-credentials=true \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
      --service-cluster-ip-range=10.96.0.0/16 --allocate-node-cidrs=false --v=1
  fi
  wait_for kube-controller-manager 60 curl -fsk "https://127.0.0.1:$KCM_PORT/healthz" \
    || die "kube-controller-manager did not become healthy: $LOGS/kube-controller-manager.log"
  # The default ServiceAccount is the controller-manager's first visible work.
  wait_for "service account controller" 60 \
    "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" get serviceaccount default -n default \
    || die "the controller-manager created no default ServiceAccount"
  say "control plane up; KUBECONFIG=$ADMIN_KUBECONFIG"
}

down() {
  for c in kube-controller-manager kube-apiserver etcd; do stop "$c"; done
  rm -rf "$ETCD_DATA" "$PIDS"
  say "down"
}

case "${1:-}" in
  up)
    case "${2:-}" in
      control-plane) up_control_plane ;;
      full) die "'up full' (kubelet, containerd, CNI, kube-proxy) is not built yet: see issue 6" ;;
      *) die "usage: $0 up control-plane|full" ;;
    esac ;;
  down) down ;;
  kubeconfig) echo "$ADMIN_KUBECONFIG" ;;
  status)
    for c in etcd kube-apiserver kube-controller-manager; do
      if alive "$c"; then echo "$c running (pid $(cat "$PIDS/$c.pid"))"; else echo "$c stopped"; fi
    done ;;
  bin) echo "$K8S_BIN" ;;
  *) die "usage: $0 up control-plane|full | down | kubeconfig | status | bin" ;;
esac
