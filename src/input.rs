//! Reading what the user hands over (files, standard input) with a size limit that fits each kind of
//! input, so that `/dev/zero`, an endless FIFO or a 1 GB file named by mistake fails at once with an
//! error naming the limit, instead of filling memory.

use std::io::Read;
use std::path::Path;

/// A kind of input, with its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A token: IoT Core allows 6,144 characters; a file may hold a line break and some slack.
    Token,
    /// A signature (base64 of an RSA signature: 344 characters for 2048 bits, 2,560 at most).
    Signature,
    /// An MQTT password (65,535 bytes at most in a CONNECT).
    Password,
    /// A PEM key (private or public): an RSA key of 16,384 bits is about 13 KB.
    Key,
    /// A CA bundle (PEM): the system's whole bundle is about 200 KB.
    CaBundle,
    /// A JSON document from the AWS CLI (describe-authorizer, describe-endpoint, a policy, a response).
    Document,
    /// A TOML file: an emulator configuration or a device profile.
    Config,
    /// A storm's identities (JSON Lines) or a storm report: a line per device.
    Identities,
}

impl Kind {
    /// The most bytes an input of this kind may have.
    pub(crate) const fn limit(self) -> usize {
        match self {
            Self::Token => 16 * 1024,
            Self::Signature => 8 * 1024,
            Self::Password | Self::Key => 64 * 1024,
            Self::CaBundle => 4 * 1024 * 1024,
            Self::Document | Self::Config => 1024 * 1024,
            Self::Identities => 512 * 1024 * 1024,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Token => "a token",
            Self::Signature => "a signature",
            Self::Password => "a password",
            Self::Key => "a PEM key",
            Self::CaBundle => "a CA bundle",
            Self::Document => "a JSON document",
            Self::Config => "a TOML file",
            Self::Identities => "a storm's identities or report",
        }
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {what} {path}: {source}")]
    Io { what: String, path: String, source: std::io::Error },
    #[error("{what} {path} is larger than {limit} KiB, the limit for {kind}: is it the right file?")]
    TooLarge { what: String, path: String, limit: usize, kind: &'static str },
    #[error("{what} {path} is a directory: give a file")]
    Directory { what: String, path: String },
    #[error("{what} {path} is not UTF-8 text")]
    NotText { what: String, path: String },
}

/// Reads at most `kind`'s limit from `reader`; more is an error naming `what` and `path`.
pub(crate) fn read_bounded(mut reader: impl Read, kind: Kind, what: &str, path: &str) -> Result<Vec<u8>, InputError> {
    let limit = kind.limit();
    let mut buf = Vec::new();
    let io = |source| InputError::Io { what: what.to_owned(), path: path.to_owned(), source };
    (&mut reader).take(limit as u64 + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() > limit {
        return Err(InputError::TooLarge {
            what: what.to_owned(),
            path: path.to_owned(),
            limit: limit / 1024,
            kind: kind.name(),
        });
    }
    Ok(buf)
}

/// Reads the file at `path` (a FIFO or a device too), at most `kind`'s limit. `what` names the flag
/// or setting it came from, for the error.
pub(crate) fn read_file(path: &Path, kind: Kind, what: &str) -> Result<Vec<u8>, InputError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Io {
        what: what.to_owned(),
        path: shown.clone(),
        source,
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(InputError::Directory { what: what.to_owned(), path: shown });
    }
    read_bounded(file, kind, what, &shown)
}

/// [`read_file`] as UTF-8 text.
pub(crate) fn read_text(path: &Path, kind: Kind, what: &str) -> Result<String, InputError> {
    let bytes = read_file(path, kind, what)?;
    String::from_utf8(bytes)
        .map_err(|_| InputError::NotText { what: what.to_owned(), path: path.display().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_inputs_stop_at_the_limit() {
        let e = read_file(Path::new("/dev/zero"), Kind::Token, "--token-file").unwrap_err();
        assert!(e.to_string().contains("larger than 16 KiB, the limit for a token"), "{e}");
        let e = read_file(Path::new("/"), Kind::Config, "--config").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(read_bounded(&b"abc"[..], Kind::Token, "x", "y").unwrap(), b"abc");
    }
}
