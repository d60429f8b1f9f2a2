//! Reading a capture (pcap or pcapng, as `tcpdump -w` writes it) into TCP segments. A malformed or
//! truncated capture gives a warning per problem and the segments read so far, never a panic.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// At most this many packets are read from one capture.
pub(crate) const MAX_PACKETS: usize = 1_000_000;

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

/// The TCP segments of a capture, and a warning for each packet that could not be read.
pub(crate) fn segments(bytes: &[u8]) -> Result<(Vec<Segment>, Vec<String>), CaptureError> {
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader =
            pcap_file::pcapng::PcapNgReader::new(bytes).map_err(|e| CaptureError::NotACapture(e.to_string()))?;
        let mut n = 0;
        // Interfaces of the current section, in the order declared.
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = reader.next_block() {
            n += 1;
            if n > MAX_PACKETS {
                warnings.push(format!("only the first {MAX_PACKETS} blocks were read"));
                break;
            }
            match block {
                Ok(pcap_file::pcapng::Block::SectionHeader(_)) => links.clear(),
                Ok(pcap_file::pcapng::Block::InterfaceDescription(i)) => links.push(i.linktype),
                Ok(pcap_file::pcapng::Block::EnhancedPacket(p)) => {
                    let link = links.get(p.interface_id as usize).copied();
                    match link {
                        Some(link) => push(&mut out, &mut warnings, n, link, p.timestamp, &p.data),
                        None => {
                            warnings.push(format!("block {n}: packet of an undeclared interface {}", p.interface_id))
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warnings.push(format!("block {n}: {e}; the rest of the capture is not read"));
                    break;
                }
            }
        }
    } else {
        let mut reader =
            pcap_file::pcap::PcapReader::new(bytes).map_err(|e| CaptureError::NotACapture(e.to_string()))?;
        let link = reader.header().datalink;
        let mut n = 0;
        while let Some(packet) = reader.next_packet() {
            n += 1;
            if n > MAX_PACKETS {
                warnings.push(format!("only the first {MAX_PACKETS} packets were read"));
                break;
            }
            match packet {
                Ok(p) => push(&mut out, &mut warnings, n, link, p.timestamp, &p.data),
                Err(e) => {
                    warnings.push(format!("packet {n}: {e}; the capture ends there (truncated?)"));
                    break;
                }
            }
        }
    }
    Ok((out, warnings))
}

fn push(out: &mut Vec<Segment>, warnings: &mut Vec<String>, n: usize, link: DataLink, at: Duration, data: &[u8]) {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then IP.
        DataLink::NULL | DataLink::LOOP if data.len() > 4 => SlicedPacket::from_ip(&data[4..]),
        // Linux "any" v2: a 20-byte header, then IP.
        DataLink::LINUX_SLL2 if data.len() > 20 => SlicedPacket::from_ip(&data[20..]),
        other => {
            if warnings.len() < 20 {
                warnings.push(format!(
                    "packet {n}: link type {other:?} is not read (Ethernet, Linux SLL, raw IP, loopback are)"
                ));
            }
            return;
        }
    };
    let Ok(p) = sliced else {
        if warnings.len() < 20 {
            warnings.push(format!("packet {n}: not a readable IP packet"));
        }
        return;
    };
    let (src, dst): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        Some(NetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        _ => return,
    };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else { return };
    out.push(Segment {
        at,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        seq: tcp.sequence_number(),
        payload: tcp.payload().to_vec(),
    });
}
