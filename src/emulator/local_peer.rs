//! Which local process is at the other end of a loopback TCP connection (Linux, from `/proc`).
//!
//! The handlers' Runtime API hands out events with devices' tokens in clear and takes allow answers,
//! so it must serve only the handler processes the emulator started. The official runtime clients
//! (`awslambdaric`, `aws-lambda-ric`) speak HTTP to `host:port` and carry nothing a server could
//! check — no Unix socket, no extra header — and must keep working unmodified. So the emulator checks
//! the peer itself: the connection's socket (found by its addresses in `/proc/net/tcp`) must be open
//! in a process of the handler's process group, or a descendant of the handler. Another local user's
//! process (or any other process of the same user) is refused before it reads a byte.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether the peer of the loopback connection `local` ← `peer` is the process `leader` (whose
/// process group it leads), a member of that group, or one of its descendants. An error says why it
/// could not be told (then the connection is refused too).
pub(crate) fn is_in_group(local: SocketAddr, peer: SocketAddr, leader: u32) -> Result<bool, String> {
    let Some((uid, inode)) = socket_of(peer, local)? else {
        return Err(format!("no socket from {peer} to {local} in /proc/net"));
    };
    // SAFETY: geteuid has no preconditions.
    if uid != unsafe { libc::geteuid() } {
        return Ok(false);
    }
    let wanted = format!("socket:[{inode}]");
    let holds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()))
        })
    };
    // The handler itself, most often; then its group and descendants.
    if holds(leader) {
        return Ok(true);
    }
    Ok(group_and_descendants(leader).into_iter().any(holds))
}

/// The uid and inode of the TCP socket bound to `from` and connected to `to`.
fn socket_of(from: SocketAddr, to: SocketAddr) -> Result<Option<(u32, u64)>, String> {
    let table = if from.is_ipv4() { "/proc/net/tcp" } else { "/proc/net/tcp6" };
    let text = std::fs::read_to_string(table).map_err(|e| format!("{table}: {e}"))?;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        if parse_addr(f[1]) == Some(from) && parse_addr(f[2]) == Some(to) {
            return Ok(f[7].parse().ok().zip(f[9].parse().ok()));
        }
    }
    Ok(None)
}

/// `0100007F:1F90` (the address as the kernel's 32-bit words, in this machine's byte order; the
/// port in hex) as a socket address.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bytes.len() {
        4 => Some(SocketAddr::from((Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?), port))),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
            Some(v6.to_ipv4_mapped().map_or(SocketAddr::from((v6, port)), |v4| SocketAddr::from((v4, port))))
        }
        _ => None,
    }
}

/// Processes in `leader`'s process group or descending from it (its children may start their own).
fn group_and_descendants(leader: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    // pid -> (parent, group), from /proc/<pid>/stat: `pid (comm) state ppid pgrp …`; the command
    // name may hold spaces and parentheses, so fields are counted after its last `)`.
    let procs: std::collections::HashMap<u32, (u32, u32)> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().skip(1);
            Some((pid, (rest.next()?.parse().ok()?, rest.next()?.parse().ok()?)))
        })
        .collect();
    let descends = |mut pid: u32| {
        // Bounded: a process tree is not deeper than this, and a loop in a racing read ends.
        for _ in 0..64 {
            match procs.get(&pid) {
                Some(&(parent, _)) if parent == leader => return true,
                Some(&(parent, _)) if parent > 1 => pid = parent,
                _ => return false,
            }
        }
        false
    };
    procs
        .iter()
        .filter(|&(&pid, &(_, group))| pid != leader && (group == leader || descends(pid)))
        .map(|(&p, _)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_parse() {
        let lo = SocketAddr::from(([127, 0, 0, 1], 8080));
        let word = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(parse_addr(&format!("{word:08X}:1F90")), Some(lo));
        assert_eq!(parse_addr("zz:1F90"), None);
    }

    #[test]
    fn a_connection_of_this_process_is_told_apart_from_a_group_it_is_not_in() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let local = server.local_addr().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // This process holds the client socket: it is "in its own group" when named as leader…
        assert!(is_in_group(local, peer, std::process::id()).unwrap());
        // …and not in the group of a process that does not hold it: a child of ours, say.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let other = is_in_group(local, peer, child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(!other.unwrap());
    }
}
