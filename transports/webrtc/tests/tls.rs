//! WHIP over https: aiortc trusting a test CA streams and ends its session; the certificate
//! and the token file are read again while the server runs (a renewal and a rotation need no
//! restart).

mod support;

use std::time::{Duration, Instant};

use remotemedia_server::test_pki::TestCa;
use support::{LIMIT, Server, example, run_client};

#[test]
fn aiortc_streams_over_https_and_renewals_and_rotations_need_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first_ca = TestCa::new("RemoteMedia test CA one");
    let files = first_ca.write_server_files(dir.path(), &["127.0.0.1"]);
    let first_ca_file = dir.path().join("first-ca.crt");
    std::fs::write(&first_ca_file, first_ca.pem()).unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "first-token\n").unwrap();
    let server = Server::start(&[
        "--manifest",
        example("voice-echo.yaml").as_str(),
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    assert_eq!(server.scheme, "https");
    let ca = first_ca_file.to_str().unwrap();
    let summary = run_client(
        &server,
        &["--seconds", "1", "--token", "first-token", "--ca", ca],
    );
    assert_eq!(summary["status"], 201, "{summary}");
    assert_eq!(summary["connection"], "connected", "{summary}");
    assert_eq!(summary["delete_status"], 200, "{summary}");

    // Renewed by another CA and the token rotated, in place.
    let second_ca = TestCa::new("RemoteMedia test CA two");
    let _ = second_ca.write_server_files(dir.path(), &["127.0.0.1"]);
    std::fs::write(&tokens, "second-token\n").unwrap();
    let ca = dir.path().join("ca.crt");
    let deadline = Instant::now() + LIMIT;
    let summary = loop {
        let summary = run_client(
            &server,
            &[
                "--seconds",
                "0.5",
                "--token",
                "second-token",
                "--ca",
                ca.to_str().unwrap(),
            ],
        );
        if summary["status"] == 201 {
            break summary;
        }
        assert!(Instant::now() < deadline, "never renewed: {summary}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(summary["connection"], "connected", "{summary}");
    let refused = run_client(
        &server,
        &[
            "--seconds",
            "0.5",
            "--token",
            "first-token",
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(
        refused["status"], 401,
        "the old token is refused: {refused}"
    );
}
