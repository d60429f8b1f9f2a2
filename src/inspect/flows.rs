//! TCP segments grouped into connections, each direction's bytes put back in order (retransmissions
//! dropped, at most [`MAX_STREAM`] bytes kept), and how the connection ended.

use super::capture::Segment;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Bytes kept per direction: enough for the hellos, the certificates and the first answer.
pub(crate) const MAX_STREAM: usize = 64 * 1024;

/// Who did something on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

/// One TCP connection of the capture.
#[derive(Clone, Debug)]
pub(crate) struct Flow {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub started: Duration,
    /// The server answered the SYN (SYN-ACK).
    pub syn_ack: bool,
    /// The SYN was seen (else the capture started mid-connection).
    pub syn: bool,
    pub client_bytes: Vec<u8>,
    pub server_bytes: Vec<u8>,
    /// When the client's first byte was sent.
    pub client_data_at: Option<Duration>,
    /// The first FIN or RST: who sent it, whether it was a reset, and when.
    pub ended: Option<(Side, bool, Duration)>,
    /// A side sent the same stream bytes twice with different data (overlapping retransmissions):
    /// the reassembled bytes are one reading of several.
    pub conflicting: Vec<Side>,
}

#[derive(Default)]
struct Stream {
    base: Option<u32>,
    pieces: BTreeMap<u32, Vec<u8>>,
    /// Overlapping segments disagreed on a byte.
    conflict: bool,
}

impl Stream {
    fn add(&mut self, seq: u32, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let offset = seq.wrapping_sub(base);
        // Bytes far beyond what is kept (or before the base: wrapped) are not needed.
        if offset as usize >= MAX_STREAM {
            return;
        }
        if !self.conflict {
            self.conflict = self.disagrees(offset, payload);
        }
        let entry = self.pieces.entry(offset).or_default();
        if payload.len() > entry.len() {
            *entry = payload.to_vec();
        }
    }

    /// Whether a piece already kept overlaps `payload` at `offset` with other bytes. Looks at the
    /// nearest 64 pieces starting before its end: bounded, whatever the capture holds.
    fn disagrees(&self, offset: u32, payload: &[u8]) -> bool {
        let start = offset as usize;
        let end = start + payload.len();
        self.pieces.range(..end as u32).rev().take(64).any(|(&o, piece)| {
            let (o, p_end) = (o as usize, o as usize + piece.len());
            let (lo, hi) = (start.max(o), end.min(p_end));
            lo < hi && piece[lo - o..hi - o] != payload[lo - start..hi - start]
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (&offset, piece) in &self.pieces {
            let offset = offset as usize;
            if offset > out.len() {
                break; // a gap: what follows was not captured
            }
            let skip = out.len() - offset;
            if skip < piece.len() {
                out.extend_from_slice(&piece[skip..]);
            }
            if out.len() >= MAX_STREAM {
                out.truncate(MAX_STREAM);
                break;
            }
        }
        out
    }
}

/// Connections in the order they started.
pub(crate) fn flows(segments: &[Segment]) -> Vec<Flow> {
    struct Building {
        flow: Flow,
        to_server: Stream,
        to_client: Stream,
    }
    let mut by_key: BTreeMap<(SocketAddr, SocketAddr), usize> = BTreeMap::new();
    let mut out: Vec<Building> = Vec::new();
    for s in segments {
        let key = if s.src <= s.dst { (s.src, s.dst) } else { (s.dst, s.src) };
        // A new SYN on a finished pair is a new connection (ports reused).
        let reuse = by_key.get(&key).is_some_and(|&i| s.syn && !s.ack && out[i].flow.ended.is_some());
        let i = match by_key.get(&key) {
            Some(&i) if !reuse => i,
            _ => {
                // The client is who sends the SYN; without one, who sends first.
                let (client, server) = if s.syn && s.ack { (s.dst, s.src) } else { (s.src, s.dst) };
                out.push(Building {
                    flow: Flow {
                        client,
                        server,
                        started: s.at,
                        syn_ack: false,
                        syn: false,
                        client_bytes: Vec::new(),
                        server_bytes: Vec::new(),
                        client_data_at: None,
                        ended: None,
                        conflicting: Vec::new(),
                    },
                    to_server: Stream::default(),
                    to_client: Stream::default(),
                });
                by_key.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        let b = &mut out[i];
        let from_client = s.src == b.flow.client;
        if s.syn {
            if from_client {
                b.flow.syn = true;
                b.to_server.base = Some(s.seq.wrapping_add(1));
            } else {
                b.flow.syn_ack = true;
                b.to_client.base = Some(s.seq.wrapping_add(1));
            }
        }
        if from_client {
            if !s.payload.is_empty() && b.flow.client_data_at.is_none() {
                b.flow.client_data_at = Some(s.at);
            }
            b.to_server.add(s.seq, &s.payload);
        } else {
            b.to_client.add(s.seq, &s.payload);
        }
        if (s.fin || s.rst) && b.flow.ended.is_none() {
            b.flow.ended = Some((if from_client { Side::Client } else { Side::Server }, s.rst, s.at));
        }
    }
    out.into_iter()
        .map(|mut b| {
            b.flow.client_bytes = b.to_server.bytes();
            b.flow.server_bytes = b.to_client.bytes();
            let sides = [(b.to_server.conflict, Side::Client), (b.to_client.conflict, Side::Server)];
            b.flow.conflicting = sides.into_iter().filter_map(|(c, side)| c.then_some(side)).collect();
            b.flow
        })
        .collect()
}
