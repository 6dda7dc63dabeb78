//! The worker pod's contract between the operator and the binaries it starts there: the
//! containers' flags, environment names, mount paths, ports and probe targets, defined once.
//!
//! The operator renders these values ([`Worker::args`], [`GrpcSidecar::args`],
//! [`WebrtcSidecar::args`]); each binary parses them with its own command line (clap), and a
//! unit test beside each binary's parser renders a value and parses it back, so a flag renamed
//! on one side only fails a unit test rather than the end-to-end suite.
//!
//! ```text
//! catalog  remotemedia-runtime nodes --json          (a one-off pod: the image's node catalog)
//! runtime  remotemedia-runtime serve --manifest /etc/remotemedia/manifest.json --name NAME
//!              --metrics-listen 0.0.0.0:9090
//! grpc     remotemedia-grpc --connect NAME --listen 0.0.0.0:PORT --metrics-listen 0.0.0.0:9091
//!              --max-sessions N --drain-seconds S --linger-seconds L [--token-file F]
//!              --open-timeout-secs O --idle-timeout-secs I --stall-timeout-secs T
//!              --keepalive-secs K --keepalive-timeout-secs A --max-streams-per-connection M
//!              [--tls-cert /etc/remotemedia/tls/tls.crt --tls-key /etc/remotemedia/tls/tls.key]
//! webrtc   remotemedia-webrtc --connect NAME --listen 0.0.0.0:HTTP --udp-port UDP
//!              --advertise IP|$(POD_IP) --max-sessions N --drain-seconds S
//!              --linger-seconds L [--token-file F] [--tls-cert C --tls-key K]
//!              --replica-address $(POD_IP):HTTP --replica-key-file /etc/remotemedia/replicas/key
//!              [--ice-server URL|JSON ...]
//! ```

mod ice;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use ice::{
    ICE_CREDENTIAL_KEY, ICE_DIR, ICE_SECRET_KEY, ICE_USERNAME_KEY, IceCredentialFiles,
    IceServerFlag, IceServerFlagError, ice_secret_dir,
};

/// Where the manifest ConfigMap is mounted in the runtime container.
pub const MANIFEST_DIR: &str = "/etc/remotemedia";
/// The manifest's key in its ConfigMap, and its file name under [`MANIFEST_DIR`].
pub const MANIFEST_FILE: &str = "manifest.json";
/// Where a transport's token Secret is mounted.
pub const TOKEN_DIR: &str = "/etc/remotemedia/token";
/// The token's key in its Secret, and its file name under [`TOKEN_DIR`].
pub const TOKEN_KEY: &str = "token";
/// Where a transport's `kubernetes.io/tls` Secret is mounted.
pub const TLS_DIR: &str = "/etc/remotemedia/tls";
/// The certificate chain's key in a `kubernetes.io/tls` Secret, and its file under [`TLS_DIR`].
pub const TLS_CERT_KEY: &str = "tls.crt";
/// The private key's key in a `kubernetes.io/tls` Secret, and its file under [`TLS_DIR`].
pub const TLS_KEY_KEY: &str = "tls.key";
/// Shared memory (iceoryx2's segments), a memory-backed volume shared by every container.
pub const SHM_DIR: &str = "/dev/shm";
/// iceoryx2's service directory, shared by every container.
pub const ICEORYX2_DIR: &str = "/tmp/iceoryx2";
/// Port of the runtime's `/metrics`, `/livez` and `/readyz`.
pub const RUNTIME_METRICS_PORT: u16 = 9090;
/// The runtime's gauge of sessions open on the pod link (every transport's), on
/// [`RUNTIME_METRICS_PORT`]: what the operator's autoscaler counts.
pub const SESSIONS_GAUGE: &str = "remotemedia_ipc_sessions_open";
/// Port of the gRPC sidecar's `/metrics`.
pub const GRPC_METRICS_PORT: u16 = 9091;
/// Every server's readiness path (the runtime: once it serves the link; a sidecar: while it
/// can open sessions, so not while draining or while the worker is away).
pub const READY_PATH: &str = "/readyz";
/// Every server's liveness path: answers while the process serves HTTP, draining or not.
pub const LIVE_PATH: &str = "/livez";
/// The health service name the gRPC sidecar keeps SERVING while it answers at all (its
/// readiness, "" and the pipeline service, turns NOT_SERVING while draining).
pub const GRPC_LIVENESS_SERVICE: &str = "liveness";
/// The environment variable the kubelet fills with the pod's IP for the WebRTC sidecar's
/// `--replica-address` and, for [`Advertise::PodIp`], its `--advertise`.
pub const POD_IP_ENV: &str = "POD_IP";
/// Where the key the WebRTC sidecars of one Pipeline share is mounted: they sign the owner
/// in each session's name with it, so a replica that gets another's DELETE forwards it there.
pub const REPLICA_KEY_DIR: &str = "/etc/remotemedia/replicas";
/// The replica key's key in its Secret, and its file under [`REPLICA_KEY_DIR`].
pub const REPLICA_KEY_KEY: &str = "key";

/// Shared memory one transport's link to the runtime may take at worst: two pipes (up and
/// down), each holding its depth (64) plus two loans of the largest pod-link message (512
/// KiB). Checked against `/dev/shm` (a Pipeline's `spec.runtime.sharedMemory`).
pub const TRANSPORT_LINK_SHM_BYTES: u64 = 2 * (64 + 2) * 512 * 1024;
/// The same for one Python node process (pipes of depth 8).
pub const PYTHON_NODE_SHM_BYTES: u64 = 2 * (8 + 2) * 512 * 1024;

/// The shared memory a worker pod needs at worst for `transports` transport sidecars and
/// `python_nodes` Python node processes (per session in flight there is one process per
/// Python node; this counts one session's worth).
#[must_use]
pub fn shared_memory_needed(transports: u64, python_nodes: u64) -> u64 {
    transports * TRANSPORT_LINK_SHM_BYTES + python_nodes * PYTHON_NODE_SHM_BYTES
}

/// The token file a transport reads when its Pipeline names a token Secret.
#[must_use]
pub fn token_file() -> PathBuf {
    Path::new(TOKEN_DIR).join(TOKEN_KEY)
}

/// The certificate and key files a transport serves TLS with when its Pipeline names a TLS
/// Secret.
#[must_use]
pub fn tls_files() -> (PathBuf, PathBuf) {
    let dir = Path::new(TLS_DIR);
    (dir.join(TLS_CERT_KEY), dir.join(TLS_KEY_KEY))
}

fn push_secrets(args: &mut Vec<String>, token: bool, tls: bool) {
    if token {
        flag(args, "--token-file", token_file().display());
    }
    if tls {
        let (cert, key) = tls_files();
        flag(args, "--tls-cert", cert.display());
        flag(args, "--tls-key", key.display());
    }
}

/// The runtime container: `remotemedia-runtime serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    /// The pod link's name (the Pipeline's name).
    pub link: String,
}

impl Worker {
    /// The manifest file the runtime serves.
    #[must_use]
    pub fn manifest() -> PathBuf {
        Path::new(MANIFEST_DIR).join(MANIFEST_FILE)
    }

    /// Where the runtime serves metrics and probes.
    #[must_use]
    pub fn metrics_listen() -> SocketAddr {
        any_address(RUNTIME_METRICS_PORT)
    }

    /// The container's args.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["serve".to_owned()];
        flag(&mut args, "--manifest", Self::manifest().display());
        flag(&mut args, "--name", &self.link);
        flag(&mut args, "--metrics-listen", Self::metrics_listen());
        args
    }
}

/// The one-off container that prints a runtime image's node catalog (`remotemedia-runtime
/// nodes --json`, the shape in docs/node-catalog.md) for the operator to validate Pipelines
/// against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogProbe;

impl CatalogProbe {
    /// The container's args.
    #[must_use]
    pub fn args(self) -> Vec<String> {
        vec!["nodes".to_owned(), "--json".to_owned()]
    }
}

/// What both transport sidecars are told about sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sessions {
    /// Sessions open at once (`--max-sessions`).
    pub max: u32,
    /// Seconds open sessions get to end after SIGTERM (`--drain-seconds`).
    pub drain_seconds: u32,
    /// Seconds the port stays open after SIGTERM, refusing new sessions retryably
    /// (`--linger-seconds`).
    pub linger_seconds: u32,
}

impl Sessions {
    fn push(&self, args: &mut Vec<String>) {
        flag(args, "--max-sessions", self.max);
        flag(args, "--drain-seconds", self.drain_seconds);
        flag(args, "--linger-seconds", self.linger_seconds);
    }
}

/// How the gRPC server lets go of clients that stopped talking, reading or answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcTimeouts {
    /// Seconds a new stream may take to send `open` (`--open-timeout-secs`).
    pub open_seconds: u32,
    /// Seconds a stream may send nothing before its session ends (`--idle-timeout-secs`).
    pub idle_seconds: u32,
    /// Seconds a session may wait on an input the pipeline does not take, or on responses
    /// the client does not read, before it ends (`--stall-timeout-secs`).
    pub stall_seconds: u32,
    /// Seconds a connection may stay quiet before the server pings it (HTTP/2 PING, and TCP
    /// keepalive probes) (`--keepalive-secs`).
    pub keepalive_seconds: u32,
    /// Seconds a ping may go unanswered before the connection and its sessions are dropped
    /// (`--keepalive-timeout-secs`).
    pub keepalive_timeout_seconds: u32,
    /// Streams one connection may have open at once (`--max-streams-per-connection`).
    pub max_streams_per_connection: u32,
}

impl GrpcTimeouts {
    /// The defaults of both the binary's flags and the Pipeline's fields: a vanished client's
    /// session is gone within 30 s (keepalive plus its timeout) whatever it was doing.
    pub const DEFAULT: Self = Self {
        open_seconds: 10,
        idle_seconds: 60,
        stall_seconds: 15,
        keepalive_seconds: 20,
        keepalive_timeout_seconds: 10,
        max_streams_per_connection: 100,
    };

    fn push(&self, args: &mut Vec<String>) {
        flag(args, "--open-timeout-secs", self.open_seconds);
        flag(args, "--idle-timeout-secs", self.idle_seconds);
        flag(args, "--stall-timeout-secs", self.stall_seconds);
        flag(args, "--keepalive-secs", self.keepalive_seconds);
        flag(
            args,
            "--keepalive-timeout-secs",
            self.keepalive_timeout_seconds,
        );
        flag(
            args,
            "--max-streams-per-connection",
            self.max_streams_per_connection,
        );
    }
}

impl Default for GrpcTimeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The gRPC sidecar: `remotemedia-grpc --connect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcSidecar {
    /// The pod link's name.
    pub link: String,
    /// The gRPC port.
    pub port: u16,
    /// Sessions.
    pub sessions: Sessions,
    /// Timeouts and per-connection limits.
    pub timeouts: GrpcTimeouts,
    /// Whether a token Secret is mounted at [`token_file`].
    pub token: bool,
    /// Whether a TLS Secret is mounted at [`tls_files`].
    pub tls: bool,
}

impl GrpcSidecar {
    /// Where it serves metrics.
    #[must_use]
    pub fn metrics_listen() -> SocketAddr {
        any_address(GRPC_METRICS_PORT)
    }

    /// The container's args.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        flag(&mut args, "--connect", &self.link);
        flag(&mut args, "--listen", any_address(self.port));
        flag(&mut args, "--metrics-listen", Self::metrics_listen());
        self.sessions.push(&mut args);
        self.timeouts.push(&mut args);
        push_secrets(&mut args, self.token, self.tls);
        args
    }
}

/// The address the WebRTC sidecar puts in its ICE candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advertise {
    /// The pod's IP, which the kubelet puts in [`POD_IP_ENV`] and expands in the args.
    PodIp,
    /// A fixed address (a node's public IP, a load balancer's).
    Address(IpAddr),
}

/// The WebRTC sidecar: `remotemedia-webrtc --connect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebrtcSidecar {
    /// The pod link's name.
    pub link: String,
    /// The HTTP port (WHIP, health, metrics).
    pub http_port: u16,
    /// The one UDP port of every session's media.
    pub udp_port: u16,
    /// The address in the ICE candidates.
    pub advertise: Advertise,
    /// Sessions.
    pub sessions: Sessions,
    /// Whether a token Secret is mounted at [`token_file`].
    pub token: bool,
    /// Whether a TLS Secret is mounted at [`tls_files`] (WHIP over https).
    pub tls: bool,
    /// Whether the replicas' key Secret is mounted at [`WebrtcSidecar::replica_key_file`]
    /// (sessions stay on their pod: follow-up requests that reach another replica are
    /// forwarded to it).
    pub replica_key: bool,
    /// The ICE servers handed to clients.
    pub ice_servers: Vec<IceServerFlag>,
}

impl WebrtcSidecar {
    /// The replicas' shared key file.
    #[must_use]
    pub fn replica_key_file() -> PathBuf {
        Path::new(REPLICA_KEY_DIR).join(REPLICA_KEY_KEY)
    }

    /// The container's args; [`Advertise::PodIp`] is written as the kubelet's
    /// `$(POD_IP)` reference.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        flag(&mut args, "--connect", &self.link);
        flag(&mut args, "--listen", any_address(self.http_port));
        flag(&mut args, "--udp-port", self.udp_port);
        match &self.advertise {
            Advertise::PodIp => flag(&mut args, "--advertise", format!("$({POD_IP_ENV})")),
            Advertise::Address(ip) => flag(&mut args, "--advertise", ip),
        }
        self.sessions.push(&mut args);
        push_secrets(&mut args, self.token, self.tls);
        if self.replica_key {
            let address = format!("$({POD_IP_ENV}):{}", self.http_port);
            flag(&mut args, "--replica-address", address);
            flag(
                &mut args,
                "--replica-key-file",
                Self::replica_key_file().display(),
            );
        }
        for server in &self.ice_servers {
            flag(&mut args, "--ice-server", server);
        }
        args
    }
}

fn any_address(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

fn flag(args: &mut Vec<String>, name: &str, value: impl std::fmt::Display) {
    args.push(name.to_owned());
    args.push(value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_serves_the_mounted_manifest_on_its_link() {
        let args = Worker {
            link: "demo".to_owned(),
        }
        .args();
        assert_eq!(
            args,
            [
                "serve",
                "--manifest",
                "/etc/remotemedia/manifest.json",
                "--name",
                "demo",
                "--metrics-listen",
                "0.0.0.0:9090"
            ]
        );
    }

    #[test]
    fn the_pod_ip_is_left_for_the_kubelet_to_expand() {
        let sidecar = WebrtcSidecar {
            link: "demo".to_owned(),
            http_port: 8080,
            udp_port: 40_000,
            advertise: Advertise::PodIp,
            sessions: Sessions {
                max: 10,
                drain_seconds: 30,
                linger_seconds: 5,
            },
            token: false,
            tls: false,
            replica_key: true,
            ice_servers: Vec::new(),
        };
        let args = sidecar.args();
        assert!(
            args.windows(2).any(|w| w == ["--advertise", "$(POD_IP)"]),
            "{args:?}"
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["--replica-address", "$(POD_IP):8080"]),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a == "--token-file"), "{args:?}");
    }
}
