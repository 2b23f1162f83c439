//! A positional reader of YAML: every node keeps its `line:column`, every
//! problem is collected rather than the first one stopping the walk. It
//! knows YAML scalars, mappings and lists, not the schema (see `decode`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use saphyr::{MarkedYaml, Marker, Scalar, ScanError, YamlData, YamlLoader};
use saphyr_parser::Parser;

use super::keyword::Keyword;
use super::problem::{ConfigError, Problem};

/// Loads the single YAML document in `text`, every node marked with its
/// position; `empty` says what is wrong with a text without one.
pub(super) fn load_document<'t>(
    text: &'t str,
    empty: &str,
) -> Result<MarkedYaml<'t>, (Pos, String)> {
    let syntax_error = |e: &ScanError| {
        (
            Pos::from(*e.marker()),
            format!("invalid YAML: {}", e.info()),
        )
    };
    let mut loader = YamlLoader::<MarkedYaml<'_>>::default();
    // Keep scalars as written: the decoder resolves them itself, so that a
    // field that wants a string takes `name: 2024` as the user wrote it, and
    // messages quote the user's own spelling (`0x50`, not 80).
    loader.early_parse(false);
    Parser::new_from_str(text)
        .load(&mut loader, true)
        .map_err(|e| syntax_error(&e))?;
    if let Some(e) = loader.error() {
        return Err(syntax_error(e));
    }
    let mut documents = loader.into_documents();
    match documents.len() {
        0 => Err((Pos::START, empty.to_owned())),
        1 => Ok(documents.swap_remove(0)),
        n => Err((
            Pos::from(documents[1].span.start),
            format!("expected one YAML document, found {n}"),
        )),
    }
}

/// A position in the text, 1-based like an editor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Pos {
    pub(super) const START: Pos = Pos { line: 1, column: 1 };
}

impl From<Marker> for Pos {
    fn from(marker: Marker) -> Self {
        // saphyr counts lines from 1 but columns from 0.
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A node and the field path that problems about it are reported under.
#[derive(Clone)]
pub(super) struct Field<'n, 'i> {
    pub(super) node: &'n MarkedYaml<'i>,
    pub(super) path: String,
}

impl<'n, 'i> Field<'n, 'i> {
    pub fn root(node: &'n MarkedYaml<'i>) -> Self {
        Field {
            node,
            path: String::new(),
        }
    }

    pub fn pos(&self) -> Pos {
        Pos::from(self.node.span.start)
    }

    pub fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

/// The entries of a mapping, its keys already checked against the schema.
pub(super) struct Fields<'n, 'i> {
    pub(super) mapping: Field<'n, 'i>,
    pub(super) entries: Vec<(&'n str, Field<'n, 'i>)>,
}

impl<'n, 'i> Fields<'n, 'i> {
    pub fn get(&self, name: &str) -> Option<Field<'n, 'i>> {
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, field)| field.clone())
    }
}

/// Whether a [`Reader`] records where each node is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Positions {
    Record,
    /// A first pass that only finds out whether the file is fine: no
    /// positions, and no field paths either (a string per field, most of
    /// the decoding's allocations). Its problems are never shown: a file
    /// with problems is read again with `Record` (see [`parse`]).
    Skip,
}

/// Walks the document, collecting problems, and (when asked) remembers
/// where each decoded node is so that validation can point at it
/// afterwards.
pub(super) struct Reader<'a> {
    pub(super) file: &'a str,
    pub(super) problems: Vec<Problem>,
    /// `None` when positions are skipped.
    pub(super) positions: Option<HashMap<String, Pos>>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, positions: Positions) -> Self {
        Reader {
            file,
            problems: Vec::new(),
            positions: (positions == Positions::Record).then(HashMap::new),
        }
    }

    /// The path of `name` under `field`, on a pass that keeps paths.
    pub fn child_path(&self, field: &Field<'_, '_>, name: &str) -> String {
        match self.positions {
            Some(_) => field.child_path(name),
            None => String::new(),
        }
    }

    /// The path of item `index` of the list `field`, likewise.
    pub fn item_path(&self, field: &Field<'_, '_>, index: usize) -> String {
        match self.positions {
            Some(_) => format!("{}[{index}]", field.path),
            None => String::new(),
        }
    }

    pub fn remember(&mut self, path: &str, pos: Pos) {
        if let Some(positions) = &mut self.positions {
            positions.insert(path.to_owned(), pos);
        }
    }

    pub fn finish<T>(mut self, decoded: Option<T>) -> Result<T, ConfigError> {
        match decoded {
            Some(decoded) if self.problems.is_empty() => Ok(decoded),
            _ => {
                if self.problems.is_empty() {
                    // Every failed decode reports why; this is a safety net.
                    self.report(Pos::START, "", "the configuration could not be decoded");
                }
                // Stable, so problems at the same node keep the order found.
                self.problems.sort_by_key(|p| (p.line, p.column));
                Err(ConfigError {
                    problems: self.problems,
                })
            }
        }
    }

    pub fn report(&mut self, pos: Pos, path: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    pub fn report_on(&mut self, field: &Field<'_, '_>, reason: impl Into<String>) {
        self.report(field.pos(), &field.path, reason);
    }

    /// `Some(())` if `ok`; otherwise reports `reason()` on `field`.
    pub fn ensure(
        &mut self,
        field: &Field<'_, '_>,
        ok: bool,
        reason: impl FnOnce() -> String,
    ) -> Option<()> {
        if !ok {
            self.report_on(field, reason());
        }
        ok.then_some(())
    }

    pub fn expected(&mut self, field: &Field<'_, '_>, what: &str) {
        let found = describe(field.node);
        self.report_on(field, format!("expected {what}, found {found}"));
    }

    // --- Structure.

    /// The entries of a mapping whose keys must be among `known`.
    pub fn mapping<'n, 'i>(
        &mut self,
        field: &Field<'n, 'i>,
        known: &[&str],
    ) -> Option<Fields<'n, 'i>> {
        let YamlData::Mapping(mapping) = &field.node.data else {
            self.expected(field, "a mapping");
            return None;
        };
        let mut entries: Vec<(&'n str, Field<'n, 'i>)> = Vec::new();
        for (key, node) in mapping {
            let key_pos = Pos::from(key.span.start);
            let Some((name, _)) = scalar(key) else {
                let found = describe(key);
                self.report(
                    key_pos,
                    &field.path,
                    format!("expected a field name, found {found}"),
                );
                continue;
            };
            let path = self.child_path(field, name);
            if !known.contains(&name) {
                self.report(key_pos, &path, unknown_field(name, known));
            } else if entries.iter().any(|(seen, _)| *seen == name) {
                // saphyr rejects exact duplicates; this catches `name` vs `"name"`.
                self.report(key_pos, &path, format!("duplicate field `{name}`"));
            } else {
                let value = Field { node, path };
                self.remember(&value.path, value.pos());
                entries.push((name, value));
            }
        }
        self.remember(&field.path, field.pos());
        Some(Fields {
            mapping: field.clone(),
            entries,
        })
    }

    pub fn required<'n, 'i>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
    ) -> Option<Field<'n, 'i>> {
        let field = fields.get(name);
        if field.is_none() {
            let at = fields.mapping.pos();
            let path = fields.mapping.child_path(name);
            self.report(at, &path, format!("missing required field `{name}`"));
        }
        field
    }

    /// Decodes a required field. `None` means a problem was reported.
    pub fn required_with<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        decode: impl FnOnce(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<T> {
        let field = self.required(fields, name)?;
        decode(self, &field)
    }

    /// Decodes an optional field, or takes `default` if it is absent.
    pub fn optional<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        default: T,
        decode: impl FnOnce(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<T> {
        match fields.get(name) {
            Some(field) => decode(self, &field),
            None => Some(default),
        }
    }

    /// Decodes an optional field, or takes `T`'s default if it is absent.
    pub fn or_default<'n, 'i, T: Default>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        decode: impl FnOnce(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<T> {
        self.optional(fields, name, T::default(), decode)
    }

    /// Decodes every item of a sequence; `None` if `field` is no sequence.
    pub fn list<'n, 'i, T>(
        &mut self,
        field: &Field<'n, 'i>,
        mut decode: impl FnMut(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<Vec<Option<T>>> {
        let YamlData::Sequence(nodes) = &field.node.data else {
            self.expected(field, "a list");
            return None;
        };
        let items = nodes.iter().enumerate().map(|(i, node)| {
            let item = Field {
                node,
                path: self.item_path(field, i),
            };
            self.remember(&item.path, item.pos());
            decode(self, &item)
        });
        Some(items.collect())
    }

    // --- Scalars.

    /// The text of a non-null scalar: for strings, the value as written.
    pub fn text<'n>(&mut self, field: &Field<'n, '_>, expected: &str) -> Option<&'n str> {
        match scalar(field.node) {
            Some((text, value)) if value != Scalar::Null => Some(text),
            _ => {
                self.expected(field, expected);
                None
            }
        }
    }

    pub fn integer(&mut self, field: &Field<'_, '_>, range: RangeInclusive<i64>) -> Option<i64> {
        self.integer_as(field, range, "an integer")
    }

    /// An integer in `range`; `what` names it when something else is found.
    pub fn integer_as(
        &mut self,
        field: &Field<'_, '_>,
        range: RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        let (min, max) = (range.start(), range.end());
        match scalar(field.node) {
            Some((_, Scalar::Integer(n))) if range.contains(&n) => Some(n),
            Some((text, Scalar::Integer(_))) => {
                self.report_on(field, format!("{text} is out of range {min}..={max}"));
                None
            }
            // Too big for an i64, the core schema makes it a float; the user
            // still wrote an integer.
            Some((text, Scalar::FloatingPoint(_))) if is_decimal_integer(text) => {
                self.report_on(field, format!("{text} is out of range {min}..={max}"));
                None
            }
            _ => {
                self.expected(field, &format!("{what} in {min}..={max}"));
                None
            }
        }
    }

    pub fn u32_in(&mut self, field: &Field<'_, '_>, range: RangeInclusive<u32>) -> Option<u32> {
        let range = i64::from(*range.start())..=i64::from(*range.end());
        self.integer(field, range)
            .and_then(|n| u32::try_from(n).ok())
    }

    pub fn port(&mut self, field: &Field<'_, '_>) -> Option<u16> {
        self.integer(field, 0..=i64::from(u16::MAX))
            .and_then(|n| u16::try_from(n).ok())
    }

    pub fn boolean(&mut self, field: &Field<'_, '_>) -> Option<bool> {
        match scalar(field.node) {
            Some((_, Scalar::Boolean(value))) => Some(value),
            _ => {
                self.expected(field, "`true` or `false`");
                None
            }
        }
    }

    /// A VIP, a real or a tunnel source: a unicast IPv4 or IPv6 address.
    pub fn ip(&mut self, field: &Field<'_, '_>) -> Option<IpAddr> {
        let text = self.text(field, "an IP address")?;
        let Ok(address) = text.parse::<IpAddr>() else {
            self.report_on(field, format!("`{text}` is not a valid IP address"));
            return None;
        };
        if !is_unicast(address) {
            self.report_on(field, format!("{address} is not a unicast address"));
            return None;
        }
        Some(address)
    }

    pub fn keyword<T: Keyword>(&mut self, field: &Field<'_, '_>) -> Option<T> {
        self.choice(field, T::WHAT, T::ALL, |value| value.keyword(), str::eq)
    }

    /// One of `all`, written as `spell` spells it (`same` compares the two
    /// spellings); `what` names the field in messages.
    pub fn choice<T: Copy>(
        &mut self,
        field: &Field<'_, '_>,
        what: &str,
        all: &[T],
        spell: impl Fn(T) -> &'static str,
        same: impl Fn(&str, &str) -> bool,
    ) -> Option<T> {
        let choices = all
            .iter()
            .map(|&value| format!("`{}`", spell(value)))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self.text(field, &format!("one of {choices}"))?;
        let value = all.iter().copied().find(|&value| same(spell(value), text));
        if value.is_none() {
            self.report_on(
                field,
                format!("unknown {what} `{text}`, expected one of {choices}"),
            );
        }
        value
    }

    /// Reports at the node `path` names; a field left out (to its default)
    /// is reported at the nearest node that encloses it.
    pub fn report_at(&mut self, path: &str, reason: impl Into<String>) {
        let mut prefix = path;
        let pos = loop {
            if let Some(pos) = self.positions.as_ref().and_then(|p| p.get(prefix)) {
                break *pos;
            }
            match prefix.rfind(['.', '[']) {
                Some(cut) => prefix = &prefix[..cut],
                None if !prefix.is_empty() => prefix = "",
                None => break Pos::START,
            }
        };
        self.report(pos, path, reason);
    }
}

/// A scalar's text as written and what the YAML core schema makes of it.
/// `None` for collections, and for scalars that carry an application tag
/// (`!foo`): this schema uses none, so they are more likely mistakes.
pub(super) fn scalar<'n>(node: &'n MarkedYaml<'_>) -> Option<(&'n str, Scalar<'n>)> {
    let YamlData::Representation(text, style, tag) = &node.data else {
        return None;
    };
    if tag.as_ref().is_some_and(|tag| !tag.is_yaml_core_schema()) {
        return None;
    }
    let value =
        Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text.as_ref()), *style, tag.as_ref())?;
    Some((text.as_ref(), value))
}

/// How a node is named in "expected X, found Y".
pub(super) fn describe(node: &MarkedYaml<'_>) -> String {
    match &node.data {
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Representation(text, _, tag) => match (scalar(node), tag) {
            (Some((_, Scalar::Null)), _) => "null".to_owned(),
            (Some((_, Scalar::Boolean(_))), _) => format!("boolean `{text}`"),
            (Some((_, Scalar::Integer(_))), _) => format!("integer `{text}`"),
            (Some((_, Scalar::FloatingPoint(_))), _) => format!("number `{text}`"),
            (Some((_, Scalar::String(_))), _) => format!("string `{text}`"),
            (None, Some(tag)) => format!("`{text}` tagged `{tag}`"),
            (None, None) => format!("`{text}`"),
        },
        YamlData::Tagged(tag, _) => format!("a node tagged `{tag}`"),
        YamlData::Value(_) | YamlData::Alias(_) | YamlData::BadValue => {
            "an invalid value".to_owned()
        }
    }
}

pub(super) fn unknown_field(name: &str, known: &[&str]) -> String {
    let expected = known
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("unknown field `{name}`, expected one of {expected}")
}

pub(super) fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Addresses that can receive a unicast flow: not unspecified, multicast or broadcast.
pub(super) fn is_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

pub(super) fn family(address: IpAddr) -> &'static str {
    if address.is_ipv4() { "IPv4" } else { "IPv6" }
}
