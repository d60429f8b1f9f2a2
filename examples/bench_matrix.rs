//! Benchmark: the quick (or full) matrix against the in-process emulator with 300 ms of injected
//! authorizer latency, compared with what its attempts allow: the slowest of them run alone, or, where
//! longer, the chain of MQTT attempts that share the device's client ID (the baselines of mqtt and
//! wss), which IoT Core's one connect a second per client ID spaces `--spacing` (1.1 s) apart, start
//! to start. Target: matrix wall time at most 1.1× that bound.
//!
//! Run: `cargo run --release --example bench_matrix [rounds] [quick|full] [mqtt|wss|https]` (default
//! 5 rounds of the quick matrix over all three transports; prints each and the median).

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
    let mut plan = ProbePlan::builder(ENDPOINT, credentials);
    plan.connect_to(&addr.ip().to_string(), Some(addr.port()))
        .client_id("bench")
        .trust(Trust::Roots(roots))
        // The matrix alone: follow-ups are a second, spaced round.
        .follow_up(false);
    let (level, name) = match std::env::args().nth(2).as_deref() {
        Some("full") => (Level::Full, "full"),
        _ => (Level::Quick, "quick"),
    };
    if let Some(t) = std::env::args().nth(3) {
        // One transport: no two baselines share the device's client ID, so the bound is the slowest.
        use authprobe::auth::event::Transport;
        let one = Transport::ALL.into_iter().find(|x| format!("{x}") == t).ok_or(format!("transport {t}?"))?;
        plan.transports(vec![one]);
    }
    let plan = plan.build()?;
    let specs = variants(&plan, level);
    println!("{name} matrix: {} attempts, authorizer latency {} ms, 2 cores", specs.len(), LATENCY.as_millis());
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let mut slowest = Duration::ZERO;
        let mut alone = Vec::new();
        for spec in &specs {
            let t = Instant::now();
            authprobe::probe::attempt::run(&plan, spec).await;
            slowest = slowest.max(t.elapsed());
            alone.push(t.elapsed());
        }
        let bound = slowest.max(chain_bound(&specs, &alone, plan.follow_up_spacing()));
        let t = Instant::now();
        let report =
            authprobe::investigate::run_with(&plan, &specs, Schedule { parallel: 16, spacing: None }, &Quiet).await;
        let matrix = t.elapsed();
        let ratio = matrix.as_secs_f64() / bound.as_secs_f64();
        ratios.push(ratio);
        println!(
            "round {round}: slowest single attempt {:>4} ms, client-ID chain bound {:>4} ms, whole matrix {:>4} ms, ratio to the bound {ratio:.2} (exit code {})",
            slowest.as_millis(),
            bound.as_millis(),
            matrix.as_millis(),
            report.exit_code
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!("median ratio {median:.2} (target <= 1.10): {}", if median <= 1.1 { "met" } else { "NOT met" });
    Ok(())
}

/// The shortest time the MQTT attempts sharing a client ID can take: each starts once the one before
/// has ended and at least `gap` after it started (each taking as long as it did alone).
fn chain_bound(specs: &[authprobe::probe::AttemptSpec], alone: &[Duration], gap: Duration) -> Duration {
    use authprobe::auth::event::Transport;
    let mut ids: Vec<&str> = Vec::new();
    let mut longest = Duration::ZERO;
    for s in specs.iter().filter(|s| s.transport != Transport::Https) {
        if ids.contains(&s.client_id.as_str()) {
            continue;
        }
        ids.push(&s.client_id);
        let (mut start, mut end) = (None::<Duration>, Duration::ZERO);
        let chain =
            specs.iter().zip(alone).filter(|(t, _)| t.transport != Transport::Https && t.client_id == s.client_id);
        for (_, d) in chain {
            let begin = start.map_or(Duration::ZERO, |b| end.max(b + gap));
            start = Some(begin);
            end = begin + *d;
        }
        longest = longest.max(end);
    }
    longest
}
