//! The few Python conversions Magnum's API applies to template values, so
//! that a value means here what it means to Magnum: `int()` of a string
//! (`" 2000 "` and `"1_024"` are integers), `str()` of a float (a label
//! `1e16` is stored as `"1e+16"`), `str.strip()` / `str.split()` whitespace
//! and oslo's `bool_from_string(strict=True)`.

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

/// `int(s)` for a string, base 10: surrounding whitespace, an optional
/// sign, digits with single underscores between them. Values beyond `i128`
/// saturate (only range checks follow). ASCII digits only: Python also
/// takes other Unicode decimal digits, which no template uses.
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
        let d = c.to_digit(10)?;
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
}
