//! Errors in a type directory's files, naming file and line.

use std::fmt;
use std::path::PathBuf;

/// One problem of a type directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl FileError {
    /// A problem at `line` of a file named later (see [`FileError::in_file`]).
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            file: PathBuf::new(),
            line: Some(line),
            message: message.into(),
        }
    }

    pub(crate) fn whole(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }

    pub(crate) fn toml(text: &str, error: &toml::de::Error) -> Self {
        Self {
            file: PathBuf::new(),
            line: error.span().map(|s| super::rules::line_of(text, s.start)),
            message: error.message().to_owned(),
        }
    }

    pub(crate) fn json(error: &serde_json::Error) -> Self {
        Self {
            file: PathBuf::new(),
            line: Some(error.line()),
            message: error.to_string(),
        }
    }

    pub(crate) fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = file.into();
        self
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for FileError {}
