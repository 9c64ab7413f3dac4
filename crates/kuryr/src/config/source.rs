//! Option lookup across several files, with oslo.config's precedence,
//! deprecated names and `$reference` expansion, plus typed readers.
//!
//! Precedence (cfg.py `_Namespace._get_file_value`): the last file given
//! wins; within one file the current option name wins over its deprecated
//! names; within one name the last assignment wins.

use std::cell::RefCell;
use std::time::Duration;

use secrecy::SecretString;

use super::error::{ConfigError, Origin, Place};
use super::oslo::{self, DEFAULT_SECTION, Document};

/// A registered option: its name, former names and default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opt {
    pub name: &'static str,
    pub deprecated: &'static [&'static str],
    /// Textual default, parsed like a file value. `None` is oslo's `None`.
    pub default: Option<&'static str>,
    /// Never echo the value in errors.
    pub secret: bool,
}

impl Opt {
    pub const fn new(name: &'static str) -> Opt {
        Opt {
            name,
            deprecated: &[],
            default: None,
            secret: false,
        }
    }

    pub const fn default(self, value: &'static str) -> Opt {
        Opt {
            default: Some(value),
            ..self
        }
    }

    pub const fn deprecated(self, names: &'static [&'static str]) -> Opt {
        Opt {
            deprecated: names,
            ..self
        }
    }

    pub const fn secret(self) -> Opt {
        Opt {
            secret: true,
            ..self
        }
    }

    fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.deprecated.contains(&key)
    }
}

/// A value as found: expanded text, where it came from, and the key that
/// was used (which may be a deprecated name).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub text: String,
    pub origin: Origin,
    pub key: String,
}

/// Deep enough for any sane chain of references, low enough to stop a
/// runaway one long before the stack is at risk.
const MAX_REFERENCE_DEPTH: usize = 32;

/// The parsed files plus the options registered per section.
pub(crate) struct Sources {
    docs: Vec<Document>,
    registered: Vec<(String, &'static [Opt])>,
    warnings: RefCell<Vec<String>>,
}

impl Sources {
    pub fn new(docs: Vec<Document>) -> Sources {
        Sources {
            docs,
            registered: Vec::new(),
            warnings: RefCell::new(Vec::new()),
        }
    }

    pub fn docs(&self) -> &[Document] {
        &self.docs
    }

    /// Declare options of a section, as `register_opts` does in oslo.config.
    pub fn register(&mut self, section: &str, opts: &'static [Opt]) {
        self.registered
            .push((oslo::normalize_section(section), opts));
    }

    /// Whether anything is registered in a (normalised) section.
    pub fn is_registered_section(&self, section: &str) -> bool {
        self.registered.iter().any(|(s, _)| s == section)
    }

    /// The registered option a file key stands for (by current or
    /// deprecated name).
    pub fn known_key(&self, section: &str, key: &str) -> Option<&'static Opt> {
        self.registered
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, opts)| opts.iter())
            .find(|o| o.answers_to(key))
    }

    /// A registered option by its current name only: references use opt
    /// names, never deprecated ones.
    fn registered_opt(&self, section: &str, name: &str) -> Option<&'static Opt> {
        self.registered
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, opts)| opts.iter())
            .find(|o| o.name == name)
    }

    pub fn warn(&self, message: String) {
        let mut warnings = self.warnings.borrow_mut();
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    }

    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.take()
    }

    /// The raw assignment for the first of `names` found, newest file first.
    fn raw(&self, section: &str, names: &[&str]) -> Option<(&oslo::Entry, &Document)> {
        self.docs.iter().rev().find_map(|doc| {
            let sec = doc.section(section)?;
            names.iter().find_map(|n| sec.get(n)).map(|e| (e, doc))
        })
    }

    /// The file value of a registered option, expanded; `None` if no file
    /// sets it.
    pub fn get(&self, section: &str, opt: &Opt) -> Result<Option<Found>, ConfigError> {
        let section = oslo::normalize_section(section);
        let names: Vec<&str> = std::iter::once(opt.name)
            .chain(opt.deprecated.iter().copied())
            .collect();
        let Some((entry, doc)) = self.raw(&section, &names) else {
            return Ok(None);
        };
        let origin = Origin::File {
            path: doc.origin.clone(),
            line: entry.line,
        };
        if entry.key != opt.name {
            self.warn(format!(
                "{origin}: [{section}] {} is deprecated, use {} instead",
                entry.key, opt.name
            ));
        }
        let mut stack = vec![(section.clone(), opt.name.to_string())];
        let text = self.expand(&section, &entry.value, &origin, &entry.key, &mut stack)?;
        Ok(Some(Found {
            text,
            origin,
            key: entry.key.clone(),
        }))
    }

    fn expand(
        &self,
        section: &str,
        value: &str,
        origin: &Origin,
        key: &str,
        stack: &mut Vec<(String, String)>,
    ) -> Result<String, ConfigError> {
        oslo::substitute(value, |reference| {
            self.resolve_reference(section, reference, origin, key, stack)
        })
    }

    /// cfg.py `StrSubWrapper`: `group.name` is looked up in that group;
    /// a bare `name` in the current group, then in `[DEFAULT]`.
    fn resolve_reference(
        &self,
        section: &str,
        reference: &str,
        origin: &Origin,
        key: &str,
        stack: &mut Vec<(String, String)>,
    ) -> Result<Option<String>, ConfigError> {
        let (group, name, dotted) = match reference.split_once('.') {
            Some((g, n)) => (oslo::normalize_section(g), n, true),
            None => (section.to_string(), reference, false),
        };
        if let Some(v) = self.reference_value(&group, name, origin, key, stack)? {
            return Ok(Some(v));
        }
        if !dotted && group != DEFAULT_SECTION {
            return self.reference_value(DEFAULT_SECTION, name, origin, key, stack);
        }
        Ok(None)
    }

    /// The value a reference to `[group] name` expands to: the file value
    /// (expanded in turn), else the default of a registered option (`None`
    /// expands to ""), else nothing, which leaves the reference untouched.
    fn reference_value(
        &self,
        group: &str,
        name: &str,
        origin: &Origin,
        key: &str,
        stack: &mut Vec<(String, String)>,
    ) -> Result<Option<String>, ConfigError> {
        let opt = self.registered_opt(group, name);
        let names: Vec<&str> = match opt {
            Some(o) => std::iter::once(o.name)
                .chain(o.deprecated.iter().copied())
                .collect(),
            None => vec![name],
        };
        let Some((entry, _)) = self.raw(group, &names) else {
            return Ok(opt.map(|o| o.default.unwrap_or("").to_string()));
        };
        let frame = (group.to_string(), name.to_string());
        let error = |detail: String| ConfigError::Interpolation {
            at: Place::boxed(
                origin.clone(),
                stack.first().map(|f| f.0.clone()).unwrap_or_default(),
                key,
            ),
            detail,
        };
        if stack.contains(&frame) {
            let chain: Vec<String> = stack
                .iter()
                .chain(std::iter::once(&frame))
                .map(|(g, n)| format!("{g}.{n}"))
                .collect();
            return Err(error(format!("reference loop: {}", chain.join(" -> "))));
        }
        if stack.len() >= MAX_REFERENCE_DEPTH {
            return Err(error(format!(
                "references nested deeper than {MAX_REFERENCE_DEPTH} levels"
            )));
        }
        stack.push(frame);
        let value = self.expand(group, &entry.value, origin, key, stack);
        stack.pop();
        value.map(Some)
    }
}

/// Typed access to the options of one section.
pub(crate) struct Group<'a> {
    pub src: &'a Sources,
    /// Normalised section name.
    pub name: String,
}

impl<'a> Group<'a> {
    pub fn new(src: &'a Sources, name: &str) -> Group<'a> {
        Group {
            src,
            name: oslo::normalize_section(name),
        }
    }

    /// The file value, expanded.
    pub fn found(&self, opt: &Opt) -> Result<Option<Found>, ConfigError> {
        self.src.get(&self.name, opt)
    }

    /// The file value or, failing that, the default (if any).
    pub fn value(&self, opt: &Opt) -> Result<Option<Found>, ConfigError> {
        Ok(self.found(opt)?.or_else(|| {
            opt.default.map(|d| Found {
                text: d.to_string(),
                origin: Origin::Default,
                key: opt.name.to_string(),
            })
        }))
    }

    pub fn invalid(&self, opt: &Opt, found: &Found, expected: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            at: Place::boxed(found.origin.clone(), self.name.clone(), found.key.clone()),
            value: if opt.secret {
                "<secret>".to_string()
            } else {
                found.text.clone()
            },
            expected: expected.into(),
        }
    }

    /// Convert the file value or default with `parse`; `Ok(None)` when the
    /// option has neither, or is set to an empty value.
    pub fn parse_opt<T>(
        &self,
        opt: &Opt,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.value(opt)? {
            Some(f) if f.text.trim().is_empty() => Ok(None),
            Some(f) => parse(f.text.trim())
                .map(Some)
                .ok_or_else(|| self.invalid(opt, &f, expected)),
            None => Ok(None),
        }
    }

    /// Like [`Group::parse_opt`], for options that always have a default.
    pub fn parse<T>(
        &self,
        opt: &Opt,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        if let Some(v) = self.parse_opt(opt, expected, &parse)? {
            return Ok(v);
        }
        // Set to "" in a file: oslo's types give None and kuryr then uses
        // the code default, which is the registered default.
        opt.default
            .and_then(&parse)
            .ok_or_else(|| ConfigError::InvalidValue {
                at: Place::boxed(Origin::Default, self.name.clone(), opt.name),
                value: String::new(),
                expected: expected.to_string(),
            })
    }

    /// A string; the default when unset.
    pub fn string(&self, opt: &Opt) -> Result<String, ConfigError> {
        Ok(self.value(opt)?.map(|f| f.text).unwrap_or_default())
    }

    /// A string where "" means unset, as Python's truthiness checks read it.
    pub fn opt_string(&self, opt: &Opt) -> Result<Option<String>, ConfigError> {
        Ok(self.value(opt)?.map(|f| f.text).filter(|s| !s.is_empty()))
    }

    pub fn secret(&self, opt: &Opt) -> Result<Option<SecretString>, ConfigError> {
        Ok(self.opt_string(opt)?.map(SecretString::from))
    }

    pub fn bool(&self, opt: &Opt) -> Result<bool, ConfigError> {
        self.parse(opt, BOOL_EXPECTED, parse_bool)
    }

    /// Non-negative whole seconds.
    pub fn seconds(&self, opt: &Opt) -> Result<Option<Duration>, ConfigError> {
        self.parse_opt(opt, "a whole number of seconds (0 or more)", parse_u64)
            .map(|v| v.map(Duration::from_secs))
    }
}

pub(crate) const BOOL_EXPECTED: &str = "a boolean (true/false, yes/no, on/off, 1/0)";

/// oslo.config `types.Boolean`, case-insensitive.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// oslo.config `types.List` of strings: comma separated, items trimmed, a
/// trailing comma and empty items ignored.
pub(crate) fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// oslo.config `types.Integer` restricted to non-negative values (it
/// accepts a leading `+`, as Python's `int()` does).
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Opt = Opt::new("a").default("dflt");
    const B: Opt = Opt::new("b").deprecated(&["old_b"]);
    const OPTS: &[Opt] = &[A, B, Opt::new("none_default")];

    fn sources(files: &[&str]) -> Sources {
        let docs = files
            .iter()
            .enumerate()
            .map(|(i, t)| Document::parse(format!("f{i}"), t).expect("parses"))
            .collect();
        let mut s = Sources::new(docs);
        s.register("DEFAULT", OPTS);
        s.register("neutron", OPTS);
        s
    }

    fn text(s: &Sources, section: &str, opt: &Opt) -> Option<String> {
        s.get(section, opt).expect("no error").map(|f| f.text)
    }

    #[test]
    fn newest_file_wins_and_current_name_beats_deprecated() {
        let s = sources(&["[neutron]\nb = 1\n", "[neutron]\nold_b = 2\n"]);
        assert_eq!(text(&s, "neutron", &B).as_deref(), Some("2"));
        assert!(
            s.take_warnings()
                .iter()
                .any(|w| w.contains("old_b is deprecated"))
        );
        let s = sources(&["[neutron]\nold_b = 2\nb = 1\nold_b = 3\n"]);
        assert_eq!(text(&s, "neutron", &B).as_deref(), Some("1"));
    }

    #[test]
    fn references_resolve_in_group_then_default() {
        let s = sources(&[
            "[DEFAULT]\nhost = ctl\nb = from-default\n[neutron]\na = http://$host:${neutron.b}/$b\nb = 9696\n",
        ]);
        assert_eq!(
            text(&s, "neutron", &A).as_deref(),
            Some("http://ctl:9696/9696")
        );
        let s =
            sources(&["[DEFAULT]\nb = x\n[neutron]\na = ${DEFAULT.b}-$none_default-$nothing\n"]);
        assert_eq!(text(&s, "neutron", &A).as_deref(), Some("x--$nothing"));
    }

    #[test]
    fn references_use_defaults_and_deprecated_names() {
        let s = sources(&["[neutron]\nold_b = $a\n"]);
        assert_eq!(text(&s, "neutron", &B).as_deref(), Some("dflt"));
        let s = sources(&["[neutron]\na = <$b>\nold_b = 5\n"]);
        assert_eq!(text(&s, "neutron", &A).as_deref(), Some("<5>"));
    }

    #[test]
    fn reference_loops_are_errors() {
        let s = sources(&["[neutron]\na = $b\nb = ${neutron.a}\n"]);
        let err = s.get("neutron", &A).expect_err("loop");
        assert!(
            err.to_string()
                .contains("reference loop: neutron.a -> neutron.b -> neutron.a"),
            "{err}"
        );
        let s = sources(&["[DEFAULT]\na = $a\n"]);
        assert!(s.get("DEFAULT", &A).is_err());
    }

    #[test]
    fn scalar_parsers() {
        for t in ["true", "TRUE", "Yes", "on", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "False", "no", "OFF", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("tru"), None);
        assert_eq!(parse_list(" a , b,\nc,, "), ["a", "b", "c"]);
        assert!(parse_list("").is_empty());
        assert_eq!(parse_u64("+30"), Some(30));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1.5"), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
    }
}
