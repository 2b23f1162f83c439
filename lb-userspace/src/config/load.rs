//! Entry points: a file or a text to a checked [`Config`], and the check of
//! a configuration built in memory.

use std::path::Path;

use super::draft::Draft;
use super::problem::{ConfigError, EMPTY_FILE, Problem};
use super::reader::{Field, Positions, Reader, load_document};
use super::schema::Config;

/// Reads and validates the configuration at `path`. `interface_exists` is
/// injected so that tests do not depend on the host; the daemon passes
/// [`host_interface_exists`].
pub fn load(path: &Path, interface_exists: &dyn Fn(&str) -> bool) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file, interface_exists),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                file,
                line: 0,
                column: 0,
                path: String::new(),
                reason: format!("cannot read the configuration: {e}"),
            }],
        }),
    }
}

/// Parses and validates configuration text; `file_name` only labels problems.
pub fn parse(
    text: &str,
    file_name: &str,
    interface_exists: &dyn Fn(&str) -> bool,
) -> Result<Config, ConfigError> {
    // Where each node is only matters for placing problems that validation
    // finds after decoding. Recording it costs a path string and a hash
    // insert per node (a fifth of the time for 100,000 reals), so a file is
    // read without, and read again with positions only if it has problems.
    parse_once(text, file_name, interface_exists, Positions::Skip)
        .or_else(|_| parse_once(text, file_name, interface_exists, Positions::Record))
}

fn parse_once(
    text: &str,
    file_name: &str,
    interface_exists: &dyn Fn(&str) -> bool,
    positions: Positions,
) -> Result<Config, ConfigError> {
    let mut reader = Reader::new(file_name, positions);
    let root = match load_document(text, EMPTY_FILE) {
        Ok(root) => root,
        Err((pos, reason)) => {
            reader.report(pos, "", reason);
            return reader.finish(None);
        }
    };
    let draft = reader.decode_config(&Field::root(&root));
    if let Some(draft) = &draft {
        reader.validate(draft, interface_exists);
    }
    reader.finish(draft.and_then(Draft::into_config))
}

/// Validates a configuration built in memory (the running state after
/// `lbadm` changes) with the same rules as a file. Problems carry no
/// position (`line` 0) and are labelled with `source`.
pub fn check(config: &Config, source: &str) -> Result<(), ConfigError> {
    let mut reader = Reader::new(source, Positions::Skip);
    let draft = Draft::from_config(config.clone());
    // Interfaces come from the file and are not changed at run time.
    reader.validate(&draft, &|_| true);
    for problem in &mut reader.problems {
        problem.line = 0;
    }
    reader.finish(Some(config.clone())).map(|_| ())
}

/// Whether this host has a network interface called `name`.
pub fn host_interface_exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}
