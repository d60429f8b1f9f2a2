//! Reading a capture (pcap or pcapng, as `tcpdump -w` writes it) into TCP segments. A malformed or
//! truncated capture gives a warning per problem and the segments read so far, never a panic.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// At most this many packets are read from one capture.
pub(crate) const MAX_PACKETS: usize = 1_000_000;

/// At most this many payload bytes are kept per direction of a TCP connection: the handshake, the
/// CONNECT or request and the answer are in the first few kilobytes.
pub(crate) const MAX_FLOW_BYTES: usize = 256 * 1024;

/// At most this many payload bytes are kept from one capture, whatever its size: the capture is read
/// as a stream, so memory stays bounded by this, not by the file.
pub(crate) const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// What is kept while a capture streams by: the segments, the warnings, the payload budget.
#[derive(Default)]
struct Kept {
    out: Vec<Segment>,
    warnings: Vec<String>,
    per_flow: std::collections::HashMap<(SocketAddr, SocketAddr), usize>,
    total: usize,
    cut: bool,
    fragments: usize,
}

/// One TCP segment.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub at: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub payload: Vec<u8>,
}

/// Why a capture could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng capture ({0})")]
    NotACapture(String),
}

/// The TCP segments of a capture, and a warning for each packet that could not be read. The capture is
/// read as a stream (a file of any size, a pipe): only the payload budget is kept in memory.
pub(crate) fn segments(input: impl std::io::Read) -> Result<(Vec<Segment>, Vec<String>), CaptureError> {
    let mut input = std::io::BufReader::new(input);
    let magic = std::io::BufRead::fill_buf(&mut input).map_err(|e| CaptureError::NotACapture(e.to_string()))?;
    let pcapng = magic.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let mut kept = Kept::default();
    if pcapng {
        let mut reader =
            pcap_file::pcapng::PcapNgReader::new(input).map_err(|e| CaptureError::NotACapture(e.to_string()))?;
        let mut n = 0;
        // Interfaces of the current section, in the order declared.
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = reader.next_block() {
            n += 1;
            if n > MAX_PACKETS {
                kept.warnings.push(format!("only the first {MAX_PACKETS} blocks were read"));
                break;
            }
            match block {
                Ok(pcap_file::pcapng::Block::SectionHeader(_)) => links.clear(),
                Ok(pcap_file::pcapng::Block::InterfaceDescription(i)) => links.push(i.linktype),
                Ok(pcap_file::pcapng::Block::EnhancedPacket(p)) => {
                    let link = links.get(p.interface_id as usize).copied();
                    match link {
                        Some(link) => kept.push(n, link, p.timestamp, &p.data),
                        None => kept.warn(format!("block {n}: packet of an undeclared interface {}", p.interface_id)),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    kept.warnings.push(format!("block {n}: {e}; the rest of the capture is not read"));
                    break;
                }
            }
        }
    } else {
        let mut reader =
            pcap_file::pcap::PcapReader::new(input).map_err(|e| CaptureError::NotACapture(e.to_string()))?;
        let link = reader.header().datalink;
        let mut n = 0;
        while let Some(packet) = reader.next_packet() {
            n += 1;
            if n > MAX_PACKETS {
                kept.warnings.push(format!("only the first {MAX_PACKETS} packets were read"));
                break;
            }
            match packet {
                Ok(p) => kept.push(n, link, p.timestamp, &p.data),
                Err(e) => {
                    kept.warnings.push(format!("packet {n}: {e}; the capture ends there (truncated?)"));
                    break;
                }
            }
        }
    }
    Ok(kept.finish())
}

impl Kept {
    /// A warning, at most 20 of them.
    fn warn(&mut self, w: String) {
        if self.warnings.len() < 20 {
            self.warnings.push(w);
        }
    }

    fn finish(mut self) -> (Vec<Segment>, Vec<String>) {
        if self.fragments > 0 {
            self.warnings.push(format!(
                "{} IP fragment(s) not reassembled: a ClientHello or CONNECT split across IP fragments is not read \
                 (an MTU problem on the path? capture with `tcpdump -i any` on the device itself)",
                self.fragments
            ));
        }
        if self.cut {
            self.warnings.push(format!(
                "payload beyond {} KiB per direction of a connection, or {} MiB in all, was not kept",
                MAX_FLOW_BYTES / 1024,
                MAX_KEPT_BYTES / (1024 * 1024)
            ));
        }
        (self.out, self.warnings)
    }

    fn push(&mut self, n: usize, link: DataLink, at: Duration, data: &[u8]) {
        let Some(mut seg) = segment(self, n, link, at, data) else { return };
        let used = self.per_flow.entry((seg.src, seg.dst)).or_default();
        let room = MAX_FLOW_BYTES.saturating_sub(*used).min(MAX_KEPT_BYTES.saturating_sub(self.total));
        if seg.payload.len() > room {
            seg.payload.truncate(room);
            self.cut = true;
        }
        *used += seg.payload.len();
        self.total += seg.payload.len();
        // A per-flow table bounded like the packets: a capture of a scan keeps its counts only.
        if self.per_flow.len() > MAX_PACKETS {
            self.per_flow.clear();
        }
        self.out.push(seg);
    }
}

fn segment(kept: &mut Kept, n: usize, link: DataLink, at: Duration, data: &[u8]) -> Option<Segment> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then IP.
        DataLink::NULL | DataLink::LOOP if data.len() > 4 => SlicedPacket::from_ip(&data[4..]),
        // Linux "any" v2: a 20-byte header, then IP.
        DataLink::LINUX_SLL2 if data.len() > 20 => SlicedPacket::from_ip(&data[20..]),
        other => {
            kept.warn(format!(
                "packet {n}: link type {other:?} is not read (Ethernet, Linux SLL, raw IP, loopback are)"
            ));
            return None;
        }
    };
    let Ok(p) = sliced else {
        kept.warn(format!("packet {n}: not a readable IP packet"));
        return None;
    };
    let (src, dst): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            if ip.is_payload_fragmented() {
                kept.fragments += 1;
                return None;
            }
            (ip.header().source_addr().into(), ip.header().destination_addr().into())
        }
        Some(NetSlice::Ipv6(ip)) => {
            if ip.is_payload_fragmented() {
                kept.fragments += 1;
                return None;
            }
            (ip.header().source_addr().into(), ip.header().destination_addr().into())
        }
        _ => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else { return None };
    Some(Segment {
        at,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        seq: tcp.sequence_number(),
        payload: tcp.payload().to_vec(),
    })
}
