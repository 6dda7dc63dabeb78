//! The worker pod template.
//!
//! Ordering is done with native sidecars: the runtime is an init container with
//! `restartPolicy: Always` and a startup probe, so the kubelet starts it first and starts the
//! transport containers only once the runtime reports ready; on termination the kubelet stops
//! the regular (transport) containers first, lets them drain, and stops the runtime last.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, GRPCAction, HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{MANIFEST_HASH_KEY, WorkerImages, child_labels};
use crate::crd::{DEFAULT_SHARED_MEMORY, Pipeline};

/// Name of the runtime container (the pod's default container for `kubectl logs`).
pub const RUNTIME_CONTAINER: &str = "runtime";
/// Where the manifest ConfigMap is mounted.
pub const MANIFEST_MOUNT: &str = "/etc/remotemedia";
/// Key of the manifest in the ConfigMap, and its file name under [`MANIFEST_MOUNT`].
pub const MANIFEST_FILE: &str = "manifest.json";
/// Port of the runtime's `/metrics`, `/healthz` and `/readyz`.
pub const RUNTIME_METRICS_PORT: i32 = 9090;
const GRPC_METRICS_PORT: i32 = 9091;
/// The health service name `remotemedia-grpc` keeps SERVING while it answers at all.
const GRPC_LIVENESS_SERVICE: &str = "liveness";
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
pub(super) const ENDPOINT_REMOVAL_SECONDS: i64 = 5;

/// Builds the pod template for `pipeline`, mounting ConfigMap `config_map`.
pub(super) fn template(
    pipeline: &Pipeline,
    images: &WorkerImages,
    config_map: &str,
    manifest_hash: &str,
) -> PodTemplateSpec {
    let name = pipeline.name_any();
    let spec = &pipeline.spec;
    let sessions = &spec.sessions;
    let link_env = EnvVar {
        name: "REMOTEMEDIA_IPC_NAME".to_owned(),
        value: Some(name.clone()),
        ..EnvVar::default()
    };

    let runtime = Container {
        name: RUNTIME_CONTAINER.to_owned(),
        image: Some(
            spec.runtime
                .image
                .clone()
                .unwrap_or_else(|| images.runtime.clone()),
        ),
        args: Some(strings(&[
            "serve",
            "--manifest",
            &format!("{MANIFEST_MOUNT}/{MANIFEST_FILE}"),
            "--metrics-listen",
            &format!("0.0.0.0:{RUNTIME_METRICS_PORT}"),
        ])),
        env: Some(vec![link_env.clone()]),
        ports: Some(vec![port("metrics", RUNTIME_METRICS_PORT, "TCP")]),
        // Native sidecar: started before, stopped after the transport containers.
        restart_policy: Some("Always".to_owned()),
        startup_probe: Some(Probe {
            period_seconds: Some(1),
            failure_threshold: Some(120),
            ..http_probe("/readyz", RUNTIME_METRICS_PORT)
        }),
        readiness_probe: Some(http_probe("/readyz", RUNTIME_METRICS_PORT)),
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..http_probe("/healthz", RUNTIME_METRICS_PORT)
        }),
        resources: spec.runtime.resources.clone(),
        volume_mounts: Some(vec![
            mount("dshm", "/dev/shm", false),
            mount("iceoryx2", "/tmp/iceoryx2", false),
            mount("manifest", MANIFEST_MOUNT, true),
        ]),
        ..hardened(images)
    };

    let mut containers = Vec::new();
    let transport_mounts = || {
        vec![
            mount("dshm", "/dev/shm", false),
            mount("iceoryx2", "/tmp/iceoryx2", false),
        ]
    };
    let session_args = [
        "--max-sessions".to_owned(),
        sessions.max_per_pod.to_string(),
        "--drain-seconds".to_owned(),
        sessions.drain_seconds.to_string(),
        "--linger-seconds".to_owned(),
        ENDPOINT_REMOVAL_SECONDS.to_string(),
    ];
    let grpc = &spec.transports.grpc;
    if grpc.enabled {
        let mut args = strings(&[
            "--connect",
            &name,
            "--listen",
            &format!("0.0.0.0:{}", grpc.port),
            "--metrics-listen",
            &format!("0.0.0.0:{GRPC_METRICS_PORT}"),
        ]);
        args.extend(session_args.iter().cloned());
        let mut mounts = transport_mounts();
        if grpc.token_secret.is_some() {
            args.extend(strings(&["--token-file", "/etc/remotemedia/token/token"]));
            mounts.push(mount("grpc-token", "/etc/remotemedia/token", true));
        }
        let grpc_probe = Probe {
            grpc: Some(GRPCAction {
                port: grpc.port,
                service: None,
            }),
            period_seconds: Some(5),
            ..Probe::default()
        };
        containers.push(Container {
            name: "grpc".to_owned(),
            image: Some(images.grpc.clone()),
            args: Some(args),
            env: Some(vec![link_env.clone()]),
            ports: Some(vec![
                port("grpc", grpc.port, "TCP"),
                port("grpc-metrics", GRPC_METRICS_PORT, "TCP"),
            ]),
            readiness_probe: Some(grpc_probe.clone()),
            // Its own health name, SERVING while the server answers: readiness turns
            // NOT_SERVING while draining and while the worker is away, which must not get
            // the sidecar killed.
            liveness_probe: Some(Probe {
                grpc: Some(GRPCAction {
                    port: grpc.port,
                    service: Some(GRPC_LIVENESS_SERVICE.to_owned()),
                }),
                failure_threshold: Some(6),
                ..grpc_probe
            }),
            volume_mounts: Some(mounts),
            ..transport(images)
        });
    }
    let webrtc = &spec.transports.webrtc;
    if webrtc.enabled {
        let advertise = webrtc.advertise_address.clone().map_or_else(
            || EnvVar {
                name: "ADVERTISE_ADDRESS".to_owned(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".to_owned(),
                        api_version: None,
                    }),
                    ..EnvVarSource::default()
                }),
                value: None,
            },
            |address| EnvVar {
                name: "ADVERTISE_ADDRESS".to_owned(),
                value: Some(address),
                value_from: None,
            },
        );
        let mut args = strings(&[
            "--connect",
            &name,
            "--listen",
            &format!("0.0.0.0:{}", webrtc.http_port),
            "--udp-port",
            &webrtc.udp_port.to_string(),
            "--advertise",
            "$(ADVERTISE_ADDRESS)",
        ]);
        args.extend(session_args.iter().cloned());
        let mut mounts = transport_mounts();
        if webrtc.token_secret.is_some() {
            args.extend(strings(&["--token-file", "/etc/remotemedia/token/token"]));
            mounts.push(mount("webrtc-token", "/etc/remotemedia/token", true));
        }
        containers.push(Container {
            name: "webrtc".to_owned(),
            image: Some(images.webrtc.clone()),
            args: Some(args),
            env: Some(vec![link_env, advertise]),
            ports: Some(vec![
                port("http", webrtc.http_port, "TCP"),
                port("media", webrtc.udp_port, "UDP"),
            ]),
            readiness_probe: Some(http_probe("/healthz", webrtc.http_port)),
            // Not /healthz: it fails while draining, and the sidecar must live to drain.
            liveness_probe: Some(Probe {
                failure_threshold: Some(6),
                ..http_probe("/livez", webrtc.http_port)
            }),
            volume_mounts: Some(mounts),
            ..transport(images)
        });
    }

    let shm = spec
        .runtime
        .shared_memory
        .clone()
        .unwrap_or_else(|| Quantity(DEFAULT_SHARED_MEMORY.to_owned()));
    let mut volumes = vec![
        Volume {
            name: "dshm".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(shm),
            }),
            ..Volume::default()
        },
        Volume {
            name: "iceoryx2".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(Quantity("16Mi".to_owned())),
            }),
            ..Volume::default()
        },
        Volume {
            name: "manifest".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    if let Some(secret) = &grpc.token_secret
        && grpc.enabled
    {
        volumes.push(Volume {
            name: "grpc-token".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if let Some(secret) = &webrtc.token_secret
        && webrtc.enabled
    {
        volumes.push(Volume {
            name: "webrtc-token".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }

    PodTemplateSpec {
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
            init_containers: Some(vec![runtime]),
            containers,
            volumes: Some(volumes),
            // The pause container becomes PID 1 and reaps exited Python node processes, whose
            // zombies would otherwise hold iceoryx2 file locks.
            share_process_namespace: Some(true),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(
                ENDPOINT_REMOVAL_SECONDS + i64::from(sessions.drain_seconds) + STOP_MARGIN_SECONDS,
            ),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(WORKER_UID),
                run_as_group: Some(WORKER_UID),
                fs_group: Some(WORKER_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }),
    }
}

/// A transport container: hardened. It has no preStop hook: SIGTERM itself starts its drain,
/// so from the moment its pod terminates it refuses new sessions (retryably) while the open
/// ones run on and its port stays open for [`ENDPOINT_REMOVAL_SECONDS`].
fn transport(images: &WorkerImages) -> Container {
    hardened(images)
}

/// A container with the settings every worker container shares: read-only root, no
/// capabilities, no privilege escalation.
fn hardened(images: &WorkerImages) -> Container {
    Container {
        image_pull_policy: Some(images.pull_policy.clone()),
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

fn http_probe(path: &str, port: i32) -> Probe {
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

fn port(name: &str, number: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some(protocol.to_owned()),
        ..ContainerPort::default()
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
