#!/usr/bin/env bash
# A real Kubernetes cluster as plain processes, for machines without Docker.
#
#   kind-tests/cluster.sh up control-plane   etcd + kube-apiserver + kube-controller-manager
#   kind-tests/cluster.sh up full            the same plus a node: kube-scheduler, containerd,
#                                            kubelet, bridge CNI, kube-proxy (lib/node.sh)
#   kind-tests/cluster.sh down               stops every process it started (by PID), removes
#                                            pods, mounts, bridge, iptables chains, cgroups, state
#   kind-tests/cluster.sh check-clean        fails, saying what, if down left anything behind
#   kind-tests/cluster.sh kubeconfig         prints the admin kubeconfig path
#   kind-tests/cluster.sh status             which components run
#   kind-tests/cluster.sh node-crictl        the command line of crictl on the node
#   kind-tests/cluster.sh flavour            local or kind (lib/flavour.sh)
#
# With kind and Docker present (or REMOTEMEDIA_CLUSTER=kind) the same commands drive a kind
# cluster made from kind-config.yaml instead; the rest of this header is about the local one.
#
# Binaries are built once from the Go module proxy into a versioned cache (lib/build-k8s.sh).
# Servers listen on 127.0.0.1 or on the cluster's own address $NODE_IP (default 10.89.0.1),
# which this script adds to the loopback interface (and removes): pods reach the apiserver
# there, and nothing listens on the machine's real interfaces. State lives in
# $REMOTEMEDIA_CLUSTER_DIR (default /var/lib/remotemedia-cluster); etcd's data on tmpfs.
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
NODE_IP=${REMOTEMEDIA_NODE_IP:-10.89.0.1}
. "$here/lib/node.sh"
. "$here/lib/flavour.sh"

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

port_free() { ! (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

# The cluster's own address, on the loopback interface: reachable from pods (through their
# bridge's gateway) and from this machine, and from nowhere else.
add_node_ip() {
  ip -4 addr show dev lo | grep -q " $NODE_IP/32" || ip addr add "$NODE_IP/32" dev lo
}

APISERVER_SANS="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP"
# Remade whenever the certificates it must hold change.
PKI_STAMP="$APISERVER_SANS; node certs v1"

make_pki() {
  [ "$(cat "$PKI/.complete" 2>/dev/null)" = "$PKI_STAMP" ] && return
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
  leaf apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  leaf scheduler system:kube-scheduler "" clientAuth
  leaf kubelet "system:node:remotemedia-node" system:nodes "clientAuth,serverAuth" "IP:$NODE_IP,DNS:remotemedia-node"
  leaf kube-proxy system:kube-proxy "" clientAuth
  openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  echo "$PKI_STAMP" >.complete
  cd - >/dev/null
}

kubeconfig() { # user file
  local ca crt key
  ca=$(base64 -w0 <"$PKI/ca.crt"); crt=$(base64 -w0 <"$PKI/$1.crt"); key=$(base64 -w0 <"$PKI/$1.key")
  write_if_changed "$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: remotemedia
  cluster: {server: "https://$NODE_IP:$APISERVER_PORT", certificate-authority-data: "$ca"}
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
  add_node_ip
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
    port_free "$APISERVER_PORT" "$NODE_IP" || die "port $APISERVER_PORT (apiserver) is in use; set REMOTEMEDIA_APISERVER_PORT"
    start kube-apiserver "$K8S_BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
      --bind-address="$NODE_IP" --secure-port="$APISERVER_PORT" --advertise-address="$NODE_IP" \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --client-ca-file="$PKI/ca.crt" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --service-cluster-ip-range=10.96.0.0/16 \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --kubelet-preferred-address-types=InternalIP \
      --allow-privileged=true --enable-priority-and-fairness=false --v=1
  fi
  wait_for kube-apiserver 120 curl -fsk "https://$NODE_IP:$APISERVER_PORT/readyz" \
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
  down_node
  for c in kube-controller-manager kube-apiserver etcd; do stop "$c"; done
  rm -rf "$ETCD_DATA" "$PIDS"
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  say "down"
}

COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy"

check_clean() {
  local left=0
  # Every component runs from the binary cache or with a path under $STATE on its command line.
  if pgrep -f -- "^$K8S_BIN/|$STATE" >/dev/null; then
    echo "still running: $(pgrep -af -- "^$K8S_BIN/|$STATE" | tr '\n' ';')"; left=1
  fi
  if ip -4 addr show dev lo | grep -q " $NODE_IP/32"; then echo "$NODE_IP still on lo"; left=1; fi
  node_leftovers || left=1
  [ $left -eq 0 ] && say "clean: no processes, mounts, bridge, iptables chains or cgroups left"
  return $left
}

# A kind cluster (users with Docker): kind makes the node; we keep only the tools.
kind_cluster() {
  local kubeconfig=$STATE/kind.kubeconfig running=false
  kind get clusters 2>/dev/null | grep -qx "$KIND_NAME" && running=true
  case "${1:-}" in
    up)
      "$here/lib/build-k8s.sh" # kubectl, helm and crictl for the suite
      mkdir -p "$STATE"
      $running || kind create cluster --config "$here/kind-config.yaml" --wait 180s
      kind export kubeconfig --name "$KIND_NAME" --kubeconfig "$kubeconfig" ;;
    down) kind delete cluster --name "$KIND_NAME"; rm -f "$kubeconfig" ;;
    check-clean) if $running; then echo "kind cluster $KIND_NAME still exists"; return 1; fi ;;
    kubeconfig) echo "$kubeconfig" ;;
    status) $running && echo "kube-apiserver running (kind cluster $KIND_NAME)" || echo "kind cluster $KIND_NAME stopped" ;;
    bin) echo "$K8S_BIN" ;;
    node-crictl) echo "docker exec $KIND_NAME-control-plane crictl" ;;
    flavour) echo kind ;;
    *) die "usage: $0 up control-plane|full | down | check-clean | kubeconfig | status | bin | node-crictl | flavour" ;;
  esac
}
if [ "$(cluster_flavour)" = kind ]; then
  kind_cluster "$@"
  exit
fi

case "${1:-}" in
  up)
    case "${2:-}" in
      control-plane) up_control_plane ;;
      full) up_control_plane; up_node; say "node $NODE_NAME Ready; KUBECONFIG=$ADMIN_KUBECONFIG" ;;
      *) die "usage: $0 up control-plane|full" ;;
    esac ;;
  down) down ;;
  check-clean) check_clean ;;
  kubeconfig) echo "$ADMIN_KUBECONFIG" ;;
  status)
    for c in $COMPONENTS; do
      if alive "$c"; then echo "$c running (pid $(cat "$PIDS/$c.pid"))"; else echo "$c stopped"; fi
    done ;;
  bin) echo "$K8S_BIN" ;;
  node-crictl) echo "$K8S_BIN/crictl --runtime-endpoint unix://$CONTAINERD_SOCK" ;;
  flavour) echo local ;;
  *) die "usage: $0 up control-plane|full | down | check-clean | kubeconfig | status | bin | node-crictl | flavour" ;;
esac
