//! The README's examples are real output. Each transcript block (`$ command` lines, then what it
//! prints) is run here in a scratch directory holding the files it names (keys made by openssl, the
//! JSON documents in `tests/readme/`, an emulator where one is needed), and every line it shows must
//! be a line the command prints — ports, milliseconds, hashes, times and random values aside — so the
//! README cannot drift from the tool.

use super::common::*;
use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The manual: the README, then every page of docs/ (a transcript may be in any of them).
fn readme() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    for p in pages {
        text.push_str("\n\n");
        text.push_str(&std::fs::read_to_string(p).unwrap());
    }
    text
}

/// The first fenced block after the first occurrence of `marker` (indentation removed).
pub(super) fn block_after(marker: &str) -> String {
    let readme = readme();
    let after =
        readme.split_once(marker).unwrap_or_else(|| panic!("the manual (README.md, docs/) has no {marker:?}")).1;
    let body = after.split_once("```").expect("a fenced block").1;
    let body = body.split_once('\n').unwrap().1;
    let body = body.split_once("```").expect("a closed block").0;
    body.lines().map(str::trim_start).collect::<Vec<_>>().join("\n")
}

/// A transcript: the shell script its `$` lines make (with `\` continuations) and the lines it shows.
pub(super) fn transcript(block: &str) -> (String, Vec<String>) {
    let (mut script, mut shown) = (String::new(), Vec::new());
    let mut continued = false;
    for line in block.lines() {
        if let Some(cmd) = line.strip_prefix("$ ").filter(|_| !continued) {
            script += cmd;
            script.push('\n');
            continued = cmd.ends_with('\\');
        } else if continued {
            script += line;
            script.push('\n');
            continued = line.ends_with('\\');
        } else if !line.trim().is_empty() && line.trim() != "…" {
            shown.push(line.to_owned());
        }
    }
    assert!(!script.is_empty(), "a transcript with commands:\n{block}");
    (script, shown)
}

/// Runs `script` with `sh` in `dir`, the authprobe under test first on PATH.
pub(super) fn run(script: &str, dir: &Path) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_authprobe")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Every shown line is a real line; a `…` inside a shown line stands for text left out.
pub(super) fn assert_shown(shown: &[String], output: &str) {
    let real: HashSet<String> = output.lines().map(normalise).collect();
    for line in shown {
        let line = normalise(line);
        let found = if line.contains('…') {
            let parts: Vec<&str> = line.split('…').collect();
            real.iter().any(|r| in_order(r, &parts))
        } else {
            real.contains(&line)
        };
        assert!(found, "README line not in the real output:\n{line}\n--- real output:\n{output}");
    }
}

/// `real` starts with the first part, ends with the last, and holds the others in order between.
fn in_order(real: &str, parts: &[&str]) -> bool {
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !real.starts_with(first) || !real.ends_with(last) || real.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &real[first.len()..real.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// A scratch directory with key.pem / pub.pem / signing-pub.pem (openssl) and the README's documents.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(&keys().private, d.join("key.pem")).unwrap();
    std::fs::write(d.join("pub.pem"), &keys().public_pem).unwrap();
    std::fs::write(d.join("signing-pub.pem"), &keys().public_pem).unwrap();
    for f in ["response.json", "get-policy.json"] {
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readme").join(f), d.join(f)).unwrap();
    }
    dir
}

/// `authprobe emulate` started in `dir` on a free port; returns the child, its address and banner.
fn emulate(dir: &Path, args: &[&str]) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .arg("emulate")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    // The banner ends with the Ctrl-C line; bounded by its length.
    for _ in 0..20 {
        let Some(Ok(line)) = lines.next() else { break };
        let done = line.contains("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let addr = banner[0].rsplit(' ').next().unwrap().to_owned();
    (child, addr, banner)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_excerpt_and_its_diagnosis() {
    let out = authprobe_bin(&["demo"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for marker in [
        "## `authprobe demo`",
        "What a device cannot tell apart, it does not pretend to",
        "then one line per attempt that matters:",
    ] {
        let block = block_after(marker);
        let shown: Vec<String> =
            block.lines().filter(|l| !l.trim().is_empty() && l.trim() != "…").map(Into::into).collect();
        assert_shown(&shown, &stdout);
    }
}

#[test]
fn json_excerpt() {
    let out = authprobe_bin(&["demo", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    // Lines without their trailing comma: the excerpt leaves elements out.
    let strip = |l: &str| l.trim().trim_end_matches(',').to_owned();
    let real: String = String::from_utf8_lossy(&out.stdout).lines().map(strip).collect::<Vec<_>>().join("\n");
    let shown: Vec<String> = block_after("## JSON (`--format json`)").lines().map(strip).collect();
    assert_shown(&shown, &real);
}

#[test]
fn device_profile_replay() {
    let dir = scratch();
    let (child, addr, _) =
        emulate(dir.path(), &["--listen", "127.0.0.1:0", "--write-ca", "ca.pem", "--allow-token", "good-token"]);
    let _child = Kill(child);
    let token = dir.path().join("token");
    std::fs::write(&token, "good-token\n").unwrap();
    // The profile's `token_file = "token"` is relative to the profile: the token beside it.
    let profile = block_after("names the variable and the profile:");
    std::fs::write(dir.path().join("gw-17.toml"), profile).unwrap();
    let (script, shown) = transcript(&block_after("has is named from the differences"));
    let output = run(&script.replace("127.0.0.1:32845", &addr), dir.path());
    assert_shown(&shown, &output);
}

#[test]
fn failing_probe_example() {
    let dir = scratch();
    let (child, addr, _) = emulate(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--write-ca",
            "ca.pem",
            "--allow-token",
            "good-token",
            "--authorizer-latency",
            "4600",
        ],
    );
    let _child = Kill(child);
    let (script, shown) = transcript(&block_after("A failing attempt reads like this"));
    let output = run(&script.replace("127.0.0.1:18443", &addr), dir.path());
    assert_shown(&shown, &output);
}

#[test]
fn emulator_banner() {
    let dir = scratch();
    let readme_command = block_after("# `authprobe emulate`");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(examples.join("authorizer.py"), dir.path().join("examples/authorizer.py")).unwrap();
    std::fs::create_dir_all(dir.path().join("examples/lambda/python")).unwrap();
    std::fs::copy(examples.join("lambda/python/handler.py"), dir.path().join("examples/lambda/python/handler.py"))
        .unwrap();
    // The README's own flags, on a free port.
    let words = shell_words(&readme_command.replace("127.0.0.1:8443", "127.0.0.1:0"));
    let args: Vec<&str> = words.iter().skip(2).map(String::as_str).collect();
    let (child, _, banner) = emulate(dir.path(), &args);
    let _child = Kill(child);
    let shown: Vec<String> = block_after("It prints what it serves").lines().map(Into::into).collect();
    assert_shown(&shown, &banner.join("\n"));
}

#[test]
fn toolkit_examples() {
    let dir = scratch();
    for marker in [
        "`--percent-encode` in the form a username or query needs",
        "Secrets are redacted unless\n`--show-secrets` (needed to paste it)",
        "Region and\naccount come from",
        "with the command that fixes it",
    ] {
        let (script, shown) = transcript(&block_after(marker));
        assert_shown(&shown, &run(&script, dir.path()));
    }
}

/// Words of a one-command shell block (quotes and `\` newlines; enough for the README's commands).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (_, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// Ports, durations, hash prefixes, timestamps and random values vary from run to run.
pub fn normalise(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.trim().chars().collect();
    let mut i = 0;
    let random = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-');
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        let digits = |from: usize| chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let run = chars[i..].iter().take_while(|c| random(c)).count();
        let word: String = chars[i..i + run].iter().collect();
        let at_start = i == 0 || !random(&chars[i - 1]);
        if rest.starts_with("127.0.0.1:") {
            out += "127.0.0.1:PORT";
            i += 10;
            i += digits(i);
        } else if rest.starts_with("sha256=") {
            out += "sha256=H";
            i += 7;
            i += chars[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        } else if at_start
            && run >= 16
            // A digit, or base64's own characters: a random WebSocket key can have no digit at all.
            && word.chars().any(|c| c.is_ascii_digit() || matches!(c, '+' | '/' | '='))
            && word.chars().any(|c| c.is_ascii_alphabetic())
            && !word.contains("amazonaws")
        {
            // A UUID, a WebSocket key, a signature.
            out += "RANDOM";
            i += run;
        } else if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let n = digits(i);
            let after: String = chars[i + n..].iter().take(3).collect();
            let stamp = chars.get(i + n) == Some(&'-') && n == 4;
            // A duration: `3 ms`, `3ms`, or a JSON `"ms": 3` / `"elapsed_ms": 3`.
            let json_ms = out.ends_with("ms\": ");
            if after == " ms" || after.starts_with("ms") || json_ms {
                out += "N";
                i += n;
            } else if stamp {
                // 2026-11-27T00:10:20Z
                out += "TIME";
                i += chars[i..].iter().take_while(|c| !c.is_whitespace() && **c != ',').count();
            } else {
                out.extend(&chars[i..i + n]);
                i += n;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The README is a front page: at most 250 lines, and the command that probes your endpoint with the
/// device's own credentials (files, or its exact username) within its first 60 lines.
#[test]
fn the_readme_is_a_front_page() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.len() <= 250, "README is {} lines", lines.len());
    let first = lines[..60.min(lines.len())].join("\n");
    for want in [
        "authprobe probe --endpoint",
        "--token-file",
        "--signature-file",
        "--username-raw",
        "cargo run --release -- demo",
    ] {
        assert!(first.contains(want), "no `{want}` in the README's first 60 lines");
    }
    // Every page the README links to exists.
    for (at, _) in readme.match_indices("](docs/") {
        let link = &readme[at + 2..];
        let page = &link[..link.find(')').unwrap()];
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(page).exists(), "README links to {page}");
    }
}
