//! `remotemedia-webrtc`: serves a pipeline to browsers and WebRTC clients by WHIP, in this
//! process (`--manifest`) or as the pod's sidecar in front of the worker (`--connect`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use remotemedia_runtime_core::pod::{IceCredentialFiles, IceServerFlag};
use remotemedia_server::{
    AcceptOptions, Accepted, DrainFlags, RELOAD_EVERY, SourceFlags, TlsFlags, bind, keep_reloading,
    reloading_tokens, serve_until_drained,
};
use remotemedia_webrtc::{
    CredentialText, IceCredentials, IceServer, Replicas, WhipOptions, WhipServer,
};

fn main() -> ExitCode {
    remotemedia_server::main(run)
}

/// WebRTC server for RemoteMedia pipelines (WHIP signalling, Opus audio, events on a data
/// channel).
#[derive(Debug, Parser)]
#[command(name = "remotemedia-webrtc", version, about)]
struct Args {
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    drain: DrainFlags,
    #[command(flatten)]
    tls: TlsFlags,
    /// HTTP address: WHIP at /whip, the demo page at /, /readyz, /livez and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The one UDP port every session's media uses (bound on --listen's IP; 0 picks one).
    #[arg(long, default_value_t = 50_000)]
    udp_port: u16,
    /// The IP clients send media to (the ICE candidate in every answer). Default: --listen's
    /// IP if it is specific, else $POD_IP, else this host's address on its default route.
    #[arg(long, value_name = "IP")]
    advertise: Option<IpAddr>,
    /// A STUN or TURN server for clients (repeatable), handed out as `Link` headers: a URL
    /// (stun:stun.example.net:3478), or a JSON object with its URLs and credential files:
    /// {"urls":[...],"credentials":{"static":{"usernameFile":F,"credentialFile":F}}} or
    /// {"urls":[...],"credentials":{"ephemeral":{"secretFile":F,"ttlSeconds":N}}} (minted per
    /// client from the TURN server's shared secret). Files are read again when they change.
    #[arg(long = "ice-server", value_name = "URL|JSON")]
    ice_servers: Vec<IceServerFlag>,
    /// Username for the TURN URLs given as plain --ice-server URLs.
    #[arg(long, value_name = "NAME", requires = "ice_credential")]
    ice_username: Option<String>,
    /// Credential for the TURN URLs given as plain --ice-server URLs.
    #[arg(long, value_name = "SECRET", requires = "ice_username")]
    ice_credential: Option<String>,
    /// This replica's address as the others reach it (pod IP and HTTP port): with several
    /// replicas behind one Service, session names carry it, and a DELETE or PATCH that reaches
    /// another replica is forwarded here.
    #[arg(long, value_name = "IP:PORT", requires = "replica_key_file")]
    replica_address: Option<SocketAddr>,
    /// The key every replica shares, to sign the owner in session names.
    #[arg(long, value_name = "FILE", requires = "replica_address")]
    replica_key_file: Option<PathBuf>,
    /// Require `authorization: Bearer <token>` on WHIP requests (POST, DELETE, PATCH) with a
    /// token listed in this file (one per line; read again when it changes). Health, metrics
    /// and the demo page stay open.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Sessions open at once; beyond it offers get 429.
    #[arg(long, default_value_t = 100)]
    max_sessions: usize,
    /// Drop a session whose client has not connected this many seconds after the answer.
    #[arg(long, default_value_t = 30)]
    connect_timeout_secs: u64,
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Listening from the start: SIGTERM must drain, never kill, once anyone can see us.
    let stop = remotemedia_runtime_core::shutdown::requested();
    let transport = args.source.transport()?;
    let udp_bind = SocketAddr::new(args.listen.ip(), args.udp_port);
    let udp = tokio::net::UdpSocket::bind(udp_bind)
        .await
        .with_context(|| format!("binding UDP {udp_bind} (--udp-port)"))?;
    let advertise = match args.advertise {
        Some(ip) => ip,
        None => default_advertise(args.listen.ip()),
    };
    let ice_servers = ice_servers(&args)?;
    let tokens = reloading_tokens(args.token_file.as_deref())?;
    // HTTP/1.1 only: WHIP is a few requests per session, and the HTTP server here (axum)
    // is built without HTTP/2.
    let certificate = args.tls.reloading_certificate()?;
    let tls = certificate
        .as_ref()
        .map(|c| c.server_config(&[b"http/1.1"]));
    let replicas = match (args.replica_address, &args.replica_key_file) {
        (Some(me), Some(file)) => {
            let key = std::fs::read(file)
                .with_context(|| format!("reading {} (--replica-key-file)", file.display()))?;
            anyhow::ensure!(
                !key.is_empty(),
                "{} is empty (--replica-key-file)",
                file.display()
            );
            let to_replicas = certificate.map(|c| c.client_config_for_replicas(&[b"http/1.1"]));
            Some(Arc::new(Replicas::new(me, &key, to_replicas)))
        }
        _ => None,
    };
    let server = WhipServer::start(
        transport,
        udp,
        advertise,
        WhipOptions {
            max_sessions: args.max_sessions,
            ice_servers,
            connect_timeout: Duration::from_secs(args.connect_timeout_secs),
            tokens,
            replicas,
            ..WhipOptions::default()
        },
    )?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = bind(args.listen, "--listen").await?;
    let listener = Accepted::start(listener, tls, AcceptOptions::default())?;
    // Tests and operators wait for this line.
    eprintln!(
        "serving WHIP on {scheme}://{}/whip, media on udp {} (pid {})",
        listener.local_addr(),
        server.media_address(),
        std::process::id()
    );
    let sessions = server.admission();
    serve_until_drained(stop, &sessions, args.drain, move |shutdown| async move {
        server.serve(listener, shutdown).await
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The ICE servers of the flags, their credential files loaded and read again while serving.
fn ice_servers(args: &Args) -> anyhow::Result<Vec<IceServer>> {
    let given = match (&args.ice_username, &args.ice_credential) {
        (Some(user), Some(credential)) => Some(IceCredentials::Static {
            username: CredentialText::given(user)?,
            credential: CredentialText::given(credential)?,
        }),
        _ => None,
    };
    let mut servers = Vec::new();
    for flag in &args.ice_servers {
        let credentials = match &flag.credentials {
            IceCredentialFiles::None => given.clone().unwrap_or(IceCredentials::None),
            IceCredentialFiles::Static {
                username_file,
                credential_file,
            } => IceCredentials::Static {
                username: CredentialText::load(username_file)?,
                credential: CredentialText::load(credential_file)?,
            },
            IceCredentialFiles::Ephemeral {
                secret_file,
                ttl_seconds,
            } => IceCredentials::Ephemeral {
                secret: CredentialText::load(secret_file)?,
                ttl: Duration::from_secs((*ttl_seconds).into()),
            },
        };
        let server = IceServer {
            urls: flag.urls.clone(),
            credentials,
        };
        for text in server.credential_files() {
            let what = format!(
                "ICE credential {}",
                text.file().unwrap_or(Path::new("")).display()
            );
            tokio::spawn(async move {
                keep_reloading(&what, RELOAD_EVERY, move || text.reload()).await;
            });
        }
        servers.push(server);
    }
    Ok(servers)
}

/// The IP to put in candidates when none is given: a specific --listen IP, the pod's IP (the
/// operator passes it from the downward API), or the source address of this host's default
/// route (found by connecting a UDP socket, which sends nothing).
fn default_advertise(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    if let Some(ip) = std::env::var("POD_IP").ok().and_then(|v| v.parse().ok()) {
        return ip;
    }
    let routed = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|()| s))
        .and_then(|s| s.local_addr());
    match routed {
        Ok(addr) => addr.ip(),
        Err(e) => {
            eprintln!("warning: no default route ({e}); advertising 127.0.0.1 (set --advertise)");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

#[cfg(test)]
mod tests {
    use remotemedia_runtime_core::pod::{
        Advertise, POD_IP_ENV, Sessions, WebrtcSidecar, tls_files, token_file,
    };
    use remotemedia_runtime_core::serve::DrainPolicy;

    use super::*;

    fn parse(sidecar: &WebrtcSidecar) -> Args {
        // As the kubelet does: `$(VAR)` in args is replaced by the container's env value.
        let expanded = sidecar
            .args()
            .into_iter()
            .map(|a| a.replace(&format!("$({POD_IP_ENV})"), "10.88.0.7"));
        let argv = std::iter::once("remotemedia-webrtc".to_owned()).chain(expanded);
        Args::try_parse_from(argv).unwrap_or_else(|e| panic!("the rendered args do not parse: {e}"))
    }

    /// The args the operator renders for this container parse here to what it meant: a flag
    /// renamed on one side only fails this test.
    #[test]
    fn parses_the_args_the_operator_renders() {
        let sidecar = WebrtcSidecar {
            link: "voice".to_owned(),
            http_port: 8081,
            udp_port: 40_001,
            advertise: Advertise::PodIp,
            sessions: Sessions {
                max: 9,
                drain_seconds: 60,
                linger_seconds: 5,
            },
            token: true,
            tls: true,
            replica_key: true,
            ice_servers: vec![
                "stun:stun.example.net:3478".parse().unwrap(),
                IceServerFlag {
                    urls: vec!["turns:relay.example.net:5349?transport=tcp".to_owned()],
                    credentials: IceCredentialFiles::ephemeral_secret(1, 900),
                },
            ],
        };
        let args = parse(&sidecar);
        assert_eq!(args.source.connect.as_deref(), Some("voice"));
        assert_eq!(args.source.manifest, None);
        assert_eq!(args.listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(args.udp_port, 40_001);
        assert_eq!(args.advertise, Some("10.88.0.7".parse().unwrap()));
        assert_eq!(args.max_sessions, 9);
        assert_eq!(args.drain.policy(), DrainPolicy::from_secs(60, 5));
        assert_eq!(args.token_file, Some(token_file()));
        let (cert, key) = tls_files();
        assert_eq!(
            args.tls.files(),
            Some(remotemedia_server::CertificateFiles { cert, key })
        );

        assert_eq!(
            args.replica_address,
            Some("10.88.0.7:8081".parse().unwrap())
        );
        assert_eq!(
            args.replica_key_file,
            Some(WebrtcSidecar::replica_key_file())
        );
        assert_eq!(args.ice_servers, sidecar.ice_servers);

        let fixed = WebrtcSidecar {
            advertise: Advertise::Address("203.0.113.5".parse().unwrap()),
            token: false,
            tls: false,
            replica_key: false,
            ice_servers: Vec::new(),
            ..sidecar
        };
        let args = parse(&fixed);
        assert_eq!(args.advertise, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(args.token_file, None);
        assert_eq!(args.tls.files(), None);
        assert_eq!(args.replica_address, None);
        assert!(args.ice_servers.is_empty());
    }
}
