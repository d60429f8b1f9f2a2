//! Benchmark: the quick (or full) matrix against the in-process emulator with 300 ms of injected
//! authorizer latency, compared with its floor: the slowest of its attempts run alone, plus
//! `--spacing` (1.1 s) for every extra CONNECT on a shared client ID (the baselines of mqtt and wss
//! share the device's; IoT Core takes about one connect a second per client ID). Everything before a
//! CONNECT (TCP, TLS, upgrade) can overlap, so that is all a matrix must take. Target: wall time at
//! most 1.02× the floor.
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
        let bound = slowest + plan.follow_up_spacing() * extra_connects(&specs);
        let t = Instant::now();
        let report = authprobe::investigate::run_with(&plan, &specs, Schedule::ALL, &Quiet).await;
        let matrix = t.elapsed();
        let ratio = matrix.as_secs_f64() / bound.as_secs_f64();
        ratios.push(ratio);
        println!(
            "round {round}: slowest single attempt {:>4} ms, floor {:>4} ms, whole matrix {:>4} ms, ratio to the floor {ratio:.3} (exit code {})",
            slowest.as_millis(),
            bound.as_millis(),
            matrix.as_millis(),
            report.exit_code
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!("median ratio {median:.3} (target <= 1.02): {}", if median <= 1.02 { "met" } else { "NOT met" });
    Ok(())
}

/// The CONNECTs beyond the first on the longest chain of MQTT attempts sharing a client ID.
fn extra_connects(specs: &[authprobe::probe::AttemptSpec]) -> u32 {
    use authprobe::auth::event::Transport;
    let mqtt = specs.iter().filter(|s| s.transport != Transport::Https);
    let longest = mqtt.clone().map(|s| mqtt.clone().filter(|t| t.client_id == s.client_id).count()).max();
    u32::try_from(longest.unwrap_or(1).saturating_sub(1)).unwrap_or(u32::MAX)
}
