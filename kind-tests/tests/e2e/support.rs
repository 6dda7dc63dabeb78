//! What the steps share: the real tools (kubectl, helm, grpcurl, Python, crictl), a kube client,
//! and waits on the API (watches, never fixed sleeps).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::wait::conditions::is_deleted;
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client, Resource};
use remotemedia_operator::crd::Pipeline;
use serde_json::Value;

/// Long enough for pods to start on two busy cores; a wait that runs out fails its step.
pub const WAIT: Duration = Duration::from_secs(180);
/// The namespace the chart is installed into.
pub const OPERATOR_NS: &str = "remotemedia-system";
/// The Helm release name.
pub const RELEASE: &str = "remotemedia-operator";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool from env `var`, else `name` on PATH.
fn tool(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(name), PathBuf::from)
}

pub fn kubectl() -> Command {
    let mut command = Command::new(tool("REMOTEMEDIA_KUBECTL", "kubectl"));
    command.stdin(Stdio::null());
    command
}

pub fn helm() -> Command {
    Command::new(tool("REMOTEMEDIA_HELM", "helm"))
}

pub fn grpcurl() -> Command {
    Command::new(tool("REMOTEMEDIA_GRPCURL", "grpcurl"))
}

pub fn python() -> Command {
    Command::new(tool("REMOTEMEDIA_TEST_PYTHON", "python3"))
}

/// Runs `command`, failing the test with its output unless it succeeds; returns stdout.
pub fn run(command: &mut Command) -> String {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Applies `yaml` with kubectl in `namespace`.
pub fn apply(namespace: &str, yaml: &str) -> Output {
    use std::io::Write;
    let mut child = kubectl()
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write to kubectl");
    child.wait_with_output().expect("kubectl apply")
}

/// Applies the Pipeline `yaml` in `namespace` and waits until `name` is Ready.
pub async fn apply_until_ready(
    client: &Client,
    namespace: &str,
    yaml: &str,
    name: &str,
) -> Pipeline {
    let applied = apply(namespace, yaml);
    assert!(
        applied.status.success(),
        "kubectl apply {name}: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let api: Api<Pipeline> = Api::namespaced(client.clone(), namespace);
    wait_for(&api, name, "Ready", pipeline_ready()).await
}

/// A `kubernetes.io/tls` Secret `name` in `namespace` from PEM files.
pub fn create_tls_secret(
    name: &str,
    namespace: &str,
    files: &remotemedia_server::CertificateFiles,
) {
    run(kubectl()
        .args(["create", "secret", "tls", name, "-n", namespace])
        .arg(format!("--cert={}", files.cert.display()))
        .arg(format!("--key={}", files.key.display())));
}

pub async fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "the end-to-end suite needs KUBECONFIG (make test sets it)"
    );
    Client::try_default()
        .await
        .expect("a client from $KUBECONFIG")
}

/// Waits until `condition` holds for `name`, or fails naming `what`.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>) -> K
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name} was deleted while waiting until {what}"),
        Ok(Err(e)) => panic!("watching {name} until {what}: {e}"),
        Err(_) => panic!(
            "{name} not {what} within {WAIT:?}: {:?}",
            api.get_opt(name).await
        ),
    }
}

/// Waits until `name` no longer exists (the object seen now, by uid, is gone).
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let Some(object) = api.get_opt(name).await.expect("get") else {
        return;
    };
    let uid = object.meta().uid.clone().unwrap_or_default();
    let gone = await_condition(api.clone(), name, is_deleted(&uid));
    match tokio::time::timeout(WAIT, gone).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("watching {name} until it is gone: {e}"),
        Err(_) => panic!("{name} still there after {WAIT:?}"),
    }
}

/// The Pipeline reports Ready for its current generation.
pub fn pipeline_ready() -> impl Condition<Pipeline> {
    pipeline_condition("Ready", "True")
}

/// The Pipeline's condition `type_` is `status` for its current generation.
pub fn pipeline_condition(type_: &'static str, status: &'static str) -> impl Condition<Pipeline> {
    move |p: Option<&Pipeline>| {
        p.and_then(|p| Some((p.metadata.generation?, p.status.as_ref()?)))
            .is_some_and(|(generation, observed)| {
                observed.observed_generation == Some(generation)
                    && observed
                        .conditions
                        .iter()
                        .any(|c| c.type_ == type_ && c.status == status)
            })
    }
}

/// An address this machine reaches a Service or pod at, and the port-forward behind it if
/// there is one (stopped on drop).
pub struct Reach {
    pub addr: SocketAddr,
    _forward: Option<PortForward>,
}

/// `kubectl port-forward`, for clusters whose Service and pod addresses this machine cannot
/// route to (kind: env `REMOTEMEDIA_E2E_REACH=port-forward`). On the local cluster they are
/// routable: kube-proxy's rules apply to this machine's own connections, and pod IPs sit
/// behind the node's bridge. Port-forwarding pins one pod, so the direct way is the one
/// that exercises the Service.
struct PortForward(std::process::Child);

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether this machine routes to pod IPs (the local cluster), which WebRTC media needs: the
/// sidecar advertises its pod IP, and UDP cannot be port-forwarded.
pub fn pod_ips_routable() -> bool {
    !via_port_forward()
}

fn via_port_forward() -> bool {
    std::env::var("REMOTEMEDIA_E2E_REACH").is_ok_and(|v| v == "port-forward")
}

fn port_forward(namespace: &str, target: &str, port: i32) -> Reach {
    use std::io::{BufRead, BufReader};
    let mut child = kubectl()
        .args(["port-forward", "-n", namespace, target])
        .arg(format!(":{port}"))
        .args(["--address", "127.0.0.1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port-forward output");
    // "Forwarding from 127.0.0.1:41234 -> 50051"
    let addr = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("port-forward to {target} said: {line:?}"));
    Reach {
        addr,
        _forward: Some(PortForward(child)),
    }
}

/// Where this machine reaches Service `name`: its ClusterIP, or a port-forward (see
/// [`PortForward`]).
pub async fn service_addr(client: &Client, namespace: &str, name: &str) -> Reach {
    let service = Api::<Service>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("service {namespace}/{name}: {e}"));
    let spec = service.spec.expect("service spec");
    let port = spec.ports.expect("ports")[0].port;
    if via_port_forward() {
        return port_forward(namespace, &format!("service/{name}"), port);
    }
    let ip = spec.cluster_ip.expect("a ClusterIP");
    Reach {
        addr: format!("{ip}:{port}").parse().expect("an address"),
        _forward: None,
    }
}

/// Where this machine reaches `port` of pod `name`: its IP, or a port-forward.
pub async fn pod_addr(client: &Client, namespace: &str, name: &str, port: i32) -> Reach {
    if via_port_forward() {
        return port_forward(namespace, &format!("pod/{name}"), port);
    }
    let ip = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .expect("pod")
        .status
        .and_then(|s| s.pod_ip)
        .expect("a pod IP");
    Reach {
        addr: format!("{ip}:{port}").parse().expect("an address"),
        _forward: None,
    }
}

/// Polls `probe` (a cheap call against the cluster) until it gives `Some`, for states the
/// API cannot be watched for (a Service answering through kube-proxy).
pub async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "not {what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One WebRTC session from this machine with the aiortc client
/// (`transports/webrtc/tests/clients/whip_client.py URL ARGS`): its summary once the offer was
/// answered `201`, `None` before (no endpoint yet, or the worker link not up: try again).
pub fn whip_session(url: &str, args: &[&std::ffi::OsStr]) -> Option<Value> {
    let out = output(
        python()
            .arg(repo().join("transports/webrtc/tests/clients/whip_client.py"))
            .arg(url)
            .args(args),
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_owned)?;
    let summary: Value = serde_json::from_str(&last).ok()?;
    (summary["status"] == 201).then_some(summary)
}

/// A WAV file of test audio (examples/audio/make_wav.py), and its length in frames.
pub fn test_wav(dir: &Path) -> (PathBuf, usize) {
    let wav = dir.join("in.wav");
    run(python()
        .arg(repo().join("examples/audio/make_wav.py"))
        .arg(&wav));
    let frames = hound::WavReader::open(&wav).expect("wav").duration() as usize;
    (wav, frames)
}

/// The Python grpcio client (examples/grpc-client/python) streaming `wav` to `addr`; its
/// JSON lines.
pub fn python_stream(addr: SocketAddr, wav: &Path) -> Vec<Value> {
    run(python()
        .arg(repo().join("examples/grpc-client/python/stream_wav.py"))
        .args(["--server", &addr.to_string(), "--input"])
        .arg(wav))
    .lines()
    .map(|line| serde_json::from_str(line).expect("a JSON line"))
    .collect()
}

/// Prints how long each step took, when it ends.
pub struct Step {
    name: &'static str,
    started: Instant,
}

impl Step {
    pub fn start(name: &'static str) -> Self {
        eprintln!("==> e2e: {name}");
        Self {
            name,
            started: Instant::now(),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() {
            "FAILED"
        } else {
            "ok"
        };
        eprintln!(
            "<== e2e: {} {outcome} in {:.1?}",
            self.name,
            self.started.elapsed()
        );
    }
}

/// `Value` at a JSON pointer, as text.
pub fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
