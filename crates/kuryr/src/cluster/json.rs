//! Reading a JSON object field by field, collecting every problem instead
//! of stopping at the first (which is all `serde` derive can do).

use serde_json::{Map, Value};

use super::Problem;

/// The fields of one JSON object, read with problems collected in `out`.
pub(crate) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    /// Path of this object in the file (`""` for the top level).
    prefix: String,
    pub(crate) out: &'a mut Vec<Problem>,
}

/// Parse `text` as a JSON object, or say why it is not one.
pub(crate) fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Problem::new(
            "",
            format!(
                "a {what} file holds one JSON object, not {}",
                type_name(&other)
            ),
        )),
        Err(e) => Err(Problem::new(
            "",
            format!("the {what} file is not valid JSON: {e}"),
        )),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    pub(crate) fn new(
        obj: &'a Map<String, Value>,
        prefix: impl Into<String>,
        out: &'a mut Vec<Problem>,
    ) -> Fields<'a> {
        Fields {
            obj,
            prefix: prefix.into(),
            out,
        }
    }

    /// The path of `key` in the file.
    pub(crate) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(crate) fn problem(&mut self, key: &str, message: impl Into<String>) {
        let field = self.path(key);
        self.out.push(Problem::new(field, message));
    }

    /// The value of `key`; JSON `null` counts as absent, as in Magnum.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// An optional string. An empty string counts as absent.
    pub(crate) fn opt_str(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => {
                let t = type_name(other);
                self.problem(key, format!("{} must be a string, not {t}", self.path(key)));
                None
            }
        }
    }

    /// An optional string of 1 to `max` characters without control
    /// characters (Magnum's string fields are 1 to 255 characters).
    pub(crate) fn opt_name(&mut self, key: &str, max: usize) -> Option<String> {
        let s = self.opt_str(key)?;
        if s.chars().count() > max || s.chars().any(char::is_control) {
            let field = self.path(key);
            self.problem(
                key,
                format!(
                    "Invalid input for field/attribute {field}: expecting 1 to {max} characters without control characters"
                ),
            );
            return None;
        }
        Some(s)
    }

    /// A required string.
    pub(crate) fn req_str(&mut self, key: &str) -> Option<String> {
        if self.get(key).is_none() {
            let field = self.path(key);
            self.problem(
                key,
                format!("Invalid input for field/attribute {field}. Mandatory field missing."),
            );
            return None;
        }
        self.opt_str(key).or_else(|| {
            let field = self.path(key);
            if !self.out.iter().any(|p| p.field == field) {
                self.problem(key, format!("{field} must not be empty"));
            }
            None
        })
    }

    /// A boolean; `"true"`/`"false"` strings are accepted as WSME does.
    pub(crate) fn bool(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                let field = self.path(key);
                let shown = other.to_string();
                self.problem(
                    key,
                    format!(
                        "Invalid input for field/attribute {field}. Value: {shown}. Wrong type: expecting true or false."
                    ),
                );
                default
            }
        }
    }

    /// A list of non-empty strings.
    pub(crate) fn str_list(&mut self, key: &str) -> Option<Vec<String>> {
        let field = self.path(key);
        match self.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                        other => {
                            let t = type_name(other);
                            self.problem(
                                key,
                                format!("{field}[{i}] must be a non-empty string, not {t}"),
                            );
                        }
                    }
                }
                Some(out)
            }
            other => {
                let t = type_name(other);
                self.problem(key, format!("{field} must be a list of strings, not {t}"));
                None
            }
        }
    }

    /// A nested object.
    pub(crate) fn object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        match self.get(key)? {
            Value::Object(map) => Some(map),
            other => {
                let field = self.path(key);
                let t = type_name(other);
                self.problem(key, format!("{field} must be an object, not {t}"));
                None
            }
        }
    }

    /// Report every key not in `known`.
    pub(crate) fn reject_unknown(&mut self, known: &[&str], what: &str) {
        let unknown: Vec<String> = self
            .obj
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            let hint = closest(&key, known)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            self.problem(&key, format!("Unknown attribute for {what}: {key}{hint}"));
        }
    }
}

/// The candidate within edit distance 2 of `word`, if exactly one is
/// nearest: a hint for typos.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for c in candidates {
        let d = edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if d > 2 {
            continue;
        }
        match best {
            Some((bd, _)) if d > bd => {}
            Some((bd, _)) if d == bd => tie = true,
            _ => {
                best = Some((d, c));
                tie = false;
            }
        }
    }
    if tie { None } else { best.map(|(_, c)| c) }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names() {
        let known = ["kuryr_mode", "kuryr_mtu", "kuryr_scope"];
        assert_eq!(closest("kuryr_mdoe", &known), Some("kuryr_mode"));
        assert_eq!(closest("KURYR_MTU", &known), Some("kuryr_mtu"));
        assert_eq!(closest("kuryr_everything", &known), None);
        // Equally near to two names: no guess.
        assert_eq!(closest("kuryr_mo", &["kuryr_moda", "kuryr_modb"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
