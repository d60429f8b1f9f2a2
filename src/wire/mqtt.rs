//! The MQTT channel, written once for probe and emulator: MQTT packets on TLS bytes ([`Bytes`]) or in
//! WebSocket binary frames ([`Frames`]), read into a `BytesMut` that rumqttc's `mqttbytes` decodes.
//!
//! Everything a peer can do is bounded here: a read returns after at most [`MAX_IDLE_FRAMES`] control
//! or empty frames (with an [`idle`] error), yielding every 64, so that a caller's deadline fires even
//! when a peer floods frames that are always ready; a write that the peer does not take ends after
//! [`SEND_LIMIT`].

use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Control or empty WebSocket frames accepted by one read while waiting for data.
pub const MAX_IDLE_FRAMES: usize = 1024;

/// Room made in the read buffer before each read of a byte stream: MQTT packets are small; a larger
/// one arrives over several reads.
const READ_RESERVE: usize = 512;

/// How long a write may wait for the peer to take it.
pub const SEND_LIMIT: Duration = Duration::from_secs(10);

/// How MQTT packets travel: TLS bytes, or WebSocket binary frames.
pub trait Channel: Send {
    /// Appends what arrives next to `buf`; `Ok(0)` when the peer closed. An [`idle`] error after
    /// [`MAX_IDLE_FRAMES`] frames without data: the caller checks its deadline and may read again.
    fn read_some(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;

    /// Writes one whole MQTT packet (or several) and flushes; the peer cannot hold it up for more than
    /// [`SEND_LIMIT`].
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// Whether `e` is the end of a read that saw only control or empty frames (not a failure).
pub fn idle(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted && e.get_ref().is_some_and(|i| i.is::<IdleFrames>())
}

#[derive(Debug, thiserror::Error)]
#[error("{MAX_IDLE_FRAMES} control or empty WebSocket frames without data")]
struct IdleFrames;

/// MQTT directly on a byte stream (TLS).
pub struct Bytes<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Channel for Bytes<S> {
    async fn read_some(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        // Straight into `buf` (TLS has the plaintext already): no stack array, which would sit in
        // every held session's task.
        buf.reserve(READ_RESERVE);
        self.0.read_buf(buf).await
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            self.0.write_all(bytes).await?;
            self.0.flush().await
        };
        limited(write).await
    }
}

/// MQTT in WebSocket binary frames. `text_is_data`: a text frame's bytes count as data (the probe,
/// which classifies whatever a server sends) or are skipped like a control frame (the emulator).
pub struct Frames<S> {
    pub ws: WebSocketStream<S>,
    pub text_is_data: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Channel for Frames<S> {
    async fn read_some(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        // Frames a peer sends back to back are ready without waiting, so a caller's timeout alone
        // would never fire: idle frames are counted, and the task yields every 64 of them.
        for n in 1..=MAX_IDLE_FRAMES {
            let message = match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Ok(m)) => m,
                Some(Err(e)) => return ws_read_error(e),
            };
            let data: &[u8] = match &message {
                Message::Binary(b) => b,
                Message::Text(t) if self.text_is_data => t.as_bytes(),
                _ => &[],
            };
            if !data.is_empty() {
                buf.extend_from_slice(data);
                return Ok(data.len());
            }
            if n % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Err(io::Error::new(io::ErrorKind::Interrupted, IdleFrames))
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async { self.ws.send(Message::binary(bytes.to_vec())).await.map_err(ws_write_error) };
        limited(write).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Frames<S> {
    pub fn new(ws: WebSocketStream<S>, text_is_data: bool) -> Self {
        Self { ws, text_is_data }
    }
}

async fn limited(write: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    tokio::time::timeout(SEND_LIMIT, write)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "the peer does not read")))
}

/// A WebSocket read error as the byte stream's: the TLS error under it as is (its kind says reset or
/// EOF, and it may carry a TLS alert); a stream that ended cleanly without a close frame as a close;
/// a protocol violation as invalid data, saying which.
fn ws_read_error(e: WsError) -> io::Result<usize> {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Io(io) => Err(io),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed => Ok(0),
        WsError::Capacity(c) => Err(io::Error::new(io::ErrorKind::FileTooLarge, c)),
        other => Err(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

fn ws_write_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(io) => io,
        other => io::Error::new(io::ErrorKind::BrokenPipe, other),
    }
}

/// Appends one packet encoded by rumqttc's `write`. rumqttc refuses only fields over MQTT's limits (a
/// string over 65,535 bytes); every caller's fields are within them (checked inputs, or fields just
/// decoded from the wire), so a refusal is a bug: it is logged and returned, never a packet silently
/// missing.
pub fn encode<E: std::fmt::Display>(
    out: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
) -> Result<(), String> {
    write(out).map(drop).map_err(|e| {
        let e = format!("MQTT packet not encoded: {e}");
        tracing::error!("{e}");
        e
    })
}

/// Bytes needed for the whole packet at the front of `buf`, when its fixed header has arrived
/// (`None` until then). Five length bytes is malformed: what is there is taken as the whole (bad)
/// packet, for the caller to classify.
pub fn packet_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, b) in buf.iter().skip(1).take(4).enumerate() {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(1 + i + 1 + len);
        }
    }
    (buf.len() >= 5).then_some(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_len_reads_the_remaining_length() {
        assert_eq!(packet_len(&[0x20]), None);
        assert_eq!(packet_len(&[0x20, 0x02, 0, 0]), Some(4));
        assert_eq!(packet_len(&[0x30, 0x80, 0x01]), Some(3 + 128));
        assert_eq!(packet_len(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), Some(6));
    }

    #[test]
    fn idle_is_only_the_idle_frames_error() {
        assert!(idle(&io::Error::new(io::ErrorKind::Interrupted, IdleFrames)));
        assert!(!idle(&io::Error::new(io::ErrorKind::Interrupted, "signal")));
        assert!(!idle(&io::Error::other(IdleFrames)));
    }
}
