//! ipvsadm's two kinds of failure, with its exact wording and exit codes.
//!
//! - Command-line problems ([`UsageError`]): ipvsadm's `fail(2, ...)`
//!   prints the message and exits 2; popt's own errors and "no command"
//!   (`tryhelp_exit(argv[0], -1)`) exit 255.
//! - Kernel refusals ([`ApplyError`]): ipvsadm prints
//!   `ipvs_strerror(errno)` and returns the library's -1, exit status 255.

use std::fmt;

use serde::{Deserialize, Serialize};

/// ipvsadm's `fail(2, ...)`.
pub const EXIT_FAIL: i32 = 2;
/// `exit(-1)` / `return -1` from `main`, as the shell sees it.
pub const EXIT_MINUS_ONE: i32 = 255;
/// `-L -t` / `-S` naming a service that does not exist: `exit(1)`.
pub const EXIT_LIST_FAILED: i32 = 1;

/// A command line ipvsadm would refuse. `message` is the whole stderr text
/// without the trailing newline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageError {
    pub message: String,
    pub exit_code: i32,
}

impl UsageError {
    /// ipvsadm's `fail(2, ...)`.
    pub(super) fn fail(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit_code: EXIT_FAIL,
        }
    }

    /// An ipvsadm feature this product does not have (exit 2 like `fail`).
    pub(super) fn not_supported(what: impl fmt::Display) -> Self {
        Self::fail(format!("lbadm: {what}"))
    }

    /// ipvsadm's `tryhelp_exit(argv[0], -1)`.
    pub(super) fn try_help() -> Self {
        Self {
            message: "Try `lbadm -h' or 'lbadm --help' for more information.".to_string(),
            exit_code: EXIT_MINUS_ONE,
        }
    }

    /// A popt error: `fprintf(stderr, "%s: %s\n", poptBadOption(), poptStrerror())`.
    pub(super) fn popt(token: &str, reason: &str) -> Self {
        Self {
            message: format!("{token}: {reason}"),
            exit_code: EXIT_MINUS_ONE,
        }
    }

    /// A message for the exit status ipvsadm gives the kernel's refusals.
    pub(super) fn kernel(message: &str) -> Self {
        Self {
            message: message.to_string(),
            exit_code: EXIT_MINUS_ONE,
        }
    }

    /// `ipvs_get_service` failing in `-L -t`: "No such service", exit 1.
    pub fn no_such_service_to_list() -> Self {
        Self {
            message: ApplyError::NoSuchService.message().to_string(),
            exit_code: EXIT_LIST_FAILED,
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// The kernel's refusal of a table command, named after its errno and
/// worded as libipvs's `ipvs_strerror` words it for that command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyError {
    /// `-A` of an existing service (EEXIST).
    ServiceExists,
    /// `-E`, `-D`, `-Z` of a missing service (ESRCH).
    NoSuchService,
    /// `-a`, `-e`, `-d` on a missing service (ESRCH).
    ServiceNotDefined,
    /// `-a` of an existing destination (EEXIST).
    DestinationExists,
    /// `-e`, `-d` of a missing destination (ENOENT).
    NoSuchDestination,
    /// `-y` above `-x` (the kernel's ERANGE, worded by `strerror`).
    ThresholdsOutOfRange,
    /// What the kernel answers EINVAL: a persistence netmask out of range,
    /// or a real of the other address family without tunnelling.
    InvalidOperation,
}

impl ApplyError {
    pub const fn message(self) -> &'static str {
        match self {
            Self::ServiceExists => "Service already exists",
            Self::NoSuchService => "No such service",
            Self::ServiceNotDefined => "Service not defined",
            Self::DestinationExists => "Destination already exists",
            Self::NoSuchDestination => "No such destination",
            Self::ThresholdsOutOfRange => "Numerical result out of range",
            Self::InvalidOperation => {
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            }
        }
    }

    /// ipvsadm returns libipvs's -1 from `main`.
    pub const fn exit_code(self) -> i32 {
        EXIT_MINUS_ONE
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ApplyError {}
