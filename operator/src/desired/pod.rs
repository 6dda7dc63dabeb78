//! The worker pod template.
//!
//! Ordering is done with native sidecars: the runtime is an init container with
//! `restartPolicy: Always` and a startup probe, so the kubelet starts it first and starts the
//! transport containers only once the runtime reports ready; on termination the kubelet stops
//! the regular (transport) containers first, lets them drain, and stops the runtime last.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    GRPCAction, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use remotemedia_runtime_core::pod::{self as contract, GrpcSidecar};

use super::{BuildError, MANIFEST_HASH_KEY, WorkerImages, child_labels, webrtc};
use crate::crd::{DEFAULT_SHARED_MEMORY, GrpcTransport, Pipeline};

/// Name of the runtime container (the pod's default container for `kubectl logs`).
pub const RUNTIME_CONTAINER: &str = "runtime";
/// Every container runs as this user and group, so they can all open each other's iceoryx2
/// files and shared-memory segments.
const WORKER_UID: i64 = 65532;
/// Seconds the pod gets beyond the session drain deadline to stop the runtime.
const STOP_MARGIN_SECONDS: i64 = 15;
/// Seconds a terminating transport container keeps its port open (`--linger-seconds`),
/// refusing new sessions with a retryable answer: the pod's endpoint removal takes a moment to
/// reach every kube-proxy (and load balancer), and until then new connections still arrive.
/// A server that kept accepting sessions then would serve them from a pod on its way out (the
/// old manifest, during a rollout); one that had closed its port would turn them into errors
/// clients do not retry. Both were seen in the end-to-end rollout.
pub(super) const ENDPOINT_REMOVAL_SECONDS: u32 = 5;

/// Builds the pod template for `pipeline`, mounting ConfigMap `config_map`.
///
/// # Errors
/// [`BuildError`] when a spec value does not fit the containers' flags (an advertise address
/// that is not an IP, a port out of range).
pub(super) fn template(
    pipeline: &Pipeline,
    images: &WorkerImages,
    config_map: &str,
    manifest_hash: &str,
) -> Result<PodTemplateSpec, BuildError> {
    let name = pipeline.name_any();
    let spec = &pipeline.spec;
    let sessions = sessions(pipeline)?;
    let mut containers = Vec::new();
    if spec.transports.grpc.enabled {
        containers.push(grpc_container(
            &name,
            &spec.transports.grpc,
            sessions,
            images,
        )?);
    }
    if spec.transports.webrtc.enabled {
        containers.push(webrtc::container(
            &name,
            &spec.transports.webrtc,
            sessions,
            images,
        )?);
    }
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(child_labels(&name)),
            annotations: Some(BTreeMap::from([
                (MANIFEST_HASH_KEY.to_owned(), manifest_hash.to_owned()),
                (
                    "kubectl.kubernetes.io/default-container".to_owned(),
                    RUNTIME_CONTAINER.to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(vec![runtime_container(pipeline, images)]),
            containers,
            volumes: Some(volumes(pipeline, config_map)),
            // The pause container becomes PID 1 and reaps exited Python node processes, whose
            // zombies would otherwise hold iceoryx2 file locks.
            share_process_namespace: Some(true),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(
                i64::from(ENDPOINT_REMOVAL_SECONDS)
                    + i64::from(sessions.drain_seconds)
                    + STOP_MARGIN_SECONDS,
            ),
            security_context: Some(pod_security()),
            ..PodSpec::default()
        }),
    })
}

/// The pod-level security settings of every pod the operator runs: the unprivileged user of
/// the images, the runtime's default seccomp profile.
#[must_use]
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(WORKER_UID),
        run_as_group: Some(WORKER_UID),
        fs_group: Some(WORKER_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

fn sessions(pipeline: &Pipeline) -> Result<contract::Sessions, BuildError> {
    let sessions = &pipeline.spec.sessions;
    Ok(contract::Sessions {
        max: non_negative("spec.sessions.maxPerPod", sessions.max_per_pod)?,
        drain_seconds: non_negative("spec.sessions.drainSeconds", sessions.drain_seconds)?,
        linger_seconds: ENDPOINT_REMOVAL_SECONDS,
    })
}

fn grpc_timeouts(grpc: &GrpcTransport) -> Result<contract::GrpcTimeouts, BuildError> {
    let t = &grpc.timeouts;
    Ok(contract::GrpcTimeouts {
        open_seconds: non_negative("spec.transports.grpc.timeouts.openSeconds", t.open_seconds)?,
        idle_seconds: non_negative("spec.transports.grpc.timeouts.idleSeconds", t.idle_seconds)?,
        stall_seconds: non_negative(
            "spec.transports.grpc.timeouts.stallSeconds",
            t.stall_seconds,
        )?,
        keepalive_seconds: non_negative(
            "spec.transports.grpc.timeouts.keepaliveSeconds",
            t.keepalive_seconds,
        )?,
        keepalive_timeout_seconds: non_negative(
            "spec.transports.grpc.timeouts.keepaliveTimeoutSeconds",
            t.keepalive_timeout_seconds,
        )?,
        max_streams_per_connection: non_negative(
            "spec.transports.grpc.maxStreamsPerConnection",
            grpc.max_streams_per_connection,
        )?,
    })
}

/// The runtime: a native sidecar, started before and stopped after the transport containers.
fn runtime_container(pipeline: &Pipeline, images: &WorkerImages) -> Container {
    let worker = contract::Worker {
        link: pipeline.name_any(),
    };
    let metrics = i32::from(contract::RUNTIME_METRICS_PORT);
    Container {
        name: RUNTIME_CONTAINER.to_owned(),
        image: Some(
            pipeline
                .spec
                .runtime
                .image
                .clone()
                .unwrap_or_else(|| images.runtime.clone()),
        ),
        args: Some(worker.args()),
        ports: Some(vec![port("metrics", metrics, "TCP")]),
        restart_policy: Some("Always".to_owned()),
        startup_probe: Some(Probe {
            period_seconds: Some(1),
            failure_threshold: Some(120),
            ..http_probe(contract::READY_PATH, metrics)
        }),
        readiness_probe: Some(http_probe(contract::READY_PATH, metrics)),
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..http_probe(contract::LIVE_PATH, metrics)
        }),
        resources: pipeline.spec.runtime.resources.clone(),
        volume_mounts: Some(vec![
            mount("dshm", contract::SHM_DIR, false),
            mount("iceoryx2", contract::ICEORYX2_DIR, false),
            mount("manifest", contract::MANIFEST_DIR, true),
        ]),
        ..hardened(images)
    }
}

fn grpc_container(
    link: &str,
    grpc: &GrpcTransport,
    sessions: contract::Sessions,
    images: &WorkerImages,
) -> Result<Container, BuildError> {
    let sidecar = GrpcSidecar {
        link: link.to_owned(),
        port: port_number("spec.transports.grpc.port", grpc.port)?,
        sessions,
        timeouts: grpc_timeouts(grpc)?,
        token: grpc.token_secret.is_some(),
        tls: grpc.tls_secret.is_some(),
    };
    let mut mounts = transport_mounts();
    if sidecar.token {
        mounts.push(mount("grpc-token", contract::TOKEN_DIR, true));
    }
    if sidecar.tls {
        mounts.push(mount("grpc-tls", contract::TLS_DIR, true));
    }
    let (readiness_probe, liveness_probe) = if sidecar.tls {
        // The kubelet's gRPC probes speak no TLS: the same readiness and liveness from the
        // sidecar's plain HTTP metrics port instead.
        let metrics = i32::from(contract::GRPC_METRICS_PORT);
        (
            http_probe(contract::READY_PATH, metrics),
            http_probe(contract::LIVE_PATH, metrics),
        )
    } else {
        let grpc_probe = |service: Option<&str>| Probe {
            grpc: Some(GRPCAction {
                port: grpc.port,
                service: service.map(str::to_owned),
            }),
            period_seconds: Some(5),
            ..Probe::default()
        };
        // Its own health name, SERVING while the server answers: readiness turns NOT_SERVING
        // while draining and while the worker is away, which must not get the sidecar killed.
        (
            grpc_probe(None),
            grpc_probe(Some(contract::GRPC_LIVENESS_SERVICE)),
        )
    };
    Ok(Container {
        name: "grpc".to_owned(),
        image: Some(images.grpc.clone()),
        args: Some(sidecar.args()),
        ports: Some(vec![
            port("grpc", grpc.port, "TCP"),
            port(
                "grpc-metrics",
                i32::from(contract::GRPC_METRICS_PORT),
                "TCP",
            ),
        ]),
        readiness_probe: Some(readiness_probe),
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..liveness_probe
        }),
        volume_mounts: Some(mounts),
        resources: Some(
            grpc.resources
                .clone()
                .unwrap_or_else(|| sidecar_resources("50m")),
        ),
        ..hardened(images)
    })
}

/// A transport sidecar's resources when its Pipeline names none: requests that let the
/// scheduler count it, a memory limit that bounds a leak or a flood (sessions are capped by
/// `maxPerPod`, buffers per session are bounded), and no CPU limit, whose CFS throttling
/// would stall real-time media every period it runs out.
pub(super) fn sidecar_resources(cpu_request: &str) -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(cpu_request)),
            ("memory".to_owned(), quantity("64Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), quantity("512Mi"))])),
        ..ResourceRequirements::default()
    }
}

pub(super) fn transport_mounts() -> Vec<VolumeMount> {
    vec![
        mount("dshm", contract::SHM_DIR, false),
        mount("iceoryx2", contract::ICEORYX2_DIR, false),
    ]
}

fn volumes(pipeline: &Pipeline, config_map: &str) -> Vec<Volume> {
    let spec = &pipeline.spec;
    let shm = spec
        .runtime
        .shared_memory
        .clone()
        .unwrap_or_else(|| Quantity(DEFAULT_SHARED_MEMORY.to_owned()));
    let memory = |name: &str, size: Quantity| Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            size_limit: Some(size),
        }),
        ..Volume::default()
    };
    let mut volumes = vec![
        memory("dshm", shm),
        memory("iceoryx2", Quantity("16Mi".to_owned())),
        Volume {
            name: "manifest".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let secrets = [
        (
            "grpc-token",
            spec.transports.grpc.enabled,
            &spec.transports.grpc.token_secret,
        ),
        (
            "webrtc-token",
            spec.transports.webrtc.enabled,
            &spec.transports.webrtc.token_secret,
        ),
        (
            "grpc-tls",
            spec.transports.grpc.enabled,
            &spec.transports.grpc.tls_secret,
        ),
        (
            "webrtc-tls",
            spec.transports.webrtc.enabled,
            &spec.transports.webrtc.tls_secret,
        ),
    ];
    let mut secrets: Vec<(String, bool, Option<String>)> = secrets
        .into_iter()
        .map(|(volume, enabled, secret)| (volume.to_owned(), enabled, secret.clone()))
        .collect();
    if spec.transports.webrtc.enabled {
        for (volume, secret) in webrtc::secret_volumes(pipeline) {
            secrets.push((volume, true, Some(secret)));
        }
    }
    for (volume, enabled, secret) in secrets {
        if let Some(secret) = secret.as_ref().filter(|_| enabled) {
            volumes.push(Volume {
                name: volume.to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
    }
    volumes
}

/// A container with the settings every worker container shares: read-only root, no
/// capabilities, no privilege escalation. Transport containers get no preStop hook on top:
/// SIGTERM itself starts their drain, so from the moment their pod terminates they refuse new
/// sessions (retryably) while the open ones run on and their port stays open for
/// [`ENDPOINT_REMOVAL_SECONDS`].
pub(super) fn hardened(images: &WorkerImages) -> Container {
    hardened_container(&images.pull_policy)
}

/// A container with read-only root, no capabilities and no privilege escalation, pulled with
/// `pull_policy`.
#[must_use]
pub fn hardened_container(pull_policy: &str) -> Container {
    Container {
        image_pull_policy: Some(pull_policy.to_owned()),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

pub(super) fn http_probe(path: &str, port: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}

pub(super) fn port(name: &str, number: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some(protocol.to_owned()),
        ..ContainerPort::default()
    }
}

pub(super) fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

pub(super) fn port_number(field: &'static str, value: i32) -> Result<u16, BuildError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(BuildError::OutOfRange { field, value })
}

fn non_negative(field: &'static str, value: i32) -> Result<u32, BuildError> {
    u32::try_from(value).map_err(|_| BuildError::OutOfRange { field, value })
}
