//! The `Pipeline` custom resource (`pipelines.remotemedia.dev/v1alpha1`).
//!
//! `spec.manifest` is runtime-core's own [`Manifest`] type, so the CRD schema and the runtime
//! can never disagree on its shape; [`manifest_schema`] adapts that schema to Kubernetes'
//! structural rules and adds the cheap invariants as CEL rules. Everything that needs the node
//! registry (cycles, node types, params) is checked by the admission webhook and the controller
//! with runtime-core's validator.

// Several `printcolumn(...)` in one `#[kube]` attribute read as duplicates to this lint.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use remotemedia_runtime_core::manifest::{MAX_NODE_ID_LEN, Manifest};
use remotemedia_runtime_core::pod as contract;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// API group of the resource.
pub const GROUP: &str = "remotemedia.dev";
/// Most nodes a manifest in a `Pipeline` may hold (bounds the CEL cost estimate).
pub const MAX_NODES: u64 = 64;
/// Most connections a manifest in a `Pipeline` may hold.
pub const MAX_CONNECTIONS: u64 = 256;

/// A media pipeline served on Kubernetes: a manifest (a DAG of processing nodes), how many
/// worker pods run it, and which transports clients reach it through.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "remotemedia.dev",
    version = "v1alpha1",
    kind = "Pipeline",
    namespaced,
    status = "PipelineStatus",
    shortname = "pl",
    category = "remotemedia",
    derive = "PartialEq",
    doc = "A media pipeline (a DAG of audio, text and JSON nodes) served by worker pods with gRPC and WebRTC endpoints.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Sessions",
        type_ = "integer",
        json_path = ".status.sessions.active"
    ),
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".status.endpoints.grpc"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// The pipeline manifest: `version`, `metadata`, `nodes` and `connections`, exactly as the
    /// `remotemedia-runtime` command line reads it.
    #[schemars(schema_with = "manifest_schema")]
    pub manifest: Manifest,
    /// Number of worker pods. Each pod serves many sessions.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// Which transports the worker pods expose.
    #[serde(default)]
    pub transports: Transports,
    /// The runtime container.
    #[serde(default)]
    pub runtime: RuntimeSettings,
    /// Session limits and draining.
    #[serde(default)]
    pub sessions: SessionSettings,
    /// Replicas set by the operator from the worker pods' live session counts (it writes
    /// `replicas` through the scale subresource, as an HPA would: leave `replicas` out of
    /// what you apply). Unset: `replicas` is yours, and the scale subresource lets an HPA or
    /// KEDA of yours drive it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

/// Scaling on sessions: enough pods that each holds about `targetSessionsPerPod`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.minReplicas <= self.maxReplicas",
    "message": "minReplicas must not exceed maxReplicas"
}]))]
pub struct Autoscaling {
    /// Fewest pods, however idle.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most pods, however busy.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Sessions a pod should hold: replicas = ceil(open sessions / this), within the bounds.
    /// Scaling up happens within seconds of passing it.
    #[schemars(range(min = 1, max = 100_000))]
    pub target_sessions_per_pod: i32,
    /// Fewer pods are wanted this long, continuously, before any go (the highest number
    /// wanted during the delay is kept). Idle pods go first; busy ones drain.
    #[serde(default = "default_scale_down_delay_seconds")]
    #[schemars(range(min = 0, max = 86_400))]
    pub scale_down_delay_seconds: i32,
}

fn default_min_replicas() -> i32 {
    1
}
fn default_scale_down_delay_seconds() -> i32 {
    300
}

fn default_replicas() -> i32 {
    1
}

/// The transports enabled on the worker pods; at least one must be enabled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.grpc.enabled || self.webrtc.enabled",
    "message": "at least one transport (grpc or webrtc) must be enabled"
}]))]
pub struct Transports {
    /// gRPC (`remotemedia.v1`), with grpc.health.v1 and server reflection.
    #[serde(default)]
    pub grpc: GrpcTransport,
    /// WebRTC with WHIP signalling over HTTP and one UDP port for media.
    #[serde(default)]
    pub webrtc: WebRtcTransport,
}

/// The gRPC sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcTransport {
    /// Run the gRPC sidecar and its Service.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Container and Service port.
    #[serde(default = "default_grpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Type of the Service that exposes the port.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Name of a Secret in the Pipeline's namespace whose key `token` is the bearer token
    /// clients must send. Unset: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// Name of a `kubernetes.io/tls` Secret (keys `tls.crt`, `tls.key`) in the Pipeline's
    /// namespace: the sidecar serves TLS with it, and picks up a renewed certificate without a
    /// restart. Unset: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// How the server lets go of clients that stopped sending, reading or answering.
    #[serde(default)]
    pub timeouts: GrpcTimeouts,
    /// Streams one client connection may have open at once.
    #[serde(default = "default_max_streams_per_connection")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_streams_per_connection: i32,
    /// CPU and memory for the gRPC sidecar. Unset: requests 50m CPU and 64Mi, limit 512Mi
    /// memory (no CPU limit: throttling a real-time relay adds latency to every frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Timeouts of the gRPC sidecar, in seconds. A client whose network vanished loses its session
/// within `keepaliveSeconds + keepaliveTimeoutSeconds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcTimeouts {
    /// A new stream must send `open` within this long.
    #[serde(default = "default_open_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub open_seconds: i32,
    /// A session whose client sends nothing for this long ends.
    #[serde(default = "default_idle_seconds")]
    #[schemars(range(min = 1, max = 86400))]
    pub idle_seconds: i32,
    /// A session whose input the pipeline does not take, or whose responses the client does
    /// not read, for this long ends.
    #[serde(default = "default_stall_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub stall_seconds: i32,
    /// A connection quiet for this long is pinged (HTTP/2 PING and TCP keepalive).
    #[serde(default = "default_keepalive_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub keepalive_seconds: i32,
    /// A ping unanswered for this long drops the connection and its sessions.
    #[serde(default = "default_keepalive_timeout_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub keepalive_timeout_seconds: i32,
}

// One source for these defaults: the binary's flags use the same values.
const GRPC: contract::GrpcTimeouts = contract::GrpcTimeouts::DEFAULT;

fn default_open_seconds() -> i32 {
    GRPC.open_seconds.cast_signed()
}
fn default_idle_seconds() -> i32 {
    GRPC.idle_seconds.cast_signed()
}
fn default_stall_seconds() -> i32 {
    GRPC.stall_seconds.cast_signed()
}
fn default_keepalive_seconds() -> i32 {
    GRPC.keepalive_seconds.cast_signed()
}
fn default_keepalive_timeout_seconds() -> i32 {
    GRPC.keepalive_timeout_seconds.cast_signed()
}
fn default_max_streams_per_connection() -> i32 {
    GRPC.max_streams_per_connection.cast_signed()
}

impl Default for GrpcTimeouts {
    fn default() -> Self {
        Self {
            open_seconds: default_open_seconds(),
            idle_seconds: default_idle_seconds(),
            stall_seconds: default_stall_seconds(),
            keepalive_seconds: default_keepalive_seconds(),
            keepalive_timeout_seconds: default_keepalive_timeout_seconds(),
        }
    }
}

fn enabled() -> bool {
    true
}
fn default_grpc_port() -> i32 {
    50051
}

impl Default for GrpcTransport {
    fn default() -> Self {
        Self {
            enabled: true,
            port: default_grpc_port(),
            service_type: ServiceType::default(),
            token_secret: None,
            tls_secret: None,
            timeouts: GrpcTimeouts::default(),
            max_streams_per_connection: default_max_streams_per_connection(),
            resources: None,
        }
    }
}

/// The WebRTC sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcTransport {
    /// Run the WebRTC sidecar and its Service.
    #[serde(default)]
    pub enabled: bool,
    /// HTTP port for WHIP signalling, `/metrics` and the demo page.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub http_port: i32,
    /// The one UDP port all sessions' media share.
    #[serde(default = "default_udp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub udp_port: i32,
    /// Address announced in ICE candidates. Unset: the pod IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    /// Type of the Service that exposes the ports.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Name of a Secret in the Pipeline's namespace whose key `token` is the bearer token
    /// WHIP clients must send (RFC 9725 section 4.5). Unset: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// Name of a `kubernetes.io/tls` Secret (keys `tls.crt`, `tls.key`) in the Pipeline's
    /// namespace: WHIP and the demo page are served over https (browsers give the microphone
    /// only to secure contexts); a renewed certificate is picked up without a restart.
    /// Unset: plain http.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// CPU and memory for the WebRTC sidecar. Unset: requests 100m CPU and 64Mi, limit 512Mi
    /// memory (no CPU limit: throttling the Opus codec and media pacing adds latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// STUN and TURN servers WHIP clients are given (`Link` headers on `OPTIONS` and on the
    /// answer, RFC 9725 section 4.4), as the browser's `RTCIceServer` list. Clients outside
    /// the cluster reach the pods through a TURN relay that can reach pod IPs; pods keep
    /// announcing their pod IP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub ice_servers: Vec<IceServerSpec>,
}

/// A STUN or TURN server for WHIP clients, with the credentials each client gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.staticCredentials) && has(self.ephemeralCredentials))",
        "message": "give staticCredentials or ephemeralCredentials, not both"
    },
    {
        "rule": "self.urls.all(u, u.matches('^(stun|stuns|turn|turns):[^<>\\\\s\\\"]+$'))",
        "message": "every URL is a stun:, stuns:, turn: or turns: URI (RFC 7064, RFC 7065), e.g. turn:relay.example.net:3478?transport=udp"
    }
]))]
pub struct IceServerSpec {
    /// `stun:`, `turn:` and `turns:` URIs, e.g. `turn:relay.example.net:3478?transport=udp`,
    /// `turns:relay.example.net:443?transport=tcp`.
    #[schemars(length(min = 1, max = 8), inner(length(min = 6, max = 512)))]
    pub urls: Vec<String>,
    /// The same username and password for every client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_credentials: Option<StaticIceCredentials>,
    /// A username and password minted for each client from a secret shared with the TURN
    /// server (the TURN REST scheme: coturn's `use-auth-secret`, STUNner's `ephemeral`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_credentials: Option<EphemeralIceCredentials>,
}

/// Fixed TURN credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIceCredentials {
    /// A Secret in the Pipeline's namespace with keys `username` and `credential`; a changed
    /// Secret is picked up without a restart.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// TURN credentials minted for each client (TURN REST: the username is
/// `<expiry>:<random id>`, the password base64(HMAC-SHA1(secret, username))).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralIceCredentials {
    /// A Secret in the Pipeline's namespace whose key `secret` is the TURN server's shared
    /// secret (coturn `static-auth-secret`); a rotated Secret is picked up without a restart.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// How long a minted credential is valid: a session needs it only to allocate and to
    /// refresh its allocation, which the TURN server allows for as long as the allocation lives.
    #[serde(default = "default_ice_ttl_seconds")]
    #[schemars(range(min = 60, max = 604_800))]
    pub ttl_seconds: i32,
}

fn default_ice_ttl_seconds() -> i32 {
    3600
}

fn default_http_port() -> i32 {
    8080
}
fn default_udp_port() -> i32 {
    40000
}

impl Default for WebRtcTransport {
    fn default() -> Self {
        Self {
            enabled: false,
            http_port: default_http_port(),
            udp_port: default_udp_port(),
            advertise_address: None,
            service_type: ServiceType::default(),
            token_secret: None,
            tls_secret: None,
            resources: None,
            ice_servers: Vec::new(),
        }
    }
}

/// How a transport's Service is exposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Through the cloud's load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Service `spec.type` string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The runtime container of each worker pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSettings {
    /// Image override. Unset: the operator's default runtime image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU and memory for the runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Size of the in-memory `/dev/shm` shared by all containers of a pod (iceoryx2
    /// segments). Counts against the pod's memory. Default 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory: Option<Quantity>,
}

/// Default size of `/dev/shm` in worker pods.
pub const DEFAULT_SHARED_MEMORY: &str = "256Mi";

/// Session limits and draining, applied to every transport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSettings {
    /// Sessions one pod accepts before refusing new ones.
    #[serde(default = "default_max_per_pod")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_per_pod: i32,
    /// On pod termination, how long open sessions may run on before they are cut.
    #[serde(default = "default_drain_seconds")]
    #[schemars(range(min = 0, max = 86400))]
    pub drain_seconds: i32,
}

fn default_max_per_pod() -> i32 {
    200
}
fn default_drain_seconds() -> i32 {
    300
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            max_per_pod: default_max_per_pod(),
            drain_seconds: default_drain_seconds(),
        }
    }
}

/// What the operator observed, as of `observedGeneration`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ManifestValid, Progressing, Ready and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Worker pods that exist (scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Worker pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the worker pods (scale subresource, for HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Where clients connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// SHA-256 of the manifest the worker pods run (the last valid one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_hash: Option<String>,
    /// Sessions open on the worker pods, as last counted (every few seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionCounts>,
}

/// Open sessions, in all and per worker pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCounts {
    /// Open on all worker pods that answered.
    pub active: i32,
    /// Per pod (pods that did not answer are left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["pod"]))]
    pub pods: Vec<PodSessions>,
}

/// One worker pod's open sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSessions {
    /// The pod's name.
    pub pod: String,
    /// Sessions open on it.
    pub active: i32,
}

/// In-cluster addresses of the enabled transports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Endpoints {
    /// `host:port` of the gRPC Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// WHIP URL of the WebRTC Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webrtc: Option<String>,
    /// The STUN and TURN URLs WHIP clients are given.
    #[serde(default, rename = "iceServers", skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<String>,
}

/// Schema of `spec.manifest`: runtime-core's [`Manifest`] schema, made structural (node
/// `params` keep unknown fields: their schema depends on the node type) and bounded so the
/// apiserver's CEL cost estimate passes, plus the invariants CEL can check cheaply.
pub fn manifest_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.root_schema_for::<Manifest>();
    let defs = schema.remove("$defs").unwrap_or(Value::Null);
    let mut value = inline_refs(schema.to_value(), &defs);
    strip_meta(&mut value);
    let Some(props) = value.get_mut("properties") else {
        unreachable!("runtime-core's Manifest is a struct with properties")
    };
    let node_id_len = MAX_NODE_ID_LEN as u64;
    props["nodes"]["maxItems"] = json!(MAX_NODES);
    props["nodes"]["minItems"] = json!(1);
    let node = &mut props["nodes"]["items"]["properties"];
    node["id"]["maxLength"] = json!(node_id_len);
    node["node_type"]["maxLength"] = json!(128);
    node["params"] = json!({
        "description": "Node parameters; checked against the node type's schema at admission.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    });
    props["connections"]["maxItems"] = json!(MAX_CONNECTIONS);
    for end in ["from", "to"] {
        props["connections"]["items"]["properties"][end]["maxLength"] = json!(node_id_len);
    }
    props["version"]["maxLength"] = json!(16);
    value["x-kubernetes-validations"] = json!([
        {
            "rule": "self.nodes.all(n, self.nodes.exists_one(m, m.id == n.id))",
            "message": "node ids must be unique",
            "fieldPath": ".nodes",
        },
        {
            "rule": "!has(self.connections) || self.connections.all(c, self.nodes.exists(n, n.id == c.from) && self.nodes.exists(n, n.id == c.to))",
            "message": "every connection must name existing nodes in from and to",
            "fieldPath": ".connections",
        },
    ]);
    let Ok(schema) = Schema::try_from(value) else {
        unreachable!("an object value is a schema")
    };
    schema
}

/// Replaces `{"$ref": "#/$defs/X"}` by the definition itself (CRD schemas cannot use refs).
fn inline_refs(value: Value, defs: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                return inline_refs(defs[name].clone(), defs);
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, inline_refs(v, defs)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| inline_refs(v, defs)).collect())
        }
        other => other,
    }
}

/// Drops what a structural schema may not hold: `$schema`, `title`, and
/// `additionalProperties: false` (unknown fields are pruned or refused by the apiserver).
fn strip_meta(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("$schema");
            map.remove("title");
            if map.get("additionalProperties") == Some(&Value::Bool(false)) {
                map.remove("additionalProperties");
            }
            map.values_mut().for_each(strip_meta);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_meta),
        _ => {}
    }
}
