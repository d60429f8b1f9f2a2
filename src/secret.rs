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

    pub fn is_showing(&self) -> bool {
        self.show
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

    /// `text` with every registered secret replaced by its redacted form.
    ///
    /// Secrets are matched as whole values — the whole text, a `?`/`&`-separated segment, or the value
    /// of a `name=value` segment — so a short token never mangles the words around it; secrets of 12
    /// characters or more are also replaced wherever else they appear.
    pub fn scrub(&self, text: &str) -> String {
        if self.show {
            return text.to_owned();
        }
        if let Some(secret) = self.lookup(text) {
            return redact(secret);
        }
        let mut out = String::new();
        let mut segment = String::new();
        for ch in text.chars() {
            if ch == '?' || ch == '&' {
                out += &self.scrub_segment(&segment);
                out.push(ch);
                segment.clear();
            } else {
                segment.push(ch);
            }
        }
        out += &self.scrub_segment(&segment);
        for (form, secret) in &self.secrets {
            if form.len() >= 12 && out.contains(form.as_str()) {
                out = out.replace(form.as_str(), &redact(secret));
            }
        }
        out
    }

    fn lookup(&self, value: &str) -> Option<&str> {
        self.secrets.iter().find(|(form, _)| form == value).map(|(_, secret)| secret.as_str())
    }

    fn scrub_segment(&self, segment: &str) -> String {
        if let Some(secret) = self.lookup(segment) {
            return redact(secret);
        }
        match segment.split_once('=') {
            Some((name, value)) => match self.lookup(value) {
                Some(secret) => format!("{name}={}", redact(secret)),
                None => segment.to_owned(),
            },
            None => segment.to_owned(),
        }
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
