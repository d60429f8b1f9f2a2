//! A real broker: Debian's mosquitto with a password file, a TLS listener on 127.0.0.1 and a
//! WebSocket+TLS listener on ::1 only (mosquitto 2.0.11 ignores an IPv4 bind address for websocket
//! listeners). The probe must see `connack_accepted` for the right password and `connack_refused`
//! (3.1.1 code 5, MQTT 5 code 0x87) for a wrong one, over TLS and WSS.

use super::common::*;
use authprobe::auth::event::Transport;
use authprobe::emulator::certs::Ca;
use authprobe::probe::outcome::{Detail, Kind};
use authprobe::probe::plan::MqttVersion;
use authprobe::probe::{AttemptSpec, ProbePlan};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A port that was free a moment ago (mosquitto needs a number in its config).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

struct Broker {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    tls_port: u16,
    ws_port: u16,
    ca_pem: String,
}

async fn start_broker() -> Option<Broker> {
    if std::process::Command::new("mosquitto").arg("-h").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "mosquitto must be installed in CI (.ci/run installs it)");
        eprintln!("SKIPPED: mosquitto is not installed (apt-get install mosquitto)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("broker test CA").unwrap();
    let (cert, key) = ca.issue_pem(&["localhost".into(), "127.0.0.1".into(), "::1".into()]).unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(p("cert.pem"), cert).unwrap();
    std::fs::write(p("key.pem"), key).unwrap();
    let passwd = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c", &p("passwd"), "device", "right-password"])
        .output()
        .unwrap();
    assert!(passwd.status.success(), "{}", String::from_utf8_lossy(&passwd.stderr));
    let (tls_port, ws_port) = (free_port("127.0.0.1"), free_port("::1"));
    let conf = format!(
        "user root\nper_listener_settings false\nallow_anonymous false\npassword_file {passwd}\nlog_dest stderr\nlog_type all\n\
         listener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n\
         listener {ws_port} ::1\nprotocol websockets\ncertfile {cert}\nkeyfile {key}\n",
        passwd = p("passwd"),
        cert = p("cert.pem"),
        key = p("key.pem"),
    );
    std::fs::write(p("mosquitto.conf"), conf).unwrap();
    let mut child = tokio::process::Command::new("mosquitto")
        .args(["-c", &p("mosquitto.conf")])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when it says both listeners are open.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let (mut tls_open, mut ws_open) = (false, false);
    while !(tls_open && ws_open) {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("mosquitto started").unwrap();
        let Some(line) = line else { panic!("mosquitto exited:\n{}", log.join("\n")) };
        tls_open |= line.contains(&format!("listen socket on port {tls_port}"));
        ws_open |= line.contains("websockets") && line.contains(&ws_port.to_string());
        log.push(line);
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Broker { _child: child, _dir: dir, tls_port, ws_port, ca_pem: ca.pem() })
}

fn plan(broker: &Broker, ip: &str, port: u16, password: &str) -> ProbePlan {
    let addr = std::net::SocketAddr::new(ip.parse().unwrap(), port);
    let mut b = plan_builder_at(addr, &broker.ca_pem);
    b.endpoint("localhost");
    *b.credentials_mut() = authprobe::probe::Credentials {
        token_key_name: "token".into(),
        username: Some("device".into()),
        password: Some(password.into()),
        ..Default::default()
    };
    b.build().unwrap()
}

#[tokio::test]
async fn mosquitto_accepts_the_right_password_and_refuses_a_wrong_one() {
    let Some(broker) = start_broker().await else { return };
    for (transport, ip, port) in
        [(Transport::Mqtt, "127.0.0.1", broker.tls_port), (Transport::Wss, "::1", broker.ws_port)]
    {
        for version in [MqttVersion::V311, MqttVersion::V5] {
            let good = plan(&broker, ip, port, "right-password");
            let spec = AttemptSpec { mqtt_version: version, ..baseline(&good, transport) };
            let r = probe(&good, &spec).await;
            assert_eq!(r.outcome.kind, Kind::ConnackAccepted, "{transport} {version:?}: {:?}", r.outcome);

            let bad = plan(&broker, ip, port, "wrong-password");
            let r = probe(&bad, &spec).await;
            assert_eq!(r.outcome.kind, Kind::ConnackRefused, "{transport} {version:?}: {:?}", r.outcome);
            let expected = if version == MqttVersion::V5 { (0x87, "not_authorized") } else { (5, "not_authorized") };
            let Detail::Connack { code, reason, .. } = &r.outcome.detail else { panic!() };
            assert_eq!((*code, reason.as_str()), expected, "{transport} {version:?}");
        }
    }
}
