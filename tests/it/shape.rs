//! The code's shape, checked on the source: dependencies between the crate's top-level modules point
//! one way (the layers below), and no function in `src/` is longer than 80 lines.
//!
//! Layers, bottom first (README, "Crate map"): `secret` and `input`; `auth` and `wire`; `probe` and `emulator`
//! (neither imports the other); `diagnosis`; `inspect` and `report`; `investigate`; `demo`; `cli`.
//! A module may import only from layers below its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module with the modules it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    ("secret", &[]),
    ("input", &[]),
    ("auth", &["secret", "input"]),
    ("wire", &["secret", "input"]),
    ("probe", &["secret", "input", "auth", "wire"]),
    ("emulator", &["secret", "input", "auth", "wire"]),
    ("diagnosis", &["secret", "input", "auth", "wire", "probe"]),
    ("inspect", &["secret", "input", "auth", "wire", "probe", "diagnosis"]),
    ("report", &["secret", "input", "auth", "wire", "probe", "diagnosis"]),
    ("investigate", &["secret", "input", "auth", "wire", "probe", "diagnosis", "report"]),
    ("demo", &["secret", "input", "auth", "wire", "probe", "emulator", "diagnosis", "report", "investigate"]),
    (
        "cli",
        &[
            "secret",
            "input",
            "auth",
            "wire",
            "probe",
            "emulator",
            "diagnosis",
            "inspect",
            "report",
            "investigate",
            "demo",
        ],
    ),
];

const MAX_FN_LINES: usize = 80;

fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut guard = 0;
    while let Some(d) = dirs.pop() {
        guard += 1;
        assert!(guard < 1000, "src/ has too many directories");
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() > 20, "found only {} source files", out.len());
    out
}

/// The source with comments, string and char literals blanked (newlines kept), so that braces and
/// paths are only those of code.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident(b.get(i.wrapping_sub(1))) {
            // Raw string r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() && !(b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#'))) {
                blank(&mut out, b[j]);
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = b.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The top-level module a file belongs to (`src/probe/tls.rs` → `probe`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The top-level modules `code` names through `crate::` (including `use crate::{a, b::c}`).
fn imports(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if ident(before.as_ref()) {
                continue; // `mycrate::` is not `crate::`
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for part in inner.split(',') {
                    let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut seen_modules = std::collections::BTreeSet::new();
    for path in sources() {
        let Some(module) = module_of(&path) else { continue };
        seen_modules.insert(module.clone());
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!("{}: module `{module}` is not in the layer table", path.display()));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        for (line, target) in imports(&code) {
            if target != module && !may.contains(&target.as_str()) {
                wrong.push(format!("{}:{line}: `{module}` imports `crate::{target}`", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
    for (m, _) in ALLOWED {
        assert!(seen_modules.contains(*m), "the layer table names `{m}`, which src/ does not have");
    }
}

/// Each `fn` in `code` with its first line and its length in lines (signature to closing brace).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let starts = |l: &str| {
        let t = l.trim_start();
        let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub(super) ")).unwrap_or(t);
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("const ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let t = t.strip_prefix("unsafe ").unwrap_or(t);
        t.strip_prefix("fn ").map(|r| r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
    };
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = starts(l) else { continue };
        // Find the body's opening brace (a `;` first means a declaration without a body).
        let mut depth = 0usize;
        let mut opened = false;
        let mut paren = 0i32;
        'scan: for (j, line) in lines.iter().enumerate().skip(i) {
            for ch in line.chars() {
                match ch {
                    '(' | '[' if !opened => paren += 1,
                    ')' | ']' if !opened => paren -= 1,
                    ';' if !opened && paren <= 0 => break 'scan,
                    '{' => {
                        opened = true;
                        depth += 1;
                    }
                    '}' if opened => {
                        depth -= 1;
                        if depth == 0 {
                            out.push((name.clone(), i + 1, j - i + 1));
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_80_lines() {
    let mut long = Vec::new();
    let mut counted = 0;
    for path in sources() {
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        for (name, line, len) in functions(&code) {
            counted += 1;
            if len > MAX_FN_LINES {
                long.push(format!("{}:{line}: fn {name} is {len} lines", path.display()));
            }
        }
    }
    assert!(counted > 500, "found only {counted} functions: the scanner is broken");
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_scanners_see_what_they_must() {
    let code = code_only(
        "use crate::{auth, probe::x};\n// crate::emulator in a comment\nlet s = \"crate::cli {\";\nfn f() {\n    let c = '{';\n    g(crate::report::X);\n}\n",
    );
    let names: Vec<String> = imports(&code).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["auth", "probe", "report"]);
    assert_eq!(functions(&code), [("f".to_owned(), 4, 4)]);
}
