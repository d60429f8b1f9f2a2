//! The byte channel an MQTT session runs over: TLS directly, or WebSocket binary frames on TLS — the
//! shared [`crate::wire::mqtt`] channel, boxed (a held session's task stays small).

use crate::wire::mqtt::{Bytes, Channel as _, Frames};
use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

pub(crate) type Tls = super::tls_stream::TlsStream<Rewind<TcpStream>>;

pub(crate) enum Channel {
    Tls(Bytes<Box<Tls>>),
    Ws(Box<Frames<Tls>>),
}

impl Channel {
    pub(crate) fn tls(s: Box<Tls>) -> Self {
        Self::Tls(Bytes(s))
    }

    /// MQTT in binary frames; text frames are skipped like control frames.
    pub(crate) fn ws(ws: WebSocketStream<Tls>) -> Self {
        Self::Ws(Box::new(Frames::new(ws, false)))
    }

    /// Appends what arrives next to `buf`; `Ok(0)` means the peer closed.
    pub(crate) async fn read_more(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Tls(s) => s.read_some(buf).await,
            Self::Ws(w) => w.read_some(buf).await,
        }
    }

    /// Writes `bytes`; a peer that stops reading cannot hold the write up for more than 10 s.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tls(s) => s.send(bytes).await,
            Self::Ws(w) => w.send(bytes).await,
        }
    }

    /// Closes the connection: TLS close_notify then FIN (no WebSocket close frame, as IoT Core closes).
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            match self {
                Self::Tls(mut s) => {
                    let _ = s.0.shutdown().await;
                }
                Self::Ws(mut w) => {
                    let _ = w.ws.get_mut().shutdown().await;
                }
            }
        })
        .await;
    }
}

/// A stream that first replays bytes already read (the ClientHello), then reads from `inner`.
///
/// Not `tokio_rustls::LazyConfigAcceptor`: its `StartHandshake` keeps the TCP stream until it becomes a
/// TLS stream, so the refusals IoT Core leaves undocumented could not all be made — an alert chosen
/// by name written on the raw socket, or a reset (`reject.no_sni = "reset"`).
pub(crate) struct Rewind<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
    /// Counts what is read before authentication ([`super::admission`]).
    meter: Option<std::sync::Arc<super::admission::Entry>>,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self { prefix, pos: 0, inner, meter: None }
    }

    /// Every byte read (the prefix included) is charged to `entry` until it authenticates.
    pub(crate) fn metered(mut self, entry: std::sync::Arc<super::admission::Entry>) -> Self {
        self.meter = Some(entry);
        self
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(self.meter.as_ref().map_or(Ok(()), |m| m.charge(n)));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        match (&read, &self.meter) {
            (Poll::Ready(Ok(())), Some(m)) => Poll::Ready(m.charge(buf.filled().len() - before)),
            _ => read,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    // Passed through: rustls writes a flight of records (ServerHello … Finished) as one vectored write,
    // one syscall and one segment instead of one per record.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
