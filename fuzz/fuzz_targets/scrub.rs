//! The redaction property: a registered secret never survives `scrub` — anywhere when it is long, as
//! a word of its own when it is short — whatever text surrounds it.
#![no_main]

use authprobe::secret::{ANYWHERE, Scrubber};
use libfuzzer_sys::fuzz_target;

/// The parts of `text` between the redaction markers (`<redacted len=N sha256=xxxxxxxx>`) the
/// scrubber writes, each with whether a marker touches its start and its end.
fn fragments(text: &str) -> Vec<(&str, bool, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut after_marker = false;
    while let Some(at) = rest.find("<redacted len=") {
        let Some(end) = rest[at..].find('>') else { break };
        out.push((&rest[..at], after_marker, true));
        rest = &rest[at + end + 1..];
        after_marker = true;
    }
    out.push((rest, after_marker, false));
    out
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The input: up to three secrets, then the text, separated by NUL.
    let mut parts = text.split('\0');
    let secrets: Vec<&str> =
        parts.by_ref().take(3).filter(|s| !s.is_empty() && !s.contains('<') && !s.contains('>')).collect();
    let body: String = parts.collect::<Vec<_>>().join(" ");
    let mut s = Scrubber::new(false);
    for secret in &secrets {
        s.add(secret);
    }
    // Many parameters (issue 21: 7,200 short `a=%2Bxyz` values made redaction quadratic): the body
    // split at `&` registers every value as a secret too, as the emulator does with a username's
    // parameters; the scrubber stays linear and never lets one survive (or redacts the text whole).
    for value in body.split('&').filter_map(|p| p.split_once('=').map(|(_, v)| v)).take(2_000) {
        if !value.is_empty() && !value.contains('<') && !value.contains('>') {
            s.add(value);
        }
    }
    // Put each secret in the text as a word of its own, too.
    let text = format!("{body} {} end", secrets.join(" = "));
    let scrubbed = s.scrub(&text);
    if scrubbed == authprobe::secret::TOO_MANY_SECRETS {
        // More forms than a scrubber holds: the whole text is redacted, nothing survives.
        return;
    }
    for (fragment, marker_before, marker_after) in fragments(&scrubbed) {
        for secret in &secrets {
            for (at, _) in fragment.match_indices(secret) {
                let end = at + secret.len();
                if secret.len() >= ANYWHERE {
                    panic!("{secret:?} survived in {scrubbed:?}");
                }
                // Next to a marker, the original neighbour was another secret's character: unknown here.
                if (at == 0 && marker_before) || (end == fragment.len() && marker_after) {
                    continue;
                }
                let before = fragment[..at].chars().next_back();
                let after = fragment[end..].chars().next();
                assert!(is_word_char(before) || is_word_char(after), "{secret:?} survived as a word in {scrubbed:?}");
            }
        }
    }
});
