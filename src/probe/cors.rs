//! A page's HTTPS publish as a browser makes it (`--client-type browser --transport https`): the CORS
//! preflight the browser sends first when the request carries headers a page may not send freely, the
//! browser's verdict on the answer (the Fetch standard's CORS check and preflight checks), and whether
//! the page may read the publish's answer.

use serde::Serialize;

/// The `Content-Type` of `fetch(url, {body: "…"})`: a string body. It is CORS-safelisted, so only
/// the custom-auth headers make the request need a preflight.
pub(crate) const CONTENT_TYPE: &str = "text/plain;charset=UTF-8";

/// What the page asked the server and what the browser made of it (the attempt's `sent.cors`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CorsSeen {
    /// The page's `Origin`.
    pub origin: String,
    /// `Access-Control-Request-Headers` of the preflight (empty: the publish needed none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested_headers: Vec<String>,
    /// The preflight's HTTP status, when one was sent and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight_status: Option<u16>,
    /// Why the browser stops after the preflight (absent: it goes on to the publish).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight_refused: Option<String>,
    /// Whether the page may read the publish's answer (its `Access-Control-Allow-Origin`); absent
    /// when the publish was not sent or not answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_readable: Option<bool>,
}

/// The request headers that make a page's request need a preflight, as a browser lists them in
/// `Access-Control-Request-Headers`: lower case, sorted, no duplicates. Of what the probe sends,
/// only `Content-Type` with a safelisted value is free; every custom-auth header needs asking.
pub(crate) fn requested_headers(headers: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .filter(|(n, v)| !safelisted(n, v))
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !FORBIDDEN.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Headers a page cannot set (the browser sets them): never in a preflight's list.
const FORBIDDEN: [&str; 4] = ["host", "content-length", "origin", "connection"];

/// The Fetch standard's CORS-safelisted request headers, for the values the probe sends.
fn safelisted(name: &str, value: &str) -> bool {
    match name.to_ascii_lowercase().as_str() {
        "accept" | "accept-language" | "content-language" => true,
        "content-type" => {
            let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            matches!(essence.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data")
        }
        _ => false,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// The browser's CORS check of an answer (Fetch, "CORS check"): a request without credentials passes
/// when `Access-Control-Allow-Origin` is `*` or the page's origin, exactly.
pub(crate) fn cors_check(headers: &[(String, String)], origin: &str) -> Result<(), String> {
    match header(headers, "access-control-allow-origin") {
        None => Err("the answer has no Access-Control-Allow-Origin".into()),
        Some("*") => Ok(()),
        Some(v) if v == origin => Ok(()),
        Some(v) => Err(format!("Access-Control-Allow-Origin is {v:?}, not the page's origin {origin:?}")),
    }
}

/// The browser's verdict on a preflight's answer (Fetch, "CORS-preflight fetch"): an ok status, the
/// CORS check, the method (POST is safelisted: it needs no listing) and every requested header
/// listed in `Access-Control-Allow-Headers` (or `*`).
pub(crate) fn judge_preflight(
    status: u16,
    headers: &[(String, String)],
    origin: &str,
    requested: &[String],
) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("the preflight was answered {status}, not an ok status (2xx)"));
    }
    cors_check(headers, origin)?;
    let allowed: Vec<String> = header(headers, "access-control-allow-headers")
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if allowed.iter().any(|h| h == "*") {
        return Ok(());
    }
    let missing: Vec<&str> =
        requested.iter().filter(|r| !allowed.iter().any(|a| a == *r)).map(String::as_str).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("Access-Control-Allow-Headers does not list {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_custom_auth_headers_need_a_preflight_a_text_body_does_not() {
        let sent = h(&[
            ("content-type", CONTENT_TYPE),
            ("x-amz-customauthorizer-name", "A"),
            ("Token", "t"),
            ("x-amz-customauthorizer-signature", "s"),
        ]);
        assert_eq!(
            requested_headers(&sent),
            ["token", "x-amz-customauthorizer-name", "x-amz-customauthorizer-signature"]
        );
        assert!(requested_headers(&h(&[("content-type", CONTENT_TYPE)])).is_empty());
        assert_eq!(requested_headers(&h(&[("content-type", "application/json")])), ["content-type"]);
    }

    #[test]
    fn a_preflight_passes_only_as_a_browser_lets_it() {
        let o = "https://app.example.com";
        let req = vec!["token".to_owned(), "x-amz-customauthorizer-name".to_owned()];
        let ok = h(&[
            ("Access-Control-Allow-Origin", o),
            ("Access-Control-Allow-Headers", "Token, X-Amz-CustomAuthorizer-Name"),
        ]);
        assert_eq!(judge_preflight(200, &ok, o, &req), Ok(()));
        assert_eq!(
            judge_preflight(
                204,
                &h(&[("access-control-allow-origin", "*"), ("access-control-allow-headers", "*")]),
                o,
                &req
            ),
            Ok(())
        );
        // No CORS headers at all (IoT Core documents none on the data endpoint).
        assert!(judge_preflight(200, &[], o, &req).unwrap_err().contains("no Access-Control-Allow-Origin"));
        assert!(judge_preflight(403, &ok, o, &req).unwrap_err().contains("403"));
        let other =
            h(&[("access-control-allow-origin", "https://other.example"), ("access-control-allow-headers", "*")]);
        assert!(judge_preflight(200, &other, o, &req).unwrap_err().contains("other.example"));
        let short = h(&[("access-control-allow-origin", o), ("access-control-allow-headers", "token")]);
        assert!(judge_preflight(200, &short, o, &req).unwrap_err().ends_with("x-amz-customauthorizer-name"));
        assert!(cors_check(&h(&[("access-control-allow-origin", o)]), o).is_ok());
    }
}
