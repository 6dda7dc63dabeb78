//! The STUN and TURN servers a WHIP server hands its clients (RFC 9725 section 4.4): `Link`
//! headers on `OPTIONS /whip` and on the answer, with credentials that are either fixed or
//! minted for each client from a secret shared with the TURN server (the TURN REST scheme of
//! draft-uberti-behave-turn-rest, which coturn's `use-auth-secret` and STUNner's `ephemeral`
//! authentication accept).
//!
//! A client behind a NAT or a firewall reaches a pod through such a relay: it allocates a
//! relayed address there and sends its checks and media to the pod's own candidate from it,
//! so the pod keeps announcing its pod IP ("asymmetric ICE").

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A STUN or TURN server for clients: its URLs (as the browser's `RTCIceServer.urls`) and the
/// credentials each client gets for them.
#[derive(Clone, Debug)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URIs (RFC 7064, RFC 7065), e.g.
    /// `turn:relay.example.net:3478?transport=udp`.
    pub urls: Vec<String>,
    /// What clients authenticate with; given only with `turn:` and `turns:` URLs.
    pub credentials: IceCredentials,
}

/// How clients authenticate to a TURN server.
#[derive(Clone, Debug)]
pub enum IceCredentials {
    /// No credentials: a STUN server.
    None,
    /// The same username and password for every client.
    Static {
        /// The username.
        username: CredentialText,
        /// The password.
        credential: CredentialText,
    },
    /// A username and password made for each client from a secret the TURN server shares,
    /// valid for `ttl`: the username is `<expiry, unix seconds>:<random id>`, the password
    /// base64(HMAC-SHA1(secret, username)). A leaked one stops working at its expiry.
    Ephemeral {
        /// The shared secret.
        secret: CredentialText,
        /// How long a minted credential is valid.
        ttl: Duration,
    },
}

impl IceServer {
    /// A server needing no credentials.
    #[must_use]
    pub fn open(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            credentials: IceCredentials::None,
        }
    }

    /// The credentials this server reads from files, to be read again while serving.
    #[must_use]
    pub fn credential_files(&self) -> Vec<CredentialText> {
        let texts = match &self.credentials {
            IceCredentials::None => Vec::new(),
            IceCredentials::Static {
                username,
                credential,
            } => vec![username.clone(), credential.clone()],
            IceCredentials::Ephemeral { secret, .. } => vec![secret.clone()],
        };
        texts.into_iter().filter(|t| t.file().is_some()).collect()
    }
}

/// Whether a `Link` header may carry credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disclose {
    /// URLs and credentials: the caller may open sessions.
    Credentials,
    /// URLs only: the caller has not shown a token (tokens on), or it is a CORS preflight.
    UrlsOnly,
}

/// The `Link` header values for `servers` (RFC 9725 section 4.4: one per URL, `rel="ice-server"`,
/// TURN URLs with `username`, `credential` and `credential-type="password"`), credentials
/// minted for `client` at `now` where a server mints them.
pub(crate) fn links(
    servers: &[IceServer],
    disclose: Disclose,
    client: &str,
    now: SystemTime,
) -> Vec<String> {
    let mut links = Vec::new();
    for server in servers {
        let credentials = match (&server.credentials, disclose) {
            (_, Disclose::UrlsOnly) | (IceCredentials::None, _) => None,
            (
                IceCredentials::Static {
                    username,
                    credential,
                },
                Disclose::Credentials,
            ) => Some((username.get(), credential.get())),
            (IceCredentials::Ephemeral { secret, ttl }, Disclose::Credentials) => Some(
                turn_rest_credential(secret.get().as_bytes(), client, now + *ttl),
            ),
        };
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            let turn = url.starts_with("turn:") || url.starts_with("turns:");
            if let (true, Some((username, credential))) = (turn, &credentials) {
                link.push_str(&format!(
                    "; username=\"{username}\"; credential=\"{credential}\"; \
                     credential-type=\"password\""
                ));
            }
            links.push(link);
        }
    }
    links
}

/// A TURN REST credential for `user` that expires at `expires`: the username
/// `<expiry>:<user>` and its password, base64(HMAC-SHA1(`secret`, username)).
#[must_use]
pub fn turn_rest_credential(secret: &[u8], user: &str, expires: SystemTime) -> (String, String) {
    let expiry = expires
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let username = format!("{expiry}:{user}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, BASE64.encode(tag.as_ref()))
}

/// A username, password or shared secret: given as is, or read from a file (a mounted
/// Secret's key) and read again by [`CredentialText::reload`]. It goes into a header's quoted
/// string, so it must be printable ASCII without `"` or `\`; surrounding whitespace (a
/// trailing newline) is dropped.
#[derive(Clone, Debug)]
pub struct CredentialText {
    file: Option<PathBuf>,
    text: Arc<RwLock<String>>,
}

/// Why a credential could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is empty or has characters a `Link` header cannot carry.
    #[error("{what}: {reason}")]
    Unusable {
        /// The file, or "a credential given on the command line".
        what: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl CredentialText {
    /// Text given as is (a command-line flag).
    ///
    /// # Errors
    /// [`CredentialError::Unusable`].
    pub fn given(text: &str) -> Result<Self, CredentialError> {
        let text = checked(text, || "a credential given on the command line".to_owned())?;
        Ok(Self {
            file: None,
            text: Arc::new(RwLock::new(text)),
        })
    }

    /// The text in `path`.
    ///
    /// # Errors
    /// The file cannot be read or its text is unusable, naming the file.
    pub fn load(path: &Path) -> Result<Self, CredentialError> {
        Ok(Self {
            text: Arc::new(RwLock::new(read(path)?)),
            file: Some(path.to_owned()),
        })
    }

    /// Reads the file again (nothing for given text); `Ok(true)` when the text changed.
    ///
    /// # Errors
    /// As [`CredentialText::load`]; the previous text stays.
    pub fn reload(&self) -> Result<bool, CredentialError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let text = read(path)?;
        let mut current = self.text.write().unwrap_or_else(PoisonError::into_inner);
        if *current == text {
            return Ok(false);
        }
        *current = text;
        Ok(true)
    }

    /// Where it is read from, if a file.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn get(&self) -> String {
        self.text
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn read(path: &Path) -> Result<String, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
        path: path.to_owned(),
        source,
    })?;
    checked(&text, || path.display().to_string())
}

fn checked(text: &str, what: impl Fn() -> String) -> Result<String, CredentialError> {
    let text = text.trim();
    let unusable = |reason| CredentialError::Unusable {
        what: what(),
        reason,
    };
    if text.is_empty() {
        return Err(unusable("empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || text.contains(['"', '\\']) {
        return Err(unusable(
            "only printable ASCII without '\"' or '\\' can go into a Link header",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed apart from this code, with Python's hmac module:
    /// `base64.b64encode(hmac.new(b"north-sea", b"1767225600:alice", "sha1").digest())`.
    #[test]
    fn minted_credentials_follow_the_turn_rest_scheme() {
        let expires = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let (username, password) = turn_rest_credential(b"north-sea", "alice", expires);
        assert_eq!(username, "1767225600:alice");
        assert_eq!(password, "Z3ZjfNpYAyfJSL95/LRNsQQD58g=");
    }

    fn server(credentials: IceCredentials) -> IceServer {
        IceServer {
            urls: vec![
                "stun:relay.example.net:3478".to_owned(),
                "turn:relay.example.net:3478?transport=udp".to_owned(),
                "turns:relay.example.net:5349?transport=tcp".to_owned(),
            ],
            credentials,
        }
    }

    #[test]
    fn every_url_is_a_link_and_only_turn_urls_carry_credentials() {
        let fixed = server(IceCredentials::Static {
            username: CredentialText::given("user").unwrap(),
            credential: CredentialText::given("pass word").unwrap(),
        });
        let links = links(&[fixed], Disclose::Credentials, "x", SystemTime::now());
        assert_eq!(
            links,
            [
                "<stun:relay.example.net:3478>; rel=\"ice-server\"",
                "<turn:relay.example.net:3478?transport=udp>; rel=\"ice-server\"; \
                 username=\"user\"; credential=\"pass word\"; credential-type=\"password\"",
                "<turns:relay.example.net:5349?transport=tcp>; rel=\"ice-server\"; \
                 username=\"user\"; credential=\"pass word\"; credential-type=\"password\"",
            ]
        );
    }

    #[test]
    fn minted_credentials_expire_after_the_ttl_and_differ_per_client() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "north-sea\n").unwrap();
        let minted = server(IceCredentials::Ephemeral {
            secret: CredentialText::load(&secret_file).unwrap(),
            ttl: Duration::from_secs(600),
        });
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_000);
        let (a, b) = (
            links(
                std::slice::from_ref(&minted),
                Disclose::Credentials,
                "alice",
                now,
            ),
            links(
                std::slice::from_ref(&minted),
                Disclose::Credentials,
                "bob",
                now,
            ),
        );
        let (username, password) = turn_rest_credential(
            b"north-sea",
            "alice",
            UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        );
        assert!(
            a[1].contains(&format!(
                "username=\"{username}\"; credential=\"{password}\""
            )),
            "{a:?}"
        );
        assert_ne!(a[1], b[1]);
        // A rotated secret is used from the next reload on.
        std::fs::write(&secret_file, "baltic").unwrap();
        assert!(minted.credential_files()[0].reload().unwrap());
        let rotated = links(&[minted], Disclose::Credentials, "alice", now);
        assert_ne!(rotated[1], a[1]);
    }

    #[test]
    fn without_disclosure_only_urls_are_given() {
        let minted = server(IceCredentials::Ephemeral {
            secret: CredentialText::given("north-sea").unwrap(),
            ttl: Duration::from_secs(600),
        });
        let links = links(&[minted], Disclose::UrlsOnly, "x", SystemTime::now());
        assert_eq!(links.len(), 3);
        assert!(links.iter().all(|l| !l.contains("credential")), "{links:?}");
    }

    #[test]
    fn unusable_credentials_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("username");
        std::fs::write(&path, "a\"b").unwrap();
        let err = CredentialText::load(&path).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(
            CredentialText::load(&path)
                .unwrap_err()
                .to_string()
                .ends_with("empty")
        );
        let missing = dir.path().join("missing");
        assert!(matches!(
            CredentialText::load(&missing),
            Err(CredentialError::Read { .. })
        ));
        // A reload that fails keeps the previous text.
        std::fs::write(&path, "alice").unwrap();
        let text = CredentialText::load(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(text.reload().is_err());
        assert_eq!(text.get(), "alice");
    }
}
