//! Sessions stay on their pod. Behind a Service, a client's `DELETE` (or `PATCH`) on its
//! session may reach any replica; ClientIP affinity does not help behind NATs and load
//! balancers that change the source. So each session's name says which replica owns it: the
//! owner's address (pod IP and HTTP port), signed with a key every replica of the Pipeline
//! shares. A replica that gets a request for another's session forwards it there and relays the
//! answer; a name whose signature does not check is a session that does not exist (forwarding
//! only ever goes to a replica that really named the session, never to an address a client
//! made up).
//!
//! A name: `<128 random bits>-<owner>-<tag>`, all hex, where the owner is the IP's bytes and
//! the port, and the tag the first 128 bits of `HMAC-SHA256(key, "<random>-<owner>")`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Set on a forwarded request: its receiver answers it itself, never forwards it again.
pub const FORWARDED: HeaderName = HeaderName::from_static("remotemedia-forwarded");
/// How long a forwarded request may take, connecting included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer relayed back (WHIP's answers to DELETE and PATCH are a line of text).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// This replica, and how it reaches the others.
pub struct Replicas {
    me: SocketAddr,
    key: ring::hmac::Key,
    /// TLS to the other replicas (they present our certificate), when WHIP is served over TLS.
    tls: Option<Arc<ClientConfig>>,
}

/// Which replica a session name belongs to.
#[derive(Debug, PartialEq, Eq)]
pub enum Owner {
    /// This one.
    Here,
    /// Another replica, at this address.
    Replica(SocketAddr),
    /// None: not a name a replica made (unsigned, or signed with another key).
    Nobody,
}

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The owner refused the connection or cannot be reached: it has gone, and its sessions
    /// with it.
    #[error("the session's replica {0} cannot be reached: {1}")]
    Gone(SocketAddr, std::io::Error),
    /// The owner did not answer in time.
    #[error("the session's replica {0} did not answer within {FORWARD_TIMEOUT:?}")]
    TimedOut(SocketAddr),
    /// TLS or HTTP to the owner failed.
    #[error("forwarding to the session's replica {0}: {1}")]
    Failed(SocketAddr, String),
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("me", &self.me)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Replicas {
    /// Replica `me` (the address the others reach it at) sharing `key`; `tls` when the
    /// replicas serve TLS.
    #[must_use]
    pub fn new(me: SocketAddr, key: &[u8], tls: Option<Arc<ClientConfig>>) -> Self {
        Self {
            me,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            tls,
        }
    }

    /// The name of a session of this replica whose random part is `random`.
    pub(crate) fn name(&self, random: &str) -> String {
        let signed = format!("{random}-{}", owner_hex(self.me));
        let tag = self.tag(&signed);
        format!("{signed}-{tag}")
    }

    /// Who owns the session `name`.
    pub(crate) fn owner(&self, name: &str) -> Owner {
        let Some((signed, tag)) = name.rsplit_once('-') else {
            return Owner::Nobody;
        };
        let Some((_, owner)) = signed.split_once('-') else {
            return Owner::Nobody;
        };
        if !constant_time_eq(self.tag(signed).as_bytes(), tag.as_bytes()) {
            return Owner::Nobody;
        }
        match parse_owner(owner) {
            Some(address) if address == self.me => Owner::Here,
            Some(address) => Owner::Replica(address),
            None => Owner::Nobody,
        }
    }

    fn tag(&self, signed: &str) -> String {
        let tag = ring::hmac::sign(&self.key, signed.as_bytes());
        hex(&tag.as_ref()[..16])
    }

    /// Sends `method path` with the caller's `authorization` to replica `to` and returns its
    /// answer (status, `content-type`, `allow` and the body).
    ///
    /// # Errors
    /// [`ForwardError`].
    pub(crate) async fn forward(
        &self,
        to: SocketAddr,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response<Body>, ForwardError> {
        tokio::time::timeout(FORWARD_TIMEOUT, self.send(to, method, path, authorization))
            .await
            .map_err(|_| ForwardError::TimedOut(to))?
    }

    async fn send(
        &self,
        to: SocketAddr,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response<Body>, ForwardError> {
        let failed = |e: &dyn std::fmt::Display| ForwardError::Failed(to, e.to_string());
        let tcp = TcpStream::connect(to)
            .await
            .map_err(|e| ForwardError::Gone(to, e))?;
        let io: Box<dyn Io> = match &self.tls {
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let name = ServerName::IpAddress(to.ip().into());
                Box::new(connector.connect(name, tcp).await.map_err(|e| failed(&e))?)
            }
            None => Box::new(tcp),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| failed(&e))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, to.to_string())
            .header(FORWARDED, "1");
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(&e))?;
        let answer = sender.send_request(request).await.map_err(|e| failed(&e))?;
        let (parts, body) = answer.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| failed(&*e))?
            .to_bytes();
        let mut relayed = Response::new(Body::from(body));
        *relayed.status_mut() = parts.status;
        copy_headers(&parts.headers, relayed.headers_mut());
        Ok(relayed)
    }
}

impl ForwardError {
    /// The status a client gets: a replica that is gone took its sessions with it (404); one
    /// that does not answer is a gateway failure (502, 504).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Gone(..) => StatusCode::NOT_FOUND,
            Self::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Failed(..) => StatusCode::BAD_GATEWAY,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [header::CONTENT_TYPE, header::ALLOW] {
        if let Some(value) = from.get(&name) {
            to.insert(name, value.clone());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The owner's address as hex: the IP's 4 or 16 bytes, then the port's 2.
fn owner_hex(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) => hex(&ip.octets()),
        IpAddr::V6(ip) => hex(&ip.octets()),
    };
    format!("{ip}{:04x}", address.port())
}

fn parse_owner(text: &str) -> Option<SocketAddr> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let (ip, port) = bytes.split_at_checked(bytes.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match ip.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(ip).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(ip).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Equal, in a time that depends on the lengths only: a forged tag is not found byte by byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(address: &str, key: &[u8]) -> Replicas {
        Replicas::new(address.parse().unwrap(), key, None)
    }

    #[test]
    fn a_name_says_its_owner_to_every_replica_with_the_key() {
        let a = replica("10.244.0.7:8080", b"shared");
        let b = replica("10.244.1.9:8080", b"shared");
        let name = a.name("0123456789abcdef0123456789abcdef");
        assert!(name.starts_with("0123456789abcdef0123456789abcdef-0af400071f90-"));
        assert_eq!(a.owner(&name), Owner::Here);
        assert_eq!(
            b.owner(&name),
            Owner::Replica("10.244.0.7:8080".parse().unwrap())
        );
        let v6 = replica("[fd00::7]:8443", b"shared");
        assert_eq!(
            b.owner(&v6.name("ab")),
            Owner::Replica("[fd00::7]:8443".parse().unwrap())
        );
    }

    #[test]
    fn names_not_signed_with_the_key_belong_to_nobody() {
        let a = replica("10.244.0.7:8080", b"shared");
        let outsider = replica("10.244.0.7:8080", b"other");
        let name = a.name("00ff");
        assert_eq!(outsider.owner(&name), Owner::Nobody);
        // The owner changed to an address of the caller's choosing: the tag no longer checks.
        let tag = name.rsplit_once('-').unwrap().1;
        let forged = format!("00ff-7f0000011f90-{tag}");
        assert_eq!(a.owner(&forged), Owner::Nobody);
        for junk in ["", "-", "--", "00ff", "00ff-zz-00", &name[..name.len() - 1]] {
            assert_eq!(a.owner(junk), Owner::Nobody, "{junk:?}");
        }
    }

    #[test]
    fn owners_parse_back_or_not_at_all() {
        for address in ["10.0.0.1:1", "[::1]:65535", "255.255.255.255:0"] {
            let address: SocketAddr = address.parse().unwrap();
            assert_eq!(parse_owner(&owner_hex(address)), Some(address));
        }
        for junk in ["", "0a", "0a000001", "0a0000011f9", "0a0000011f90ff", "é0"] {
            assert_eq!(parse_owner(junk), None, "{junk:?}");
        }
    }
}
