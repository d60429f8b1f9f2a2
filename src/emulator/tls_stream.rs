//! A server TLS stream over rustls' unbuffered API, whose buffers are the emulator's own: each is
//! released as soon as it is empty, so an idle session holds no read or write buffer.
//!
//! rustls' buffered `ServerConnection` (what tokio-rustls wraps) keeps a read buffer of at least
//! 4 KiB for the connection's whole life once it has read, and has no call to release it: that was
//! the largest part of a held session's memory (docs/performance.md). The behaviour a peer sees is
//! tokio-rustls': the same records, a pending alert written before a handshake error is returned,
//! `UnexpectedEof` for a TCP close without close_notify, close_notify on shutdown.

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What is read from the socket at a time.
const READ_SIZE: usize = 4096;
/// Most TLS bytes held before a record or handshake message is complete (rustls accepts handshake
/// messages up to 64 KiB; a record is at most 16 KiB plus overhead).
const MAX_INCOMING: usize = 70 * 1024;
/// Most plaintext encrypted per write call.
const MAX_WRITE: usize = 64 * 1024;

/// What one pass of the TLS state machine came to.
enum Step {
    /// It needs more bytes from the peer.
    NeedRead,
    /// Plaintext arrived (it is in `plain`).
    Traffic,
    /// Nothing to do until the application reads or writes.
    Idle,
    /// `n` bytes of the application's data were encrypted into `outgoing`.
    Wrote(usize),
    /// The peer closed the TLS session (close_notify), or the connection is closed.
    Closed,
}

/// What to do in the application-data state.
#[derive(Clone, Copy)]
enum Out<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// A server TLS stream over `IO` (see the module's documentation).
pub(crate) struct TlsStream<IO> {
    io: IO,
    conn: UnbufferedServerConnection,
    /// TLS bytes from the peer; `used` of them are filled.
    incoming: Vec<u8>,
    used: usize,
    /// TLS bytes for the peer; those before `sent` are sent.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted application data; those before `taken` are read.
    plain: Vec<u8>,
    taken: usize,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// The socket reached its end.
    eof: bool,
    close_sent: bool,
}

/// The handshake of `io` with `config`: the stream once the handshake is complete.
pub(crate) async fn accept<IO: AsyncRead + AsyncWrite + Unpin>(
    config: Arc<rustls::ServerConfig>,
    io: IO,
) -> io::Result<TlsStream<IO>> {
    let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
    let mut s = TlsStream {
        io,
        conn,
        incoming: Vec::new(),
        used: 0,
        outgoing: Vec::new(),
        sent: 0,
        plain: Vec::new(),
        taken: 0,
        peer_closed: false,
        eof: false,
        close_sent: false,
    };
    poll_fn(|cx| s.poll_handshake(cx)).await?;
    Ok(s)
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Every application-data record available in a read state, appended to `$plain`, their bytes
/// added to `$discard`: `Ok(Some(Step::Traffic))` or the record's error.
macro_rules! drain {
    ($r:ident, $plain:expr, $discard:ident) => {{
        let mut result = Ok(Some(Step::Traffic));
        while let Some(record) = $r.next_record() {
            match record {
                Ok(record) => {
                    $discard += record.discard;
                    $plain.extend_from_slice(record.payload);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        result
    }};
}

/// Appends what `write` puts into a slice at the end of `out`, first offering `room` bytes and
/// then the size it asks for (`Err(Some(size))`); `Err(None)` is its failure.
fn append(
    out: &mut Vec<u8>,
    room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    let mut room = room;
    // Bounded: a second offer is the size asked for.
    for _ in 0..4 {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) => room = required,
            Err(None) => break,
        }
    }
    out.truncate(start);
    Err(rustls::Error::General("could not encrypt a TLS record".into()))
}

/// An encryption's result for [`append`].
fn encrypted(r: Result<usize, EncryptError>) -> Result<usize, Option<usize>> {
    match r {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => Err(Some(required_size)),
        Err(_) => Err(None),
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// The ALPN protocol agreed in the handshake.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = self.step(Out::Nothing);
            ready!(self.poll_flush_out(cx))?;
            match step? {
                Step::NeedRead => {
                    if ready!(self.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof")));
                    }
                }
                Step::Closed => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof")));
                }
                Step::Traffic | Step::Idle | Step::Wrote(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Runs the state machine over what has arrived until it needs the application or the peer.
    /// A TLS error is returned after the alert it queued is encoded into `outgoing` (the caller
    /// flushes it first, as tokio-rustls does).
    fn step(&mut self, send: Out<'_>) -> io::Result<Step> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming[..self.used]);
            let outcome: Result<Option<Step>, rustls::Error> = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    drain!(r, self.plain, discard)
                }
                Ok(ConnectionState::ReadEarlyData(mut r)) => {
                    drain!(r, self.plain, discard)
                }
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    append(&mut self.outgoing, 1024, |out| match e.encode(out) {
                        Ok(n) => Ok(n),
                        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                            Err(Some(required_size))
                        }
                        Err(EncodeError::AlreadyEncoded) => Ok(0),
                    })
                    .map(|_| None)
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // What was encoded is in `outgoing`, sent in order before anything else.
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Step::NeedRead)),
                Ok(ConnectionState::WriteTraffic(mut w)) => match send {
                    Out::Nothing => Ok(Some(Step::Idle)),
                    Out::Data(data) => {
                        let data = &data[..data.len().min(MAX_WRITE)];
                        append(&mut self.outgoing, data.len() + 64, |out| encrypted(w.encrypt(data, out)))
                            .map(|_| Some(Step::Wrote(data.len())))
                    }
                    Out::CloseNotify => append(&mut self.outgoing, 64, |out| encrypted(w.queue_close_notify(out)))
                        .map(|_| Some(Step::Wrote(0))),
                },
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Ok(Some(Step::Closed)),
                Ok(_) => Ok(Some(Step::Idle)),
            };
            self.discard(discard);
            match outcome {
                Ok(Some(step)) => return Ok(step),
                Ok(None) => {}
                Err(e) => {
                    self.encode_pending_alert();
                    return Err(invalid(e));
                }
            }
        }
    }

    /// After an error: the alert rustls queued, encoded into `outgoing` (bounded: each pass takes
    /// one queued record).
    fn encode_pending_alert(&mut self) {
        for _ in 0..8 {
            // The same buffer as before: rustls keeps positions in it between calls.
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming[..self.used]);
            let more = match state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    let start = self.outgoing.len();
                    self.outgoing.resize(start + 256, 0);
                    match e.encode(&mut self.outgoing[start..]) {
                        Ok(n) => self.outgoing.truncate(start + n),
                        Err(_) => self.outgoing.truncate(start),
                    }
                    true
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    true
                }
                _ => false,
            };
            self.discard(discard);
            if !more {
                return;
            }
        }
    }

    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.incoming.copy_within(n..self.used, 0);
        self.used -= n;
        if self.used == 0 {
            // Nothing pending: the buffer goes (an idle session keeps none).
            self.incoming = Vec::new();
        }
    }

    /// Reads more from the socket into `incoming`; `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.used >= MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "a TLS message larger than 70 KiB")));
        }
        // Read into this call's stack, not into `incoming`: a session parked in a read (idle,
        // waiting for its next packet) then holds no buffer at all, as OpenSSL releases its own.
        let mut chunk = [0u8; READ_SIZE];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        if n == 0 {
            self.eof = true;
        }
        self.incoming.truncate(self.used);
        self.incoming.extend_from_slice(buf.filled());
        self.used += n;
        Poll::Ready(Ok(n))
    }

    /// Sends what is in `outgoing`; the buffer goes once it is all sent.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.taken);
                buf.put_slice(&this.plain[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plain.len() {
                    this.plain = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let step = this.step(Out::Nothing);
            ready!(this.poll_flush_out(cx))?;
            match step? {
                Step::Traffic | Step::Wrote(_) => {}
                Step::Closed => this.peer_closed = true,
                Step::NeedRead | Step::Idle => {
                    if this.eof {
                        // A close without close_notify: what rustls (and tokio-rustls) report.
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed connection without sending TLS close_notify",
                        )));
                    }
                    ready!(this.poll_fill(cx))?;
                }
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What is already encrypted goes first: a peer that does not read holds the writer here.
        ready!(this.poll_flush_out(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Bounded: each pass either writes, reads or takes what arrived.
        for _ in 0..64 {
            match this.step(Out::Data(data))? {
                Step::Wrote(n) => {
                    // Sent as far as the socket takes it now; the rest goes with the next call.
                    let _ = this.poll_flush_out(cx)?;
                    return Poll::Ready(Ok(n));
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                // Application data arrived while writing (kept in `plain` for the reader), or the
                // state machine has nothing to say: try again.
                Step::Traffic | Step::Idle => {}
                Step::NeedRead => {
                    ready!(this.poll_flush_out(cx))?;
                    if ready!(this.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                    }
                }
            }
        }
        Poll::Ready(Err(io::Error::other("the TLS state machine would not take the data")))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            let _ = this.step(Out::CloseNotify);
        }
        ready!(this.poll_flush_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::certs::Identity;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server config for `localhost` and a client config that trusts it, on one protocol version.
    fn configs(
        version: &'static rustls::SupportedProtocolVersion,
    ) -> (Arc<rustls::ServerConfig>, rustls::ClientConfig) {
        let id = Identity::generate(&["localhost".to_owned()]).expect("identity");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(id.chain.clone(), id.key.clone_key())
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(id.chain.last().expect("ca").clone()).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), client)
    }

    /// A tokio-rustls client and this stream as the server, handshaken over an in-memory pipe.
    async fn connected(
        version: &'static rustls::SupportedProtocolVersion,
    ) -> (tokio_rustls::client::TlsStream<tokio::io::DuplexStream>, TlsStream<tokio::io::DuplexStream>) {
        let (server, client) = configs(version);
        let (a, b) = tokio::io::duplex(8 * 1024);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from("localhost").expect("name");
        let (c, s) = within("handshake", async { tokio::join!(connector.connect(name, a), accept(server, b)) }).await;
        (c.expect("client handshake"), s.expect("server handshake"))
    }

    /// `f`, or a panic naming `what` after 10 s.
    async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(10), f).await.unwrap_or_else(|_| panic!("{what}: stuck"))
    }

    /// Bytes both ways larger than a record, across TLS 1.3 and 1.2; a parked read holds no buffer;
    /// close_notify reads as the end, and the server's shutdown reaches the client as one.
    #[tokio::test]
    async fn carries_data_both_ways_and_closes_cleanly() {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let (mut c, mut s) = connected(version).await;
            let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let (w, r) = within("client to server", async {
                tokio::join!(
                    async {
                        c.write_all(&big).await?;
                        c.flush().await
                    },
                    async {
                        let mut got = vec![0u8; big.len()];
                        s.read_exact(&mut got).await.map(|_| got)
                    }
                )
            })
            .await;
            w.expect("client write");
            assert_eq!(r.expect("server read"), big, "{version:?}");
            assert_eq!(s.incoming.capacity(), 0, "nothing pending: no read buffer kept");
            let (w, r) = within("server to client", async {
                tokio::join!(
                    async {
                        s.write_all(&big).await?;
                        s.flush().await
                    },
                    async {
                        let mut got = vec![0u8; big.len()];
                        c.read_exact(&mut got).await.map(|_| got)
                    }
                )
            })
            .await;
            w.expect("server write");
            assert_eq!(r.expect("client read"), big);
            // Parked in a read with nothing arriving: the stream holds no buffer.
            let mut one = [0u8; 1];
            let parked = tokio::time::timeout(std::time::Duration::from_millis(20), s.read(&mut one)).await;
            assert!(parked.is_err(), "nothing was sent");
            assert_eq!((s.incoming.capacity(), s.outgoing.capacity(), s.plain.capacity()), (0, 0, 0));
            within("client close", c.shutdown()).await.expect("client close_notify");
            assert_eq!(within("server sees the end", s.read(&mut one)).await.expect("clean end"), 0);
            within("server close", s.shutdown()).await.expect("server close_notify");
            assert_eq!(within("client sees the end", c.read(&mut one)).await.expect("clean end at the client"), 0);
        }
    }

    /// A peer that drops the connection without close_notify is an UnexpectedEof, as in rustls.
    #[tokio::test]
    async fn a_close_without_close_notify_is_unexpected() {
        let (c, mut s) = connected(&rustls::version::TLS13).await;
        drop(c);
        let mut one = [0u8; 1];
        let e = s.read(&mut one).await.expect_err("no close_notify");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// A malformed ClientHello fails the handshake with an error, and the server sends an alert.
    #[tokio::test]
    async fn garbage_fails_the_handshake_with_an_alert() {
        let (server, _) = configs(&rustls::version::TLS13);
        let (mut a, b) = tokio::io::duplex(8 * 1024);
        let (w, s) = tokio::join!(
            // A handshake record holding a ClientHello of four bytes that are not one.
            a.write_all(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04ABCD"),
            accept(server, b)
        );
        w.expect("write");
        assert!(s.is_err(), "garbage must not complete a handshake");
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), a.read_to_end(&mut reply)).await;
        assert_eq!(reply.first(), Some(&0x15), "a TLS alert record: {reply:?}");
    }
}
