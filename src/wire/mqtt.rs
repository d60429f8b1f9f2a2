//! The MQTT channel, written once for probe and emulator, and the CONNECT/CONNACK a server reads and
//! answers ([`parse_connect`], [`Connack`]). The channel: MQTT packets on TLS bytes ([`Bytes`]) or in
//! WebSocket binary frames ([`Frames`]), read into a `BytesMut` that rumqttc's `mqttbytes` decodes.
//!
//! Everything a peer can do is bounded here: a read returns after at most [`MAX_IDLE_FRAMES`] control
//! or empty frames (with an [`idle`] error), yielding every 64, so that a caller's deadline fires even
//! when a peer floods frames that are always ready; a write that the peer does not take ends after
//! [`SEND_LIMIT`].

use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::mqttbytes::Error as V4Error;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
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
    /// The WebSocket stream.
    pub ws: WebSocketStream<S>,
    /// Whether text frames count as data (the probe) or are skipped (the emulator).
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
    /// MQTT over `ws`.
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

// CONNECT and CONNACK as a server reads and answers them: parsed and encoded by rumqttc, with the
// fixed header checked first so that a peer's bytes never cost more than their size.

/// A CONNECT, whichever version.
#[derive(Clone, Debug)]
pub struct Connect {
    /// 4 (MQTT 3.1.1) or 5.
    pub version: u8,
    /// The client ID.
    pub client_id: String,
    /// The keep-alive, in seconds.
    pub keep_alive: u16,
    /// MQTT 3.1.1 clean session / MQTT 5 clean start.
    pub clean: bool,
    /// The username, if one was sent.
    pub username: Option<String>,
    /// The password, if one was sent (a secret; it may be binary).
    pub password: Option<Vec<u8>>,
    /// MQTT 5's Authentication Method property (enhanced authentication), if sent.
    pub auth_method: Option<String>,
}

/// Why the bytes at the front of a buffer are not a CONNECT that can be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// Not a CONNECT, or a CONNECT whose fields do not parse; says what was wrong.
    Malformed(String),
    /// The packet announces more bytes than the limit.
    TooLarge {
        /// The size announced.
        announced: usize,
        /// The limit.
        limit: usize,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => f.write_str(why),
            Self::TooLarge { announced, limit } => {
                write!(f, "CONNECT announces {announced} bytes; the limit is {limit}")
            }
        }
    }
}

fn malformed(why: impl Into<String>) -> ConnectError {
    ConnectError::Malformed(why.into())
}

/// Parses a CONNECT from the front of `buf`; `Ok(None)` when more bytes are needed.
///
/// The fixed header is read first, in one pass over at most 5 bytes: a malformed remaining length or
/// one over `max` is refused at once, and the packet is only decoded once it has fully arrived, so
/// a peer streaming bytes costs neither copies nor unbounded memory.
pub fn parse_connect(buf: &mut BytesMut, max: usize) -> Result<Option<Connect>, ConnectError> {
    if buf.first().is_some_and(|b| b >> 4 != 1) {
        return Err(malformed(format!("first packet is not CONNECT (first bytes {})", super::hex_prefix(buf))));
    }
    let Some((header, remaining)) = fixed_header(buf)? else { return Ok(None) };
    if remaining > max {
        return Err(ConnectError::TooLarge { announced: remaining, limit: max });
    }
    if buf.len() < header + remaining {
        return Ok(None);
    }
    let Some(level) = protocol_level(buf) else {
        return Err(malformed("CONNECT too short for a protocol name and level"));
    };
    if level == 5 {
        return parse_connect_v5(buf, max);
    }
    match v4::Packet::read(buf, max) {
        Ok(v4::Packet::Connect(c)) => {
            let login = c.login;
            Ok(Some(Connect {
                version: 4,
                client_id: c.client_id,
                keep_alive: c.keep_alive,
                clean: c.clean_session,
                username: login.as_ref().map(|l| l.username.clone()).filter(|u| !u.is_empty()),
                password: login.map(|l| l.password.into_bytes()).filter(|p| !p.is_empty()),
                auth_method: None,
            }))
        }
        Ok(_) => Err(malformed("first packet is not CONNECT")),
        // The whole packet is here: "insufficient bytes" means its own fields overrun it.
        Err(V4Error::InsufficientBytes(_)) => Err(malformed("malformed CONNECT: a field overruns the packet")),
        Err(V4Error::PayloadSizeLimitExceeded(n)) => Err(ConnectError::TooLarge { announced: n, limit: max }),
        Err(e) => Err(malformed(format!("malformed CONNECT: {e}"))),
    }
}

/// The fixed header's length and the remaining length it announces; `None` until it has arrived.
/// A remaining length longer than 4 bytes is malformed (MQTT allows at most 268,435,455).
pub fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, ConnectError> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((2 + i, remaining)));
        }
    }
    Err(malformed(format!("malformed remaining length (more than 4 bytes): {}", super::hex_prefix(buf))))
}

/// The protocol level byte of a CONNECT (4 = 3.1.1, 5 = 5), once enough bytes have arrived.
fn protocol_level(buf: &[u8]) -> Option<u8> {
    // Fixed header: type byte, then a remaining length of 1-4 bytes (high bit = more follow).
    let len_bytes = buf.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    let at = 1 + len_bytes;
    let name_len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
    buf.get(at + 2 + name_len).copied()
}

fn parse_connect_v5(buf: &mut BytesMut, max: usize) -> Result<Option<Connect>, ConnectError> {
    use rumqttc::v5::mqttbytes::Error as V5Error;
    match v5::Packet::read(buf, Some(max as u32)) {
        Ok(v5::Packet::Connect(c, _will, login)) => Ok(Some(Connect {
            version: 5,
            client_id: c.client_id,
            keep_alive: c.keep_alive,
            clean: c.clean_start,
            username: login.as_ref().map(|l| l.username.clone()).filter(|u| !u.is_empty()),
            password: login.map(|l| l.password.into_bytes()).filter(|p| !p.is_empty()),
            auth_method: c.properties.and_then(|p| p.authentication_method),
        })),
        Ok(_) => Err(malformed("first packet is not CONNECT")),
        Err(V5Error::InsufficientBytes(_)) => Err(malformed("malformed MQTT 5 CONNECT: a field overruns the packet")),
        Err(V5Error::PayloadSizeLimitExceeded { pkt_size, .. }) => {
            Err(ConnectError::TooLarge { announced: pkt_size, limit: max })
        }
        Err(e) => Err(malformed(format!("malformed MQTT 5 CONNECT: {e}"))),
    }
}

/// MQTT 3.1.1's CONNACK return codes, as rumqttc names them.
pub use rumqttc::mqttbytes::v4::ConnectReturnCode as Code311;
/// MQTT 5's CONNACK reason codes, as rumqttc names them.
pub use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as Code5;

/// A CONNACK's code, typed by version: only codes the version defines can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connack {
    /// An MQTT 3.1.1 return code.
    V311(Code311),
    /// An MQTT 5 reason code.
    V5(Code5),
}

/// MQTT 5's reason codes with their values (MQTT 5 §3.2.2.2).
const CODES_5: [(Code5, u8); 22] = [
    (Code5::Success, 0x00),
    (Code5::UnspecifiedError, 0x80),
    (Code5::MalformedPacket, 0x81),
    (Code5::ProtocolError, 0x82),
    (Code5::ImplementationSpecificError, 0x83),
    (Code5::UnsupportedProtocolVersion, 0x84),
    (Code5::ClientIdentifierNotValid, 0x85),
    (Code5::BadUserNamePassword, 0x86),
    (Code5::NotAuthorized, 0x87),
    (Code5::ServerUnavailable, 0x88),
    (Code5::ServerBusy, 0x89),
    (Code5::Banned, 0x8a),
    (Code5::BadAuthenticationMethod, 0x8c),
    (Code5::TopicNameInvalid, 0x90),
    (Code5::PacketTooLarge, 0x95),
    (Code5::QuotaExceeded, 0x97),
    (Code5::PayloadFormatInvalid, 0x99),
    (Code5::RetainNotSupported, 0x9a),
    (Code5::QoSNotSupported, 0x9b),
    (Code5::UseAnotherServer, 0x9c),
    (Code5::ServerMoved, 0x9d),
    (Code5::ConnectionRateExceeded, 0x9f),
];

impl Connack {
    /// The CONNACK of an accepted CONNECT of `version` (4 or 5).
    pub fn accepted(version: u8) -> Self {
        if version == 5 { Self::V5(Code5::Success) } else { Self::V311(Code311::Success) }
    }

    /// MQTT 3.1.1's code with this value (0–5).
    pub fn v311(value: u8) -> Option<Self> {
        let code = match value {
            0 => Code311::Success,
            1 => Code311::RefusedProtocolVersion,
            2 => Code311::BadClientId,
            3 => Code311::ServiceUnavailable,
            4 => Code311::BadUserNamePassword,
            5 => Code311::NotAuthorized,
            _ => return None,
        };
        Some(Self::V311(code))
    }

    /// MQTT 5's reason code with this value, if MQTT 5 defines it for CONNACK.
    pub fn v5(value: u8) -> Option<Self> {
        CODES_5.iter().find(|(_, v)| *v == value).map(|(c, _)| Self::V5(*c))
    }

    /// The code's value on the wire.
    pub fn value(self) -> u8 {
        match self {
            Self::V311(c) => c as u8,
            Self::V5(c) => CODES_5.iter().find(|(k, _)| *k == c).map_or(0x80, |(_, v)| *v),
        }
    }

    /// The CONNACK packet (session present 0). Its fields are fixed sizes: encoding cannot fail (and
    /// would be logged by [`encode`]).
    pub fn packet(self) -> Vec<u8> {
        let mut out = BytesMut::new();
        let _logged = match self {
            Self::V5(code) => {
                encode(&mut out, |o| v5::ConnAck { session_present: false, code, properties: None }.write(o))
            }
            Self::V311(code) => encode(&mut out, |o| v4::ConnAck::new(code, false).write(o)),
        };
        out.to_vec()
    }
}

/// An MQTT 5 CONNACK 0 carrying the client identifier the server assigned.
pub fn connack_assigning(id: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    let properties = v5::ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: Some(id.to_owned()),
        topic_alias_max: None,
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    };
    let ack = v5::ConnAck { session_present: false, code: Code5::Success, properties: Some(properties) };
    // A failure (never: the ID is one the server made) is logged; the client then gets no CONNACK.
    let _logged = encode(&mut out, |o| ack.write(o));
    out.to_vec()
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

    #[test]
    fn connect_parses_across_versions_and_waits_for_bytes() {
        let mut buf = BytesMut::new();
        let mut c = v4::Connect::new("dev1");
        c.login = Some(v4::Login::new("u?token=t", "pw"));
        c.write(&mut buf).unwrap();
        let whole = buf.clone();
        let mut part = BytesMut::from(&whole[..whole.len() - 3]);
        assert!(parse_connect(&mut part, 1024).unwrap().is_none());
        let got = parse_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((got.version, got.client_id.as_str()), (4, "dev1"));
        assert_eq!(got.password.as_deref(), Some(&b"pw"[..]));

        let mut buf5 = BytesMut::new();
        let login = v5::Login { username: "u5".into(), password: "p5".into() };
        v5::Connect { keep_alive: 30, client_id: "dev5".into(), clean_start: true, properties: None }
            .write(&None, &Some(login), &mut buf5)
            .unwrap();
        let got = parse_connect(&mut buf5, 1024).unwrap().unwrap();
        assert_eq!((got.version, got.username.as_deref()), (5, Some("u5")));
    }

    #[test]
    fn huge_remaining_length_is_refused_without_waiting() {
        // CONNECT announcing 100 MB: 0x10 then a 4-byte remaining length.
        let mut buf = BytesMut::from(&[0x10u8, 0x80, 0xc2, 0xd7, 0x2f][..]);
        let err = parse_connect(&mut buf, 128 * 1024).unwrap_err();
        assert!(matches!(err, ConnectError::TooLarge { announced: 100_000_000, .. }), "{err}");
    }

    /// Case 1 of the hostile-input issue: `10 80 80 80 80` was taken for "need more bytes".
    #[test]
    fn malformed_remaining_length_is_refused_at_once() {
        let mut buf = BytesMut::from(&[0x10u8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01][..]);
        let err = parse_connect(&mut buf, 128 * 1024).unwrap_err();
        assert!(matches!(&err, ConnectError::Malformed(d) if d.contains("remaining length")), "{err}");
        // Short of the 5th byte, it is still a valid prefix.
        assert!(parse_connect(&mut BytesMut::from(&[0x10u8, 0x80, 0x80, 0x80][..]), 1024).unwrap().is_none());
    }

    #[test]
    fn a_complete_packet_whose_fields_overrun_it_is_malformed() {
        // Remaining length 4: protocol name length 4 ("MQTT") but nothing after it.
        let mut buf = BytesMut::from(&[0x10u8, 0x06, 0x00, 0x04, b'M', b'Q', b'T', b'T'][..]);
        assert!(matches!(parse_connect(&mut buf, 1024).unwrap_err(), ConnectError::Malformed(_)));
    }

    #[test]
    fn connack_codes_are_typed_and_keep_their_values() {
        for v in 0..=5 {
            assert_eq!(Connack::v311(v).unwrap().value(), v);
        }
        assert_eq!(Connack::v311(6), None);
        for (_, v) in CODES_5 {
            let c = Connack::v5(v).unwrap();
            assert_eq!(c.value(), v);
            // What rumqttc writes is the value the record names.
            assert_eq!(c.packet()[3], v, "{c:?}");
        }
        assert_eq!(Connack::v5(0x8b), None);
        assert_eq!(Connack::v311(5).unwrap().packet(), [0x20, 0x02, 0x00, 0x05]);
    }
}
