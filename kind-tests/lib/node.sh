# A real node on this machine for `cluster.sh up full`: containerd (its own instance, apart
# from any other on the machine), a locally built pause image, the bridge CNI, kube-scheduler,
# kubelet and kube-proxy (iptables mode). Sourced by cluster.sh, which defines STATE, PKI, LOGS,
# K8S_BIN, NODE_IP, start/stop/alive/wait_for/say/die and the admin kubeconfig.
#
# Workarounds for VMs like the CI machine: no CAP_SYS_RESOURCE, so
# containerd's restrict_oom_score_adj and oomScoreAdj 0 for the kubelet and kube-proxy;
# cgroup v1, so failCgroupV1 false and the cgroupfs driver; a private root mount, made shared.

NODE_NAME=remotemedia-node
RUN=/run/remotemedia-cluster
CONTAINERD_SOCK=$RUN/containerd.sock
POD_CIDR=10.88.0.0/16
BRIDGE=rmcni0
SCHEDULER_PORT=${REMOTEMEDIA_SCHEDULER_PORT:-10359}
PAUSE_IMAGE=localhost/remotemedia-pause:1

crictl_() { "$K8S_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" "$@"; }
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

node_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  [ ${#need[@]} -eq 0 ] && return
  say "installing ${need[*]}"
  apt-get install -y -qq "${need[@]}" >/dev/null || die "could not install ${need[*]}"
}

host_setup() {
  mount --make-rshared / # pods' mount propagation needs a shared root
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 \
    net.bridge.bridge-nf-call-ip6tables=1
  mkdir -p "$RUN" "$STATE/net.d" "$STATE/kubelet"
}

pause_image() {
  if ctr_ images ls -q 2>/dev/null | grep -qx "$PAUSE_IMAGE"; then return; fi
  local dir
  dir=$(mktemp -d /tmp/remotemedia-pause.XXXXXX)
  mkdir -p "$dir/root"
  gcc -Os -static -o "$dir/root/pause" "$here/lib/pause.c" && strip "$dir/root/pause"
  python3 "$here/lib/mkimage.py" "$dir/root" "$PAUSE_IMAGE" "$dir/pause.tar" -- /pause >/dev/null
  ctr_ images import "$dir/pause.tar" >/dev/null
  rm -rf "$dir"
}

# Writes stdin to FILE only when it differs: kube-proxy exits when its config file is
# written to, even with the same content, so a second `up` must leave it alone.
write_if_changed() {
  local new
  new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return
  printf '%s\n' "$new" >"$1"
}

write_node_configs() {
  write_if_changed "$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/net.d"
EOF
  write_if_changed "$STATE/net.d/10-remotemedia.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "remotemedia-pods",
 "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$STATE/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  write_if_changed "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
oomScoreAdj: 0
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
clusterDomain: cluster.local
clusterDNS: []
resolvConf: /etc/resolv.conf
registerNode: true
maxPods: 110
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
protectKernelDefaults: false
runtimeRequestTimeout: 2m
serializeImagePulls: false
EOF
  write_if_changed "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
oomScoreAdj: 0
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

node_ready() {
  "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

up_node() {
  node_packages
  host_setup
  kubeconfig scheduler "$STATE/scheduler.kubeconfig"
  kubeconfig kubelet "$STATE/kubelet.kubeconfig"
  kubeconfig kube-proxy "$STATE/kube-proxy.kubeconfig"
  write_node_configs

  if ! alive kube-scheduler; then
    start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$STATE/scheduler.kubeconfig" \
      --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
      --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --v=1
  fi
  if ! alive containerd; then
    start containerd containerd --config "$STATE/containerd.toml"
  fi
  wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version \
    || die "containerd did not start: $LOGS/containerd.log"
  pause_image
  if ! alive kubelet; then
    start kubelet "$K8S_BIN/kubelet" --config="$STATE/kubelet.yaml" \
      --kubeconfig="$STATE/kubelet.kubeconfig" --root-dir="$STATE/kubelet" \
      --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  fi
  if ! alive kube-proxy; then
    start kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy.yaml" --v=1
  fi
  wait_for kube-scheduler 60 curl -fsk "https://127.0.0.1:$SCHEDULER_PORT/healthz" \
    || die "kube-scheduler did not become healthy: $LOGS/kube-scheduler.log"
  wait_for "node $NODE_NAME" 180 node_ready \
    || die "node $NODE_NAME did not become Ready: $LOGS/kubelet.log, $LOGS/containerd.log"
  wait_for kube-proxy 60 curl -fs "http://127.0.0.1:10256/healthz" \
    || die "kube-proxy did not become healthy: $LOGS/kube-proxy.log"
}

# Leaves no pods, containers, mounts, bridge, iptables chains or cgroups behind.
down_node() {
  stop kubelet
  if alive containerd; then
    crictl_ rmp --all --force >/dev/null 2>&1 || true
    # Containers crictl could not remove (it needs their sandbox): kill their tasks directly.
    for task in $(ctr_ tasks ls -q 2>/dev/null); do
      ctr_ tasks kill --signal SIGKILL "$task" >/dev/null 2>&1 || true
      ctr_ tasks delete --force "$task" >/dev/null 2>&1 || true
    done
  fi
  stop kube-proxy
  stop kube-scheduler
  stop containerd
  # runc shims outlive containerd: find ours by the address they were started with.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Mounts under our state (kubelet volumes, overlay snapshots, sandbox shm), deepest first.
  awk -v a="$STATE" -v b="$RUN" '$2 ~ "^"a || $2 ~ "^"b {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip link delete "$BRIDGE" 2>/dev/null || true
  # kube-proxy's and CNI's chains: first the rules that jump into them (from built-in chains
  # too), then their contents, then the chains.
  local table chain chains
  for table in filter nat mangle; do
    chains=$(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}')
    iptables -t "$table" -S 2>/dev/null | awk '$1 == "-A" && / -j (KUBE|CNI)-/ {$1 = "-D"; print}' |
      while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    for chain in $chains; do iptables -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do iptables -t "$table" -X "$chain" 2>/dev/null || true; done
  done
  # The kubelet's cgroups, children first.
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$RUN" "$STATE/kubelet" "$STATE/containerd" "$STATE/containerd-opt" "$STATE/cni-ipam"
}

# What down must leave clean; prints what is left, fails if anything is.
node_leftovers() {
  local left=0
  if pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" >/dev/null; then echo "runc shims still running"; left=1; fi
  if awk -v a="$STATE" -v b="$RUN" '$2 ~ "^"a || $2 ~ "^"b' /proc/self/mounts | grep -q .; then echo "mounts left under $STATE or $RUN"; left=1; fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then echo "bridge $BRIDGE left"; left=1; fi
  if iptables-save 2>/dev/null | grep -Eq '^:(KUBE|CNI)-'; then echo "iptables chains left: $(iptables-save | grep -Eo '^:(KUBE|CNI)-[^ ]+' | tr '\n' ' ')"; left=1; fi
  if ls -d /sys/fs/cgroup/*/kubepods >/dev/null 2>&1; then echo "kubepods cgroups left"; left=1; fi
  return $left
}
