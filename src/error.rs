//! Typed, actionable errors of the gms library.
//!
//! Every variant names the file (or flag) at fault and says how to fix it, so the binary can
//! print it as one line and exit with code 2.

use std::path::PathBuf;

/// Result alias for the gms library.
pub type Result<T, E = GmsError> = std::result::Result<T, E>;

/// What went wrong, said so a user can act on it.
#[derive(Debug, thiserror::Error)]
pub enum GmsError {
    /// A file or folder the command needs does not exist.
    #[error("{path}: not found ({what}); {fix}")]
    Missing {
        path: PathBuf,
        what: &'static str,
        fix: &'static str,
    },
    /// A file exists but cannot be read or parsed.
    #[error("{path}: {problem}; {fix}")]
    BadFile {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// A dataset row cannot be used.
    #[error("{path}:{line}: {problem}")]
    BadRow {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// The victim and the proxy cannot be combined.
    #[error("{victim} and {proxy} do not match: {problem}; use a proxy of the same architecture and size as the victim")]
    Mismatch {
        victim: PathBuf,
        proxy: PathBuf,
        problem: String,
    },
    /// A command-line value is out of range.
    #[error("{flag} {value}: {problem}")]
    BadArgument {
        flag: &'static str,
        value: String,
        problem: String,
    },
    /// An output cannot be written.
    #[error("{path}: cannot write ({problem}); {fix}")]
    Output {
        path: PathBuf,
        problem: String,
        fix: &'static str,
    },
    /// A PEFT adapter does not fit the base model it is put on (other shapes or layer count).
    #[error("{adapter}: does not fit the base model {base} ({problem}); use the base the adapter was trained on (its base_model_name_or_path)")]
    AdapterBase {
        adapter: PathBuf,
        base: PathBuf,
        problem: String,
    },
    /// The base model an adapter names is not on this machine (gms never downloads).
    #[error("{adapter}: base model {base} not found (looked in {looked}); {fix}")]
    BaseNotFound {
        adapter: PathBuf,
        base: String,
        looked: String,
        fix: String,
    },
    /// A tensor computation failed (a bug or an out-of-memory device rather than bad input).
    #[error("tensor computation failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// Which exit code an error earns: bad input or usage (2), or an internal failure (1: out of
/// memory, a bug) that no change to the inputs would fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Something the user gave is wrong (file, folder, flag, journal): exit code 2.
    BadInput,
    /// gms or the machine failed: exit code 1.
    Internal,
}

impl ErrorClass {
    /// The process exit code for this class.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::BadInput => 2,
            ErrorClass::Internal => 1,
        }
    }
}

/// An error that crossed a thread as text (the search worker's), keeping its class so the
/// front end exits with the right code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClassedError {
    /// The error, in one line.
    pub message: String,
    /// Its exit class.
    pub class: ErrorClass,
}

impl GmsError {
    /// Whether this is the user's to fix (every variant but a failed tensor computation).
    pub fn class(&self) -> ErrorClass {
        match self {
            GmsError::Compute(_) => ErrorClass::Internal,
            _ => ErrorClass::BadInput,
        }
    }

    /// A [`GmsError::BadFile`] for `path`.
    pub fn bad_file(
        path: impl Into<PathBuf>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        GmsError::BadFile {
            path: path.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A [`GmsError::Output`] for an I/O failure while writing `path`.
    pub fn output(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        GmsError::Output {
            path: path.into(),
            problem: err.to_string(),
            fix: "check that the folder exists, is writable and has free space",
        }
    }
}
