//! The WebRTC sidecar of a worker pod: its container, the ICE servers it hands to clients
//! and the Secrets it mounts (ICE credentials, the replicas' shared key).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Probe};
use kube::ResourceExt;
use remotemedia_runtime_core::pod::{
    self as contract, Advertise, IceCredentialFiles, IceServerFlag, WebrtcSidecar,
};

use super::BuildError;
use super::WorkerImages;
use super::pod::{
    hardened, http_probe, mount, port, port_number, sidecar_resources, transport_mounts,
};
use crate::crd::{IceServerSpec, Pipeline, WebRtcTransport};

pub(super) fn container(
    link: &str,
    webrtc: &WebRtcTransport,
    sessions: contract::Sessions,
    images: &WorkerImages,
) -> Result<Container, BuildError> {
    let advertise = match &webrtc.advertise_address {
        None => Advertise::PodIp,
        Some(address) => Advertise::Address(address.parse::<IpAddr>().map_err(|source| {
            BuildError::AdvertiseAddress {
                value: address.clone(),
                source,
            }
        })?),
    };
    // The kubelet expands `$(POD_IP)` in the args (`--advertise` for the pod IP,
    // `--replica-address`) from this.
    let env = vec![EnvVar {
        name: contract::POD_IP_ENV.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "status.podIP".to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    }];
    let sidecar = WebrtcSidecar {
        link: link.to_owned(),
        http_port: port_number("spec.transports.webrtc.httpPort", webrtc.http_port)?,
        udp_port: port_number("spec.transports.webrtc.udpPort", webrtc.udp_port)?,
        advertise,
        sessions,
        token: webrtc.token_secret.is_some(),
        tls: webrtc.tls_secret.is_some(),
        replica_key: true,
        ice_servers: ice_server_flags(&webrtc.ice_servers),
    };
    let mut mounts = transport_mounts();
    if sidecar.token {
        mounts.push(mount("webrtc-token", contract::TOKEN_DIR, true));
    }
    if sidecar.tls {
        mounts.push(mount("webrtc-tls", contract::TLS_DIR, true));
    }
    mounts.push(mount("webrtc-replicas", contract::REPLICA_KEY_DIR, true));
    for (index, server) in webrtc.ice_servers.iter().enumerate() {
        if ice_secret(server).is_some() {
            let dir = contract::ice_secret_dir(index);
            mounts.push(mount(&ice_volume(index), &dir.display().to_string(), true));
        }
    }
    // The kubelet's https probes do not verify the certificate: any Secret works for them.
    let scheme = sidecar.tls.then(|| "HTTPS".to_owned());
    let probe = |path: &str| {
        let mut probe = http_probe(path, webrtc.http_port);
        if let Some(action) = probe.http_get.as_mut() {
            action.scheme.clone_from(&scheme);
        }
        probe
    };
    Ok(Container {
        name: "webrtc".to_owned(),
        image: Some(images.webrtc.clone()),
        args: Some(sidecar.args()),
        env: Some(env),
        ports: Some(vec![
            port("http", webrtc.http_port, "TCP"),
            port("media", webrtc.udp_port, "UDP"),
        ]),
        readiness_probe: Some(probe(contract::READY_PATH)),
        // Not the readiness path: it fails while draining, and the sidecar must live to drain.
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..probe(contract::LIVE_PATH)
        }),
        volume_mounts: Some(mounts),
        resources: Some(
            webrtc
                .resources
                .clone()
                .unwrap_or_else(|| sidecar_resources("100m")),
        ),
        ..hardened(images)
    })
}

/// The `--ice-server` flags of the Pipeline's ICE servers, credentials read from the Secret
/// mounted for each.
fn ice_server_flags(servers: &[IceServerSpec]) -> Vec<IceServerFlag> {
    servers
        .iter()
        .enumerate()
        .map(|(index, server)| IceServerFlag {
            urls: server.urls.clone(),
            credentials: match (&server.static_credentials, &server.ephemeral_credentials) {
                (Some(_), _) => IceCredentialFiles::static_secret(index),
                (None, Some(minted)) => IceCredentialFiles::ephemeral_secret(
                    index,
                    u32::try_from(minted.ttl_seconds).unwrap_or(0),
                ),
                (None, None) => IceCredentialFiles::None,
            },
        })
        .collect()
}

/// The Secret holding an ICE server's credentials, if it has any.
fn ice_secret(server: &IceServerSpec) -> Option<&str> {
    match (&server.static_credentials, &server.ephemeral_credentials) {
        (Some(fixed), _) => Some(&fixed.secret_name),
        (None, Some(minted)) => Some(&minted.secret_name),
        (None, None) => None,
    }
}

fn ice_volume(index: usize) -> String {
    format!("webrtc-ice-{index}")
}

/// The Secret with the key a Pipeline's WebRTC replicas share (session names carry their
/// owner, signed with it). The operator creates it once with random bytes and never reads it.
#[must_use]
pub fn replica_key_secret_name(pipeline: &str) -> String {
    format!("{pipeline}-webrtc-replicas")
}

/// The Secret volumes of the WebRTC sidecar beyond token and TLS: `(volume, Secret)`.
pub(super) fn secret_volumes(pipeline: &Pipeline) -> Vec<(String, String)> {
    let mut volumes = vec![(
        "webrtc-replicas".to_owned(),
        replica_key_secret_name(&pipeline.name_any()),
    )];
    for (index, server) in pipeline
        .spec
        .transports
        .webrtc
        .ice_servers
        .iter()
        .enumerate()
    {
        if let Some(secret) = ice_secret(server) {
            volumes.push((ice_volume(index), secret.to_owned()));
        }
    }
    volumes
}
