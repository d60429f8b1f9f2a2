//! Benchmark: what `authprobe storm` costs, against the emulator on this machine.
//!
//! 1. **10,000 devices** connect at once (`--hold 0`: each disconnects once connected) against
//!    `authprobe emulate` (its default RSA-2048 certificate, as IoT Core's ATS endpoints present, no
//!    limits switched on): the storm runs to completion; the storm's CPU per connect (its whole
//!    process: utime + stime, from wait4) beside the emulator's (from /proc), both divided by the
//!    connects the emulator accepted.
//! 2. **Memory per held device**: a storm of `--held N` devices (default 2,000) holds every connection
//!    until all are connected; its peak resident memory (ru_maxrss) less that of a one-device storm,
//!    divided by N (an upper bound: the peak includes the handshakes' transient buffers).
//! 3. **`--max-rate`**: storms at R = 100 and 500 connects a second; the achieved rate is the connect
//!    starts' rate from the report's attempts, (n - 1) / (last start - first start).
//!
//! Run: `cargo run --release --example bench_storm -- [--bin PATH] [--devices N] [--held N]`
//! (default binary: target/release/authprobe).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn raise_open_files() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain libc calls on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The CPU ticks (utime + stime) a running process has used, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split(' ').collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn tick_ms() -> f64 {
    // SAFETY: sysconf has no preconditions.
    1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The emulator, listening on a free port with its CA written to `dir`.
fn emulator(bin: &Path, dir: &Path) -> (Child, SocketAddr) {
    let config = dir.join("emulator.toml");
    std::fs::write(&config, "max_connections = 30000\n").expect("config");
    let mut child = Command::new(bin)
        .args(["emulate", "-q", "--listen", "127.0.0.1:0", "--allow-token", "bench-token", "--config"])
        .arg(&config)
        .arg("--write-ca")
        .arg(dir.join("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the listening line");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches([',', '.']).parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in the emulator's first line: {line}"));
    (child, addr)
}

/// One storm: its JSON report, its CPU (ms) and peak resident memory (KiB).
fn storm(bin: &Path, dir: &Path, addr: SocketAddr, extra: &[&str]) -> (serde_json::Value, f64, u64) {
    let ca = dir.join("ca.pem");
    let child = Command::new(bin)
        .args(["storm", "--endpoint", "localhost", "--connect-to", &addr.to_string(), "--token", "bench-token"])
        .args(["--authorizer", "MyAuthorizer"])
        .arg("--ca")
        .arg(&ca)
        .args(["--format", "json", "--seed", "1", "--duration", "300s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the storm");
    let pid = child.id() as libc::pid_t;
    let out = child.wait_with_output_and_usage(pid);
    let report: serde_json::Value = serde_json::from_slice(&out.0).expect("a storm report");
    (report, out.1, out.2)
}

trait WaitUsage {
    fn wait_with_output_and_usage(self, pid: libc::pid_t) -> (Vec<u8>, f64, u64);
}

impl WaitUsage for Child {
    /// Reads stdout to its end, then reaps the process with wait4 for its rusage.
    fn wait_with_output_and_usage(mut self, pid: libc::pid_t) -> (Vec<u8>, f64, u64) {
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(&mut self.stdout.take().expect("stdout"), &mut stdout).expect("read the report");
        let mut status = 0;
        // SAFETY: wait4 on our own child, with valid out-pointers; zeroed rusage is a valid value.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::wait4(pid, &mut status, 0, &mut usage);
            usage
        };
        let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
        (stdout, ms(usage.ru_utime) + ms(usage.ru_stime), usage.ru_maxrss as u64)
    }
}

fn main() {
    raise_open_files();
    let bin = PathBuf::from(arg("--bin").unwrap_or_else(|| "target/release/authprobe".into()));
    let devices: usize = arg("--devices").and_then(|d| d.parse().ok()).unwrap_or(10_000);
    let held: usize = arg("--held").and_then(|d| d.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("scratch");
    let (mut emu, addr) = emulator(&bin, dir.path());

    println!("## 1. {devices} devices at once against the emulator (RSA-2048, no limits)\n");
    let before = cpu_ticks(emu.id());
    let started = Instant::now();
    let n = devices.to_string();
    let (r, storm_ms, _) = storm(&bin, dir.path(), addr, &["--devices", &n, "--hold", "0", "--max-delay", "5s"]);
    let wall = started.elapsed().as_secs_f64();
    let emu_ms = (cpu_ticks(emu.id()) - before) as f64 * tick_ms();
    let accepted = r["accepted"].as_f64().unwrap_or(0.0);
    println!("| connected | attempts | wall | storm CPU / connect | emulator CPU / connect | ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} of {devices} ({}) | {} | {wall:.1} s | {:.3} ms | {:.3} ms | {:.2}× |",
        r["connected"],
        r["ended"].as_str().unwrap_or(""),
        r["attempted"],
        storm_ms / accepted,
        emu_ms / accepted,
        storm_ms / emu_ms
    );
    println!("\noutcomes: {}\n", r["outcomes"]);

    println!("## 2. Memory per held device ({held} held until all are connected)\n");
    let (_, _, base) = storm(&bin, dir.path(), addr, &["--devices", "1"]);
    let h = held.to_string();
    let ramp = arg("--ramp").unwrap_or_else(|| "0".into());
    let (r, _, peak) = storm(&bin, dir.path(), addr, &["--devices", &h, "--ramp", &ramp]);
    println!("| devices held | peak RSS | one-device RSS | per held device |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {} KiB | {base} KiB | {:.1} KiB |\n",
        r["connected"],
        peak,
        peak.saturating_sub(base) as f64 / held as f64
    );

    println!("## 3. --max-rate\n");
    println!("| --max-rate | connects | achieved (starts) | off by |");
    println!("|---|---|---|---|");
    for (rate, n) in [(100.0, "500"), (500.0, "2500")] {
        let (r, _, _) =
            storm(&bin, dir.path(), addr, &["--devices", n, "--hold", "0", "--max-rate", &rate.to_string()]);
        let mut starts: Vec<f64> =
            r["raw"]["attempts"].as_array().expect("attempts").iter().map(|a| a[1].as_f64().unwrap_or(0.0)).collect();
        starts.sort_by(f64::total_cmp);
        let span = (starts.last().copied().unwrap_or(0.0) - starts[0]) / 1000.0;
        let achieved = (starts.len() - 1) as f64 / span;
        println!("| {rate} | {} | {achieved:.1}/s | {:+.1} % |", starts.len(), (achieved / rate - 1.0) * 100.0);
    }
    let _ = emu.kill();
    let _ = emu.wait();
}
