//! The one pure step from what happened to an outcome. Stages record raw observations; this decides
//! their meaning, so the rules are tested as a table, without sockets.

use super::outcome::{CertSummary, CloseHow, Detail, Kind, Outcome, show_bytes};
use crate::wire::alert::Alert;
use bytes::BytesMut;
use rustls::CertificateError;
use std::io::ErrorKind;

#[doc(hidden)]
/// A TLS handshake failure as the client saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum TlsError {
    Rustls(rustls::Error),
    Io { kind: ErrorKind, message: String },
}

#[doc(hidden)]
/// How a proxy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Refused,
    AuthRequired,
    Timeout,
}

#[doc(hidden)]
/// What happened at the point an attempt stopped, or its final answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    Resolve {
        name: String,
        error: String,
    },
    TcpError {
        address: String,
        kind: ErrorKind,
        message: String,
        elapsed_ms: u64,
    },
    TcpTimeout {
        address: String,
        elapsed_ms: u64,
    },
    /// The proxy did not open the tunnel.
    Proxy {
        proxy: String,
        failure: Failure,
        status: String,
        elapsed_ms: u64,
    },
    TlsError {
        error: TlsError,
        bytes_seen: u64,
        first_bytes: Vec<u8>,
        chain: Vec<CertSummary>,
        name_checked: String,
        /// Whether the chain is issued under Amazon's roots (`None`: no chain was presented).
        amazon_roots: Option<bool>,
    },
    TlsTimeout {
        elapsed_ms: u64,
    },
    /// A final answer other than 101 to the WebSocket upgrade.
    UpgradeResponse {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    UpgradeInvalid {
        problem: String,
    },
    UpgradeClosed {
        elapsed_ms: u64,
        bytes_seen: u64,
    },
    UpgradeTimeout {
        elapsed_ms: u64,
    },
    /// The first packet's bytes after CONNECT (possibly incomplete or not MQTT at all).
    MqttReply {
        version: u8,
        bytes: Vec<u8>,
    },
    MqttClosed {
        how: CloseHow,
        after_ms: u64,
    },
    MqttTimeout {
        waited_ms: u64,
    },
    HttpResponse {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    HttpClosed {
        elapsed_ms: u64,
        bytes_seen: u64,
    },
    HttpTimeout {
        elapsed_ms: u64,
    },
    HttpMalformed {
        error: String,
    },
    /// A page's CORS preflight was answered so that the browser stops: no publish is sent.
    PreflightRefused {
        status: u16,
        problem: String,
    },
}

impl Observation {
    /// The observation with everything the peer sent scrubbed of `secrets`, before anything of it is
    /// shown: bytes and bodies as windows (a server that echoed the CONNECT, cut at 32 bytes, would
    /// otherwise show the token's start), status lines, headers, certificate fields and errors.
    pub fn scrubbed(self, secrets: &crate::secret::Scrubber) -> Self {
        let bytes = |b: Vec<u8>| secrets.scrub_bytes(&b);
        let text = |t: String| secrets.scrub_window(&t);
        let headers = |h: Vec<(String, String)>| h.into_iter().map(|(n, v)| (text(n), text(v))).collect();
        let chain = |c: Vec<CertSummary>| {
            c.into_iter().map(|c| CertSummary { subject: text(c.subject), issuer: text(c.issuer), ..c }).collect()
        };
        match self {
            Self::Proxy { proxy, failure, status, elapsed_ms } => {
                Self::Proxy { proxy, failure, status: text(status), elapsed_ms }
            }
            Self::TlsError { error, bytes_seen, first_bytes, chain: c, name_checked, amazon_roots } => {
                let error = match error {
                    TlsError::Io { kind, message } => TlsError::Io { kind, message: text(message) },
                    e => e,
                };
                Self::TlsError {
                    error,
                    bytes_seen,
                    first_bytes: bytes(first_bytes),
                    chain: chain(c),
                    name_checked,
                    amazon_roots,
                }
            }
            Self::UpgradeResponse { status, headers: h, body } => {
                Self::UpgradeResponse { status, headers: headers(h), body: bytes(body) }
            }
            Self::UpgradeInvalid { problem } => Self::UpgradeInvalid { problem: text(problem) },
            Self::MqttReply { version, bytes: b } => Self::MqttReply { version, bytes: bytes(b) },
            Self::HttpResponse { status, headers: h, body } => {
                Self::HttpResponse { status, headers: headers(h), body: bytes(body) }
            }
            Self::HttpMalformed { error } => Self::HttpMalformed { error: text(error) },
            Self::PreflightRefused { status, problem } => Self::PreflightRefused { status, problem: text(problem) },
            Self::TcpError { address, kind, message, elapsed_ms } => {
                Self::TcpError { address, kind, message: text(message), elapsed_ms }
            }
            other => other,
        }
    }
}

#[doc(hidden)]
/// Classifies an observation into the contract's vocabulary.
pub fn classify(obs: &Observation) -> Outcome {
    use Observation as O;
    match obs {
        O::Resolve { name, error } => {
            Outcome::new(Kind::DnsFailed, Detail::Dns { name: name.clone(), error: error.clone() })
        }
        O::TcpError { address, kind, message, elapsed_ms } => {
            let k = match kind {
                ErrorKind::ConnectionRefused => Kind::TcpRefused,
                ErrorKind::TimedOut => Kind::TcpTimeout,
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Kind::TcpReset,
                _ => Kind::TcpUnreachable,
            };
            Outcome::new(k, Detail::Tcp { address: address.clone(), elapsed_ms: *elapsed_ms, error: message.clone() })
        }
        O::TcpTimeout { address, elapsed_ms } => Outcome::new(
            Kind::TcpTimeout,
            Detail::Tcp { address: address.clone(), elapsed_ms: *elapsed_ms, error: "no answer to SYN".into() },
        ),
        O::Proxy { proxy, failure, status, elapsed_ms } => {
            let kind = match failure {
                Failure::Refused => Kind::ProxyRefused,
                Failure::AuthRequired => Kind::ProxyAuthRequired,
                Failure::Timeout => Kind::ProxyTimeout,
            };
            Outcome::new(
                kind,
                Detail::Proxy { proxy: proxy.clone(), status_line: status.clone(), elapsed_ms: *elapsed_ms },
            )
        }
        O::TlsError { error, bytes_seen, first_bytes, chain, name_checked, amazon_roots } => {
            let mut o = classify_tls(error, *bytes_seen, first_bytes, chain, name_checked);
            if let Detail::Cert { amazon_roots: a, .. } = &mut o.detail {
                *a = *amazon_roots;
            }
            o
        }
        O::TlsTimeout { elapsed_ms } => Outcome::new(Kind::TlsTimeout, Detail::Timeout { elapsed_ms: *elapsed_ms }),
        O::UpgradeResponse { status, headers, body } => {
            Outcome::new(Kind::UpgradeRejected, http_detail(*status, headers, body))
        }
        O::UpgradeInvalid { problem } => {
            Outcome::new(Kind::UpgradeInvalid, Detail::UpgradeInvalid { problem: problem.clone() })
        }
        O::UpgradeClosed { elapsed_ms, bytes_seen } => {
            Outcome::new(Kind::UpgradeClosed, Detail::Elapsed { elapsed_ms: *elapsed_ms, bytes_seen: *bytes_seen })
        }
        O::UpgradeTimeout { elapsed_ms } => {
            Outcome::new(Kind::UpgradeTimeout, Detail::Timeout { elapsed_ms: *elapsed_ms })
        }
        O::MqttReply { version, bytes } => classify_connack(*version, bytes),
        O::MqttClosed { how, after_ms } => {
            Outcome::new(Kind::ClosedBeforeConnack, Detail::ClosedAfter { how: *how, after_ms: *after_ms })
        }
        O::MqttTimeout { waited_ms } => Outcome::new(Kind::ConnackTimeout, Detail::Wait { waited_ms: *waited_ms }),
        O::HttpResponse { status, headers, body } => {
            let kind = if *status == 200 { Kind::HttpOk } else { Kind::HttpRejected };
            Outcome::new(kind, http_detail(*status, headers, body))
        }
        O::HttpClosed { elapsed_ms, bytes_seen } => {
            Outcome::new(Kind::HttpClosed, Detail::Elapsed { elapsed_ms: *elapsed_ms, bytes_seen: *bytes_seen })
        }
        O::HttpTimeout { elapsed_ms } => Outcome::new(Kind::HttpTimeout, Detail::Timeout { elapsed_ms: *elapsed_ms }),
        O::HttpMalformed { error } => {
            Outcome::new(Kind::HttpMalformedResponse, Detail::Failure { error: error.clone() })
        }
        O::PreflightRefused { status, problem } => {
            Outcome::new(Kind::PreflightRefused, Detail::Preflight { status: *status, cors_problem: problem.clone() })
        }
    }
}

fn classify_tls(error: &TlsError, bytes_seen: u64, first: &[u8], chain: &[CertSummary], name: &str) -> Outcome {
    let cert = |kind, e: &CertificateError| {
        Outcome::new(
            kind,
            Detail::Cert {
                name_checked: name.to_owned(),
                error: format!("{e:?}"),
                chain: chain.to_vec(),
                amazon_roots: None,
            },
        )
    };
    // A peer whose first byte is not a TLS record type (alert 0x15, handshake 0x16) is not speaking TLS.
    let not_tls = !first.is_empty() && !matches!(first[0], 0x15 | 0x16);
    match error {
        TlsError::Rustls(rustls::Error::AlertReceived(desc)) => {
            let code = u8::from(*desc);
            Outcome::new(Kind::TlsAlert, Detail::Alert { alert: Alert(code), code })
        }
        TlsError::Rustls(rustls::Error::InvalidCertificate(e)) => match e {
            CertificateError::UnknownIssuer => cert(Kind::TlsCertUntrusted, e),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                cert(Kind::TlsCertNameMismatch, e)
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => cert(Kind::TlsCertExpired, e),
            _ => cert(Kind::TlsCertInvalid, e),
        },
        _ if not_tls => Outcome::new(Kind::TlsNotTls, Detail::NotTls { first_bytes: show_bytes(first) }),
        TlsError::Io {
            kind: ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe,
            ..
        } => Outcome::new(Kind::TlsClosed, Detail::Closed { how: CloseHow::Reset, bytes_seen }),
        TlsError::Io { .. } => Outcome::new(Kind::TlsClosed, Detail::Closed { how: CloseHow::Eof, bytes_seen }),
        TlsError::Rustls(other) => Outcome::new(Kind::TlsHandshakeFailed, Detail::Failure { error: other.to_string() }),
    }
}

/// Evidence of an HTTP answer: status, AWS error headers, and the JSON body's message and traceId.
fn http_detail(status: u16, headers: &[(String, String)], body: &[u8]) -> Detail {
    let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
    let message = field("message").or_else(|| {
        let text = String::from_utf8_lossy(body).trim().chars().take(200).collect::<String>();
        (!text.is_empty()).then_some(text)
    });
    Detail::Http {
        status,
        error_type: header("x-amzn-ErrorType"),
        request_id: header("x-amzn-RequestId"),
        message,
        trace_id: field("traceId"),
    }
}

/// MQTT 3.1.1 CONNACK return code names.
pub(crate) fn connack_reason_v4(code: u8) -> &'static str {
    match code {
        0 => "success",
        1 => "unacceptable_protocol_version",
        2 => "identifier_rejected",
        3 => "server_unavailable",
        4 => "bad_username_or_password",
        5 => "not_authorized",
        _ => "unknown",
    }
}

/// MQTT 5 reason code names (CONNACK, PUBACK, SUBACK).
pub(crate) fn reason_v5(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x80 => "unspecified_error",
        0x81 => "malformed_packet",
        0x82 => "protocol_error",
        0x83 => "implementation_specific_error",
        0x84 => "unsupported_protocol_version",
        0x85 => "client_identifier_not_valid",
        0x86 => "bad_username_or_password",
        0x87 => "not_authorized",
        0x88 => "server_unavailable",
        0x89 => "server_busy",
        0x8a => "banned",
        0x8c => "bad_authentication_method",
        0x90 => "topic_name_invalid",
        0x95 => "packet_too_large",
        0x97 => "quota_exceeded",
        0x99 => "payload_format_invalid",
        0x9a => "retain_not_supported",
        0x9b => "qos_not_supported",
        0x9c => "use_another_server",
        0x9d => "server_moved",
        0x9f => "connection_rate_exceeded",
        _ => "unknown",
    }
}

fn protocol_error(bytes: &[u8], error: impl Into<String>) -> Outcome {
    Outcome::new(Kind::MqttProtocolError, Detail::Protocol { bytes: show_bytes(bytes), error: error.into() })
}

/// Decodes the first packet after CONNECT, which must be a well-formed CONNACK.
fn classify_connack(version: u8, bytes: &[u8]) -> Outcome {
    if bytes.first() != Some(&0x20) {
        return protocol_error(bytes, "expected a CONNACK (first byte 0x20)");
    }
    let mut buf = BytesMut::from(bytes);
    let (code, session_present, reason_string) = if version == 5 {
        use rumqttc::v5::mqttbytes::v5::Packet;
        match Packet::read(&mut buf, Some(64 * 1024)) {
            Ok(Packet::ConnAck(ack)) => {
                // The numeric reason code is the byte after the acknowledge flags.
                let len_bytes = bytes.iter().skip(1).take(4).position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
                let code = bytes.get(2 + len_bytes).copied().unwrap_or(0xff);
                (code, ack.session_present, ack.properties.and_then(|p| p.reason_string))
            }
            Ok(other) => return protocol_error(bytes, format!("expected CONNACK, got {other:?}")),
            Err(e) => return protocol_error(bytes, format!("invalid MQTT 5 CONNACK: {e}")),
        }
    } else {
        use rumqttc::mqttbytes::v4::Packet;
        match Packet::read(&mut buf, 64 * 1024) {
            Ok(Packet::ConnAck(ack)) => (ack.code as u8, ack.session_present, None),
            Ok(other) => return protocol_error(bytes, format!("expected CONNACK, got {other:?}")),
            Err(e) => return protocol_error(bytes, format!("invalid CONNACK: {e}")),
        }
    };
    let reason = if version == 5 { reason_v5(code) } else { connack_reason_v4(code) };
    let kind = if code == 0 { Kind::ConnackAccepted } else { Kind::ConnackRefused };
    Outcome::new(kind, Detail::Connack { code, reason: reason.into(), session_present, reason_string })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    fn tls(error: TlsError, first: &[u8]) -> Observation {
        Observation::TlsError {
            error,
            bytes_seen: first.len() as u64,
            first_bytes: first.to_vec(),
            chain: vec![],
            name_checked: "e".into(),
            amazon_roots: None,
        }
    }

    fn io(kind: ErrorKind) -> TlsError {
        TlsError::Io { kind, message: String::new() }
    }

    fn tcp(kind: ErrorKind) -> Observation {
        Observation::TcpError { address: "a".into(), kind, message: String::new(), elapsed_ms: 1 }
    }

    fn check_table(cases: Vec<(Observation, Kind)>) {
        for (obs, kind) in cases {
            let out = classify(&obs);
            assert_eq!(out.kind, kind, "{obs:?}");
            assert_eq!(out.stage, kind.stage());
            assert_eq!(out.success, matches!(kind, Kind::ConnackAccepted | Kind::HttpOk));
        }
    }

    #[test]
    fn table_network_and_tls() {
        use Observation as O;
        check_table(vec![
            (O::Resolve { name: "x".into(), error: "nx".into() }, Kind::DnsFailed),
            (tcp(ErrorKind::ConnectionRefused), Kind::TcpRefused),
            (tcp(ErrorKind::ConnectionReset), Kind::TcpReset),
            (tcp(ErrorKind::NetworkUnreachable), Kind::TcpUnreachable),
            (O::TcpTimeout { address: "a".into(), elapsed_ms: 10 }, Kind::TcpTimeout),
            (
                tls(TlsError::Rustls(rustls::Error::AlertReceived(AlertDescription::UnrecognisedName)), &[0x15]),
                Kind::TlsAlert,
            ),
            (
                tls(TlsError::Rustls(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), &[0x16]),
                Kind::TlsCertUntrusted,
            ),
            (
                tls(TlsError::Rustls(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)), &[0x16]),
                Kind::TlsCertNameMismatch,
            ),
            (
                tls(TlsError::Rustls(rustls::Error::InvalidCertificate(CertificateError::Expired)), &[0x16]),
                Kind::TlsCertExpired,
            ),
            (
                tls(TlsError::Rustls(rustls::Error::InvalidCertificate(CertificateError::BadSignature)), &[0x16]),
                Kind::TlsCertInvalid,
            ),
            (tls(TlsError::Rustls(rustls::Error::General("x".into())), b"SSH-2.0"), Kind::TlsNotTls),
            (
                tls(
                    TlsError::Rustls(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon)),
                    &[0x16],
                ),
                Kind::TlsHandshakeFailed,
            ),
            (tls(io(ErrorKind::UnexpectedEof), b""), Kind::TlsClosed),
            (tls(io(ErrorKind::ConnectionReset), b""), Kind::TlsClosed),
            (O::TlsTimeout { elapsed_ms: 5 }, Kind::TlsTimeout),
        ]);
    }

    #[test]
    fn table_upgrade_mqtt_and_http() {
        use Observation as O;
        let json_403 = br#"{"message":"Forbidden","traceId":"t-1"}"#.to_vec();
        let aws = vec![("x-amzn-ErrorType".to_owned(), "ForbiddenException:".to_owned())];
        check_table(vec![
            (O::UpgradeResponse { status: 403, headers: aws.clone(), body: json_403.clone() }, Kind::UpgradeRejected),
            (O::UpgradeInvalid { problem: "no echo".into() }, Kind::UpgradeInvalid),
            (O::UpgradeClosed { elapsed_ms: 1, bytes_seen: 0 }, Kind::UpgradeClosed),
            (O::UpgradeTimeout { elapsed_ms: 1 }, Kind::UpgradeTimeout),
            (O::MqttReply { version: 4, bytes: vec![0x20, 2, 0, 0] }, Kind::ConnackAccepted),
            (O::MqttReply { version: 4, bytes: vec![0x20, 2, 0, 5] }, Kind::ConnackRefused),
            (O::MqttReply { version: 5, bytes: vec![0x20, 3, 0, 0x87, 0] }, Kind::ConnackRefused),
            (O::MqttReply { version: 5, bytes: vec![0x20, 3, 0, 0, 0] }, Kind::ConnackAccepted),
            (O::MqttReply { version: 4, bytes: b"HTTP/1.1 400 Bad Request".to_vec() }, Kind::MqttProtocolError),
            (O::MqttReply { version: 4, bytes: vec![0x20, 2, 0] }, Kind::MqttProtocolError),
            (O::MqttClosed { how: CloseHow::Eof, after_ms: 3 }, Kind::ClosedBeforeConnack),
            (O::MqttTimeout { waited_ms: 10 }, Kind::ConnackTimeout),
            (O::HttpResponse { status: 200, headers: vec![], body: br#"{"message":"OK"}"#.to_vec() }, Kind::HttpOk),
            (O::HttpResponse { status: 403, headers: aws, body: json_403 }, Kind::HttpRejected),
            (O::HttpClosed { elapsed_ms: 1, bytes_seen: 0 }, Kind::HttpClosed),
            (O::HttpTimeout { elapsed_ms: 1 }, Kind::HttpTimeout),
            (O::HttpMalformed { error: "bad".into() }, Kind::HttpMalformedResponse),
            (O::PreflightRefused { status: 200, problem: "no ACAO".into() }, Kind::PreflightRefused),
        ]);
    }

    #[test]
    fn evidence_is_typed() {
        let out =
            classify(&tls(TlsError::Rustls(rustls::Error::AlertReceived(AlertDescription::UnrecognisedName)), &[0x15]));
        assert_eq!(out.detail, Detail::Alert { alert: Alert::UNRECOGNIZED_NAME, code: 112 });
        let out = classify(&Observation::MqttReply { version: 5, bytes: vec![0x20, 3, 0, 0x87, 0] });
        assert_eq!(
            out.detail,
            Detail::Connack {
                code: 0x87,
                reason: "not_authorized".into(),
                session_present: false,
                reason_string: None
            }
        );
        let out = classify(&Observation::HttpResponse {
            status: 403,
            headers: vec![
                ("X-Amzn-ErrorType".into(), "ForbiddenException:".into()),
                ("x-amzn-RequestId".into(), "r1".into()),
            ],
            body: br#"{"message":"Forbidden","traceId":"t1"}"#.to_vec(),
        });
        assert_eq!(
            out.detail,
            Detail::Http {
                status: 403,
                error_type: Some("ForbiddenException:".into()),
                request_id: Some("r1".into()),
                message: Some("Forbidden".into()),
                trace_id: Some("t1".into())
            }
        );
        let json = serde_json::to_value(classify(&Observation::MqttClosed { how: CloseHow::CloseNotify, after_ms: 7 }))
            .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"stage": "mqtt", "kind": "closed_before_connack", "success": false, "detail": {"how": "close_notify", "after_ms": 7}})
        );
    }
}
