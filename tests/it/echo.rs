//! Peers that echo what they were sent (issue 21): a front door answering 403 with a JSON body that
//! quotes the request line and headers, an inspecting proxy's block page quoting the URL, a server
//! writing the CONNECT's bytes back, a proxy whose status line reflects the Basic credential. Whatever
//! comes back, no secret — in any encoding, or a piece of one cut by a window — reaches stdout or
//! stderr, and nothing a peer sent forges a line or reaches the terminal as a control code.

use super::common::*;
use authprobe::emulator::certs::Ca;
use base64::Engine as _;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Long and distinctive: any 8 bytes of it in the output is a leak.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.echoTokenPayload-7f3a9c2e";
const PROXY_PW: &str = "proxyPw-Echo-91f2";
/// What each echo also carries: a forged report line and terminal escapes (a title change, a colour).
const FORGERY: &str = "\n\x1b]0;pwned\x07\x1b[31mDiagnosis: all good, chain ok: Amazon Root CA 1\r\n";

/// Everything the client sent first (a request's head or a CONNECT), up to 16 KiB.
async fn first_flight<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut n = 0;
    while n < buf.len() {
        match tokio::time::timeout(std::time::Duration::from_millis(300), s.read(&mut buf[n..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(k)) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    buf.truncate(n);
    buf
}

/// The answer of an echoing front door to `request`.
fn echo_answer(request: &[u8]) -> Vec<u8> {
    if request.starts_with(b"GET ") || request.starts_with(b"POST ") {
        let text = String::from_utf8_lossy(request);
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers: serde_json::Map<String, serde_json::Value> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect();
        // Some encoders write `/` as `\/`: the scrubber knows that form too.
        let json = serde_json::json!({"message": "Forbidden", "request": request_line, "headers": headers})
            .to_string()
            .replace('/', "\\/");
        let body = format!("{json}\n<p>Blocked by policy: {request_line}</p>{FORGERY}");
        format!(
            "HTTP/1.1 403 Forbidden {FORGERY}\r\nContent-Type: application/json\r\nX-Echo: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            request_line,
            body.len()
        )
        .into_bytes()
    } else {
        // A server echoing the CONNECT from its 30th byte: the token starts within the first 32 bytes
        // the probe shows, and is cut by them.
        let mut out = request.get(30..).unwrap_or_default().to_vec();
        out.extend_from_slice(FORGERY.as_bytes());
        out
    }
}

async fn echo_server(ca: &Ca) -> SocketAddr {
    super::probe_servers::tls_server(ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            let request = first_flight(&mut tls).await;
            let _ = tls.write_all(&echo_answer(&request)).await;
            let _ = tls.shutdown().await;
        })
    })
    .await
}

/// An HTTP CONNECT proxy that refuses, reflecting the request (its Basic credential included) in
/// its status line, a header and a block page.
async fn echo_proxy() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let request = first_flight(&mut tcp).await;
                let text = String::from_utf8_lossy(&request).into_owned();
                let auth =
                    text.lines().find_map(|l| l.strip_prefix("Proxy-Authorization: ")).unwrap_or("none").to_owned();
                let body = format!("<h1>Denied</h1><pre>{text}</pre>{FORGERY}");
                let answer = format!(
                    "HTTP/1.1 407 Denied for {auth}\r\nX-Seen: {auth}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// Every form of `secret` that must not appear, and every 8-byte piece of it.
fn leaks(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![
        pct(secret),
        authprobe::auth::credentials::encode(secret),
        b64.encode(secret),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        secret.bytes().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")[..40].to_owned(),
    ];
    let b = secret.as_bytes();
    out.extend(b.windows(8).map(|w| String::from_utf8_lossy(w).into_owned()));
    out
}

#[track_caller]
fn assert_safe(what: &str, text: &str, forbidden: &[String]) {
    for f in forbidden {
        assert!(!text.contains(f.as_str()), "{what}: {f:?} leaked:\n{text}");
    }
    assert!(
        !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\r'),
        "{what}: a control code:\n{text}"
    );
    let forged = text.lines().filter(|l| l.trim_start().starts_with("Diagnosis: all good")).count();
    assert_eq!(forged, 0, "{what}: a forged line:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_echoed_by_servers_and_proxies_are_never_shown() {
    let ca = Ca::generate("echo CA").unwrap();
    let server = echo_server(&ca).await;
    let proxy = echo_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let signature = sign(TOKEN);
    let mut forbidden = leaks(TOKEN);
    forbidden.extend(leaks(&signature));
    forbidden.extend(leaks(PROXY_PW));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PROXY_PW}"));
    forbidden.push(basic[..16].to_owned());
    let connect_to = server.to_string();
    let ca_arg = ca_file.to_str().unwrap().to_owned();
    let raw = format!(
        "dev?x-amz-customauthorizer-name={AUTH}&token={TOKEN}&x-amz-customauthorizer-signature={}",
        pct(&signature)
    );
    let with_token = format!("dev?token={TOKEN}");
    let proxy_url = format!("http://alice:{PROXY_PW}@{proxy}");
    // How the device's secrets are given: flags; its exact username; a username with the token in it;
    // through a proxy that reflects its credential.
    let ways: Vec<Vec<String>> = vec![
        vec!["--token".into(), TOKEN.into(), "--signature".into(), signature.clone()],
        vec!["--username-raw".into(), raw.clone()],
        vec!["--username".into(), with_token.clone(), "--signature".into(), signature.clone()],
        vec!["--token".into(), TOKEN.into(), "--proxy".into(), proxy_url.clone()],
    ];
    let mut runs = 0;
    for way in &ways {
        for format in ["text", "json", "jsonl"] {
            for verbose in [false, true] {
                let mut args: Vec<String> = Vec::new();
                if verbose {
                    args.push("-v".into());
                }
                for a in ["probe", "--endpoint", ENDPOINT, "--connect-to", &connect_to, "--ca", &ca_arg] {
                    args.push(a.into());
                }
                // The echoing servers do not limit connects per client ID: no 1.1 s spacing.
                for a in
                    ["--authorizer", AUTH, "--timeout", "3", "--format", format, "--matrix", "none", "--spacing", "0"]
                {
                    args.push(a.into());
                }
                args.extend(way.iter().cloned());
                let argv = args.clone();
                let out = tokio::task::spawn_blocking(move || {
                    authprobe_bin(&argv.iter().map(String::as_str).collect::<Vec<_>>())
                })
                .await
                .unwrap();
                let what = args.join(" ");
                assert!(
                    matches!(out.status.code(), Some(1)),
                    "{what}: {:?}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_safe(&format!("stdout of {what}"), &String::from_utf8_lossy(&out.stdout), &forbidden);
                assert_safe(&format!("stderr of {what}"), &String::from_utf8_lossy(&out.stderr), &forbidden);
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 24);
}
