//! Where custom-auth credentials travel and how they are read back (docs/custom-auth.md §2).
//!
//! The same three parameters can sit in HTTP headers, in the URL query or in the MQTT CONNECT username's
//! query; the readers here are what the emulator uses and what the probe's encoders are tested against.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;

/// Parameter naming the authorizer.
pub const AUTHORIZER_NAME: &str = "x-amz-customauthorizer-name";
/// Parameter carrying the base64 token signature.
pub const SIGNATURE: &str = "x-amz-customauthorizer-signature";

/// Where a credential was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In HTTP headers (wss, https).
    Header,
    /// In the query string of the request URL (wss, https).
    Query,
    /// In the MQTT CONNECT username, after a `?` (mqtt, wss).
    Username,
}

/// Everything but RFC 3986 unreserved characters is escaped: `+`, `/` and `=` of a base64 signature
/// become `%2B`, `%2F`, `%3D`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a query or username parameter value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Builds `name=value&...` from parameters whose values are already in their wire form.
pub fn join_query(params: &[(String, String)]) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The MQTT username of docs/custom-auth.md §2: `<user>?<params>`, or `<user>&<params>` when `user` already holds a
/// `?` (never a second `?`).
pub fn username_with(user: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return user.to_owned();
    }
    let sep = if user.contains('?') { '&' } else { '?' };
    format!("{user}{sep}{}", join_query(params))
}

/// One `name=value` pair of a query string, decoded, with the text it had on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name, as sent.
    pub name: String,
    /// Its value, percent-decoded.
    pub value: String,
    /// The value exactly as sent (before percent-decoding).
    pub raw_value: String,
}

/// Parses `a=1&b=2` (no leading `?`). Percent-decodes names and values; with `plus_as_space`, a raw `+`
/// decodes to a space as in HTML forms (docs/custom-auth.md §2 leaves this unknown for IoT Core).
pub fn parse_query(query: &str, plus_as_space: bool) -> Vec<Param> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            Param {
                name: decode(name, plus_as_space),
                value: decode(raw_value, plus_as_space),
                raw_value: raw_value.to_owned(),
            }
        })
        .collect()
}

fn decode(text: &str, plus_as_space: bool) -> String {
    let text = if plus_as_space { text.replace('+', " ") } else { text.to_owned() };
    percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

/// Splits a CONNECT username into the user part and the parameter list after the **last** `?`.
pub fn split_username(username: &str) -> (&str, Option<&str>) {
    match username.rfind('?') {
        Some(at) => (&username[..at], Some(&username[at + 1..])),
        None => (username, None),
    }
}

/// A credential value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The value found.
    pub value: String,
    /// As it was on the wire (percent-encoded where it travelled in a query).
    pub raw: String,
    /// Where it was found.
    pub placement: Placement,
}

/// Everything a connection offered that may carry credentials, searched headers first, then the URL
/// query, then the CONNECT username.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The request headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The parameters of the request URL's query.
    pub query: Vec<Param>,
    /// The parameters after the `?` of the MQTT username.
    pub username: Vec<Param>,
}

impl Sources {
    /// Finds a parameter; header names compare case-insensitively, query names exactly.
    pub fn find(&self, name: &str) -> Option<Found> {
        let header = self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| Found {
            value: v.clone(),
            raw: v.clone(),
            placement: Placement::Header,
        });
        let in_params = |params: &[Param], placement| {
            params.iter().find(|p| p.name == name).map(|p| Found {
                value: p.value.clone(),
                raw: p.raw_value.clone(),
                placement,
            })
        };
        header
            .or_else(|| in_params(&self.query, Placement::Query))
            .or_else(|| in_params(&self.username, Placement::Username))
    }

    /// `(decoded, raw)` values of the named parameters, for registering secrets with a scrubber.
    pub fn values_of<'a>(&'a self, names: &'a [&'a str]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let headers = self
            .headers
            .iter()
            .filter(|(n, _)| names.iter().any(|x| n.eq_ignore_ascii_case(x)))
            .map(|(_, v)| (v.as_str(), v.as_str()));
        let params = self
            .query
            .iter()
            .chain(&self.username)
            .filter(|p| names.contains(&p.name.as_str()))
            .map(|p| (p.value.as_str(), p.raw_value.as_str()));
        headers.chain(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_params_after_last_question_mark() {
        let (user, q) = split_username("dev?a=1?b=2&c=3");
        assert_eq!(user, "dev?a=1");
        assert_eq!(q, Some("b=2&c=3"));
        assert_eq!(split_username("plain"), ("plain", None));
        assert_eq!(split_username("?x=1"), ("", Some("x=1")));
    }

    #[test]
    fn query_values_are_percent_decoded_and_raw_kept() {
        let p = parse_query("sig=ab%2Bc%2Fd%3D&token=t", false);
        assert_eq!(p[0].value, "ab+c/d=");
        assert_eq!(p[0].raw_value, "ab%2Bc%2Fd%3D");
        assert_eq!(p[1].value, "t");
    }

    #[test]
    fn raw_plus_is_space_only_when_asked() {
        assert_eq!(parse_query("s=a+b", true)[0].value, "a b");
        assert_eq!(parse_query("s=a+b", false)[0].value, "a+b");
        assert_eq!(parse_query("s=a%2Bb", true)[0].value, "a+b");
    }

    #[test]
    fn encoded_username_round_trips_through_the_reader() {
        let sig = "ab+c/d==";
        let params = vec![
            (AUTHORIZER_NAME.to_owned(), encode("My Auth")),
            (SIGNATURE.to_owned(), encode(sig)),
            ("token".to_owned(), encode("t&k=1")),
        ];
        let u = username_with("dev", &params);
        assert!(u.contains("ab%2Bc%2Fd%3D%3D"), "{u}");
        let (user, q) = split_username(&u);
        let p = parse_query(q.unwrap(), true);
        assert_eq!((user, p[1].value.as_str(), p[2].value.as_str()), ("dev", sig, "t&k=1"));
        assert_eq!(username_with("dev?SDK=x", &params).matches('?').count(), 1);
    }

    #[test]
    fn headers_win_and_compare_case_insensitively() {
        let sources = Sources {
            headers: vec![("X-Amz-CustomAuthorizer-Name".into(), "H".into())],
            query: parse_query("x-amz-customauthorizer-name=Q", false),
            username: parse_query("x-amz-customauthorizer-name=U&token=t", false),
        };
        let found = sources.find(AUTHORIZER_NAME).unwrap();
        assert_eq!((found.value.as_str(), found.placement), ("H", Placement::Header));
        assert_eq!(sources.find("token").unwrap().placement, Placement::Username);
        assert_eq!(sources.find("Token"), None, "query names are case-sensitive");
    }
}
