//! What the server does with connections, as opposed to streams: keepalive, so a client whose
//! network vanished (NAT timeout, a phone changing networks, a half-open TCP connection) loses
//! its connection, and with it its streams and sessions; and a cap on streams per connection.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// TCP keepalive probes sent before the kernel gives a silent connection up.
const TCP_KEEPALIVE_PROBES: u32 = 3;

/// Connection limits and keepalive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// A connection quiet for this long gets an HTTP/2 PING (and the kernel starts TCP
    /// keepalive probes).
    pub keepalive_interval: Duration,
    /// A PING unanswered for this long drops the connection and its streams.
    pub keepalive_timeout: Duration,
    /// Streams one connection may have open at once; the client waits for more (HTTP/2
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_streams_per_connection: u32,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            max_streams_per_connection: 100,
        }
    }
}

impl ConnectionOptions {
    /// A tonic server builder with these settings.
    #[must_use]
    pub fn server(&self) -> Server {
        Server::builder()
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
            .max_concurrent_streams(self.max_streams_per_connection)
    }

    /// Connections accepted on `listener`, with TCP keepalive (dead within about the same time
    /// as the HTTP/2 ping, for peers that hold the connection without speaking HTTP/2) and no
    /// Nagle: a frame's response must not wait for the client's delayed ACK (measured: 40 ms
    /// stalls at p99 without it; docs/benchmarks.md).
    #[must_use]
    pub fn incoming(&self, listener: TcpListener) -> TcpIncoming {
        let probe_interval =
            (self.keepalive_timeout / TCP_KEEPALIVE_PROBES).max(Duration::from_secs(1));
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(self.keepalive_interval))
            .with_keepalive_interval(Some(probe_interval))
            .with_keepalive_retries(Some(TCP_KEEPALIVE_PROBES))
    }
}
