//! One Service per enabled transport.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::PIPELINE_LABEL;
use crate::crd::Pipeline;

/// Name of the gRPC Service of Pipeline `name`.
#[must_use]
pub fn grpc_service_name(name: &str) -> String {
    format!("{name}-grpc")
}

/// Name of the WebRTC Service of Pipeline `name`.
#[must_use]
pub fn webrtc_service_name(name: &str) -> String {
    format!("{name}-webrtc")
}

pub(super) fn services(pipeline: &Pipeline, meta: &dyn Fn(String) -> ObjectMeta) -> Vec<Service> {
    let name = pipeline.name_any();
    let transports = &pipeline.spec.transports;
    let selector = BTreeMap::from([(PIPELINE_LABEL.to_owned(), name.clone())]);
    let mut services = Vec::new();
    if transports.grpc.enabled {
        services.push(Service {
            metadata: meta(grpc_service_name(&name)),
            spec: Some(ServiceSpec {
                type_: Some(transports.grpc.service_type.as_str().to_owned()),
                selector: Some(selector.clone()),
                ports: Some(vec![ServicePort {
                    name: Some("grpc".to_owned()),
                    port: transports.grpc.port,
                    target_port: Some(IntOrString::String("grpc".to_owned())),
                    protocol: Some("TCP".to_owned()),
                    // Lets meshes and Gateway implementations speak HTTP/2 cleartext to it.
                    app_protocol: Some("kubernetes.io/h2c".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        });
    }
    if transports.webrtc.enabled {
        services.push(Service {
            metadata: meta(webrtc_service_name(&name)),
            spec: Some(ServiceSpec {
                type_: Some(transports.webrtc.service_type.as_str().to_owned()),
                selector: Some(selector),
                ports: Some(vec![
                    ServicePort {
                        name: Some("http".to_owned()),
                        port: transports.webrtc.http_port,
                        target_port: Some(IntOrString::String("http".to_owned())),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    },
                    ServicePort {
                        name: Some("media".to_owned()),
                        port: transports.webrtc.udp_port,
                        target_port: Some(IntOrString::String("media".to_owned())),
                        protocol: Some("UDP".to_owned()),
                        ..ServicePort::default()
                    },
                ]),
                // WHIP's follow-up requests (DELETE, PATCH) must reach the pod holding the
                // peer connection; the session URL names it, and affinity keeps plain
                // clients on one pod.
                session_affinity: Some("ClientIP".to_owned()),
                ..ServiceSpec::default()
            }),
            status: None,
        });
    }
    services
}
