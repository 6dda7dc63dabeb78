//! The end-to-end suite: the operator installed with its real Helm chart, Pipelines turned into
//! worker pods by a real kubelet and containerd, and real clients (grpcurl, Python grpcio, a
//! Rust tonic client, aiortc over WebRTC) reaching them through the provisioned Services.
//!
//! One scenario in order, because each step builds on the cluster state the last one left:
//! install, deploy and stream, TLS from Secrets, WebRTC from outside through a TURN relay,
//! autoscaling on sessions, Python nodes from their own image, refuse an invalid Pipeline,
//! scale, roll out a new manifest while a
//! session stays open, kill the runtime container, restart the operator, delete. Each step
//! prints its time. Run it with `make test` (which brings the cluster up and loads the images),
//! or by hand: `kind-tests/cluster.sh up full && kind-tests/images.sh load`, then
//! `KUBECONFIG=$(kind-tests/cluster.sh kubeconfig) cargo test -p remotemedia-kind-tests
//! --features e2e` with the tools named in `support` on PATH or in their env variables.

// The modules are the steps of one test binary; `pub` there means "for main.rs".
#![allow(unreachable_pub)]

mod autoscale;
mod install;
mod lifecycle;
mod netns;
mod outside;
mod python_nodes;
mod session;
mod stream;
mod support;
mod tls;

use support::Step;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_lives_its_whole_life_on_a_real_cluster() {
    let client = support::client().await;
    {
        let _step = Step::start("install the operator with Helm");
        install::operator_chart();
    }
    let namespace = install::Namespace::create(&format!("e2e-{}", std::process::id()));
    let ns = namespace.name.as_str();
    let audio = tempfile::tempdir().expect("temp dir");
    let (wav, frames) = support::test_wav(audio.path());
    {
        let _step = Step::start("apply audio-health, stream with grpcurl and Python");
        stream::deploy_example(&client, ns, "audio-health").await;
        stream::grpcurl_and_python(&client, ns, &wav, frames).await;
    }
    {
        let _step = Step::start("apply voice-echo, stream from this machine with aiortc (WebRTC)");
        stream::webrtc_from_host(&client, ns).await;
    }
    {
        let _step = Step::start("TLS from Secrets: probes, endpoints, grpcurl and aiortc");
        tls::transports_serve_tls_from_secrets(&client, ns).await;
    }
    if support::pod_ips_routable() {
        let _step = Step::start("WebRTC from outside: TURN relay, 2 replicas, relay-only clients");
        outside::clients_outside_reach_pods_through_the_relay(&client, ns, audio.path()).await;
    }
    {
        let _step = Step::start("autoscaling on sessions: up to 3 pods, back to 1, none cut");
        autoscale::scales_on_sessions_and_never_cuts_one(&client, ns).await;
    }
    {
        let _step = Step::start("Python nodes on their own image; bad params; unusable images");
        python_nodes::python_nodes_in_pods(&client, ns, audio.path()).await;
        python_nodes::unusable_images_are_reported(&client, ns).await;
    }
    {
        let _step = Step::start("an invalid Pipeline is refused");
        lifecycle::invalid_pipeline_is_refused(&client, ns).await;
    }
    {
        let _step = Step::start("scale to 2 replicas");
        lifecycle::scale(&client, ns, 2).await;
    }
    {
        let _step = Step::start("a new manifest rolls out; an open session drains");
        lifecycle::rollout_drains_open_sessions(&client, ns).await;
    }
    {
        let _step = Step::start("a killed runtime container restarts and serves");
        lifecycle::runtime_container_restarts(&client, ns, &wav, frames).await;
    }
    {
        let _step = Step::start("restarting the operator changes no child");
        lifecycle::operator_restart_changes_nothing(&client, ns).await;
    }
    {
        let _step = Step::start("deleting the Pipeline collects its children");
        lifecycle::delete_collects_children(&client, ns).await;
    }
    {
        let _step = Step::start("uninstall the chart");
        drop(namespace);
        install::uninstall();
    }
}
