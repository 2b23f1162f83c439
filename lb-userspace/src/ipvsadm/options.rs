//! ipvsadm's option table and the parts of popt's scanning it relies on:
//! clustered short options (`-Ln`), attached values (`-p300`, `-p=300`,
//! `--persistent=300`), a required value taken from the next word whatever
//! it looks like, an optional value taken only when the next word does not
//! start with `-`, `--` ending the options, and non-option words collected
//! as arguments wherever they appear.

use super::errors::UsageError;

/// Every option ipvsadm 1.31 knows, plus lbadm's `-o json|yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    /// `--ops`: one-packet scheduling.
    Ops,
    /// `-o`: ipvsadm's `--ops`, or with a value lbadm's output format.
    Output,
    PersistenceEngine,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    None,
    Required,
    /// popt's `POPT_ARGFLAG_OPTIONAL` (`-p [timeout]`).
    Optional,
}

struct Spec {
    long: Option<&'static str>,
    short: Option<char>,
    value: Value,
    opt: Opt,
}

const fn spec(long: &'static str, short: Option<char>, value: Value, opt: Opt) -> Spec {
    Spec {
        long: Some(long),
        short,
        value,
        opt,
    }
}

/// ipvsadm.c's `options_table`, in its order.
const SPECS: &[Spec] = &[
    spec("add-service", Some('A'), Value::None, Opt::AddService),
    spec("edit-service", Some('E'), Value::None, Opt::EditService),
    spec("delete-service", Some('D'), Value::None, Opt::DeleteService),
    spec("clear", Some('C'), Value::None, Opt::Clear),
    spec("list", Some('L'), Value::None, Opt::List),
    spec("list", Some('l'), Value::None, Opt::List),
    spec("zero", Some('Z'), Value::None, Opt::Zero),
    spec("add-server", Some('a'), Value::None, Opt::AddServer),
    spec("edit-server", Some('e'), Value::None, Opt::EditServer),
    spec("delete-server", Some('d'), Value::None, Opt::DeleteServer),
    spec("set", None, Value::None, Opt::Set),
    spec("help", Some('h'), Value::None, Opt::Help),
    spec("version", Some('v'), Value::None, Opt::Version),
    spec("restore", Some('R'), Value::None, Opt::Restore),
    spec("save", Some('S'), Value::None, Opt::Save),
    spec("start-daemon", None, Value::Required, Opt::StartDaemon),
    spec("stop-daemon", None, Value::Required, Opt::StopDaemon),
    spec("tcp-service", Some('t'), Value::Required, Opt::TcpService),
    spec("udp-service", Some('u'), Value::Required, Opt::UdpService),
    spec("sctp-service", None, Value::Required, Opt::SctpService),
    spec(
        "fwmark-service",
        Some('f'),
        Value::Required,
        Opt::FwmarkService,
    ),
    spec("scheduler", Some('s'), Value::Required, Opt::Scheduler),
    spec("persistent", Some('p'), Value::Optional, Opt::Persistent),
    spec("netmask", Some('M'), Value::Required, Opt::Netmask),
    spec("real-server", Some('r'), Value::Required, Opt::RealServer),
    spec("masquerading", Some('m'), Value::None, Opt::Masquerading),
    spec("ipip", Some('i'), Value::None, Opt::Ipip),
    spec("gatewaying", Some('g'), Value::None, Opt::Gatewaying),
    spec("weight", Some('w'), Value::Required, Opt::Weight),
    spec("u-threshold", Some('x'), Value::Required, Opt::UThreshold),
    spec("l-threshold", Some('y'), Value::Required, Opt::LThreshold),
    spec("numeric", Some('n'), Value::None, Opt::Numeric),
    spec("connection", Some('c'), Value::None, Opt::Connection),
    spec(
        "mcast-interface",
        None,
        Value::Required,
        Opt::McastInterface,
    ),
    spec("syncid", None, Value::Required, Opt::SyncId),
    spec("timeout", None, Value::None, Opt::Timeout),
    spec("daemon", None, Value::None, Opt::Daemon),
    spec("stats", None, Value::None, Opt::Stats),
    spec("rate", None, Value::None, Opt::Rate),
    spec("thresholds", None, Value::None, Opt::Thresholds),
    spec("persistent-conn", None, Value::None, Opt::PersistentConn),
    spec("nosort", None, Value::None, Opt::NoSort),
    spec("sort", None, Value::None, Opt::Sort),
    spec("exact", Some('X'), Value::None, Opt::Exact),
    spec("ipv6", Some('6'), Value::None, Opt::Ipv6),
    // ipvsadm's `{ "ops", 'o', POPT_ARG_NONE }` split in two: `--ops` stays
    // the flag, `-o` may carry lbadm's output format.
    spec("ops", None, Value::None, Opt::Ops),
    Spec {
        long: None,
        short: Some('o'),
        value: Value::Optional,
        opt: Opt::Output,
    },
    spec("pe", None, Value::Required, Opt::PersistenceEngine),
    spec("sched-flags", Some('b'), Value::Required, Opt::SchedFlags),
    spec("mcast-group", None, Value::Required, Opt::McastGroup),
    spec("mcast-port", None, Value::Required, Opt::McastPort),
    spec("mcast-ttl", None, Value::Required, Opt::McastTtl),
    spec("sync-maxlen", None, Value::Required, Opt::SyncMaxlen),
    spec("tun-info", None, Value::None, Opt::TunInfo),
    spec("tun-type", None, Value::Required, Opt::TunType),
    spec("tun-port", None, Value::Required, Opt::TunPort),
    spec("tun-nocsum", None, Value::None, Opt::TunNocsum),
    spec("tun-csum", None, Value::None, Opt::TunCsum),
    spec("tun-remcsum", None, Value::None, Opt::TunRemcsum),
];

/// One option found on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Found<'a> {
    pub opt: Opt,
    /// The word it came from (what popt's `poptBadOption` reports).
    pub token: &'a str,
    pub value: Option<&'a str>,
}

/// popt's errors, which stop the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ScanError<'a> {
    Unknown(&'a str),
    MissingValue(&'a str),
    UnwantedValue(&'a str),
}

impl ScanError<'_> {
    /// `"%s: %s"` of `poptBadOption` and `poptStrerror`, exit 255.
    pub fn into_usage(self) -> UsageError {
        match self {
            Self::Unknown(token) => UsageError::popt(token, "unknown option"),
            Self::MissingValue(token) => UsageError::popt(token, "missing argument"),
            Self::UnwantedValue(token) => {
                UsageError::popt(token, "option does not take an argument")
            }
        }
    }
}

/// Walks the words one option at a time, as `poptGetNextOpt` does.
pub(super) struct Scanner<'a> {
    words: &'a [String],
    next: usize,
    /// Inside a cluster of short options: the word and the byte offset of
    /// the next letter.
    cluster: Option<(&'a str, usize)>,
    /// After `--` every word is an argument.
    options_ended: bool,
    arguments: Vec<&'a str>,
}

impl<'a> Scanner<'a> {
    pub fn new(words: &'a [String]) -> Self {
        Self {
            words,
            next: 0,
            cluster: None,
            options_ended: false,
            arguments: Vec::new(),
        }
    }

    /// The non-option words seen so far, in order (popt's `poptGetArg`).
    pub fn into_arguments(self) -> Vec<&'a str> {
        self.arguments
    }

    fn next_word(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.next)?;
        self.next += 1;
        Some(word.as_str())
    }

    fn long(&mut self, token: &'a str, body: &'a str) -> Result<Found<'a>, ScanError<'a>> {
        let (name, attached) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let spec = SPECS
            .iter()
            .find(|spec| spec.long == Some(name))
            .ok_or(ScanError::Unknown(token))?;
        let value = match (spec.value, attached) {
            (Value::None, Some(_)) => return Err(ScanError::UnwantedValue(token)),
            (_, Some(value)) => Some(value),
            (kind, None) => self.detached_value(kind, token)?,
        };
        Ok(Found {
            opt: spec.opt,
            token,
            value,
        })
    }

    fn short(&mut self, token: &'a str, offset: usize) -> Result<Found<'a>, ScanError<'a>> {
        self.cluster = None;
        let letter = token[offset..]
            .chars()
            .next()
            .expect("offset inside the word");
        let rest_at = offset + letter.len_utf8();
        let spec = SPECS
            .iter()
            .find(|spec| spec.short == Some(letter))
            .ok_or(ScanError::Unknown(token))?;
        let rest = &token[rest_at..];
        let value = match spec.value {
            Value::None => {
                if !rest.is_empty() {
                    self.cluster = Some((token, rest_at));
                }
                None
            }
            // popt skips one '=' between a short option and its value.
            _ if !rest.is_empty() => Some(rest.strip_prefix('=').unwrap_or(rest)),
            kind => self.detached_value(kind, token)?,
        };
        Ok(Found {
            opt: spec.opt,
            token,
            value,
        })
    }

    fn detached_value(
        &mut self,
        kind: Value,
        token: &'a str,
    ) -> Result<Option<&'a str>, ScanError<'a>> {
        match kind {
            Value::None => Ok(None),
            Value::Required => self
                .next_word()
                .map(Some)
                .ok_or(ScanError::MissingValue(token)),
            Value::Optional => {
                let follows = self.words.get(self.next).map(String::as_str);
                match follows {
                    Some(word) if !word.starts_with('-') => Ok(self.next_word()),
                    _ => Ok(None),
                }
            }
        }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Found<'a>, ScanError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((token, offset)) = self.cluster {
            return Some(self.short(token, offset));
        }
        loop {
            let word = self.next_word()?;
            if self.options_ended {
                self.arguments.push(word);
            } else if word == "--" {
                self.options_ended = true;
            } else if let Some(body) = word.strip_prefix("--") {
                return Some(self.long(word, body));
            } else if word.len() > 1 && word.starts_with('-') {
                return Some(self.short(word, 1));
            } else {
                self.arguments.push(word);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn scan(line: &str) -> (Vec<(Opt, Option<String>)>, Vec<String>) {
        let words = words(line);
        let mut scanner = Scanner::new(&words);
        let found = scanner
            .by_ref()
            .map(|found| {
                let found = found.expect("scans");
                (found.opt, found.value.map(str::to_string))
            })
            .collect();
        let arguments = scanner
            .into_arguments()
            .into_iter()
            .map(str::to_string)
            .collect();
        (found, arguments)
    }

    #[test]
    fn clustered_short_options_are_split() {
        let (found, _) = scan("-Ln");
        assert_eq!(found, vec![(Opt::List, None), (Opt::Numeric, None)]);
    }

    #[test]
    fn a_value_may_be_attached_or_follow() {
        let (found, _) = scan("-At1.2.3.4:80 -s rr -p=60 --netmask=255.0.0.0");
        assert_eq!(
            found,
            vec![
                (Opt::AddService, None),
                (Opt::TcpService, Some("1.2.3.4:80".into())),
                (Opt::Scheduler, Some("rr".into())),
                (Opt::Persistent, Some("60".into())),
                (Opt::Netmask, Some("255.0.0.0".into())),
            ]
        );
    }

    #[test]
    fn an_optional_value_is_not_taken_from_an_option() {
        let (found, _) = scan("-p -s rr");
        assert_eq!(found[0], (Opt::Persistent, None));
        let (found, _) = scan("-p 120");
        assert_eq!(found[0], (Opt::Persistent, Some("120".into())));
    }

    #[test]
    fn a_required_value_is_taken_whatever_it_looks_like() {
        let (found, _) = scan("-s -p");
        assert_eq!(found, vec![(Opt::Scheduler, Some("-p".into()))]);
    }

    #[test]
    fn words_that_are_not_options_become_arguments_anywhere() {
        let (found, arguments) = scan("900 --set 120 -- -300");
        assert_eq!(found, vec![(Opt::Set, None)]);
        assert_eq!(arguments, vec!["900", "120", "-300"]);
    }

    #[test]
    fn popt_errors_name_the_word() {
        for (line, expected) in [
            ("--bogus", "--bogus: unknown option"),
            ("-Lq", "-Lq: unknown option"),
            ("-t", "-t: missing argument"),
            (
                "--numeric=1",
                "--numeric=1: option does not take an argument",
            ),
        ] {
            let words = words(line);
            let error = Scanner::new(&words)
                .find_map(Result::err)
                .expect("an error")
                .into_usage();
            assert_eq!(error.message, expected);
            assert_eq!(error.exit_code, 255);
        }
    }
}
