//! Redaction of secrets (tokens, signatures, passwords) in every report and log: the [`Secret`] type
//! that holds one, and the [`Scrubber`] that finds them in text.
//!
//! A secret is shown as `<redacted len=N sha256=xxxxxxxx>`: enough to tell two values apart or to match
//! a value the user knows, without revealing it.
//!
//! The [`Scrubber`] finds every registered form of every secret in one pass over the text (an
//! Aho-Corasick automaton), so its cost is linear in the text whatever a peer puts in it; the number of
//! forms it holds is bounded, and a scrubber asked to hold more redacts whole texts instead of guessing.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use ring::digest;
use std::sync::{Arc, OnceLock};

/// The redacted form of a secret value.
pub fn redact(value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, value.as_bytes());
    let hex: String = hash.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("<redacted len={} sha256={hex}>", value.len())
}

/// A token, signature, password or key: its `Debug` and `Display` show only its redacted form, so
/// no writer can print it by mistake. The value comes out only through [`Secret::expose`], at the
/// few points that put it on the wire, sign it, or show it because `--show-secrets` was given. It has
/// no `Serialize`: a report holds what a scrubber made of it, never the value.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the wire, a signature, or `--show-secrets`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Up to this many forms a scrubber looks for each on its own ([`Scrubber::each_occurrence`]); more are
/// searched for with one Aho-Corasick automaton.
const FEW_FORMS: usize = 48;

/// What the scrubber writes for a whole text when it holds more forms than it can search
/// (see [`Scrubber::MAX_FORMS`]).
pub const TOO_MANY_SECRETS: &str = "<redacted: more secrets than can be scrubbed one by one>";

/// Replaces every known secret inside free text (usernames, query strings, header values, bodies a
/// peer sent back).
///
/// Structured fields are redacted where they are built; the scrubber catches the same values embedded in
/// larger strings, in any of the encodings they travelled in.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    show: bool,
    /// The secrets, by index.
    secrets: Vec<String>,
    /// (text to find, index of the secret it stands for).
    forms: Vec<(String, usize)>,
    /// More forms were asked for than [`Scrubber::MAX_FORMS`]: every text is redacted whole.
    overflow: bool,
    /// Built on first use after the last change, when there are more than [`FEW_FORMS`] forms.
    searcher: OnceLock<Option<Arc<AhoCorasick>>>,
}

impl Scrubber {
    /// Most forms one scrubber searches for. A run of the probe registers a few dozen (each secret in
    /// each encoding); the emulator registers what one connection carried, bounded by its own caps.
    pub const MAX_FORMS: usize = 1024;

    /// `show = true` turns the scrubber off (`--show-secrets`).
    pub fn new(show: bool) -> Self {
        Self { show, ..Self::default() }
    }

    /// Whether secrets are shown (`--show-secrets`).
    pub fn shows(&self) -> bool {
        self.show
    }

    /// Registers a secret value; empty values are ignored.
    pub fn add(&mut self, secret: &str) {
        self.add_form(secret, secret);
    }

    /// Registers a secret in every encoding it may travel in or come back in: raw, percent-encoded
    /// (upper- and lower-case hex, `+` for a space), base64 (standard and URL-safe, with and without
    /// padding), hex, and as a JSON string (with `\/` as some encoders write `/`).
    pub fn add_all_forms(&mut self, secret: &str) {
        for form in forms_of(secret) {
            self.add_form(secret, &form);
        }
    }

    /// Registers `user:password` as an HTTP Basic credential carries it (base64), redacted as the
    /// password, besides the password's own forms.
    pub(crate) fn add_basic_credential(&mut self, user: &str, password: &str) {
        use base64::Engine as _;
        self.add_all_forms(password);
        let pair = format!("{user}:{password}");
        self.add_form(password, &pair);
        self.add_form(password, &base64::engine::general_purpose::STANDARD.encode(&pair));
        self.add_form(password, &percent(&pair, false));
    }

    /// Registers another form of a secret (e.g. percent-encoded): it is redacted as the secret itself,
    /// so the same value shows the same `len` and hash wherever it travelled.
    pub fn add_form(&mut self, secret: &str, form: &str) {
        // A linear look-up: a scrubber holds at most MAX_FORMS forms, and an emulator connection a few
        // (a set of their copies was the larger part of a held connection's scrubber).
        if form.is_empty() || self.forms.iter().any(|(f, _)| f == form) {
            return;
        }
        if self.forms.len() >= Self::MAX_FORMS {
            self.overflow = true;
            return;
        }
        let index = match self.secrets.iter().position(|s| s == secret) {
            Some(i) => i,
            None => {
                self.secrets.push(secret.to_owned());
                self.secrets.len() - 1
            }
        };
        self.forms.push((form.to_owned(), index));
        self.searcher = OnceLock::new();
    }

    /// How many forms are registered.
    pub fn len(&self) -> usize {
        self.forms.len()
    }

    /// Whether no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty() && !self.overflow
    }

    /// The value itself when showing secrets, else its redacted form.
    pub fn value(&self, secret: &str) -> String {
        if self.show { secret.to_owned() } else { redact(secret) }
    }

    /// Adds every secret `other` knows, and takes its setting (showing or redacting).
    pub fn merge(&mut self, other: &Self) {
        self.show = other.show;
        self.overflow |= other.overflow;
        for (form, i) in &other.forms {
            self.add_form(&other.secrets[*i], form);
        }
    }

    /// The Aho-Corasick automaton over the forms, for more than [`FEW_FORMS`] of them.
    fn searcher(&self) -> Option<&AhoCorasick> {
        self.searcher
            .get_or_init(|| {
                // The contiguous NFA: memory near the forms' own size, linear-time search.
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(self.forms.iter().map(|(f, _)| f.as_bytes()))
                    .ok()
                    .map(Arc::new)
            })
            .as_deref()
    }

    /// Calls `f(start, end, form index)` for every occurrence of every form, overlapping ones
    /// included, in order of their end (the longest first at one end). A few forms (one emulator
    /// connection's secrets) are looked for one by one with `memchr::memmem`, merged by end with a
    /// heap of one pending occurrence per form (memory bounded by the forms, whatever the text): an
    /// automaton for them cost 20–25 KB and 30 µs to build per connection, more than its searches
    /// saved on texts of a few hundred bytes.
    fn each_occurrence(&self, text: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        use std::cmp::Reverse;
        if self.forms.len() > FEW_FORMS {
            if let Some(ac) = self.searcher() {
                for m in ac.find_overlapping_iter(text) {
                    f(m.start(), m.end(), m.pattern().as_usize());
                }
            }
            return;
        }
        let finders: Vec<_> = self.forms.iter().map(|(form, _)| memchr::memmem::Finder::new(form.as_bytes())).collect();
        // The next occurrence of form `i` starting at `from` or later.
        let next = |i: usize, from: usize| {
            let finder = &finders[i];
            text.get(from..).and_then(|rest| finder.find(rest)).map(|at| {
                let (start, len) = (from + at, finder.needle().len());
                Reverse((start + len, Reverse(len), i, start))
            })
        };
        let mut pending: std::collections::BinaryHeap<_> = (0..finders.len()).filter_map(|i| next(i, 0)).collect();
        while let Some(Reverse((end, _, i, start))) = pending.pop() {
            f(start, end, i);
            pending.extend(next(i, start + 1));
        }
    }

    /// `text` with every registered secret replaced by its redacted form.
    ///
    /// Secrets of [`ANYWHERE`] characters or more are replaced wherever they appear. Shorter ones are
    /// replaced where they stand as a word of their own — between characters that are not letters or
    /// digits: the whole text, a `name=value` value, a word in an error message — so a short token
    /// never mangles the words around it (`tok` leaves `token=` alone) yet never survives on its own.
    /// Occurrences that overlap are replaced together (one marker, for the longest), so no part of
    /// one hides another; redaction markers already in the text are left alone. One pass: linear in
    /// the text.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_with(text, false)
    }

    /// [`Scrubber::scrub`] for a window cut out of what a peer sent (the first bytes of an answer,
    /// an echo the peer truncated): a secret's start at the window's end, or its end at the window's
    /// start ([`FRAGMENT`] bytes or more), is redacted too.
    pub(crate) fn scrub_window(&self, text: &str) -> String {
        self.scrub_with(text, true)
    }

    /// [`Scrubber::scrub_window`] for bytes (a binary answer shown in hex or escaped): the result is
    /// the bytes with each secret replaced by its redaction marker.
    pub(crate) fn scrub_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.show || self.is_empty() {
            return bytes.to_vec();
        }
        if self.overflow {
            return TOO_MANY_SECRETS.as_bytes().to_vec();
        }
        splice(bytes, &self.hits(bytes, true), &self.secrets)
    }

    fn scrub_with(&self, text: &str, window: bool) -> String {
        if self.show || self.is_empty() {
            return text.to_owned();
        }
        if self.overflow {
            return TOO_MANY_SECRETS.to_owned();
        }
        let hits = self.hits(text.as_bytes(), window);
        if hits.is_empty() {
            return text.to_owned();
        }
        // Hits start and end on character boundaries (forms are whole UTF-8 strings; window
        // fragments are cut back to one below), so the result is UTF-8 again.
        String::from_utf8(splice(text.as_bytes(), &hits, &self.secrets))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The intervals to replace, in order and disjoint, each with the secret to show for it.
    fn hits(&self, text: &[u8], window: bool) -> Vec<Hit> {
        let markers = markers(text);
        let in_marker = |at: usize, end: usize| {
            // Markers are few and sorted; a binary search finds the one that could contain the hit.
            let i = markers.partition_point(|&(_, e)| e <= at);
            markers.get(i).is_some_and(|&(s, _)| s < end)
        };
        let mut merged: Vec<Hit> = Vec::new();
        let push = |hit: Hit, merged: &mut Vec<Hit>| {
            let mut hit = hit;
            // Overlapping intervals merge; the longest occurrence names the secret shown.
            while let Some(top) = merged.last() {
                if top.end <= hit.start {
                    break;
                }
                let top = merged.pop().unwrap_or(hit);
                let (longest, _) = if top.len >= hit.len { (top.secret, top.len) } else { (hit.secret, hit.len) };
                hit = Hit {
                    start: top.start.min(hit.start),
                    end: top.end.max(hit.end),
                    secret: longest,
                    len: top.len.max(hit.len),
                };
            }
            merged.push(hit);
        };
        // Matches come in order of their end; at one end, keep the longest that qualifies.
        let mut best: Option<Hit> = None;
        self.each_occurrence(text, |at, end, form| {
            let len = end - at;
            let qualifies = len >= ANYWHERE || (is_boundary_before(text, at) && is_boundary_after(text, end));
            if !qualifies || in_marker(at, end) {
                return;
            }
            let hit = Hit { start: at, end, secret: self.forms[form].1, len };
            match &best {
                Some(b) if b.end == end => {
                    if hit.len > b.len {
                        best = Some(hit);
                    }
                }
                _ => {
                    if let Some(b) = best.take() {
                        push(b, &mut merged);
                    }
                    best = Some(hit);
                }
            }
        });
        if let Some(b) = best {
            push(b, &mut merged);
        }
        if window {
            for hit in self.edges(text) {
                if !in_marker(hit.start, hit.end) {
                    merged.push(hit);
                }
            }
            merged.sort_by_key(|h| h.start);
            let mut disjoint: Vec<Hit> = Vec::new();
            for h in merged {
                push(h, &mut disjoint);
            }
            return disjoint;
        }
        merged
    }

    /// A secret cut by the window's edges: the longest start of a form that ends the text, and the
    /// longest end of a form that starts it, when at least [`FRAGMENT`] bytes long.
    fn edges(&self, text: &[u8]) -> Vec<Hit> {
        let mut out = Vec::new();
        for (form, secret) in &self.forms {
            let form = form.as_bytes();
            if form.len() < ANYWHERE {
                continue;
            }
            let tail = &text[text.len().saturating_sub(form.len() - 1)..];
            let k = overlap(form, tail);
            if k >= FRAGMENT {
                let start = ceil_char(text, text.len() - k);
                out.push(Hit { start, end: text.len(), secret: *secret, len: k });
            }
            let head = &text[..text.len().min(form.len() - 1)];
            let rev_form: Vec<u8> = form.iter().rev().copied().collect();
            let rev_head: Vec<u8> = head.iter().rev().copied().collect();
            let k = overlap(&rev_form, &rev_head);
            if k >= FRAGMENT {
                out.push(Hit { start: 0, end: floor_char(text, k), secret: *secret, len: k });
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    secret: usize,
    len: usize,
}

/// `text` with each hit replaced by its secret's redaction marker.
fn splice(text: &[u8], hits: &[Hit], secrets: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut from = 0;
    // One digest per secret, however often a peer repeats it.
    let mut markers: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    for h in hits {
        if h.start < from || h.end <= h.start {
            continue;
        }
        out.extend_from_slice(&text[from..h.start]);
        out.extend_from_slice(markers.entry(h.secret).or_insert_with(|| redact(&secrets[h.secret])).as_bytes());
        from = h.end;
    }
    out.extend_from_slice(&text[from..]);
    out
}

/// The spans of redaction markers already in `text`, in order: exactly `<redacted len=N sha256=x8>`
/// (or [`TOO_MANY_SECRETS`]), so that a peer cannot shelter a secret inside something marker-like.
fn markers(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for at in memchr::memmem::find_iter(text, b"<redacted") {
        if out.last().is_some_and(|&(_, e)| at < e) {
            continue;
        }
        if let Some(len) = marker_len(&text[at..]) {
            out.push((at, at + len));
        }
    }
    out
}

/// The length of the redaction marker `text` starts with, if it starts with one.
fn marker_len(text: &[u8]) -> Option<usize> {
    if text.starts_with(TOO_MANY_SECRETS.as_bytes()) {
        return Some(TOO_MANY_SECRETS.len());
    }
    let rest = text.strip_prefix(b"<redacted len=")?;
    let digits = rest.iter().take(20).take_while(|b| b.is_ascii_digit()).count();
    let rest = rest[digits..].strip_prefix(b" sha256=")?;
    let hex = rest.get(..8)?;
    (digits > 0 && hex.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) && rest.get(8) == Some(&b'>'))
        .then(|| "<redacted len=".len() + digits + " sha256=".len() + 9)
}

/// The length of the longest prefix of `pattern` that is a suffix of `text` (the KMP failure function
/// over `pattern`, run along `text`): linear in both.
fn overlap(pattern: &[u8], text: &[u8]) -> usize {
    if pattern.is_empty() {
        return 0;
    }
    let mut fail = vec![0usize; pattern.len()];
    let mut k = 0;
    for i in 1..pattern.len() {
        while k > 0 && pattern[i] != pattern[k] {
            k = fail[k - 1];
        }
        if pattern[i] == pattern[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for &b in text {
        while k > 0 && (k == pattern.len() || b != pattern[k]) {
            k = fail[k - 1];
        }
        if b == pattern[k] {
            k += 1;
        }
    }
    k
}

fn is_char_start(b: u8) -> bool {
    (b as i8) >= -0x40
}

/// The first character boundary at or after `i`.
fn ceil_char(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && !is_char_start(text[i]) {
        i += 1;
    }
    i
}

/// The last character boundary at or before `i`.
fn floor_char(text: &[u8], mut i: usize) -> usize {
    while i > 0 && i < text.len() && !is_char_start(text[i]) {
        i -= 1;
    }
    i
}

/// Secrets at least this long are replaced anywhere, even inside a word.
pub const ANYWHERE: usize = 8;

/// The shortest piece of a secret, cut by the edge of a window, that [`Scrubber::scrub_window`] redacts.
pub(crate) const FRAGMENT: usize = 4;

/// Whether the character before byte `at` is not a letter or digit (or `at` is the start).
fn is_boundary_before(text: &[u8], at: usize) -> bool {
    let start = text[..at].iter().rposition(|&b| is_char_start(b)).unwrap_or(0);
    std::str::from_utf8(&text[start..at]).ok().and_then(|s| s.chars().next_back()).is_none_or(|c| !c.is_alphanumeric())
}

/// Whether the character at byte `end` is not a letter or digit (or `end` is the end).
fn is_boundary_after(text: &[u8], end: usize) -> bool {
    let len = text[end..].iter().skip(1).position(|&b| is_char_start(b)).map_or(text.len() - end, |p| p + 1);
    std::str::from_utf8(&text[end..end + len]).ok().and_then(|s| s.chars().next()).is_none_or(|c| !c.is_alphanumeric())
}

/// Every encoding a secret may travel in or come back in (see [`Scrubber::add_all_forms`]).
fn forms_of(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let b = secret.as_bytes();
    let mut out = vec![
        secret.to_owned(),
        percent(secret, false),
        lower_hex_escapes(&percent(secret, false)),
        percent(secret, true),
        lower_hex_escapes(&percent(secret, true)),
        percent(secret, false).replace("%20", "+"),
        STANDARD.encode(b),
        STANDARD_NO_PAD.encode(b),
        URL_SAFE.encode(b),
        URL_SAFE_NO_PAD.encode(b),
        b.iter().map(|x| format!("{x:02x}")).collect(),
        b.iter().map(|x| format!("{x:02X}")).collect(),
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        let inner = json[1..json.len() - 1].to_owned();
        out.push(inner.replace('/', "\\/"));
        out.push(inner);
    }
    out.retain(|f| !f.is_empty());
    out.dedup();
    out
}

/// Percent-encoding: of what a URL query cannot carry as is (`everything = false`), or of every byte
/// that is not a letter, digit or `-._~` (`everything = true`). Upper-case hex, as RFC 3986 prefers.
fn percent(value: &str, everything: bool) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const QUERY: &AsciiSet =
        &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/').remove(b':');
    const ALL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    utf8_percent_encode(value, if everything { ALL } else { QUERY }).to_string()
}

/// `%2B` → `%2b`: some encoders write lower-case hex.
fn lower_hex_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` with every control character (newline, carriage return, NUL, escape, …) written as a
/// visible escape, so that what a peer sent can never break or forge a log line.
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Scrubs every string inside a JSON value.
pub(crate) fn scrub_json(v: &serde_json::Value, scrub: &Scrubber) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(scrub.scrub(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| scrub_json(x, scrub)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), scrub_json(x, scrub))).collect()),
        other => other.clone(),
    }
}

/// `text` quoted for a POSIX shell: pasted into a command line, it is one argument and runs nothing
/// (single quotes, with `'` written as `'\''`); plain words stay as they are. Control characters are
/// never put in a shell line: a text that holds one is written as a `$'…'` string with escapes.
pub(crate) fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._/:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    if text.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() || !c.is_ascii() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `text` escaped for HTML text or a quoted attribute value.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text with every string value scrubbed (keys are left alone), in one pass: the layout and the
/// order of the fields stay as serialised. Secrets are searched in their JSON-escaped form too
/// ([`Scrubber::add_all_forms`] registers it); a redaction marker needs no escaping.
pub(crate) fn scrub_json_text(json: &str, scrub: &Scrubber) -> String {
    if scrub.shows() || scrub.is_empty() {
        return json.to_owned();
    }
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut copied = 0;
    while let Some(q) = memchr::memchr(b'"', &b[i..]) {
        let start = i + q + 1;
        // The closing quote: the first `"` not escaped by an odd run of backslashes.
        let mut end = start;
        loop {
            if end >= b.len() {
                return out + &json[copied..];
            }
            let Some(n) = memchr::memchr2(b'"', b'\\', &b[end..]) else { return out + &json[copied..] };
            end += n;
            if b[end] == b'\\' {
                end += 2;
                continue;
            }
            break;
        }
        let is_key = b[end + 1..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b':');
        if !is_key {
            out.push_str(&json[copied..start]);
            out.push_str(&scrub.scrub(&json[start..end]));
            copied = end;
        }
        i = end + 1;
    }
    out.push_str(&json[copied..]);
    out
}

/// A writer that scrubs each line written through it before passing it on: the last guard of a
/// text report, so that nothing a peer echoed (a body, a status line, a certificate field) reaches
/// the reader with a secret in it, whichever field carried it.
pub(crate) struct ScrubLines<'a, W: std::io::Write + ?Sized> {
    inner: &'a mut W,
    scrub: &'a Scrubber,
    line: Vec<u8>,
}

impl<'a, W: std::io::Write + ?Sized> ScrubLines<'a, W> {
    pub(crate) fn new(inner: &'a mut W, scrub: &'a Scrubber) -> Self {
        Self { inner, scrub, line: Vec::new() }
    }

    fn emit(&mut self, upto: usize) -> std::io::Result<()> {
        let rest = self.line.split_off(upto);
        let line = std::mem::replace(&mut self.line, rest);
        let text = String::from_utf8_lossy(&line);
        self.inner.write_all(self.scrub.scrub(&text).as_bytes())
    }
}

impl<W: std::io::Write + ?Sized> std::io::Write for ScrubLines<'_, W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(b);
        while let Some(nl) = memchr::memchr(b'\n', &self.line) {
            self.emit(nl + 1)?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            let len = self.line.len();
            self.emit(len)?;
        }
        self.inner.flush()
    }
}

impl<W: std::io::Write + ?Sized> Drop for ScrubLines<'_, W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// The secrets every log line of this process is scrubbed against (the probe registers its run's
/// secrets before anything is sent), besides the escaping of control characters.
static LOG_SECRETS: std::sync::RwLock<Option<Scrubber>> = std::sync::RwLock::new(None);

/// Adds `secrets` to what every log line is scrubbed against.
pub(crate) fn register_log_secrets(secrets: &Scrubber) {
    if let Ok(mut g) = LOG_SECRETS.write() {
        match g.as_mut() {
            Some(s) => s.merge(secrets),
            None => *g = Some(secrets.clone()),
        }
    }
}

/// A log line as it may be written: scrubbed against the registered secrets, control characters
/// escaped except the line's own final newline.
pub(crate) fn log_line(line: &str) -> String {
    let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
    let body = escape(body);
    let scrubbed = LOG_SECRETS.read().ok().and_then(|g| g.as_ref().map(|s| s.scrub(&body)));
    scrubbed.unwrap_or(body) + newline
}

/// A writer for `tracing` that passes each log line through [`log_line`] on its way to stderr.
#[derive(Debug, Default)]
pub(crate) struct LogWriter {
    buf: Vec<u8>,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // One event is formatted whole, then written: keep it to the end (bounded by the event).
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // One writer per event: its newlines but the last are the event's own text, escaped, so a
        // message cannot start a log line of its own.
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        std::io::Write::write_all(&mut std::io::stderr(), log_line(&text).as_bytes())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The few-forms search (memmem, merged by end) and the automaton find the same occurrences:
    /// texts over a small alphabet, secrets that overlap each other and themselves, scrubbed by a
    /// scrubber with a few forms and by one with the same forms plus enough absent ones to take the
    /// automaton's path.
    #[test]
    fn few_forms_and_the_automaton_redact_alike() {
        let secrets = ["ab", "abab", "aab b", "aaaaaaaa", "abababab", "ba a", "b"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as usize
        };
        for round in 0..400 {
            let chosen: Vec<&str> = (0..1 + rand(3)).map(|_| secrets[rand(secrets.len() as u64)]).collect();
            let pieces = ["ab", "ab", "abab", "a", "b", " ", "aaaa", "="];
            let text: String = (0..rand(30)).map(|_| pieces[rand(pieces.len() as u64)]).collect();
            let mut few = Scrubber::new(false);
            for c in &chosen {
                few.add(c);
            }
            let mut many = few.clone();
            for i in 0..=FEW_FORMS {
                many.add(&format!("absent-{i}-zz"));
            }
            assert!(few.len() <= FEW_FORMS && many.len() > FEW_FORMS);
            assert_eq!(few.scrub(&text), many.scrub(&text), "round {round}: {chosen:?} in {text:?}");
            assert_eq!(few.scrub_window(&text), many.scrub_window(&text), "round {round}: {chosen:?} in {text:?}");
        }
    }

    #[test]
    fn a_secret_prints_only_its_redacted_form() {
        let s = Secret::new("tok-3f9a");
        assert_eq!(format!("{s}"), redact("tok-3f9a"));
        assert_eq!(format!("{s:?}"), redact("tok-3f9a"));
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({})", redact("tok-3f9a")));
        assert_eq!(s.expose(), "tok-3f9a");
    }

    #[test]
    fn redacted_form_has_length_and_hash_prefix() {
        // sha256("abc") = ba7816bf...
        assert_eq!(redact("abc"), "<redacted len=3 sha256=ba7816bf>");
    }

    #[test]
    fn scrub_replaces_embedded_secrets_longest_first() {
        let mut s = Scrubber::new(false);
        s.add("tok");
        s.add("tok-long");
        let out = s.scrub("user?token=tok-long&x=tok");
        assert!(!out.contains("=tok-long"));
        assert!(!out.contains("=tok&") && !out.ends_with("=tok"));
        assert!(out.contains(&redact("tok-long")));
        assert!(out.contains(&redact("tok")));
    }

    #[test]
    fn short_secrets_do_not_mangle_their_surroundings() {
        let mut s = Scrubber::new(false);
        s.add("tok");
        let r = redact("tok");
        assert_eq!(
            s.scrub("?x-amz-customauthorizer-name=A&token=tok"),
            format!("?x-amz-customauthorizer-name=A&token={r}")
        );
        assert_eq!(s.scrub("tok"), r);
        assert_eq!(s.scrub("a tokenizer"), "a tokenizer");
    }

    /// Case 6 of the hostile-input issue: a short secret inside an error message.
    #[test]
    fn short_secrets_are_replaced_as_words_in_free_text() {
        let mut s = Scrubber::new(false);
        s.add("pw-SECRET-2");
        s.add("pw1");
        let out = s.scrub("invalid password pw-SECRET-2 (was: pw1)");
        assert!(!out.contains("pw-SECRET-2") && !out.contains("pw1"), "{out}");
        assert_eq!(s.scrub("pw1x"), "pw1x", "inside a word, a short secret is not this secret");
    }

    /// Found by fuzzing: an occurrence under a longer secret hid the next, overlapping one.
    #[test]
    fn an_occurrence_passed_over_does_not_hide_the_next() {
        let mut s = Scrubber::new(false);
        s.add("zzzzzzzab");
        s.add("abababab");
        let out = s.scrub("zzzzzzzabababababab");
        assert!(!out.contains("abababab"), "{out}");
    }

    /// A peer repeating a short secret thousands of times costs n log n, not n².
    #[test]
    fn many_occurrences_are_scrubbed_in_one_pass() {
        let mut s = Scrubber::new(false);
        s.add("a");
        let text = "a&".repeat(32 * 1024);
        let out = s.scrub(&text);
        assert_eq!(out.matches("<redacted").count(), 32 * 1024);
    }

    #[test]
    fn redacted_forms_are_not_scanned_again() {
        let mut s = Scrubber::new(false);
        s.add("a-long-secret-value");
        s.add("len");
        let out = s.scrub("x a-long-secret-value len");
        assert_eq!(out, format!("x {} {}", redact("a-long-secret-value"), redact("len")));
    }

    #[test]
    fn long_secrets_are_replaced_anywhere() {
        let mut s = Scrubber::new(false);
        s.add("a-long-secret-value");
        assert_eq!(s.scrub("prefix:a-long-secret-value;"), format!("prefix:{};", redact("a-long-secret-value")));
    }

    #[test]
    fn encoded_forms_redact_as_the_secret() {
        let mut s = Scrubber::new(false);
        s.add("a+b");
        s.add_form("a+b", "a%2Bb");
        assert_eq!(s.scrub("x=a%2Bb"), format!("x={}", redact("a+b")));
    }

    /// Issue 21: 7,200 short parameters, each a secret, scrubbed in one pass.
    #[test]
    fn many_secrets_and_many_occurrences_stay_linear() {
        let mut s = Scrubber::new(false);
        let mut text = String::new();
        for i in 0..7_200 {
            let v = format!("+x{i}");
            s.add(&v);
            text.push_str(&format!("a={}&", percent(&v, true)));
        }
        assert!(s.overflow, "more forms than the bound redact whole texts");
        assert_eq!(s.scrub(&text), TOO_MANY_SECRETS);
        let mut s = Scrubber::new(false);
        let mut text = String::new();
        for i in 0..1000 {
            s.add(&format!("xsecret-{i:04}"));
            text.push_str(&format!("a=%2Bxsecret-{i:04}&"));
        }
        let out = s.scrub(&text);
        assert!(!out.contains("xsecret-"), "{}", &out[..200]);
        assert_eq!(out.matches("<redacted len=12 ").count(), 1000);
    }

    #[test]
    fn every_encoding_is_redacted_as_the_secret() {
        let secret = "tok+en/with=signs 1";
        let mut s = Scrubber::new(false);
        s.add_all_forms(secret);
        use base64::Engine as _;
        for form in [
            secret.to_owned(),
            "tok%2Ben/with%3Dsigns%201".into(),
            "tok%2ben%2fwith%3dsigns%201".into(),
            "tok%2Ben/with%3Dsigns+1".into(),
            base64::engine::general_purpose::STANDARD.encode(secret),
            secret.bytes().map(|b| format!("{b:02x}")).collect(),
            "tok+en\\/with=signs 1".into(),
        ] {
            let out = s.scrub(&format!("echo: {form}."));
            assert_eq!(out, format!("echo: {}.", redact(secret)), "{form}");
        }
    }

    #[test]
    fn basic_credentials_are_redacted_in_base64() {
        use base64::Engine as _;
        let mut s = Scrubber::new(false);
        s.add_basic_credential("alice", "pw-s3cret");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pw-s3cret");
        let out = s.scrub(&format!("HTTP/1.1 407 bad Basic {b64}"));
        assert!(!out.contains(&b64), "{out}");
    }

    #[test]
    fn a_window_cut_through_a_secret_hides_the_piece() {
        let mut s = Scrubber::new(false);
        s.add("eyJhbGciOiJSUzI1NiJ9.payload");
        let out = s.scrub_window("\x10\x2c..token=eyJhbGciOi");
        assert!(!out.contains("eyJhbG"), "{out}");
        let out = s.scrub_window("iJ9.payload&x=1");
        assert!(!out.contains("payload"), "{out}");
        // Three bytes is not a piece worth hiding; whole texts are not windows.
        assert_eq!(s.scrub("token=eyJhbGciOi"), "token=eyJhbGciOi");
    }

    #[test]
    fn bytes_are_scrubbed_too() {
        let mut s = Scrubber::new(false);
        s.add("secret-token");
        let out = s.scrub_bytes(b"\x10\x20\x00\x04MQTTsecret-token\xff");
        assert!(!out.windows(12).any(|w| w == b"secret-token"));
    }

    #[test]
    fn shell_quoting_runs_nothing_else() {
        assert_eq!(shell_quote("abc.example"), "abc.example");
        assert_eq!(shell_quote("x.example$(touch${IFS}pwned)"), "'x.example$(touch${IFS}pwned)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a\nb"), "$'a\\x0ab'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn json_text_keeps_its_keys_and_order() {
        let mut s = Scrubber::new(false);
        s.add_all_forms("se\"cret-token/x");
        let v = serde_json::json!({"z": "a se\"cret-token/x b", "a": ["se\"cret-token/x"], "se": 1});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let out = scrub_json_text(&text, &s);
        assert!(!out.contains("cret-token"), "{out}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["z"], format!("a {} b", redact("se\"cret-token/x")));
    }

    #[test]
    fn log_lines_are_escaped_but_keep_their_end() {
        assert_eq!(log_line("a\x1b[31mb\nc\n"), "a\\u{1b}[31mb\\nc\n");
    }

    #[test]
    fn showing_leaves_text_alone() {
        let mut s = Scrubber::new(true);
        s.add("secret");
        assert_eq!(s.scrub("a secret"), "a secret");
        assert_eq!(s.value("secret"), "secret");
    }
}
