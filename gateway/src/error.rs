//! One error type for the whole library: a kind that the Flight layer maps to a gRPC status
//! code, and a message written for the person who will read it (naming the dataset, file,
//! row and column where they are known).

use std::fmt::Display;

/// What went wrong, as far as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A dataset, database, bucket or file that does not exist.
    NotFound,
    /// A malformed name, option or input, including bad data in a file.
    InvalidArgument,
    /// The target exists and the write said it must not.
    AlreadyExists,
    /// The request is well formed but the target's state does not allow it (schema mismatch).
    FailedPrecondition,
    /// The caller may not do this (configuration forbids it).
    PermissionDenied,
    /// The caller did not prove who they are (no or a bad certificate or token).
    Unauthenticated,
    /// The caller has too many streams running.
    ResourceExhausted,
    /// A type or feature this gateway does not handle.
    Unsupported,
    /// The stream was cut before it ended cleanly.
    Cancelled,
    /// A system this gateway depends on (a peer gateway) cannot be reached or went away.
    Unavailable,
    /// A fault of the gateway or of a system behind it.
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The foreign error this one was made from, where there was one (a database server's,
    /// an object store's): kept for logs and for callers that look inside.
    #[source]
    pub source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, keeping `source` as its cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    /// A fault of the gateway or of the system behind it; a full disk is told apart
    /// ([`out_of_room`]).
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        if out_of_room(&message) {
            let said = match message.ends_with(FULL) {
                true => message,
                false => format!("{message}{FULL}"),
            };
            return Self::new(ErrorKind::ResourceExhausted, said);
        }
        Self::new(ErrorKind::Internal, message)
    }
    /// The same error with `context` in front of its message: "files/a.csv: line 3: ...".
    pub fn within(self, context: impl Display) -> Self {
        let context = context.to_string();
        // Layers that each name the file must not name it twice.
        if self
            .message
            .strip_prefix(context.as_str())
            .is_some_and(|rest| rest.starts_with(": "))
        {
            return self;
        }
        Self {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

/// A value that cannot be read or written, placed by its row (1-based, in the stream or the
/// result) and column: every connector's "row N, column "c": why" is this one type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}, column {column:?}: {reason}")]
pub struct CellError {
    pub row: u64,
    pub column: String,
    pub reason: String,
}

impl CellError {
    pub fn new(row: u64, column: impl Into<String>, reason: impl Display) -> Self {
        Self {
            row,
            column: column.into(),
            reason: reason.to_string(),
        }
    }
}

/// Bad data: the caller's input is at fault.
impl From<CellError> for Error {
    fn from(e: CellError) -> Self {
        Error::invalid(e.to_string())
    }
}

/// Attach a kind and context to any foreign error at the point where both are known.
pub trait Context<T> {
    fn context(self, kind: ErrorKind, context: impl Display) -> Result<T>;
    /// Bad data or a bad option: the caller's input is at fault.
    fn invalid(self, context: impl Display) -> Result<T>
    where
        Self: Sized,
    {
        self.context(ErrorKind::InvalidArgument, context)
    }
    /// A fault of the gateway or of the system behind it.
    fn internal(self, context: impl Display) -> Result<T>
    where
        Self: Sized,
    {
        self.context(ErrorKind::Internal, context)
    }
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, kind: ErrorKind, context: impl Display) -> Result<T> {
        self.map_err(|e| {
            let text = format!("{context}: {e}");
            match kind {
                ErrorKind::Internal => Error::internal(text),
                kind => Error::new(kind, text),
            }
        })
    }
}

/// What a full disk's error says after the system's own words.
const FULL: &str = " (the disk is full)";

/// Whether an error says a disk is full or a quota spent (ENOSPC, EDQUOT): the system's lack
/// of room, not the gateway's fault. What reaches here is the io::Error's text (object_store
/// carries it as text), which ends in its errno.
fn out_of_room(text: &str) -> bool {
    text.contains("(os error 28)") || text.contains("(os error 122)")
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        match e {
            arrow::error::ArrowError::ExternalError(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::internal(other.to_string()),
            },
            other => Error::internal(other.to_string()),
        }
    }
}

impl From<Error> for arrow::error::ArrowError {
    fn from(e: Error) -> Self {
        arrow::error::ArrowError::ExternalError(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_resource_exhausted_and_says_so() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = Err::<(), _>(full).internal("writing t/x.csv").unwrap_err();
        assert_eq!(e.kind, ErrorKind::ResourceExhausted);
        assert!(
            e.message.contains("No space left") && e.message.ends_with("(the disk is full)"),
            "{e}"
        );
        let other = std::io::Error::from_raw_os_error(13);
        let e = Err::<(), _>(other).internal("writing t/x.csv").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        let bad = Err::<(), _>("os error 28 in a value")
            .invalid("a cell")
            .unwrap_err();
        assert_eq!(bad.kind, ErrorKind::InvalidArgument);
    }
}
