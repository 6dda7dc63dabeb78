//! TLS on `remotemedia-grpc` with real clients that trust a test CA (grpcurl `-cacert`, the
//! Python grpcio example client with credentials), and the certificate and token files read
//! again while the server runs: a renewal and a token rotation need no restart.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use remotemedia_server::test_pki::TestCa;
use support::{LIMIT, Server, example, grpcurl, test_python};

/// grpcurl over TLS trusting `ca`, with `token`.
fn grpcurl_tls(ca: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(grpcurl())
        .arg("-cacert")
        .arg(ca)
        .args(["-H", &format!("authorization: Bearer {token}")])
        .args(args)
        .output()
        .expect("run grpcurl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until `check` holds, naming `what` if it never does.
fn await_condition(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + LIMIT;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) => assert!(Instant::now() < deadline, "{what}: {last}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn real_clients_trust_the_ca_and_renewed_certificates_and_tokens_need_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first_ca = TestCa::new("RemoteMedia test CA one");
    let files = first_ca.write_server_files(dir.path(), &["localhost", "127.0.0.1"]);
    let first_ca_file = dir.path().join("first-ca.crt");
    std::fs::write(&first_ca_file, first_ca.pem()).unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "first-token\n").unwrap();
    let server = Server::start(&[
        "--manifest",
        example("audio-health.yaml").to_str().unwrap(),
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    // Clients name the server as the certificate does.
    let addr = format!("localhost:{}", server.addr.port());

    let listed = grpcurl_tls(&first_ca_file, "first-token", &[&addr, "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("remotemedia.v1.PipelineService"));
    let plain = Command::new(grpcurl())
        .args(["-plaintext", &addr, "list"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "plaintext must not be served");

    // grpcio, as users write it: ssl_channel_credentials with the CA.
    let wav = dir.path().join("in.wav");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let made = Command::new(test_python())
        .arg(root.join("examples/audio/make_wav.py"))
        .arg(&wav)
        .status()
        .unwrap();
    assert!(made.success());
    let streamed = Command::new(test_python())
        .arg(root.join("examples/grpc-client/python/stream_wav.py"))
        .args(["--server", &addr, "--input"])
        .arg(&wav)
        .arg("--ca")
        .arg(&first_ca_file)
        .arg("--token-file")
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(
        streamed.status.success(),
        "grpcio over TLS: {}",
        text(&streamed)
    );
    assert!(
        text(&streamed).contains(r#""closed": "completed""#),
        "{}",
        text(&streamed)
    );

    // A renewal by another CA, written in place: new connections get it, no restart.
    let second_ca = TestCa::new("RemoteMedia test CA two");
    let _ = second_ca.write_server_files(dir.path(), &["localhost", "127.0.0.1"]);
    let second_ca_file = dir.path().join("ca.crt");
    await_condition("the renewed certificate is served", || {
        let out = grpcurl_tls(&second_ca_file, "first-token", &[&addr, "list"]);
        out.status.success().then_some(()).ok_or_else(|| text(&out))
    });
    let old = grpcurl_tls(&first_ca_file, "first-token", &[&addr, "list"]);
    assert!(
        !old.status.success(),
        "the old CA no longer verifies the server"
    );

    // A token rotation: the new token works, the old one is refused.
    std::fs::write(&tokens, "second-token\n").unwrap();
    await_condition("the rotated token is accepted", || {
        let out = grpcurl_tls(&second_ca_file, "second-token", &[&addr, "list"]);
        out.status.success().then_some(()).ok_or_else(|| text(&out))
    });
    let refused = grpcurl_tls(&second_ca_file, "first-token", &[&addr, "list"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("Unauthenticated"),
        "{}",
        text(&refused)
    );
}
