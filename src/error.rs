//! The library's error type and the exit code each kind of failure maps to.
//!
//! Exit codes are part of the interface: `1` means margo-gitops read the input and found
//! it wrong (a failed check: an invalid compose file, a file escaping the app folder, a
//! digest that does not match, an image that does not exist); `2` means it could not do
//! what was asked (bad flags, a missing file, an unreachable registry, refused
//! credentials); `3` means another pass holds the device's state folder and the wait for it
//! ran out (`--lock-timeout`). Messages name the input (file, line, field, reference) and
//! say what to do; they never carry a credential.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by kind of failure rather than by module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was read and is wrong. `file` and `line` locate it when known.
    #[error("{}{message}{}", location(file, line), hint_suffix(hint))]
    Invalid {
        file: Option<PathBuf>,
        line: Option<usize>,
        message: String,
        hint: Option<String>,
    },

    /// Content whose bytes do not match the digest that names them.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; the source serves corrupted or swapped content, nothing was kept")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// A reference that names nothing (no such tag, manifest or blob).
    #[error("{what} not found{}", hint_suffix(hint))]
    NotFound { what: String, hint: Option<String> },

    /// The command line asks for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),

    /// A file or folder could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The registry could not be reached or refused the request.
    #[error("registry {registry}: {message}{}", hint_suffix(hint))]
    Registry {
        registry: String,
        message: String,
        hint: Option<String>,
        /// How long the registry asked to wait (`Retry-After`), when it did.
        retry_after: Option<std::time::Duration>,
    },

    /// Another process holds what this one needs (a device's state folder), past the time
    /// it was given to wait.
    #[error("{0}")]
    Busy(String),

    /// A signing service (Fulcio, Rekor, an OIDC token endpoint) failed or refused.
    #[error("{service}: {message}{}", hint_suffix(hint))]
    Service {
        service: String,
        message: String,
        hint: Option<String>,
    },
}

fn location(file: &Option<PathBuf>, line: &Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{}:{l}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        _ => String::new(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

impl Error {
    /// The process exit code for this failure: 1 for a failed check, 2 for usage or I/O,
    /// 3 for a state folder another pass holds.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } | Error::DigestMismatch { .. } | Error::NotFound { .. } => 1,
            Error::Usage(_) | Error::Io { .. } | Error::Registry { .. } | Error::Service { .. } => {
                2
            }
            Error::Busy(_) => 3,
        }
    }

    /// An [`Error::Invalid`] about a file, with an optional line.
    pub(crate) fn invalid_file(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            file: Some(file.into()),
            line,
            message: message.into(),
            hint: None,
        }
    }

    /// An [`Error::Invalid`] that is not about one file.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            file: None,
            line: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a "what to do" hint to errors that carry one.
    pub(crate) fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Invalid { hint, .. }
            | Error::NotFound { hint, .. }
            | Error::Registry { hint, .. }
            | Error::Service { hint, .. } => *hint = Some(text.into()),
            _ => {}
        }
        self
    }

    /// Puts `context` (`commit abc1234 (subject)`, `config `site``) in front of the message
    /// of a check failure or a usage error; other errors say enough already.
    pub fn in_context(self, context: &str) -> Self {
        match self {
            Error::Invalid {
                file,
                line,
                message,
                hint,
            } => Error::Invalid {
                file,
                line,
                message: format!("{context}: {message}"),
                hint,
            },
            Error::Usage(m) => Error::Usage(format!("{context}: {m}")),
            other => other,
        }
    }

    /// An [`Error::Service`] about `service` (named with its URL).
    pub(crate) fn service(service: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Service {
            service: service.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Wraps an I/O error with the action and the path it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
