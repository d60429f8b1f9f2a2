//! The code's shape, checked on the source: dependencies between the crate's top-level modules point
//! one way (the layers below), the files inside each module import each other without a circle, and
//! no function in `src/` is longer than 80 lines.
//!
//! Layers, bottom first (docs/library.md, the crate map): `secret` and `input`; `auth` and `wire`; `probe` and `emulator`
//! (neither imports the other); `storm` (on `probe`); `diagnosis`; `inspect` and `report`; `investigate`; `demo`; `cli`.
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
    ("storm", &["secret", "input", "auth", "wire", "probe"]),
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
            "storm",
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

/// The module path of a source file: `src/emulator/mqtt.rs` → `[emulator, mqtt]`, `src/emulator/mod.rs`
/// → `[emulator]`, `src/lib.rs` → `[]`.
fn module_path(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_str().unwrap().trim_end_matches(".rs").to_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code before the file's unit tests (`#[cfg(test)]` followed by a `mod`), whose `super::` means
/// the file itself.
fn without_tests(code: &str) -> &str {
    let mut at = 0;
    while let Some(i) = code[at..].find("#[cfg(test)]") {
        let start = at + i;
        let rest = code[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") || rest.starts_with("pub mod ") {
            return &code[..start];
        }
        at = start + 1;
    }
    code
}

/// Every path in `code` that names a module (`crate::a::b`, `super::c::D`, `self::e`, and `x::` where
/// `x` is one of `children`), made absolute for a file at module path `me`.
fn paths(code: &str, me: &[String], children: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].is_alphabetic() || chars[i] == '_') || (i > 0 && (ident(chars.get(i - 1)) || chars[i - 1] == ':'))
        {
            i += 1;
            continue;
        }
        // A path starts here: segments joined by `::` (a `{` group takes each member).
        let mut j = i;
        let mut segs = Vec::new();
        loop {
            let s: String = chars[j..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').collect();
            j += s.chars().count();
            segs.push(s);
            if chars.get(j) == Some(&':')
                && chars.get(j + 1) == Some(&':')
                && chars.get(j + 2).is_some_and(|c| c.is_alphabetic() || *c == '_')
            {
                j += 2;
            } else {
                break;
            }
        }
        let mut groups = vec![segs.clone()];
        if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') && chars.get(j + 2) == Some(&'{') {
            // The group's members at its top level (`a::{self, B}` counts as `a`).
            let mut depth = 0;
            let mut members = vec![String::new()];
            let mut end = j + 3;
            for &c in &chars[j + 3..] {
                end += 1;
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => members.push(String::new()),
                    _ if depth == 0 => members.last_mut().unwrap().push(c),
                    _ => {}
                }
            }
            groups = members
                .iter()
                .map(|m| {
                    let mut g = segs.clone();
                    let m = m.trim().trim_end_matches("::");
                    g.extend(m.split("::").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s != "self"));
                    g
                })
                .collect();
            j = end;
        }
        // A lone keyword is not a path (`pub(super)`, `pub(crate)`).
        for g in groups.into_iter().filter(|g| g.len() > 1) {
            let abs = match g.first().map(String::as_str) {
                Some("crate") => Some(g[1..].to_vec()),
                Some("super") => {
                    let mut base = me.to_vec();
                    let mut k = 0;
                    while g.get(k).map(String::as_str) == Some("super") {
                        base.pop();
                        k += 1;
                    }
                    base.extend(g[k..].iter().cloned());
                    Some(base)
                }
                Some("self") => Some(me.iter().chain(&g[1..]).cloned().collect()),
                Some(first) if g.len() > 1 && children.iter().any(|c| c == first) => {
                    Some(me.iter().chain(&g).cloned().collect())
                }
                _ => None,
            };
            out.extend(abs);
        }
        i = j.max(i + 1);
    }
    out
}

#[test]
fn files_inside_a_module_import_each_other_without_a_circle() {
    let files: Vec<(PathBuf, Vec<String>)> = sources()
        .into_iter()
        .map(|p| {
            let m = module_path(&p);
            (p, m)
        })
        .collect();
    let known: BTreeMap<Vec<String>, usize> = files.iter().enumerate().map(|(n, (_, m))| (m.clone(), n)).collect();
    // Edges between files that share a module: siblings, and a module's own file (`mod.rs`).
    let mut edges: Vec<std::collections::BTreeSet<usize>> = vec![Default::default(); files.len()];
    let mut why: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let mut counted = 0;
    for (n, (path, me)) in files.iter().enumerate() {
        let children: Vec<String> = known
            .keys()
            .filter(|k| k.len() == me.len() + 1 && k.starts_with(me))
            .map(|k| k.last().unwrap().clone())
            .collect();
        let src = std::fs::read_to_string(path).unwrap();
        let code = code_only(&src);
        let room = |m: &[String]| if m.len() > 1 { m[..m.len() - 1].to_vec() } else { Vec::new() };
        for p in paths(without_tests(&code), me, &children) {
            // The deepest file the path reaches.
            let Some(target) = (1..=p.len()).rev().find_map(|l| known.get(&p[..l]).copied()) else { continue };
            let other = &files[target].1;
            let same_room = room(me) == room(other) || room(other) == *me || room(me) == *other;
            if target != n && same_room && !me.is_empty() && !other.is_empty() {
                counted += 1;
                edges[n].insert(target);
                why.entry((n, target)).or_insert_with(|| p.join("::"));
            }
        }
    }
    assert!(counted > 100, "found only {counted} imports between files: the scanner is broken");
    // Strongly connected components (Tarjan): each of more than one file is a circle.
    let circles = circles(&edges);
    let show = |c: &Vec<usize>| {
        let names: Vec<String> = c
            .iter()
            .map(|&k| files[k].0.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string())
            .collect();
        let ties: Vec<String> = c
            .iter()
            .flat_map(|&a| c.iter().map(move |&b| (a, b)))
            .filter_map(|(a, b)| {
                why.get(&(a, b)).map(|p| format!("    {} -> crate::{p}", files[a].0.file_name().unwrap().display()))
            })
            .collect();
        format!("  {}\n{}", names.join(", "), ties.join("\n"))
    };
    assert!(
        circles.is_empty(),
        "files that import each other in a circle:\n{}",
        circles.iter().map(show).collect::<Vec<_>>().join("\n")
    );
}

/// The strongly connected components of more than one node.
fn circles(edges: &[std::collections::BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a [std::collections::BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in t.edges[v].iter() {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(i) if t.on[w] => t.low[v] = t.low[v].min(i),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                c.push(w);
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort_unstable();
                t.out.push(c);
            }
        }
    }
    let n = edges.len();
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The comparisons in `src`'s code (comments left out) of a string literal with something: `x == "…"`,
/// `"…" != x`, a match arm `"…" =>` or `"…" |`; each with its line and the literal.
fn compared_literals(src: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in src.lines().enumerate() {
        let code = line.split(" //").next().unwrap_or_default();
        if code.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(open) = rest.find('"') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('"') else { break };
            let literal = &after[..close];
            let before = rest[..open].trim_end();
            let next = after[close + 1..].trim_start();
            let compared = before.ends_with("==")
                || before.ends_with("!=")
                || next.starts_with("==")
                || next.starts_with("!=")
                || next.starts_with("=>")
                || (next.starts_with('|') && !next.starts_with("||"))
                || before.ends_with('|') && !before.ends_with("||");
            if compared {
                out.push((n + 1, literal.to_owned()));
            }
            rest = &after[close + 1..];
        }
    }
    out
}

/// Ids with an enum of their own are compared as that enum, never as strings, outside the enum's file:
/// finding ids (`Cause`, `FindingId`), local-check ids (`CheckId`), troubleshooting steps (`Step`) and
/// TLS alert names (`Alert`).
#[test]
fn typed_ids_are_not_compared_as_strings() {
    use authprobe::auth::troubleshooting::Step;
    use authprobe::diagnosis::Cause;
    use authprobe::diagnosis::local::CheckId;
    let mut ids: Vec<(String, &str)> = Vec::new();
    let finding_files = "src/diagnosis/cause.rs src/diagnosis/finding.rs";
    ids.extend(Cause::ALL.iter().map(|c| (c.id().to_owned(), finding_files)));
    ids.extend(["refused_unexplained", "unreachable_unexplained"].map(|i| (i.to_owned(), finding_files)));
    ids.extend(CheckId::ALL.iter().map(|c| (c.as_str().to_owned(), "src/diagnosis/local.rs")));
    ids.extend(Step::ALL.iter().map(|s| (s.label().to_owned(), "src/auth/troubleshooting.rs")));
    ids.extend(authprobe::wire::alert::ALERTS.iter().map(|(name, _)| ((*name).to_owned(), "src/wire/alert.rs")));
    assert!(ids.len() > 60, "only {} ids", ids.len());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for path in sources() {
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        for (line, literal) in compared_literals(&src) {
            if let Some((_, home)) = ids.iter().find(|(id, home)| *id == literal && !home.split(' ').any(|h| h == rel))
            {
                wrong.push(format!("{rel}:{line}: compares \"{literal}\" as a string (its enum lives in {home})"));
            }
        }
    }
    assert!(wrong.is_empty(), "ids compared as strings:\n{}", wrong.join("\n"));
}

/// A probe's plan is made in one place, `ProbePlan::builder` … `build` (which validates it): no
/// `ProbePlan { … }` literal anywhere else, in the library, its tests or its examples.
#[test]
fn a_probe_plan_is_built_only_by_its_builder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = sources();
    for dir in ["tests/it", "examples"] {
        files.extend(
            std::fs::read_dir(root.join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs")),
        );
    }
    let mut wrong = Vec::new();
    for path in files.iter().filter(|p| !p.ends_with("src/probe/plan.rs")) {
        let code = code_only(&std::fs::read_to_string(path).unwrap());
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if let Some(at) = t.find("ProbePlan {") {
                // What precedes the type, its path (`authprobe::probe::`) left out.
                let before = t[..at].trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ':').trim_end();
                if !["impl", "struct", "for", "->"].iter().any(|k| before.ends_with(k)) {
                    wrong.push(format!("{}:{}: {}", path.strip_prefix(root).unwrap().display(), n + 1, t));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "ProbePlan literals outside src/probe/plan.rs:\n{}", wrong.join("\n"));
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
    let me = vec!["emulator".to_owned(), "mqtt".to_owned()];
    let found = paths(
        "use super::{gate::{self, Granted}, channel::Channel};\nlet x = crate::wire::mqtt::encode(b);\n",
        &me,
        &[],
    );
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["emulator::gate", "emulator::channel::Channel", "wire::mqtt::encode"]);
    let compared =
        compared_literals("if a == \"x\" || b {}\nmatch s { \"y\" | \"z\" => 1 }\nlet s = \"w\"; // == \"v\"\n");
    assert_eq!(compared, [(1, "x".to_owned()), (2, "y".to_owned()), (2, "z".to_owned())]);
    let edges = vec![[1].into(), [0].into(), [0].into()];
    assert_eq!(circles(&edges), [vec![0, 1]]);
}
