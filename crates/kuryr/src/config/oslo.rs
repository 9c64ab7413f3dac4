//! The INI dialect of oslo.config, read and written exactly as
//! `oslo_config/iniparser.py` and `cfg.py` do, so a `kuryr.conf` written for
//! the Python kuryr-libnetwork means the same thing here.
//!
//! Reading rules (iniparser.py):
//! - `key = value` or `key: value`, split on whichever separator comes first;
//! - a value wrapped in matching `"` or `'` loses one pair of quotes;
//! - lines indented with a space or a tab continue the previous value (joined
//!   with `\n`); a blank line ends it;
//! - `#` and `;` start a comment only at the start of a line: there are no
//!   inline comments;
//! - duplicate keys accumulate; a plain option takes the last one;
//! - section names are case-insensitive except `DEFAULT`.
//!
//! Values may reference other options with `$name`, `${name}` or
//! `${group.name}` ([`substitute`]); `$$` and `\$` are a literal dollar.

use std::fmt;

/// The name oslo.config gives to the section without a group.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// One `key = value` assignment, with the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, stripped of surrounding whitespace.
    pub key: String,
    /// The value: quotes removed, continuation lines joined with `\n`, `$`
    /// references not yet expanded.
    pub value: String,
    /// 1-based line number of the key.
    pub line: usize,
}

/// All assignments of one section of one file, in file order. Sections that
/// appear several times in a file are merged, as oslo.config does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The normalised name used for lookups ([`normalize_section`]).
    pub name: String,
    /// The name as first written in the file, for messages.
    pub header: String,
    /// 1-based line number of the first header.
    pub line: usize,
    /// Every assignment, duplicates included.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The effective assignment of `key`: the last one, as for a plain option.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// Every assignment of `key`, in file order (what a MultiStrOpt sees).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key == key)
    }

    /// Distinct keys, in order of first appearance.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !keys.contains(&e.key.as_str()) {
                keys.push(&e.key);
            }
        }
        keys
    }
}

/// One parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Where the text came from (a path, or a label such as `<string>`).
    pub origin: String,
    /// Sections in order of first appearance.
    pub sections: Vec<Section>,
}

impl Document {
    /// Parse oslo.config INI text. `origin` only labels error messages,
    /// which mask every word of a malformed assignment line.
    pub fn parse(origin: impl Into<String>, text: &str) -> Result<Document, ParseError> {
        Self::parse_known(origin, text, &|_| false)
    }

    /// Like [`Document::parse`]; an error about a malformed assignment
    /// line shows its first word when `known` accepts it as an option name
    /// (`password ***`), and masks the rest.
    pub fn parse_known(
        origin: impl Into<String>,
        text: &str,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<Document, ParseError> {
        Parser {
            doc: Document {
                origin: origin.into(),
                sections: Vec::new(),
            },
            current: None,
            pending: None,
            known,
        }
        .run(text)
    }

    /// A section by name; the name is normalised like oslo.config's lookups.
    pub fn section(&self, name: &str) -> Option<&Section> {
        let name = normalize_section(name);
        self.sections.iter().find(|s| s.name == name)
    }

    /// The effective value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section).and_then(|s| s.get(key))
    }

    /// Every value of `key` in `section`, in file order.
    pub fn get_all(&self, section: &str, key: &str) -> Vec<&Entry> {
        match self.section(section) {
            Some(s) => s.entries.iter().filter(|e| e.key == key).collect(),
            None => Vec::new(),
        }
    }
}

/// oslo.config's group-name normalisation: `DEFAULT` stays as is, every other
/// name is lower-cased (so `[Neutron]` is `[neutron]`, but `[default]` is not
/// `[DEFAULT]`).
pub fn normalize_section(name: &str) -> String {
    if name == DEFAULT_SECTION {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// What is wrong with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    NoSeparator,
    EmptyKey,
    UnexpectedContinuation,
    UnclosedSection,
    EmptySectionName,
    AssignmentOutsideSection,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same wording as iniparser.py, so operators can search for it.
        f.write_str(match self {
            ParseErrorKind::NoSeparator => "No ':' or '=' found in assignment",
            ParseErrorKind::EmptyKey => "Key cannot be empty",
            ParseErrorKind::UnexpectedContinuation => "Unexpected continuation line",
            ParseErrorKind::UnclosedSection => "Invalid section (must end with ])",
            ParseErrorKind::EmptySectionName => "Empty section name",
            ParseErrorKind::AssignmentOutsideSection => "Section must be started before assignment",
        })
    }
}

/// A syntax error, with its file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {kind}{}", excerpt(.text))]
pub struct ParseError {
    pub origin: String,
    pub line: usize,
    pub kind: ParseErrorKind,
    /// The offending line, shortened; empty for continuation lines, which may
    /// hold the rest of a secret; for a line that may be an assignment, only
    /// a known option name and `***` ([`mask_assignment`]).
    pub text: String,
}

fn excerpt(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text:?}")
    }
}

/// Python's `str.isspace()`: Unicode White_Space plus the ASCII separators
/// U+001C..U+001F, which `str.strip()` also removes.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Split like Python's text-mode file iteration (universal newlines):
/// `\r\n`, `\r` and `\n` each end a line.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

struct Pending {
    key: String,
    parts: Vec<String>,
    line: usize,
}

/// A line that may be a `key value` assignment (or `= value`), as an
/// error shows it: a first word `known` names as an option stays, the rest
/// is one `***` (it may be a secret or part of one, such as the second
/// line of a wrapped password).
pub fn mask_assignment(line: &str, known: &dyn Fn(&str) -> bool) -> String {
    let line = line.trim();
    let (mut out, rest) = match line.chars().next() {
        Some(c @ ('=' | ':')) => (c.to_string(), line[1..].trim_start()),
        _ => (String::new(), line),
    };
    let mut words = rest.split_whitespace().peekable();
    if out.is_empty()
        && let Some(first) = words.next_if(|w| known(w))
    {
        out.push_str(first);
    }
    if words.peek().is_some() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("***");
    }
    out
}

struct Parser<'k> {
    doc: Document,
    current: Option<usize>,
    pending: Option<Pending>,
    known: &'k dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn error(&self, line: usize, kind: ParseErrorKind, text: &str) -> ParseError {
        let text: String = match kind {
            ParseErrorKind::UnexpectedContinuation => String::new(),
            ParseErrorKind::NoSeparator | ParseErrorKind::EmptyKey => {
                mask_assignment(text, self.known)
            }
            _ => text.chars().take(120).collect(),
        };
        ParseError {
            origin: self.doc.origin.clone(),
            line,
            kind,
            text,
        }
    }

    fn run(mut self, text: &str) -> Result<Document, ParseError> {
        // A UTF-8 byte order mark would otherwise glue itself to the first
        // section header; editors on some systems add one.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in split_lines(text).into_iter().enumerate() {
            let lineno = index + 1;
            let line = raw.trim_end_matches(is_py_space);
            if line.is_empty() {
                self.flush()?;
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match self.pending.as_mut() {
                    Some(p) => p
                        .parts
                        .push(line.trim_start_matches(is_py_space).to_string()),
                    None => {
                        return Err(self.error(
                            lineno,
                            ParseErrorKind::UnexpectedContinuation,
                            line,
                        ));
                    }
                }
                continue;
            }
            self.flush()?;
            if line.starts_with('[') {
                if !line.ends_with(']') {
                    return Err(self.error(lineno, ParseErrorKind::UnclosedSection, line));
                }
                if line.chars().count() <= 2 {
                    return Err(self.error(lineno, ParseErrorKind::EmptySectionName, line));
                }
                // Both brackets are one byte, so this slice is on char boundaries.
                let name = &line[1..line.len() - 1];
                self.current = Some(self.section_index(name, lineno));
            } else if line.starts_with(['#', ';']) {
                // A comment.
            } else {
                let (key, value) = split_key_value(line)
                    .ok_or_else(|| self.error(lineno, ParseErrorKind::NoSeparator, line))?;
                if key.is_empty() {
                    return Err(self.error(lineno, ParseErrorKind::EmptyKey, line));
                }
                self.pending = Some(Pending {
                    key: key.to_string(),
                    parts: vec![value.to_string()],
                    line: lineno,
                });
            }
        }
        self.flush()?;
        Ok(self.doc)
    }

    fn section_index(&mut self, header: &str, line: usize) -> usize {
        let name = normalize_section(header);
        if let Some(i) = self.doc.sections.iter().position(|s| s.name == name) {
            return i;
        }
        self.doc.sections.push(Section {
            name,
            header: header.to_string(),
            line,
            entries: Vec::new(),
        });
        self.doc.sections.len() - 1
    }

    fn flush(&mut self) -> Result<(), ParseError> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let Some(index) = self.current else {
            return Err(self.error(p.line, ParseErrorKind::AssignmentOutsideSection, &p.key));
        };
        let entry = Entry {
            key: p.key,
            value: p.parts.join("\n"),
            line: p.line,
        };
        if let Some(section) = self.doc.sections.get_mut(index) {
            section.entries.push(entry);
        }
        Ok(())
    }
}

/// Split on the first `=` or `:`, strip both sides, and drop one pair of
/// matching quotes around the value.
fn split_key_value(line: &str) -> Option<(&str, &str)> {
    let at = match (line.find('='), line.find(':')) {
        (None, None) => return None,
        (Some(e), None) => e,
        (None, Some(c)) => c,
        (Some(e), Some(c)) => e.min(c),
    };
    // Both separators are one byte.
    let key = py_strip(&line[..at]);
    let mut value = py_strip(&line[at + 1..]);
    let mut chars = value.chars();
    if let (Some(first), Some(last)) = (chars.next(), value.chars().next_back())
        && first == last
        && (first == '"' || first == '\'')
    {
        // A lone quote character is both first and last: it becomes "".
        value = value.get(1..value.len() - 1).unwrap_or("");
    }
    Some((key, value))
}

/// Expand `$name`, `${name}` and `${group.name}` references like oslo.config
/// (Python `string.Template.safe_substitute` with oslo's identifier pattern
/// `[_a-z][._a-z0-9]*`, case-insensitive).
///
/// `$$` and `\$` are a literal `$`. `resolve` gets the reference without the
/// `$` and braces; `Ok(None)` leaves the reference untouched, as do malformed
/// references such as `$1` or an unclosed `${`.
pub fn substitute<E>(
    value: &str,
    mut resolve: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<String, E> {
    // cfg.py treats `\$` as `$$` "as it is a bit more natural for users".
    let escaped = value.replace("\\$", "$$");
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        if let Some(inner) = after.strip_prefix('{') {
            let len = identifier_len(inner);
            if len > 0 && inner[len..].starts_with('}') {
                let name = &inner[..len];
                match resolve(name)? {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("${");
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &inner[len + 1..];
                continue;
            }
        } else {
            let len = identifier_len(after);
            if len > 0 {
                let name = &after[..len];
                match resolve(name)? {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('$');
                        out.push_str(name);
                    }
                }
                rest = &after[len..];
                continue;
            }
        }
        // Not a reference: keep the dollar and go on after it.
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// Byte length of the identifier at the start of `s` (ASCII only, so byte
/// and char lengths agree).
fn identifier_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return 0,
    }
    1 + bytes[1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'.')
        .count()
}

/// Why a [`Writer`] refused to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write [{section}] {key}: {reason}")]
pub struct RenderError {
    pub section: String,
    pub key: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RenderValue {
    Scalar(String),
    List(Vec<String>),
}

/// Builds an oslo.config file from typed values, deterministically:
/// `[DEFAULT]` first, then the other sections in the order they were first
/// used, keys in the order they were first set. No inline comments are ever
/// written; every rendered file parses back to the same values.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    header: Vec<String>,
    sections: Vec<(String, Vec<(String, RenderValue)>)>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add comment lines at the top of the file.
    pub fn comment(&mut self, text: &str) -> &mut Self {
        self.header
            .extend(split_lines(text).into_iter().map(str::to_string));
        self
    }

    /// Make sure a section exists, even if it stays empty.
    pub fn section(&mut self, section: &str) -> &mut Self {
        self.entries(section);
        self
    }

    /// Set a scalar value, replacing an earlier one of the same key.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) -> &mut Self {
        self.put(section, key, RenderValue::Scalar(value.into()));
        self
    }

    /// Set a list value (`a,b,c`), replacing an earlier one of the same key.
    pub fn set_list<I, S>(&mut self, section: &str, key: &str, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let items = items.into_iter().map(Into::into).collect();
        self.put(section, key, RenderValue::List(items));
        self
    }

    fn entries(&mut self, section: &str) -> &mut Vec<(String, RenderValue)> {
        let index = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index].1
    }

    fn put(&mut self, section: &str, key: &str, value: RenderValue) {
        let entries = self.entries(section);
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    /// The file text, or the first value that cannot be represented.
    pub fn render(&self) -> Result<String, RenderError> {
        let mut out = String::new();
        for line in &self.header {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        let default_first = self
            .sections
            .iter()
            .filter(|(s, _)| s == DEFAULT_SECTION)
            .chain(self.sections.iter().filter(|(s, _)| s != DEFAULT_SECTION));
        for (section, entries) in default_first {
            let fail = |key: &str, reason| RenderError {
                section: section.clone(),
                key: key.to_string(),
                reason,
            };
            check_section_name(section).map_err(|r| fail("", r))?;
            if !out.is_empty() {
                out.push('\n');
            }
            out.push('[');
            out.push_str(section);
            out.push_str("]\n");
            for (key, value) in entries {
                check_key(key).map_err(|r| fail(key, r))?;
                let text = match value {
                    RenderValue::Scalar(v) => v.clone(),
                    RenderValue::List(items) => {
                        for item in items {
                            check_list_item(item).map_err(|r| fail(key, r))?;
                        }
                        items.join(",")
                    }
                };
                out.push_str(key);
                out.push_str(" = ");
                out.push_str(&encode_value(&text).map_err(|r| fail(key, r))?);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

fn check_section_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty section name");
    }
    if name.contains(['\n', '\r']) {
        return Err("line break in section name");
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.contains(['\n', '\r']) {
        return Err("line break in key");
    }
    if key.contains(['=', ':']) {
        return Err("'=' or ':' in key");
    }
    if py_strip(key) != key {
        return Err("whitespace around key");
    }
    if key.starts_with(['[', '#', ';']) {
        return Err("key starts with '[', '#' or ';'");
    }
    Ok(())
}

fn check_list_item(item: &str) -> Result<(), &'static str> {
    if item.is_empty() {
        return Err("empty list item");
    }
    if item.contains(',') {
        return Err("',' in list item");
    }
    if py_strip(item) != item {
        return Err("whitespace around list item");
    }
    Ok(())
}

/// Escape and quote a value so [`Document::parse`] plus [`substitute`] give
/// it back unchanged.
fn encode_value(value: &str) -> Result<String, &'static str> {
    if value.contains(['\n', '\r']) {
        return Err("line break in value");
    }
    // oslo.config turns every `\$` into `$$` before expanding, so a backslash
    // directly before a dollar can never come back out.
    if value.contains("\\$") {
        return Err("'\\$' cannot be represented in oslo.config files");
    }
    let escaped = value.replace('$', "$$");
    let first = escaped.chars().next();
    let last = escaped.chars().next_back();
    let padded = first.is_some_and(is_py_space) || last.is_some_and(is_py_space);
    // A value that already starts and ends with the same quote would lose
    // those quotes on reading: wrap it in one more pair.
    let quoted_look =
        matches!((first, last), (Some(f), Some(l)) if f == l && (f == '"' || f == '\''));
    if padded || quoted_look {
        Ok(format!("\"{escaped}\""))
    } else {
        Ok(escaped)
    }
}

#[cfg(test)]
mod tests;
