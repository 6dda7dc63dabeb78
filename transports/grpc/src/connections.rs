//! What the server does with connections, as opposed to streams: keepalive, so a client whose
//! network vanished (NAT timeout, a phone changing networks, a half-open TCP connection) loses
//! its connection, and with it its streams and sessions; and a cap on streams per connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use remotemedia_server::{AcceptOptions, Accepted, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo};

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

    /// Connections accepted on `listener`, over TLS with `tls`: TCP keepalive (dead within
    /// about the same time as the HTTP/2 ping, for peers that hold the connection without
    /// speaking HTTP/2), no Nagle, handshakes concurrent and bounded in time.
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn incoming(
        &self,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<impl Stream<Item = std::io::Result<GrpcConnection>> + use<>> {
        let probe_interval =
            (self.keepalive_timeout / TCP_KEEPALIVE_PROBES).max(Duration::from_secs(1));
        let options = AcceptOptions {
            keepalive: Some((
                self.keepalive_interval,
                probe_interval,
                TCP_KEEPALIVE_PROBES,
            )),
            ..AcceptOptions::default()
        };
        let accepted = Accepted::start(listener, tls, options)?;
        Ok(accepted.map(|connection| connection.map(GrpcConnection)))
    }
}

/// A connection tonic serves: plain or TLS.
#[derive(Debug)]
pub struct GrpcConnection(Connection);

impl Connected for GrpcConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.tcp().connect_info()
    }
}

impl AsyncRead for GrpcConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
