//! WHIP signalling (RFC 9725) over HTTP, used both ways: `POST /whip` with an SDP offer opens
//! a session and answers `201 Created` with the SDP answer and the session's `Location`;
//! `DELETE` on that location ends it. A location names its session by 128 random bits, and
//! with tokens on only the token that opened a session can end it: anyone else gets the same
//! 404 as for a name that does not exist. The answer accepts the offer's audio as `sendrecv`, so
//! the pipeline's audio comes back on the same peer connection; its other outputs arrive on
//! the `events` data channel the client opened in its offer.
//!
//! Also served: `OPTIONS /whip` (the ICE servers, as `Link` headers, and CORS), `GET /` (the
//! demo page), `GET /healthz` (ready: not draining, pipeline reachable), `GET /livez`,
//! `GET /metrics`.

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use remotemedia_runtime_core::serve::{Admission, AdmitError, SessionSlot, TokenHolder, Tokens};
use remotemedia_runtime_core::{PipelineTransport, StreamSession};
use remotemedia_server::Probes;
use str0m::change::SdpOffer;
use str0m::crypto::dtls::DtlsCert;
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::bridge;
use crate::engine::{self, Command, EngineHandle, NewPeer, PeerKey, TO_SESSION_CAPACITY};
use crate::ice::{self, Disclose, IceServer};
use crate::metrics::Metrics;
use crate::offer::{self, OfferError};
use crate::replicas::{FORWARDED, ForwardError, Owner, Replicas};

/// The demo page: microphone in, pipeline audio out, events listed.
const DEMO_PAGE: &str = include_str!("../static/index.html");

/// Settings of a WHIP server.
#[derive(Clone, Debug)]
pub struct WhipOptions {
    /// Sessions open at once; beyond it offers get `429 Too Many Requests`.
    pub max_sessions: usize,
    /// ICE servers handed to clients (`Link` headers on `OPTIONS` and `POST`).
    pub ice_servers: Vec<IceServer>,
    /// A session whose client has not connected (ICE and DTLS) this long after the answer
    /// is dropped.
    pub connect_timeout: Duration,
    /// Largest offer accepted, bytes (`413` beyond).
    pub max_offer_bytes: usize,
    /// When set, `POST`, `DELETE` and `PATCH` need `authorization: Bearer <token>` with one
    /// of these (RFC 9725 section 4.5); `401` otherwise. Health, metrics and the demo page
    /// stay open.
    pub tokens: Option<Tokens>,
    /// With several replicas behind one Service: this replica and the key they share, so
    /// session names say their owner and requests on another's session are forwarded there.
    pub replicas: Option<Arc<Replicas>>,
}

impl Default for WhipOptions {
    fn default() -> Self {
        Self {
            max_sessions: 100,
            ice_servers: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            max_offer_bytes: 64 * 1024,
            tokens: None,
            replicas: None,
        }
    }
}

/// A running WHIP server: cheap to clone, all clones serve the same sessions.
#[derive(Clone)]
pub struct WhipServer {
    shared: Arc<Shared>,
    /// The media engine's task, watched by [`WhipServer::serve`].
    engine_task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

struct Shared {
    transport: Arc<dyn PipelineTransport>,
    options: WhipOptions,
    admission: Admission,
    metrics: Arc<Metrics>,
    engine: EngineHandle,
    /// The address in the host candidate of every answer.
    candidate: SocketAddr,
    /// One DTLS certificate for every peer connection: generating one per session would cost
    /// every offer a key generation.
    cert: DtlsCert,
    /// Open sessions by resource name.
    sessions: Mutex<HashMap<String, Resource>>,
    next_key: AtomicU64,
}

/// A session as its WHIP resource: the engine's key for its peer, and the token that opened
/// it (when tokens are on), the only one that may end it.
struct Resource {
    key: PeerKey,
    owner: Option<TokenHolder>,
}

/// A new resource name: 128 random bits from the OS, as 32 hex digits. Not derived from the
/// pipeline session's id, which a `--connect` sidecar gets from the worker as a per-process
/// prefix and a counter: guessable from one answer.
fn resource_name(replicas: Option<&Replicas>) -> std::io::Result<String> {
    let random = random_hex::<16>()?;
    Ok(match replicas {
        Some(replicas) => replicas.name(&random),
        None => random,
    })
}

/// `N` random bytes from the OS, as hex digits.
fn random_hex<const N: usize>() -> std::io::Result<String> {
    let mut bits = [0u8; N];
    getrandom::fill(&mut bits).map_err(std::io::Error::other)?;
    Ok(bits.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The UDP socket's address is unknown.
    #[error("the UDP socket has no local address: {0}")]
    Socket(#[from] std::io::Error),
    /// The crypto provider could not make a DTLS certificate.
    #[error("could not generate the DTLS certificate")]
    Certificate,
}

impl WhipServer {
    /// Starts the media engine on `udp` (every session's traffic goes through it) and returns
    /// the server. `advertise` is the IP clients are told to send media to; the port is the
    /// socket's.
    ///
    /// # Errors
    ///
    /// [`StartError`].
    pub fn start(
        transport: Arc<dyn PipelineTransport>,
        udp: UdpSocket,
        advertise: std::net::IpAddr,
        options: WhipOptions,
    ) -> Result<Self, StartError> {
        let candidate = SocketAddr::new(advertise, udp.local_addr()?.port());
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(StartError::Certificate)?;
        let metrics = Arc::new(Metrics::new());
        let (engine, engine_task) = engine::spawn(udp, candidate, metrics.clone());
        Ok(Self {
            shared: Arc::new(Shared {
                transport,
                options,
                admission: Admission::default(),
                metrics,
                engine,
                candidate,
                cert,
                sessions: Mutex::new(HashMap::new()),
                next_key: AtomicU64::new(1),
            }),
            engine_task: Arc::new(Mutex::new(Some(engine_task))),
        })
    }

    /// Open sessions and the drain switch.
    #[must_use]
    pub fn admission(&self) -> Admission {
        self.shared.admission.clone()
    }

    /// The server's counters.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The address media goes to (the host candidate in every answer).
    #[must_use]
    pub fn media_address(&self) -> SocketAddr {
        self.shared.candidate
    }

    /// Readiness from the transport and the drain, metrics from the transport and this
    /// server's counters.
    fn probes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let metrics = self.shared.metrics.clone();
        Probes::new(self.shared.transport.clone())
            .draining_with(self.shared.admission.clone())
            .full_at(self.shared.options.max_sessions)
            .metrics(move || metrics.render())
            .router()
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(|| async { Html(DEMO_PAGE) }))
            // Browsers ask; an empty answer keeps their consoles clean.
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
            .route("/whip", post(post_offer).options(options_whip))
            .route(
                "/whip/{id}",
                axum::routing::delete(delete_session)
                    .patch(patch_session)
                    .options(options_whip),
            )
            // /readyz (and /healthz) fail while draining or while the worker is away; /livez
            // does not, so a liveness probe leaves a draining sidecar be.
            .merge(self.probes())
            .layer(DefaultBodyLimit::max(self.shared.options.max_offer_bytes))
            .layer(axum::middleware::map_response(cors))
            .with_state(self.shared.clone())
    }

    /// Serves HTTP on `listener` until `shutdown` completes (then lets requests in flight
    /// finish). Sessions are not touched: drain them with [`WhipServer::admission`] first.
    /// Watches the media engine meanwhile: if it stops, every session's media has stopped
    /// while HTTP would still answer, so serving ends with an error (the process exits and the
    /// kubelet restarts the container) instead of staying green.
    ///
    /// # Errors
    ///
    /// When the listener fails or the media engine stops; `serve` runs once per server.
    pub async fn serve<L>(
        &self,
        listener: L,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()>
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let engine = lock(&self.engine_task)
            .take()
            .ok_or_else(|| std::io::Error::other("the WHIP server is already serving"))?;
        let serving = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .into_future();
        until_engine_stops(serving, engine).await
    }
}

/// `serving`'s result, or an error as soon as the media engine's task ends (it only ends on
/// its own by failing: its handles live as long as the server).
async fn until_engine_stops(
    serving: impl Future<Output = std::io::Result<()>>,
    engine: tokio::task::JoinHandle<()>,
) -> std::io::Result<()> {
    tokio::select! {
        served = serving => served,
        ended = engine => Err(std::io::Error::other(match ended {
            Ok(()) => "the media engine stopped".to_owned(),
            Err(e) => format!("the media engine stopped: {e}"),
        })),
    }
}

/// A refusal, as an HTTP response with the reason as text.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    label: &'static str,
    reason: String,
}

impl Refusal {
    fn new(status: StatusCode, label: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            label,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.reason)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The bearer token check of `POST`, `DELETE` and `PATCH`, when tokens are configured: which
/// token the caller holds (`None` when tokens are off).
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<Option<TokenHolder>, Refusal> {
    let Some(tokens) = &shared.options.tokens else {
        return Ok(None);
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    tokens
        .holder(header)
        .map(Some)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))
}

async fn post_offer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let opened = match authorize(&shared, &headers) {
        Ok(owner) => open_session(&shared, &headers, &body, owner).await,
        Err(refusal) => Err(refusal),
    };
    match opened {
        Ok(response) => {
            shared
                .metrics
                .answer_seconds
                .observe(started.elapsed().as_secs_f64());
            shared.metrics.offers.with_label_values(&["answered"]).inc();
            response
        }
        Err(refusal) => {
            shared
                .metrics
                .offers
                .with_label_values(&[refusal.label])
                .inc();
            refusal.into_response()
        }
    }
}

/// A WHIP offer to a running session: checked, admitted, answered, handed to the engine, and
/// bridged to a pipeline session until either side ends.
async fn open_session(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &[u8],
    owner: Option<TokenHolder>,
) -> Result<Response, Refusal> {
    let sdp = read_offer(headers, body)?;
    let slot = shared
        .admission
        .admit(shared.options.max_sessions)
        .map_err(|e| match e {
            AdmitError::Draining => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "draining", e.to_string())
            }
            AdmitError::Full { .. } => {
                Refusal::new(StatusCode::TOO_MANY_REQUESTS, "full", e.to_string())
            }
        })?;
    let (rtc, answer) = answer_offer(shared, sdp)?;
    let opened = shared.transport.open(None).await.map_err(|e| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "pipeline_unavailable",
            format!("the pipeline could not open a session: {e}"),
        )
    })?;

    let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
    let id = resource_name(shared.options.replicas.as_deref()).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("no random bits for the session's name: {e}"),
        )
    })?;
    tracing::info!(session = %id, pipeline_session = %opened.session.session_id(), "session opened");
    let (to_session, from_peer) = mpsc::channel(TO_SESSION_CAPACITY);
    let peer = NewPeer {
        key,
        rtc,
        to_session,
        connect_by: Instant::now() + shared.options.connect_timeout,
    };
    if !shared.engine.send(Command::Add(Box::new(peer))).await {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "engine_stopped",
            "the media engine has stopped",
        ));
    }
    lock(&shared.sessions).insert(id.clone(), Resource { key, owner });
    shared.metrics.open_sessions.inc();
    tokio::spawn(bridge_session(
        shared.clone(),
        id.clone(),
        key,
        opened.session,
        from_peer,
        slot,
    ));
    Ok(answered(shared, &answer.to_sdp_string(), &id))
}

/// The offer in a WHIP POST: `application/sdp`, within our limits, parsed.
fn read_offer(headers: &HeaderMap, body: &[u8]) -> Result<SdpOffer, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/sdp") {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            format!(
                "a WHIP offer is sent as Content-Type: application/sdp (RFC 9725 section 4.2); \
                 this request has {:?}",
                if content_type.is_empty() {
                    "none"
                } else {
                    content_type
                }
            ),
        ));
    }
    let text = offer::check(body).map_err(|e| bad_offer(&e))?;
    SdpOffer::from_sdp_string(text).map_err(|e| bad_offer(&OfferError::Rejected(e.to_string())))
}

fn bad_offer(e: &OfferError) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "bad_offer", e.to_string())
}

/// A peer connection for `sdp` and its answer: ICE-lite with our one host candidate.
fn answer_offer(
    shared: &Shared,
    sdp: SdpOffer,
) -> Result<(Rtc, str0m::change::SdpAnswer), Refusal> {
    let mut rtc = Rtc::builder()
        // The server has a known address and never initiates checks: ICE-lite answers the
        // client's checks and learns the client's address from them (no trickle needed).
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .set_dtls_cert(shared.cert.clone())
        .build(Instant::now());
    let candidate = Candidate::host(shared.candidate, "udp").map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("host candidate {}: {e}", shared.candidate),
        )
    })?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(sdp)
        .map_err(|e| bad_offer(&OfferError::Rejected(e.to_string())))?;
    Ok((rtc, answer))
}

/// Runs one session's bridge to its end, then forgets the session and frees its slot.
async fn bridge_session(
    shared: Arc<Shared>,
    id: String,
    key: PeerKey,
    session: Box<dyn StreamSession>,
    from_peer: mpsc::Receiver<engine::PeerEvent>,
    slot: SessionSlot,
) {
    let engine = shared.engine.clone();
    let reason = bridge::run(key, session, from_peer, engine).await;
    lock(&shared.sessions).remove(&id);
    shared.metrics.open_sessions.dec();
    shared
        .metrics
        .sessions_ended
        .with_label_values(&[reason.label()])
        .inc();
    tracing::info!(session = %id, reason = reason.label(), "session ended");
    drop(slot);
}

/// `201 Created` with the answer, the session's `Location` and the ICE servers.
fn answered(shared: &Shared, answer: &str, id: &str) -> Response {
    let mut response = (StatusCode::CREATED, answer.to_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/whip/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    add_ice_servers(headers, &shared.options.ice_servers, Disclose::Credentials);
    response
}

async fn delete_session(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = on_owner(&shared, &headers, Method::DELETE, &id).await {
        return answer;
    }
    let key = match known_session(&shared, &headers, &id, Lookup::Take) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    let reason = engine::EndReason::Deleted;
    shared.engine.send(Command::Remove { key, reason }).await;
    StatusCode::OK.into_response()
}

/// Trickle ICE and ICE restarts are not supported: as an ICE-lite server with its candidate
/// in the answer, it needs neither (RFC 9725 section 4.3: answer 405).
async fn patch_session(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = on_owner(&shared, &headers, Method::PATCH, &id).await {
        return answer;
    }
    if let Err(refusal) = known_session(&shared, &headers, &id, Lookup::Peek) {
        return refusal.into_response();
    }
    let mut response = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "",
        "trickle ICE and ICE restart are not supported: send every candidate in the offer",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    response
}

/// A request on another replica's session, answered by that replica (forwarded there);
/// `None` when this replica answers it (its own session, an unknown name, or a request
/// already forwarded once).
async fn on_owner(
    shared: &Shared,
    headers: &HeaderMap,
    method: Method,
    id: &str,
) -> Option<Response> {
    let replicas = shared.options.replicas.as_ref()?;
    if headers.contains_key(FORWARDED) {
        return None;
    }
    let Owner::Replica(owner) = replicas.owner(id) else {
        return None;
    };
    // Nothing goes on to the owner from a caller without a valid token.
    if let Err(refusal) = authorize(shared, headers) {
        return Some(refusal.into_response());
    }
    let path = format!("/whip/{id}");
    let authorization = headers.get(header::AUTHORIZATION);
    let answer = match replicas.forward(owner, method, &path, authorization).await {
        Ok(answer) => {
            shared
                .metrics
                .forwarded
                .with_label_values(&["answered"])
                .inc();
            answer
        }
        Err(e) => {
            tracing::warn!(error = %e, "a request for another replica's session");
            // A gone owner took its sessions with it: the client sees a session that is not.
            let (outcome, reason) = match &e {
                ForwardError::Gone(..) => ("gone", "no such session".to_owned()),
                ForwardError::TimedOut(_) | ForwardError::Failed(..) => ("failed", e.to_string()),
            };
            shared.metrics.forwarded.with_label_values(&[outcome]).inc();
            Refusal::new(e.status(), "", reason).into_response()
        }
    };
    Some(answer)
}

/// What a request on `/whip/{id}` does to the session's name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Leaves it (PATCH).
    Peek,
    /// Forgets it at once (DELETE): a second DELETE gets 404 even while the engine is still
    /// closing the peer, and only one of two racing DELETEs wins.
    Take,
}

/// The session a request on `/whip/{id}` is about: the caller authorized, the id known and,
/// with tokens on, opened with the caller's token. Someone else's session is answered exactly
/// as one that does not exist, so trying names reveals nothing.
fn known_session(
    shared: &Shared,
    headers: &HeaderMap,
    id: &str,
    lookup: Lookup,
) -> Result<PeerKey, Refusal> {
    let caller = authorize(shared, headers)?;
    let mut sessions = lock(&shared.sessions);
    let key = sessions
        .get(id)
        .filter(|resource| resource.owner == caller)
        .map(|resource| resource.key);
    if key.is_some() && lookup == Lookup::Take {
        sessions.remove(id);
    }
    key.ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "", "no such session"))
}

/// `OPTIONS /whip`: what the endpoint accepts, and the ICE servers a client needs before it
/// makes its offer (a relay-only client gathers its relay candidates first: without trickle
/// ICE the offer must hold them all). Credentials go only to callers who could open a session
/// (a valid token, when tokens are on), never in a CORS preflight's answer.
async fn options_whip(State(shared): State<Arc<Shared>>, request: HeaderMap) -> Response {
    let preflight = request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let disclose = if !preflight && authorize(&shared, &request).is_ok() {
        Disclose::Credentials
    } else {
        Disclose::UrlsOnly
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("accept-post"),
        HeaderValue::from_static("application/sdp"),
    );
    add_ice_servers(headers, &shared.options.ice_servers, disclose);
    response
}

/// Lets web apps on other origins use the endpoint (a WHIP client is often a page served
/// elsewhere): any origin, and the headers a client must read.
async fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, PATCH, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("location, link"),
    );
    response
}

/// The `Link` headers of `servers`, credentials minted for a client id of 64 random bits
/// (a relay's logs then name no session).
fn add_ice_servers(headers: &mut HeaderMap, servers: &[IceServer], disclose: Disclose) {
    if servers.is_empty() {
        return;
    }
    let client = random_hex::<8>().unwrap_or_else(|_| "client".to_owned());
    for link in ice::links(servers, disclose, &client, SystemTime::now()) {
        // Cannot fail: URLs come from flags checked at start, credentials are checked ASCII.
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.append(header::LINK, value);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the map half-updated (single inserts and removes).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;

    #[tokio::test]
    async fn a_stopped_engine_ends_serving_with_an_error_saying_so() {
        let engine = tokio::spawn(async { panic!("boom") });
        let err = until_engine_stops(pending(), engine)
            .await
            .expect_err("serving must end");
        assert!(
            err.to_string().starts_with("the media engine stopped"),
            "{err}"
        );
        assert!(err.to_string().contains("panicked"), "{err}");
    }

    #[tokio::test]
    async fn serving_that_ends_first_is_the_result() {
        let engine = tokio::spawn(pending::<()>());
        until_engine_stops(async { Ok(()) }, engine)
            .await
            .expect("served");
    }
}
