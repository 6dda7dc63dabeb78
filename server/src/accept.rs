//! Connections accepted for a transport's server, plain or TLS: socket options set, TLS
//! handshakes done concurrently and with a deadline (a client that connects and says nothing
//! must not hold up the others), and only finished connections handed to the server.
//! [`Accepted`] is a `Stream` (what tonic serves) and an axum `Listener` (what axum serves).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Connections accepted but not yet taken by the server.
const QUEUE: usize = 64;

/// How connections are accepted.
#[derive(Clone, Debug)]
pub struct AcceptOptions {
    /// TCP keepalive: idle time before the first probe, time between probes, probes.
    pub keepalive: Option<(Duration, Duration, u32)>,
    /// Time a client gets to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; more connections wait to be accepted.
    pub max_handshakes: usize,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            keepalive: None,
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
        }
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Connection {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection {
    /// The TCP stream underneath.
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// Connections as they are ready to serve. Dropping it stops accepting.
pub struct Accepted {
    ready: mpsc::Receiver<(Connection, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Accepted {
    /// Accepts on `listener`; with `tls`, connections come out after their handshake.
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn start(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        options: AcceptOptions,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (ready, queue) = mpsc::channel(QUEUE);
        let accepting = tokio::spawn(accept_loop(
            listener,
            tls.map(TlsAcceptor::from),
            options,
            ready,
        ));
        Ok(Self {
            ready: queue,
            local,
            accepting,
        })
    }

    /// The address accepted on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Accepted {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    options: AcceptOptions,
    ready: mpsc::Sender<(Connection, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(options.max_handshakes.max(1)));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        configure(&tcp, &options);
        let Some(acceptor) = tls.clone() else {
            if ready.send((Connection::Plain(tcp), peer)).await.is_err() {
                return;
            }
            continue;
        };
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let ready = ready.clone();
        let deadline = options.handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((Connection::Tls(Box::new(tls)), peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

fn configure(tcp: &TcpStream, options: &AcceptOptions) {
    // No Nagle: a frame's response must not wait for the client's delayed ACK (measured: 40 ms
    // stalls at p99 without it; docs/benchmarks.md).
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
    if let Some((idle, interval, retries)) = options.keepalive {
        let keepalive = TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(retries);
        if let Err(e) = SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(error = %e, "TCP keepalive");
        }
    }
}

impl tokio_stream::Stream for Accepted {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready
            .poll_recv(cx)
            .map(|next| next.map(|(connection, _)| Ok(connection)))
    }
}

impl axum::serve::Listener for Accepted {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this is dropped: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
