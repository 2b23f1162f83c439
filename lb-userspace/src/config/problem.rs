//! Problems found in a configuration, each placed at `file:line:column`.

use std::fmt;

/// What an empty file (or a document that is null) is told.
pub(super) const EMPTY_FILE: &str = "the file is empty: expected at least `interfaces`";

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the problem is about the whole file (it cannot be read).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Where in the schema, e.g. `services[1].reals[0].weight`; empty for the
    /// document itself (syntax errors).
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.reason)
    }
}

/// Every problem found in a configuration, in the order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
