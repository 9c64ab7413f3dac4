//! The few Python conversions Magnum's API applies to template values, so
//! that a value means here what it means to Magnum: `int()` of a string
//! (`" 2000 "`, `"1_024"` and `"١٠٢٤"` are integers), `str()` of a float (a
//! label `1e16` is stored as `"1e+16"`), `str.strip()` / `str.split()`
//! whitespace, oslo's `bool_from_string(strict=True)` and `json.loads()`
//! (which also takes `NaN` and `Infinity`). Unicode data as in Debian 12's
//! Python 3.11 (Unicode 14).

/// Python's `str.isspace()` for one character: Unicode White_Space plus the
/// four information separators U+001C..U+001F.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()`.
pub(super) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `s.split()`: the words between runs of whitespace.
pub(super) fn split_words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

/// The first code point of each run of ten Unicode decimal digits
/// (category Nd, Unicode 14), which Python's `int()` reads like `0`-`9`.
const DECIMAL_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a decimal digit, in any script.
fn decimal(c: char) -> Option<u32> {
    let c = u32::from(c);
    DECIMAL_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&c))
        .map(|zero| c - zero)
}

/// `int(s)` for a string, base 10: surrounding whitespace, an optional
/// sign, decimal digits (any script) with single underscores between them.
/// Values beyond `i128` saturate (only range checks follow).
pub(super) fn int_from_str(s: &str) -> Option<i128> {
    let s = strip(s);
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut value: i128 = 0;
    let mut previous_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if previous_underscore {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        previous_underscore = false;
        let d = decimal(c)?;
        value = value.saturating_mul(10).saturating_add(i128::from(d));
    }
    Some(if negative { -value } else { value })
}

/// `int(x)` of a finite float: truncated toward zero, saturating.
pub(super) fn int_from_float(x: f64) -> i128 {
    // `as` truncates toward zero and saturates, which is what is wanted.
    x as i128
}

/// `str(x)` (= `repr(x)`) of a finite float: the shortest digits that read
/// back as `x`, positional from 1e-4 up to 1e16, scientific outside with a
/// signed exponent of at least two digits (`1e+16`, `1e-05`).
pub(super) fn float_str(x: f64) -> String {
    // Rust's `{:e}` gives the same shortest digits: `d.ddde±x`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("0.{zeros}{digits}")
    } else {
        let point = point.unsigned_abs() as usize;
        if digits.len() <= point {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// oslo.utils `TRUE_STRINGS` and `FALSE_STRINGS`.
pub(super) const TRUE_STRINGS: &[&str] = &["1", "t", "true", "on", "y", "yes"];
pub(super) const FALSE_STRINGS: &[&str] = &["0", "f", "false", "off", "n", "no"];

/// `bool_from_string(str(subject), strict=True)` for a string or an
/// integer's decimal text; `None` where oslo raises.
pub(super) fn bool_from_string(subject: &str) -> Option<bool> {
    let lowered = strip(subject).to_lowercase();
    if TRUE_STRINGS.contains(&lowered.as_str()) {
        Some(true)
    } else if FALSE_STRINGS.contains(&lowered.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// oslo.utils `uuidutils.is_uuid_like`: 32 hex digits once `urn:`,
/// `uuid:`, surrounding braces and hyphens are removed, any case.
pub(super) fn is_uuid_like(s: &str) -> bool {
    let hex = s.replace("urn:", "").replace("uuid:", "");
    let hex = hex.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether Python's `json.loads(s)` reads `s`: standard JSON (numbers of
/// any size, any `\\u` escape) plus the constants `NaN`, `Infinity` and
/// `-Infinity`; no control characters inside strings.
pub(super) fn json_loads_ok(s: &str) -> bool {
    let mut p = JsonSyntax {
        b: s.as_bytes(),
        i: 0,
    };
    p.value() && {
        p.ws();
        p.i == p.b.len()
    }
}

/// A syntax-only reader for [`json_loads_ok`].
struct JsonSyntax<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonSyntax<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        let ok = self.b[self.i..].starts_with(lit.as_bytes());
        if ok {
            self.i += lit.len();
        }
        ok
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn value(&mut self) -> bool {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => self.seq(b'}', true),
            Some(b'[') => self.seq(b']', false),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.eat("-Infinity") || self.number(),
            _ => ["true", "false", "null", "NaN", "Infinity"]
                .iter()
                .any(|lit| self.eat(lit)),
        }
    }

    /// An object (`keyed`) or an array, from its opening bracket.
    fn seq(&mut self, close: u8, keyed: bool) -> bool {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&close) {
            self.i += 1;
            return true;
        }
        loop {
            if keyed {
                self.ws();
                if !(self.b.get(self.i) == Some(&b'"') && self.string()) {
                    return false;
                }
                self.ws();
                if !self.eat(":") {
                    return false;
                }
            }
            if !self.value() {
                return false;
            }
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(&c) if c == close => {
                    self.i += 1;
                    return true;
                }
                _ => return false,
            }
        }
    }

    fn string(&mut self) -> bool {
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => match self.b.get(self.i) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                    Some(b'u') => {
                        let hex = self.b.get(self.i + 1..self.i + 5);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return false;
                        }
                        self.i += 5;
                    }
                    _ => return false,
                },
                0..=0x1f => return false,
                _ => {}
            }
        }
        false
    }

    fn number(&mut self) -> bool {
        self.eat("-");
        if self.eat("0") {
        } else if self.digits() == 0 {
            return false;
        }
        if self.eat(".") && self.digits() == 0 {
            return false;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let _ = self.eat("+") || self.eat("-");
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_as_python_reads_them() {
        for (s, n) in [
            ("8080", 8080),
            (" 2000 ", 2000),
            ("1_024", 1024),
            ("+5", 5),
            ("-3", -3),
            ("007", 7),
            ("\u{1f}9\u{a0}", 9),
            ("\u{661}\u{660}\u{662}\u{664}", 1024),
            ("\u{ff11}_\u{ff10}", 10),
        ] {
            assert_eq!(int_from_str(s), Some(n), "{s:?}");
        }
        for s in [
            "", "-", "1__0", "_1", "1_", "1.0", "0x10", "1e3", "a", "1 2",
        ] {
            assert_eq!(int_from_str(s), None, "{s:?}");
        }
        assert_eq!(int_from_str(&"9".repeat(60)), Some(i128::MAX));
        assert_eq!(int_from_float(8080.9), 8080);
        assert_eq!(int_from_float(-1.5), -1);
        assert_eq!(int_from_float(1e300), i128::MAX);
    }

    #[test]
    fn floats_as_python_prints_them() {
        for (x, s) in [
            (1.5, "1.5"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e22, "1.2345e+22"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
            (123_456.789, "123456.789"),
        ] {
            assert_eq!(float_str(x), s, "{x}");
        }
    }

    #[test]
    fn booleans_and_uuids() {
        for s in ["yes", " On ", "Y", "1", "t", "TRUE"] {
            assert_eq!(bool_from_string(s), Some(true), "{s}");
        }
        for s in ["no", "OFF", "n", "0", "f", "False"] {
            assert_eq!(bool_from_string(s), Some(false), "{s}");
        }
        for s in ["", "2", "1.0", "maybe", "yess"] {
            assert_eq!(bool_from_string(s), None, "{s}");
        }
        for s in [
            "12345678-1234-5678-1234-567812345678",
            "{12345678-1234-5678-1234-567812345678}",
            "urn:uuid:12345678123456781234567812345678",
            "ABCDEF00-1234-5678-1234-567812345678",
        ] {
            assert!(is_uuid_like(s), "{s}");
        }
        for s in [
            "x",
            "12345678-1234-5678-1234-56781234567",
            "g2345678123456781234567812345678",
        ] {
            assert!(!is_uuid_like(s), "{s}");
        }
    }

    #[test]
    fn json_as_python_loads_it() {
        for ok in [
            "{}",
            " [1, -2.5e+3, \"x\\u00e9\\n\", true, false, null] ",
            "{\"A\": \"1\", \"b\": {\"c\": []}}",
            "NaN",
            "[Infinity, -Infinity]",
            "1e400",
            "\"\\ud800\"",
            "0",
            "-0.0",
        ] {
            assert!(json_loads_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            ".5",
            "+1",
            "nan",
            "\"\t\"",
            "\"\\x\"",
            "[1] [2]",
            "{a: 1}",
            "'x'",
            "-",
            "1e",
        ] {
            assert!(!json_loads_ok(bad), "{bad}");
        }
    }
}
