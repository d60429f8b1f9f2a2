//! Benchmark: the quick matrix against the in-process emulator with 300 ms of injected authorizer
//! latency, compared with the slowest of its attempts run alone. Target: matrix wall time at most
//! 1.5× the slowest single attempt.
//!
//! Run: `cargo run --release --example bench_matrix [rounds] [quick|full]` (default 5 rounds of the
//! quick matrix; prints each and the median).

use authprobe::emulator::{self, Authorizer, EmulatorConfig, Function, Rule};
use authprobe::probe::matrix::{Level, variants};
use authprobe::probe::{Credentials, ProbePlan, Quiet, Schedule, Trust};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::time::{Duration, Instant};

const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";
const LATENCY: Duration = Duration::from_millis(300);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(5);
    let mut cfg = EmulatorConfig::new(vec![ENDPOINT.into()])?;
    let mut a = Authorizer::new("BenchAuthorizer", "token");
    a.function = Function::Rules(vec![Rule::allow_all("bench-token")]);
    cfg.authorizers.push(a);
    cfg.latency = LATENCY;
    let ca = cfg.identity.ca_pem.clone().unwrap_or_default();
    let roots: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(ca.as_bytes()).collect::<Result<_, _>>()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(emulator::run(listener, cfg, std::future::pending()));

    let credentials = Credentials {
        authorizer: Some("BenchAuthorizer".into()),
        token_key_name: "token".into(),
        token: Some("bench-token".into()),
        ..Default::default()
    };
    let plan = ProbePlan {
        connect_to: Some((addr.ip().to_string(), Some(addr.port()))),
        client_id: "bench".into(),
        trust: Trust::Roots(roots),
        // The matrix alone: follow-ups are a second, spaced round.
        follow_up: false,
        ..ProbePlan::new(ENDPOINT, credentials)
    };
    let (level, name) = match std::env::args().nth(2).as_deref() {
        Some("full") => (Level::Full, "full"),
        _ => (Level::Quick, "quick"),
    };
    let specs = variants(&plan, level);
    println!("{name} matrix: {} attempts, authorizer latency {} ms, 2 cores", specs.len(), LATENCY.as_millis());
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let mut slowest = Duration::ZERO;
        for spec in &specs {
            let t = Instant::now();
            authprobe::probe::attempt::run(&plan, spec).await;
            slowest = slowest.max(t.elapsed());
        }
        let t = Instant::now();
        let report =
            authprobe::investigate::run_with(&plan, &specs, Schedule { parallel: 16, spacing: None }, &Quiet).await;
        let matrix = t.elapsed();
        let ratio = matrix.as_secs_f64() / slowest.as_secs_f64();
        ratios.push(ratio);
        println!(
            "round {round}: slowest single attempt {:>4} ms, whole matrix {:>4} ms, ratio {ratio:.2} (exit code {})",
            slowest.as_millis(),
            matrix.as_millis(),
            report.exit_code
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!("median ratio {median:.2} (target <= 1.50): {}", if median <= 1.5 { "met" } else { "NOT met" });
    Ok(())
}
