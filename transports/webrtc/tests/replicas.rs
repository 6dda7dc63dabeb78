//! Two replicas of one WHIP endpoint sharing a key, as a Pipeline's pods behind a Service: a
//! request on a session that reaches the replica not owning it is answered by the owner
//! (forwarded), over TLS too; names not made by a replica are refused without forwarding; an
//! owner that has gone answers 404 through the others. And the ICE servers handed out: with
//! tokens on, TURN credentials only to callers with a valid token, minted per call.

mod support;

use std::net::TcpListener;
use std::process::Command;

use remotemedia_server::test_pki::TestCa;
use support::{Server, example, http_as, offer_from_aiortc, request};

const DELETED: &str = "remotemedia_webrtc_sessions_ended_total{reason=\"deleted\"}";
const FORWARDED: &str = "remotemedia_webrtc_forwarded_total{outcome=\"answered\"}";
const GONE: &str = "remotemedia_webrtc_forwarded_total{outcome=\"gone\"}";

/// A loopback address with a port nobody listens on now (the replica is told its own address
/// before it binds it).
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

struct Files {
    _dir: tempfile::TempDir,
    key: String,
    tokens: String,
    secret: String,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    Files {
        key: path("key", "the replicas' shared key"),
        tokens: path("tokens", "alice\nbob\n"),
        secret: path("secret", "north-sea\n"),
        _dir: dir,
    }
}

fn replica(files: &Files, extra: &[&str]) -> Server {
    let address = free_address();
    let ice = format!(
        r#"{{"urls":["turn:relay.example.net:3478?transport=udp"],"credentials":{{"ephemeral":{{"secretFile":"{}","ttlSeconds":600}}}}}}"#,
        files.secret
    );
    let mut args = vec![
        "--manifest",
        "VOICE",
        "--token-file",
        &files.tokens,
        "--replica-key-file",
        &files.key,
        "--replica-address",
        &address,
        "--ice-server",
        "stun:stun.example.net:3478",
        "--ice-server",
        &ice,
    ];
    let voice = example("voice-echo.yaml");
    args[1] = &voice;
    args.extend_from_slice(extra);
    Server::start_listening(&address, &args)
}

fn open(server: &Server, offer: &str, token: &str) -> String {
    let (status, headers, body) = http_as(
        server,
        Some(token),
        "POST",
        "/whip",
        "application/sdp",
        offer.as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    headers["location"].clone()
}

#[test]
fn a_request_that_reaches_another_replica_is_answered_by_the_owner() {
    let files = files();
    let (a, b) = (replica(&files, &[]), replica(&files, &[]));
    let offer = offer_from_aiortc();
    let location = open(&a, &offer, "alice");
    let name = location.strip_prefix("/whip/").unwrap();
    assert!(
        name.contains(&format!("{:04x}-", a.http.port())),
        "the name says its owner: {name}"
    );
    let ask = |server: &Server, token: &str, method: &str, path: &str| {
        let (status, headers, body) = http_as(server, Some(token), method, path, "", b"");
        (status, headers.get("allow").cloned(), body)
    };

    // Bob's token is not the opener's: A's 404, relayed by B.
    assert_eq!(ask(&b, "bob", "DELETE", &location).0, 404);
    // PATCH reaches A: its 405 and Allow header come back.
    let (status, allow, _) = ask(&b, "alice", "PATCH", &location);
    assert_eq!((status, allow.as_deref()), (405, Some("DELETE, OPTIONS")));
    // A caller without a valid token is turned away before anything is forwarded.
    assert_eq!(ask(&b, "mallory", "DELETE", &location).0, 401);
    assert_eq!(b.metric(FORWARDED), 2.0);

    assert_eq!(ask(&b, "alice", "DELETE", &location).0, 200);
    a.await_metric(DELETED, 1.0);
    assert_eq!(b.metric(DELETED), 0.0, "B held no session");
    assert_eq!(ask(&b, "alice", "DELETE", &location).0, 404);
    assert_eq!(b.metric(FORWARDED), 4.0);

    // A name whose owner was changed (to B, or anywhere) fails its tag: 404, not forwarded.
    let second = open(&a, &offer, "alice");
    let (random, rest) = second.split_once('-').unwrap();
    let tag = rest.rsplit_once('-').unwrap().1;
    for owner in [
        format!("7f000001{:04x}", b.http.port()),
        "0a0000011f90".to_owned(),
    ] {
        let forged = format!("{random}-{owner}-{tag}");
        assert_eq!(ask(&b, "alice", "DELETE", &forged).0, 404, "{forged}");
    }
    assert_eq!(b.metric(FORWARDED), 4.0);

    // The owner gone: its sessions with it, 404 through the others.
    drop(a);
    let (status, _, body) = ask(&b, "alice", "DELETE", &second);
    assert_eq!(status, 404, "{body}");
    assert_eq!(b.metric(GONE), 1.0);
}

#[test]
fn replicas_serving_tls_forward_to_the_one_presenting_the_same_certificate() {
    let files = files();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("RemoteMedia replicas CA");
    let tls = ca.write_server_files(dir.path(), &["whip.example.net"]);
    let (cert, key) = (tls.cert.to_str().unwrap(), tls.key.to_str().unwrap());
    let flags = ["--tls-cert", cert, "--tls-key", key];
    let (a, b) = (replica(&files, &flags), replica(&files, &flags));
    assert_eq!((a.scheme, b.scheme), ("https", "https"));
    // curl trusting the test CA, by the certificate's name, at B's address.
    let curl = |server: &Server, method: &str, path: &str, body: Option<&str>| -> (u16, String) {
        let mut command = Command::new("curl");
        command
            .args([
                "-sS",
                "-o",
                "-",
                "-D",
                "-",
                "-w",
                "\n%{http_code}",
                "--max-time",
                "10",
            ])
            .arg("--cacert")
            .arg(dir.path().join("ca.crt"))
            .args([
                "--connect-to",
                &format!("whip.example.net:443:{}", server.http),
            ])
            .args(["-X", method, "-H", "authorization: Bearer alice"]);
        if let Some(body) = body {
            command.args(["-H", "content-type: application/sdp", "--data-binary", body]);
        }
        let out = command
            .arg(format!("https://whip.example.net{path}"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (text, code) = text.rsplit_once('\n').expect("a status line");
        (code.parse().unwrap_or(0), text.to_owned())
    };
    let offer = offer_from_aiortc();
    let (status, head) = curl(&a, "POST", "/whip", Some(&offer));
    assert_eq!(status, 201, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("a Location")
        .trim()
        .to_owned();
    assert_eq!(curl(&b, "DELETE", &location, None).0, 200);
    let metric = |server: &Server, series: &str| -> f64 {
        let (_, text) = curl(server, "GET", "/metrics", None);
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + support::LIMIT;
    while metric(&a, DELETED) != 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session did not end on A"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(metric(&b, FORWARDED), 1.0);
}

#[test]
fn turn_credentials_go_only_to_callers_with_a_token_and_are_minted_per_call() {
    let files = files();
    let server = replica(&files, &[]);
    let links = |headers: &[(&str, &str)]| {
        let (status, headers, _) = request(&server, "OPTIONS", "/whip", headers, b"");
        assert_eq!(status, 204);
        headers.get("link").cloned().unwrap_or_default()
    };
    let anonymous = links(&[]);
    assert!(anonymous.contains("<stun:stun.example.net:3478>; rel=\"ice-server\""));
    assert!(anonymous.contains("<turn:relay.example.net:3478?transport=udp>"));
    assert!(!anonymous.contains("credential"), "{anonymous}");
    let preflight = links(&[
        ("Origin", "https://app.example.net"),
        ("Access-Control-Request-Method", "POST"),
        ("Authorization", "Bearer alice"),
    ]);
    assert!(!preflight.contains("credential"), "{preflight}");

    let minted = links(&[("Authorization", "Bearer alice")]);
    let username = minted
        .split("username=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a username");
    let (expiry, _) = username.split_once(':').expect("<expiry>:<id>");
    let expiry: u64 = expiry.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "{username} at {now}"
    );
    assert!(minted.contains("credential-type=\"password\""), "{minted}");
    // Another call, another credential.
    assert_ne!(links(&[("Authorization", "Bearer alice")]), minted);
}
