use k8s_openapi::api::core::v1::{Container, PodSpec};
use kube::api::ObjectMeta;
use remotemedia_runtime_core::pod::{IceCredentialFiles, IceServerFlag};
use serde_json::json;

use super::*;
use crate::crd::PipelineSpec;

fn images() -> WorkerImages {
    WorkerImages {
        runtime: "localhost/remotemedia-runtime:t".to_owned(),
        grpc: "localhost/remotemedia-grpc:t".to_owned(),
        webrtc: "localhost/remotemedia-webrtc:t".to_owned(),
        pull_policy: "Never".to_owned(),
    }
}

fn pipeline(spec: serde_json::Value) -> Pipeline {
    let spec: PipelineSpec = serde_json::from_value(spec).expect("valid spec");
    Pipeline {
        metadata: ObjectMeta {
            name: Some("voice".to_owned()),
            namespace: Some("media".to_owned()),
            uid: Some("uid-1".to_owned()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

fn basic() -> Pipeline {
    pipeline(json!({
        "manifest": {"version": "v1", "nodes": [
            {"id": "level", "node_type": "AudioLevelNode", "params": {"silence_threshold_db": -60, "low_volume_threshold_db": -30}}
        ]},
    }))
}

fn pod_spec(c: &Children) -> &PodSpec {
    c.deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
}

fn all_containers(spec: &PodSpec) -> Vec<&Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect()
}

#[test]
fn every_child_is_owned_by_the_pipeline_and_labelled() {
    let c = children(&basic(), &images()).expect("children");
    let mut metas = vec![&c.config_map.metadata, &c.deployment.metadata];
    metas.extend(c.services.iter().map(|s| &s.metadata));
    for meta in metas {
        let owners = meta.owner_references.as_ref().expect("owner refs");
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].uid, "uid-1");
        assert_eq!(owners[0].kind, "Pipeline");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(
            labels.get(PIPELINE_LABEL).map(String::as_str),
            Some("voice")
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(meta.namespace.as_deref(), Some("media"));
    }
}

#[test]
fn a_resource_not_yet_stored_is_refused() {
    let mut p = basic();
    p.metadata.uid = None;
    assert_eq!(children(&p, &images()), Err(BuildError::NotStored));
}

#[test]
fn the_runtime_is_a_native_sidecar_that_starts_first_with_probes() {
    let c = children(&basic(), &images()).expect("children");
    let spec = pod_spec(&c);
    let init = spec.init_containers.as_ref().expect("init containers");
    assert_eq!(init.len(), 1);
    let runtime = &init[0];
    assert_eq!(runtime.name, RUNTIME_CONTAINER);
    assert_eq!(runtime.restart_policy.as_deref(), Some("Always"));
    assert!(runtime.startup_probe.is_some() && runtime.readiness_probe.is_some());
    assert_eq!(
        runtime.image.as_deref(),
        Some("localhost/remotemedia-runtime:t")
    );
    let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["grpc"], "only the default transport");
    let grpc_probe = spec.containers[0]
        .readiness_probe
        .as_ref()
        .and_then(|p| p.grpc.as_ref());
    assert_eq!(grpc_probe.map(|g| g.port), Some(50051));
    assert_eq!(grpc_probe.and_then(|g| g.service.clone()), None);
    let liveness = spec.containers[0]
        .liveness_probe
        .as_ref()
        .and_then(|p| p.grpc.as_ref());
    assert_eq!(
        liveness.and_then(|g| g.service.as_deref()),
        Some("liveness"),
        "liveness must not follow readiness (NOT_SERVING while draining)"
    );
}

#[test]
fn every_container_is_hardened_and_shares_memory_and_uid() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true}},
        "runtime": {"sharedMemory": "1Gi"},
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let pod_sc = spec
        .security_context
        .as_ref()
        .expect("pod security context");
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert!(pod_sc.run_as_user.is_some() && pod_sc.run_as_user == pod_sc.run_as_group);
    let containers = all_containers(spec);
    assert_eq!(containers.len(), 3);
    for container in containers {
        let sc = container
            .security_context
            .as_ref()
            .expect("container security context");
        assert_eq!(
            sc.read_only_root_filesystem,
            Some(true),
            "{}",
            container.name
        );
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{}",
            container.name
        );
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()]),
            "{}",
            container.name
        );
        assert!(sc.run_as_user.is_none(), "one UID for all, set on the pod");
        let mounts: Vec<_> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert!(
            mounts.contains(&("dshm", "/dev/shm")),
            "{}: {mounts:?}",
            container.name
        );
        assert!(
            mounts.contains(&("iceoryx2", "/tmp/iceoryx2")),
            "{}: {mounts:?}",
            container.name
        );
    }
    let shm = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "dshm")
        .and_then(|v| v.empty_dir.as_ref());
    assert_eq!(shm.and_then(|e| e.medium.as_deref()), Some("Memory"));
    assert_eq!(
        shm.and_then(|e| e.size_limit.as_ref())
            .map(|q| q.0.as_str()),
        Some("1Gi")
    );
    assert_eq!(spec.share_process_namespace, Some(true));
}

#[test]
fn termination_grace_covers_the_drain_deadline() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "sessions": {"drainSeconds": 120},
    }));
    let c = children(&p, &images()).expect("children");
    assert!(
        pod_spec(&c).termination_grace_period_seconds.unwrap_or(0)
            > 120 + i64::from(super::pod::ENDPOINT_REMOVAL_SECONDS)
    );
    let grpc_args = pod_spec(&c).containers[0].args.clone().unwrap_or_default();
    let i = grpc_args
        .iter()
        .position(|a| a == "--drain-seconds")
        .expect("drain flag");
    assert_eq!(grpc_args[i + 1], "120");
}

#[test]
fn the_manifest_hash_changes_with_the_manifest_only() {
    let base = children(&basic(), &images()).expect("children");

    let mut scaled = basic();
    scaled.spec.replicas = 3;
    scaled.spec.sessions.max_per_pod = 10;
    let scaled = children(&scaled, &images()).expect("children");
    assert_eq!(scaled.manifest_hash, base.manifest_hash);
    assert_eq!(
        scaled.config_map, base.config_map,
        "same ConfigMap, nothing to roll"
    );

    // The same params written in another order are the same manifest.
    let reordered = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [
            {"id": "level", "node_type": "AudioLevelNode", "params": {"low_volume_threshold_db": -30, "silence_threshold_db": -60}}
        ]},
    }));
    assert_eq!(
        children(&reordered, &images())
            .expect("children")
            .manifest_hash,
        base.manifest_hash
    );

    let changed = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [
            {"id": "level", "node_type": "AudioLevelNode", "params": {"silence_threshold_db": -50, "low_volume_threshold_db": -30}}
        ]},
    }));
    let changed = children(&changed, &images()).expect("children");
    assert_ne!(changed.manifest_hash, base.manifest_hash);
    assert_ne!(
        changed.config_map.metadata.name,
        base.config_map.metadata.name
    );
    let annotation = |c: &Children| {
        c.deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(MANIFEST_HASH_KEY))
            .cloned()
    };
    assert_eq!(annotation(&changed), Some(changed.manifest_hash.clone()));
    assert_ne!(annotation(&changed), annotation(&base));
}

#[test]
fn the_config_map_holds_the_manifest_and_is_immutable() {
    let c = children(&basic(), &images()).expect("children");
    assert_eq!(c.config_map.immutable, Some(true));
    let text = c
        .config_map
        .data
        .as_ref()
        .and_then(|d| d.get(MANIFEST_FILE))
        .expect("manifest");
    let back: Manifest = serde_json::from_str(text).expect("manifest JSON");
    assert_eq!(back, basic().spec.manifest);
    let volume = pod_spec(&c)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "manifest")
        .and_then(|v| v.config_map.as_ref());
    assert_eq!(
        volume.map(|v| v.name.as_str()),
        c.config_map.metadata.name.as_deref()
    );
}

#[test]
fn services_follow_the_enabled_transports() {
    let both = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"grpc": {"port": 6000, "serviceType": "NodePort"}, "webrtc": {"enabled": true, "udpPort": 41000}},
    }));
    let c = children(&both, &images()).expect("children");
    let names: Vec<_> = c.services.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["voice-grpc", "voice-webrtc"]);
    let grpc = c.services[0].spec.as_ref().expect("spec");
    assert_eq!(grpc.type_.as_deref(), Some("NodePort"));
    assert_eq!(grpc.ports.as_ref().map(|p| p[0].port), Some(6000));
    let webrtc_ports = c.services[1]
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    assert!(
        webrtc_ports
            .iter()
            .any(|p| p.protocol.as_deref() == Some("UDP") && p.port == 41000)
    );
    let eps = endpoints(&both);
    assert_eq!(eps.grpc.as_deref(), Some("voice-grpc.media.svc:6000"));
    assert_eq!(
        eps.webrtc.as_deref(),
        Some("http://voice-webrtc.media.svc:8080/whip")
    );

    let webrtc_only = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"grpc": {"enabled": false}, "webrtc": {"enabled": true}},
    }));
    let c = children(&webrtc_only, &images()).expect("children");
    assert_eq!(
        c.services
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["voice-webrtc"]
    );
    assert_eq!(
        pod_spec(&c)
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["webrtc"]
    );
    assert_eq!(endpoints(&webrtc_only).grpc, None);
}

#[test]
fn a_disruption_budget_exists_only_for_several_replicas() {
    assert!(
        children(&basic(), &images())
            .expect("children")
            .pdb
            .is_none()
    );
    let mut p = basic();
    p.spec.replicas = 3;
    let pdb = children(&p, &images()).expect("children").pdb.expect("pdb");
    let spec = pdb.spec.expect("spec");
    assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        spec.selector
            .and_then(|s| s.match_labels)
            .and_then(|l| l.get(PIPELINE_LABEL).cloned()),
        Some("voice".to_owned())
    );
}

#[test]
fn a_token_secret_is_mounted_into_the_grpc_container() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"grpc": {"tokenSecret": "voice-token"}},
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let args = spec.containers[0].args.clone().unwrap_or_default();
    assert!(args.windows(2).any(|w| w[0] == "--token-file"), "{args:?}");
    let secret = spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.secret.as_ref());
    assert_eq!(
        secret.and_then(|s| s.secret_name.as_deref()),
        Some("voice-token")
    );
}

#[test]
fn a_webrtc_token_secret_is_mounted_into_the_webrtc_container_only() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true, "tokenSecret": "whip-token"}},
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let container = |name: &str| {
        spec.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} container"))
    };
    let webrtc_args = container("webrtc").args.clone().unwrap_or_default();
    assert!(
        webrtc_args
            .windows(2)
            .any(|w| w == ["--token-file", "/etc/remotemedia/token/token"]),
        "{webrtc_args:?}"
    );
    let grpc_args = container("grpc").args.clone().unwrap_or_default();
    assert!(
        !grpc_args.iter().any(|a| a == "--token-file"),
        "{grpc_args:?}"
    );
    let secrets = secret_volumes(spec);
    assert_eq!(
        secrets,
        [
            ("webrtc-token", "whip-token"),
            ("webrtc-replicas", "voice-webrtc-replicas")
        ]
    );
}

#[test]
fn transports_start_draining_on_sigterm_and_keep_their_port_until_the_endpoint_is_gone() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true}},
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let transports: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(transports, ["grpc", "webrtc"]);
    let linger = super::pod::ENDPOINT_REMOVAL_SECONDS.to_string();
    for container in &spec.containers {
        // A preStop hook would delay SIGTERM, and with it the refusal of new sessions.
        assert_eq!(container.lifecycle, None, "{}", container.name);
        let args = container.args.as_deref().unwrap_or_default();
        let at = args.iter().position(|a| a == "--linger-seconds");
        assert_eq!(
            at.and_then(|i| args.get(i + 1)),
            Some(&linger),
            "{}: {args:?}",
            container.name
        );
    }
    // The runtime stops after the transports; it has no endpoint of its own to wait for.
    let runtime = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(runtime.lifecycle, None);
}

#[test]
fn an_advertise_address_that_is_not_an_ip_is_an_error_naming_the_field() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true, "advertiseAddress": "media.example.com"}},
    }));
    let error = children(&p, &images()).expect_err("not an IP");
    assert!(
        matches!(&error, BuildError::AdvertiseAddress { value, .. } if value == "media.example.com"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("spec.transports.webrtc.advertiseAddress:"),
        "{error}"
    );

    let fixed = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true, "advertiseAddress": "203.0.113.5"}},
    }));
    let c = children(&fixed, &images()).expect("children");
    let webrtc = &pod_spec(&c).containers[1];
    let args = webrtc.args.clone().unwrap_or_default();
    assert!(
        args.windows(2).any(|w| w == ["--advertise", "203.0.113.5"]),
        "{args:?}"
    );
    // A fixed address needs no variable for the kubelet to expand; the pod IP is still
    // where the other replicas reach this one.
    let env: Vec<_> = webrtc
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["POD_IP"]);
}

/// The pod's Secret volumes: (volume, Secret).
fn secret_volumes(spec: &PodSpec) -> Vec<(&str, &str)> {
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.as_str(), v.secret.as_ref()?.secret_name.as_deref()?)))
        .collect()
}

#[test]
fn ice_servers_become_flags_with_their_secrets_mounted_and_endpoints() {
    let p = pipeline(json!({
        "manifest": {"version": "v1", "nodes": [{"id": "a", "node_type": "PassThrough"}]},
        "transports": {"webrtc": {"enabled": true, "iceServers": [
            {"urls": ["stun:stun.example.net:3478"]},
            {"urls": ["turn:relay.example.net:3478?transport=udp",
                      "turns:relay.example.net:5349?transport=tcp"],
             "ephemeralCredentials": {"secretName": "turn-auth", "ttlSeconds": 600}},
            {"urls": ["turn:fixed.example.net:3478"],
             "staticCredentials": {"secretName": "turn-fixed"}},
        ]}},
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let webrtc = spec.containers.iter().find(|c| c.name == "webrtc").unwrap();
    let args = webrtc.args.clone().unwrap_or_default();
    let flags: Vec<IceServerFlag> = args
        .windows(2)
        .filter(|w| w[0] == "--ice-server")
        .map(|w| w[1].parse().unwrap())
        .collect();
    assert_eq!(
        flags,
        [
            "stun:stun.example.net:3478".parse().unwrap(),
            IceServerFlag {
                urls: vec![
                    "turn:relay.example.net:3478?transport=udp".to_owned(),
                    "turns:relay.example.net:5349?transport=tcp".to_owned()
                ],
                credentials: IceCredentialFiles::ephemeral_secret(1, 600),
            },
            IceServerFlag {
                urls: vec!["turn:fixed.example.net:3478".to_owned()],
                credentials: IceCredentialFiles::static_secret(2),
            },
        ]
    );
    // Each credential Secret mounted where its flag says; no volume for the STUN server.
    let mounts: Vec<_> = webrtc
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.name.starts_with("webrtc-ice-"))
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("webrtc-ice-1", "/etc/remotemedia/ice/1"),
            ("webrtc-ice-2", "/etc/remotemedia/ice/2")
        ]
    );
    let secrets = secret_volumes(spec);
    assert_eq!(
        secrets,
        [
            ("webrtc-replicas", "voice-webrtc-replicas"),
            ("webrtc-ice-1", "turn-auth"),
            ("webrtc-ice-2", "turn-fixed")
        ]
    );
    assert!(
        args.windows(2)
            .any(|w| w == ["--replica-address", "$(POD_IP):8080"]),
        "{args:?}"
    );
    // The replicas' key: a Secret of the Pipeline's, its data left to the controller.
    let key = c.replica_key.as_ref().expect("the replicas' key Secret");
    assert_eq!(key.metadata.name.as_deref(), Some("voice-webrtc-replicas"));
    assert_eq!(key.data, None);
    assert_eq!(
        endpoints(&p).ice_servers,
        [
            "stun:stun.example.net:3478",
            "turn:relay.example.net:3478?transport=udp",
            "turns:relay.example.net:5349?transport=tcp",
            "turn:fixed.example.net:3478"
        ]
    );
    // Without WebRTC: no key, no ICE servers.
    let plain = children(&basic(), &images()).expect("children");
    assert_eq!(plain.replica_key, None);
    assert!(endpoints(&basic()).ice_servers.is_empty());
}

#[test]
fn grpc_timeouts_reach_the_sidecar_and_default_to_the_binarys_defaults() {
    let flag = |args: &[String], name: &str| {
        args.windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].clone())
            .unwrap_or_else(|| panic!("no {name} in {args:?}"))
    };
    let c = children(&basic(), &images()).expect("children");
    let args = pod_spec(&c).containers[0].args.clone().unwrap_or_default();
    let defaults = remotemedia_runtime_core::pod::GrpcTimeouts::DEFAULT;
    assert_eq!(
        flag(&args, "--stall-timeout-secs"),
        defaults.stall_seconds.to_string()
    );
    assert_eq!(
        flag(&args, "--keepalive-secs"),
        defaults.keepalive_seconds.to_string()
    );

    let p = pipeline(json!({
        "manifest": basic().spec.manifest,
        "transports": {"grpc": {
            "timeouts": {"openSeconds": 3, "stallSeconds": 7, "keepaliveTimeoutSeconds": 4},
            "maxStreamsPerConnection": 12,
        }},
    }));
    let c = children(&p, &images()).expect("children");
    let args = pod_spec(&c).containers[0].args.clone().unwrap_or_default();
    assert_eq!(flag(&args, "--open-timeout-secs"), "3");
    assert_eq!(flag(&args, "--stall-timeout-secs"), "7");
    assert_eq!(flag(&args, "--keepalive-timeout-secs"), "4");
    assert_eq!(flag(&args, "--max-streams-per-connection"), "12");
    assert_eq!(
        flag(&args, "--idle-timeout-secs"),
        defaults.idle_seconds.to_string(),
        "fields left out keep their defaults"
    );
}

#[test]
fn tls_secrets_are_mounted_passed_probed_and_shown_in_the_endpoints() {
    let p = pipeline(json!({
        "manifest": basic().spec.manifest,
        "transports": {
            "grpc": {"tlsSecret": "grpc-cert"},
            "webrtc": {"enabled": true, "tlsSecret": "webrtc-cert"},
        },
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let container = |name: &str| {
        spec.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} container"))
    };
    for (name, secret) in [("grpc", "grpc-cert"), ("webrtc", "webrtc-cert")] {
        let c = container(name);
        let args = c.args.clone().unwrap_or_default();
        assert!(
            args.windows(2)
                .any(|w| w == ["--tls-cert", "/etc/remotemedia/tls/tls.crt"]),
            "{args:?}"
        );
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/etc/remotemedia/tls")
            .unwrap_or_else(|| panic!("{name}: no TLS mount"));
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some(secret)
        );
    }
    // The kubelet's gRPC probe speaks no TLS: plain HTTP on the metrics port instead.
    let grpc = container("grpc");
    let readiness = grpc.readiness_probe.as_ref().unwrap();
    assert!(readiness.grpc.is_none());
    let get = readiness.http_get.as_ref().unwrap();
    assert_eq!(get.path.as_deref(), Some("/readyz"));
    assert_eq!(get.port, IntOrString::Int(9091));
    let webrtc = container("webrtc");
    let get = webrtc
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(get.scheme.as_deref(), Some("HTTPS"));

    let shown = endpoints(&p);
    assert!(
        shown.grpc.as_deref().unwrap().starts_with("grpcs://"),
        "{shown:?}"
    );
    assert!(
        shown.webrtc.as_deref().unwrap().starts_with("https://"),
        "{shown:?}"
    );
    let plain = endpoints(&basic());
    assert!(!plain.grpc.as_deref().unwrap().contains("://"), "{plain:?}");
}

#[test]
fn sidecars_get_requests_and_a_memory_limit_unless_the_pipeline_says_otherwise() {
    let p = pipeline(json!({
        "manifest": basic().spec.manifest,
        "transports": {
            "webrtc": {"enabled": true, "resources": {"requests": {"cpu": "2"}}},
        },
    }));
    let c = children(&p, &images()).expect("children");
    let spec = pod_spec(&c);
    let grpc = spec.containers.iter().find(|c| c.name == "grpc").unwrap();
    let resources = grpc.resources.as_ref().expect("default resources");
    let requests = resources.requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "50m");
    assert_eq!(requests["memory"].0, "64Mi");
    let limits = resources.limits.as_ref().unwrap();
    assert_eq!(limits["memory"].0, "512Mi");
    assert!(
        !limits.contains_key("cpu"),
        "no CPU limit: throttling stalls media"
    );
    let webrtc = spec.containers.iter().find(|c| c.name == "webrtc").unwrap();
    let requests = webrtc
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(requests["cpu"].0, "2", "the Pipeline's own resources win");
}
