//! The byte channel an MQTT session runs over: TLS directly, or WebSocket binary frames on TLS.

use super::tls::Rewind;
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use std::io;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Control or empty WebSocket frames accepted in a row while waiting for data.
const MAX_IDLE_FRAMES: usize = 1024;

/// Room made in the read buffer before each TLS read: an MQTT packet of a held session is small;
/// a larger one arrives over several reads.
const READ_RESERVE: usize = 512;

pub(crate) type Tls = tokio_rustls::server::TlsStream<Rewind<TcpStream>>;

pub(crate) enum Channel {
    Tls(Box<Tls>),
    Ws(Box<WebSocketStream<Tls>>),
}

impl Channel {
    /// Appends what arrives next to `buf`; `Ok(0)` means the peer closed.
    pub(crate) async fn read_more(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Tls(s) => {
                // Straight into `buf` (rustls has the plaintext already): no stack array, which would
                // sit in every held session's task.
                buf.reserve(READ_RESERVE);
                s.read_buf(buf).await
            }
            Self::Ws(ws) => {
                // Frames already buffered are ready without waiting, so a flood of pings or empty
                // frames would never let the caller's deadline fire: they are bounded here.
                for _ in 0..MAX_IDLE_FRAMES {
                    match ws.next().await {
                        None | Some(Ok(Message::Close(_))) => return Ok(0),
                        Some(Ok(Message::Binary(b))) => {
                            buf.extend_from_slice(&b);
                            // An empty binary frame is not the end of the stream.
                            if !b.is_empty() {
                                return Ok(b.len());
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(WsError::Capacity(e))) => return Err(io::Error::new(io::ErrorKind::FileTooLarge, e)),
                        Some(Err(e)) => return Err(io::Error::other(e)),
                    }
                }
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{MAX_IDLE_FRAMES} control or empty frames without data"),
                ))
            }
        }
    }

    /// Writes `bytes`; a peer that stops reading cannot hold the write up for more than 10 s.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            match self {
                Self::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Self::Ws(ws) => ws.send(Message::binary(bytes.to_vec())).await.map_err(io::Error::other),
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), write)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "the peer does not read")))
    }

    /// Closes the connection: TLS close_notify then FIN (no WebSocket close frame, as IoT Core closes).
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            match self {
                Self::Tls(mut s) => {
                    let _ = s.shutdown().await;
                }
                Self::Ws(mut ws) => {
                    let _ = ws.get_mut().shutdown().await;
                }
            }
        })
        .await;
    }
}
