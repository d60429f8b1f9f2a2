//! Redaction of secrets (tokens, signatures, passwords) in every report and log.
//!
//! A secret is shown as `<redacted len=N sha256=xxxxxxxx>`: enough to tell two values apart or to match
//! a value the user knows, without revealing it.

use ring::digest;

/// The redacted form of a secret value.
pub fn redact(value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, value.as_bytes());
    let hex: String = hash.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("<redacted len={} sha256={hex}>", value.len())
}

/// Replaces every known secret inside free text (usernames, query strings, header values).
///
/// Structured fields are redacted where they are built; the scrubber catches the same values embedded in
/// larger strings, in any of the encodings they travelled in.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    show: bool,
    /// (text to find, the secret it stands for), longest text first.
    secrets: Vec<(String, String)>,
}

impl Scrubber {
    /// `show = true` turns the scrubber off (`--show-secrets`).
    pub fn new(show: bool) -> Self {
        Self { show, secrets: Vec::new() }
    }

    /// Registers a secret value; empty values are ignored.
    pub fn add(&mut self, secret: &str) {
        self.add_form(secret, secret);
    }

    /// Registers another form of a secret (e.g. percent-encoded): it is redacted as the secret itself,
    /// so the same value shows the same `len` and hash wherever it travelled.
    pub fn add_form(&mut self, secret: &str, form: &str) {
        if !form.is_empty() && !self.secrets.iter().any(|(f, _)| f == form) {
            self.secrets.push((form.to_owned(), secret.to_owned()));
            // Longest first, so a secret that contains another is replaced whole.
            self.secrets.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        }
    }

    /// The value itself when showing secrets, else its redacted form.
    pub fn value(&self, secret: &str) -> String {
        if self.show { secret.to_owned() } else { redact(secret) }
    }

    /// Adds every secret `other` knows, and takes its setting (showing or redacting).
    pub fn merge(&mut self, other: &Self) {
        self.show = other.show;
        for (form, secret) in &other.secrets {
            self.add_form(secret, form);
        }
    }

    /// `text` with every registered secret replaced by its redacted form.
    ///
    /// Secrets of [`ANYWHERE`] characters or more are replaced wherever they appear. Shorter ones are
    /// replaced where they stand as a word of their own — between characters that are not letters or
    /// digits: the whole text, a `name=value` value, a word in an error message — so a short token
    /// never mangles the words around it (`tok` leaves `token=` alone) yet never survives on its own.
    /// One pass over the text: a longer secret wins over a shorter one it contains, and redacted
    /// forms are never scanned again.
    pub fn scrub(&self, text: &str) -> String {
        if self.show || self.secrets.is_empty() {
            return text.to_owned();
        }
        // Accepted hits by start; they never overlap, so the one starting last before a candidate's
        // end is the only one that can overlap it (a log n check, whatever a peer repeats).
        let mut hits: std::collections::BTreeMap<usize, (usize, &str)> = std::collections::BTreeMap::new();
        let overlaps = |hits: &std::collections::BTreeMap<usize, (usize, &str)>, at: usize, end: usize| {
            hits.range(..end).next_back().is_some_and(|(_, &(e, _))| e > at)
        };
        for (form, secret) in &self.secrets {
            // Every occurrence, overlapping ones included: one passed over (inside a word, or under a
            // longer secret) must not hide the next one.
            let mut from = 0;
            while let Some(rel) = text[from..].find(form.as_str()) {
                let at = from + rel;
                let end = at + form.len();
                let is_word = form.len() >= ANYWHERE
                    || (is_boundary(text[..at].chars().next_back()) && is_boundary(text[end..].chars().next()));
                if is_word && !overlaps(&hits, at, end) {
                    hits.insert(at, (end, secret.as_str()));
                    from = end;
                } else {
                    from = at + text[at..].chars().next().map_or(1, char::len_utf8);
                }
            }
        }
        if hits.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        for (at, (end, secret)) in hits {
            out += &text[from..at];
            out += &redact(secret);
            from = end;
        }
        out + &text[from..]
    }
}

/// Secrets at least this long are replaced anywhere, even inside a word.
pub const ANYWHERE: usize = 8;

/// The edge of a word: start or end of text, or a character that is not a letter or digit.
fn is_boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| !c.is_alphanumeric())
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
pub fn scrub_json(v: &serde_json::Value, scrub: &Scrubber) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(scrub.scrub(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| scrub_json(x, scrub)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), scrub_json(x, scrub))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn showing_leaves_text_alone() {
        let mut s = Scrubber::new(true);
        s.add("secret");
        assert_eq!(s.scrub("a secret"), "a secret");
        assert_eq!(s.value("secret"), "secret");
    }
}
