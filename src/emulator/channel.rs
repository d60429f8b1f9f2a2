//! The byte channel an MQTT session runs over: TLS directly, or WebSocket binary frames on TLS — the
//! shared [`crate::wire::mqtt`] channel, boxed (a held session's task stays small).

use super::tls::Rewind;
use crate::wire::mqtt::{Bytes, Channel as _, Frames};
use bytes::BytesMut;
use std::io;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

pub(crate) type Tls = tokio_rustls::server::TlsStream<Rewind<TcpStream>>;

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
