//! The operator against a real kube-apiserver + etcd + kube-controller-manager
//! (`kind-tests/cluster.sh up control-plane`). Each test gets its own namespace and its own
//! operator process watching only that namespace. Run by `make test` with
//! `--features cluster-tests`.

#![cfg(feature = "cluster-tests")]

mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use remotemedia_operator::crd::Pipeline;
use remotemedia_operator::desired::{MANIFEST_HASH_KEY, PIPELINE_LABEL};
use remotemedia_operator::status::{condition_status, types};
use serde_json::{Value, json};
use support::{Operator, OperatorOptions, TestNamespace, wait_deleted, wait_for};

fn pipeline(name: &str, manifest: &Value) -> Pipeline {
    serde_json::from_value(json!({
        "apiVersion": "remotemedia.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"manifest": manifest},
    }))
    .expect("a Pipeline")
}

fn level_manifest(threshold: i32) -> Value {
    json!({"version": "v1", "nodes": [
        {"id": "chunk", "node_type": "AudioChunkerNode", "params": {"chunk_size": 4800}},
        {"id": "level", "node_type": "AudioLevelNode", "params": {"silence_threshold_db": threshold}},
    ], "connections": [{"from": "chunk", "to": "level"}]})
}

fn options(namespace: &str) -> OperatorOptions<'_> {
    OperatorOptions {
        namespace,
        webhook: false,
        webhook_configuration: None,
        leader_elect: false,
        identity: "test-operator",
        webhook_port: None,
        extra_args: &[],
    }
}

/// The status describes the current generation and condition `type_` has `status`.
fn settled(type_: &'static str, status: &'static str) -> impl Fn(Option<&Pipeline>) -> bool {
    move |p: Option<&Pipeline>| {
        p.is_some_and(|p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.observed_generation) == p.metadata.generation
                && s.and_then(|s| condition_status(s, type_)) == Some(status)
        })
    }
}

/// Creates Pipeline `name` (the level manifest) and waits until its status, for its current
/// generation, says ManifestValid=True.
async fn create_valid(pipelines: &Api<Pipeline>, name: &str) -> Pipeline {
    pipelines
        .create(
            &PostParams::default(),
            &pipeline(name, &level_manifest(-60)),
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    wait_for(
        pipelines,
        name,
        "ManifestValid=True",
        settled(types::MANIFEST_VALID, "True"),
    )
    .await
}

/// Applies a JSON merge patch to Pipeline `name`.
async fn merge_patch(pipelines: &Api<Pipeline>, name: &str, patch: &Value) {
    pipelines
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("patch {name}: {e}"));
}

fn template_hash(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(MANIFEST_HASH_KEY))
        .cloned()
}

async fn replica_sets(client: &Client, ns: &str, name: &str) -> Vec<ReplicaSet> {
    Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={name}")))
        .await
        .expect("list ReplicaSets")
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_owned_children_status_and_events() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "apply").await;
    let operator = Operator::start(&options(&ns.name)).await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    let mut p = pipeline("voice", &level_manifest(-60));
    p.spec.transports.webrtc.enabled = true;
    let created = pipelines
        .create(&PostParams::default(), &p)
        .await
        .expect("create Pipeline");
    let uid = created.uid().expect("uid");

    let p = wait_for(
        &pipelines,
        "voice",
        "ManifestValid=True",
        settled(types::MANIFEST_VALID, "True"),
    )
    .await;
    let status = p.status.clone().expect("status");
    assert_eq!(
        status.selector.as_deref(),
        Some("remotemedia.dev/pipeline=voice")
    );
    let endpoints = status.endpoints.expect("endpoints");
    assert_eq!(
        endpoints.grpc,
        Some(format!("voice-grpc.{}.svc:50051", ns.name))
    );
    assert_eq!(
        endpoints.webrtc,
        Some(format!("http://voice-webrtc.{}.svc:8080/whip", ns.name))
    );
    // No kubelet in this tier: pods never run, so the rollout stays in progress.
    assert_eq!(
        condition_status(&p.status.clone().unwrap_or_default(), types::READY),
        Some("False")
    );

    let owned_by_pipeline = |meta: &kube::api::ObjectMeta| {
        meta.owner_references.iter().flatten().any(|o| {
            o.uid == uid && o.controller == Some(true) && o.block_owner_deletion == Some(true)
        })
    };
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("voice")
        .await
        .expect("Deployment");
    assert!(owned_by_pipeline(&deployment.metadata));
    assert_eq!(
        template_hash(&deployment),
        p.status.as_ref().and_then(|s| s.manifest_hash.clone())
    );
    for svc in ["voice-grpc", "voice-webrtc"] {
        let s = Api::<Service>::namespaced(client.clone(), &ns.name)
            .get(svc)
            .await
            .expect(svc);
        assert!(owned_by_pipeline(&s.metadata), "{svc}");
    }
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("remotemedia.dev/pipeline=voice"))
        .await
        .expect("ConfigMaps");
    assert_eq!(cms.items.len(), 1);
    assert!(owned_by_pipeline(&cms.items[0].metadata));
    assert_eq!(cms.items[0].immutable, Some(true));

    // The kube-controller-manager made a ReplicaSet from our Deployment: the spec is valid to
    // the real API, not just to our types.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    wait_for(
        &deployments,
        "voice",
        "a ReplicaSet",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.observed_generation)
                == Some(1)
        },
    )
    .await;
    assert_eq!(replica_sets(&client, &ns.name, "voice").await.len(), 1);

    let events: Api<CoreEvent> = Api::namespaced(client.clone(), &ns.name);
    let events = events.list(&ListParams::default()).await.expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.involved_object.uid.as_deref() == Some(&uid)
                && e.reason.as_deref() == Some("Valid")),
        "an Event on the Pipeline: {:?}",
        events
            .items
            .iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );

    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("remotemedia_operator_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "remotemedia_operator_pipelines{condition=\"ManifestValid\",status=\"True\"} 1"
        ),
        "{metrics}"
    );
    assert!(operator.stop().await.success(), "clean exit on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_changes_roll_the_pods_and_other_changes_do_not() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "rollout").await;
    let _operator = Operator::start(&options(&ns.name)).await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    create_valid(&pipelines, "roll").await;
    let first = wait_for(
        &deployments,
        "roll",
        "rolled by KCM",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.observed_generation)
                .is_some()
        },
    )
    .await;
    let first_hash = template_hash(&first).expect("hash");
    let first_template =
        serde_json::to_value(&first.spec.as_ref().expect("spec").template).expect("json");

    // Unrelated change: replicas (and a label). Same template, no new ReplicaSet; a PDB.
    let patch = json!({"metadata": {"labels": {"team": "media"}}, "spec": {"replicas": 2}});
    merge_patch(&pipelines, "roll", &patch).await;
    let scaled = wait_for(
        &deployments,
        "roll",
        "2 replicas",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(2)
        },
    )
    .await;
    assert_eq!(
        serde_json::to_value(&scaled.spec.as_ref().expect("spec").template).expect("json"),
        first_template,
        "the pod template did not change"
    );
    let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns.name);
    wait_for(
        &pdbs,
        "roll",
        "a PDB once replicas > 1",
        |p: Option<&PodDisruptionBudget>| p.is_some(),
    )
    .await;
    wait_for(
        &pipelines,
        "roll",
        "generation 2 observed",
        settled(types::MANIFEST_VALID, "True"),
    )
    .await;
    assert_eq!(
        replica_sets(&client, &ns.name, "roll").await.len(),
        1,
        "no rollout"
    );

    // Manifest change: a new hash on the template, a new ReplicaSet, a new ConfigMap.
    let patch = json!({"spec": {"manifest": level_manifest(-50), "replicas": 1}});
    merge_patch(&pipelines, "roll", &patch).await;
    let rolled = wait_for(
        &deployments,
        "roll",
        "a new template hash",
        |d: Option<&Deployment>| d.and_then(template_hash).is_some_and(|h| h != first_hash),
    )
    .await;
    let p = wait_for(
        &pipelines,
        "roll",
        "generation 3 observed",
        settled(types::MANIFEST_VALID, "True"),
    )
    .await;
    assert_eq!(
        p.status.and_then(|s| s.manifest_hash),
        template_hash(&rolled)
    );
    // A change of replicas and template together is first handled as a scaling event (the
    // Deployment controller updates status before it makes the new ReplicaSet), so wait for
    // the ReplicaSet itself.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while replica_sets(&client, &ns.name, "roll").await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new ReplicaSet: no rollout"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        replica_sets(&client, &ns.name, "roll").await.len(),
        2,
        "one rollout"
    );
    // replicas back to 1: the PDB is pruned.
    wait_deleted(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns.name),
        "roll",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pipeline_garbage_collects_its_children() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "delete").await;
    let _operator = Operator::start(&options(&ns.name)).await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    create_valid(&pipelines, "gone").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    deployments.get("gone").await.expect("Deployment exists");
    pipelines
        .delete("gone", &kube::api::DeleteParams::foreground())
        .await
        .expect("delete");
    wait_deleted(&deployments, "gone").await;
    wait_deleted(&services, "gone-grpc").await;
    wait_deleted(&pipelines, "gone").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("remotemedia.dev/pipeline=gone"))
        .await
        .expect("list");
    assert!(cms.items.is_empty(), "ConfigMaps collected too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_invalid_manifests_naming_the_node() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "webhook").await;
    let config = format!("remotemedia-test-{}", ns.name);
    let webhook_port = support::free_port();
    support::register_webhook(&client, &config, &ns.name, webhook_port).await;
    let _operator = Operator::start(&OperatorOptions {
        webhook: true,
        webhook_configuration: Some(&config),
        webhook_port: Some(webhook_port),
        ..options(&ns.name)
    })
    .await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);

    let bad = json!({"version": "v1", "nodes": [
        {"id": "a", "node_type": "PassThrough"},
        {"id": "resample", "node_type": "FastResampleNode", "params": {"target_rate": -5}},
    ], "connections": [{"from": "a", "to": "resample"}, {"from": "resample", "to": "a"}]});
    for dry_run in [true, false] {
        let params = PostParams {
            dry_run,
            ..PostParams::default()
        };
        let err = pipelines
            .create(&params, &pipeline("bad", &bad))
            .await
            .expect_err("refused");
        let kube::Error::Api(status) = err else {
            panic!("an API error, got {err:?}")
        };
        assert!(
            status.message.contains("denied the request"),
            "{}",
            status.message
        );
        assert!(
            status
                .message
                .contains("spec.manifest.nodes[1].params.target_rate (node 'resample')"),
            "{}",
            status.message
        );
        assert!(status.message.contains("cycle"), "{}", status.message);
    }
    assert!(
        pipelines.get_opt("bad").await.expect("get").is_none(),
        "nothing stored"
    );

    // A valid one passes, and an update that breaks it is refused too.
    pipelines
        .create(
            &PostParams::default(),
            &pipeline("good", &level_manifest(-60)),
        )
        .await
        .expect("valid Pipeline admitted");
    // A JSON merge patch merges objects key by key: `connections` must be replaced too.
    let patch = json!({"spec": {"manifest": {"version": "v1", "nodes": [{"id": "x", "node_type": "NoSuchNode"}], "connections": []}}});
    let err = pipelines
        .patch("good", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("update refused");
    assert!(err.to_string().contains("node 'x'"), "{err}");
    support::unregister_webhook(&client, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_that_gets_through_is_reported_and_the_last_good_keeps_running() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "invalid").await;
    // No webhook: as if it were down or bypassed.
    let _operator = Operator::start(&options(&ns.name)).await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    create_valid(&pipelines, "keep").await;
    let good_hash = template_hash(&deployments.get("keep").await.expect("Deployment"));

    let patch = json!({"spec": {"manifest": {"version": "v1", "nodes": [
        {"id": "chunk", "node_type": "AudioChunkerNode", "params": {"chunk_size": "big"}}
    ], "connections": []}}});
    merge_patch(&pipelines, "keep", &patch).await;
    let p = wait_for(
        &pipelines,
        "keep",
        "ManifestValid=False",
        settled(types::MANIFEST_VALID, "False"),
    )
    .await;
    let status = p.status.expect("status");
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == types::MANIFEST_VALID)
        .expect("condition");
    assert_eq!(valid.reason, "InvalidManifest");
    assert!(valid.message.contains("node 'chunk'"), "{}", valid.message);
    assert!(
        valid
            .message
            .contains("spec.manifest.nodes[0].params.chunk_size"),
        "{}",
        valid.message
    );
    assert_eq!(condition_status(&status, types::DEGRADED), Some("True"));
    assert_eq!(
        template_hash(&deployments.get("keep").await.expect("Deployment")),
        good_hash
    );
    let events = Api::<CoreEvent>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("InvalidManifest")
                && e.type_.as_deref() == Some("Warning")),
        "a Warning event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarted_midway_converges_without_duplicates() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "restart").await;
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    let names: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let operator = Operator::start(&options(&ns.name)).await;
    for name in &names {
        pipelines
            .create(
                &PostParams::default(),
                &pipeline(name, &level_manifest(-60)),
            )
            .await
            .expect("create");
    }
    // Crash while it works through them.
    wait_for(
        &pipelines,
        "p0",
        "first reconciled",
        settled(types::MANIFEST_VALID, "True"),
    )
    .await;
    operator.kill().await;
    let patch = json!({"spec": {"replicas": 2}});
    merge_patch(&pipelines, "p5", &patch).await;

    let _operator = Operator::start(&options(&ns.name)).await;
    for name in &names {
        wait_for(
            &pipelines,
            name,
            "reconciled",
            settled(types::MANIFEST_VALID, "True"),
        )
        .await;
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert_eq!(
        deployments.items.len(),
        names.len(),
        "one Deployment per Pipeline"
    );
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=remotemedia-operator"))
        .await
        .expect("list");
    assert_eq!(
        cms.items.len(),
        names.len(),
        "one manifest ConfigMap per Pipeline"
    );
    let p5 = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("p5")
        .await
        .expect("p5");
    assert_eq!(
        p5.spec.and_then(|s| s.replicas),
        Some(2),
        "the change made while down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_fail_over() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "leader").await;
    let first = Operator::start(&OperatorOptions {
        leader_elect: true,
        identity: "first",
        ..options(&ns.name)
    })
    .await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns.name);
    let holder = |l: Option<&k8s_openapi::api::coordination::v1::Lease>| {
        l.and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone())
    };
    wait_for(
        &leases,
        "remotemedia-operator",
        "first leads",
        move |l: Option<&_>| holder(l).as_deref() == Some("first"),
    )
    .await;
    let second = Operator::start(&OperatorOptions {
        leader_elect: true,
        identity: "second",
        ..options(&ns.name)
    })
    .await;
    assert!(
        second
            .metrics()
            .await
            .contains("remotemedia_operator_leader 0"),
        "the standby does not lead"
    );

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns.name);
    create_valid(&pipelines, "led").await;

    // A graceful stop releases the lease, so the standby takes over without waiting it out.
    assert!(first.stop().await.success());
    wait_for(
        &leases,
        "remotemedia-operator",
        "second leads",
        move |l: Option<&_>| holder(l).as_deref() == Some("second"),
    )
    .await;
    let patch = json!({"spec": {"replicas": 3}});
    merge_patch(&pipelines, "led", &patch).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    wait_for(
        &deployments,
        "led",
        "scaled by the new leader",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(3)
        },
    )
    .await;
    assert!(
        second
            .metrics()
            .await
            .contains("remotemedia_operator_leader 1")
    );
}
