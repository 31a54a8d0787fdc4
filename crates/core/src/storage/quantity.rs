//! `resource.Quantity` canonical form, as apimachinery `pkg/api/resource/quantity.go` computes
//! it: `ParseQuantity` (suffix table, nano round-up, BinarySI cap) followed by `String()`
//! (`CanonicalizeBytes`). Kubernetes stores and serves quantities only in this form, so
//! `cpu: 0.5` is written as `500m` and `1024Mi` as `1Gi`.

/// Why a quantity string was rejected (apimachinery's `ErrFormatWrong` / `ErrSuffix` /
/// `ErrNumeric`), or exceeds what this implementation computes exactly (i128).
#[derive(Debug, PartialEq, Eq)]
pub enum QuantityError {
    /// "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    Format,
    /// "unable to parse quantity's suffix"
    Suffix,
    /// The number is too large.
    Numeric,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

const DEC_SUFFIXES: &[(&str, i32)] = &[
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BIN_SUFFIXES: &[(&str, i32)] = &[
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

/// quantitySuffixer.interpret: (base, exponent, format).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    if let Some(&(_, e)) = DEC_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((10, e, Format::DecimalSI));
    }
    if let Some(&(_, e)) = BIN_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((2, e, Format::BinarySI));
    }
    let rest = suffix.strip_prefix(['e', 'E'])?;
    // strconv.ParseInt(rest, 10, 32)
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let e: i32 = rest.parse().ok()?;
    Some((10, e, Format::DecimalExponent))
}

struct Parsed<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// parseQuantityString.
fn parse_string(s: &str) -> Result<Parsed<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parsed {
            positive,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if pos >= end {
        return Ok(Parsed {
            positive,
            num,
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let ds = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[ds..pos];
        if pos >= end {
            return Ok(Parsed {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::Format);
    }
    Ok(Parsed {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

/// Divides by 10^k rounding away from zero (inf.RoundUp).
fn div_round_up(v: i128, k: u32) -> i128 {
    match pow10(k) {
        Some(d) => {
            let q = v / d;
            if v % d != 0 { q + v.signum() } else { q }
        }
        None => v.signum(),
    }
}

fn remove_factors(mut v: i128, base: i128) -> (i128, i32) {
    let neg = v < 0;
    if neg {
        v = -v;
    }
    let mut times = 0;
    while v >= base && v % base == 0 {
        v /= base;
        times += 1;
    }
    (if neg { -v } else { v }, times)
}

/// The canonical string of a quantity (what `ParseQuantity(s).String()` returns in Go).
pub fn canonical(s: &str) -> Result<String, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let p = parse_string(s)?;
    let (base, exponent, mut format) = interpret(p.suffix).ok_or(QuantityError::Suffix)?;
    let digits = format!("{}{}", p.num, p.denom);
    let denom_len = p.denom.len() as i32;

    // The fast path of ParseQuantity keeps an already-canonical input string as is.
    let precision: i32 = match format {
        Format::DecimalExponent | Format::DecimalSI => 18 - (p.num.len() as i32 + denom_len),
        Format::BinarySI if exponent >= 0 && p.denom.is_empty() => {
            15 - p.num.len() as i32 - ((exponent as f32) * 3.0 / 10.0) as i32 - 1
        }
        Format::BinarySI => -1,
    };
    if precision >= 0 {
        let scale = if format == Format::BinarySI {
            0
        } else {
            exponent
        } - denom_len;
        if scale >= -9 {
            let value: i64 = digits.parse().map_err(|_| QuantityError::Numeric)?;
            let mantissa: i64 = if format == Format::BinarySI {
                1i64 << exponent
            } else {
                1
            };
            if value.checked_mul(mantissa).is_some() {
                let reuse = match format {
                    Format::BinarySI => exponent % 10 == 0 && (value & 0x07) != 0,
                    _ => scale % 3 == 0 && !digits.ends_with("000") && !digits.starts_with('0'),
                };
                if reuse {
                    return Ok(s.to_string());
                }
            }
        }
    }

    // Exact value: v × 10^scale.
    let mut v: i128 = digits.parse().map_err(|_| QuantityError::Numeric)?;
    let mut scale: i32 = -denom_len;
    if base == 10 {
        scale += exponent;
    } else {
        v = v
            .checked_mul(
                1i128
                    .checked_shl(exponent as u32)
                    .ok_or(QuantityError::Numeric)?,
            )
            .ok_or(QuantityError::Numeric)?;
    }
    // Round non-zero values up to the nano scale.
    if scale < -9 {
        v = div_round_up(v, (-9 - scale) as u32);
        scale = -9;
    }
    // BinarySI cap at maxInt64 and the < 1 demotion to DecimalSI.
    if format == Format::BinarySI {
        let int_part = if scale >= 0 {
            v.checked_mul(pow10(scale as u32).ok_or(QuantityError::Numeric)?)
        } else {
            Some(v / pow10((-scale) as u32).unwrap_or(i128::MAX))
        };
        if int_part.is_none_or(|i| i > i128::from(i64::MAX)) {
            v = i128::from(i64::MAX);
            scale = 0;
        } else if int_part == Some(0) && v != 0 {
            format = Format::DecimalSI;
        }
    }
    if !p.positive {
        v = -v;
    }
    Ok(canonicalize(v, scale, format))
}

/// Quantity.CanonicalizeBytes for the exact value v × 10^scale.
fn canonicalize(v: i128, scale: i32, mut format: Format) -> String {
    if v == 0 {
        return "0".into();
    }
    let mut integer = None;
    if format == Format::BinarySI {
        // As an integer (AsScale(0) exact)?
        let as_int = if scale >= 0 {
            pow10(scale as u32).and_then(|m| v.checked_mul(m))
        } else {
            let d = pow10((-scale) as u32).unwrap_or(i128::MAX);
            (v % d == 0).then_some(v / d)
        };
        match as_int {
            Some(i) if i > -1024 && i < 1024 => format = Format::DecimalSI,
            Some(i) => integer = Some(i),
            None => format = Format::DecimalSI,
        }
    }
    if let (Format::BinarySI, Some(i)) = (format, integer) {
        let (amount, times) = remove_factors(i, 1024);
        let suffix = BIN_SUFFIXES
            .iter()
            .find(|(_, e)| *e == times * 10)
            .map_or("", |(s, _)| *s);
        return format!("{amount}{suffix}");
    }
    let (mut amount, times) = remove_factors(v, 10);
    let mut exponent = scale + times;
    while exponent % 3 != 0 {
        amount *= 10;
        exponent -= 1;
    }
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        _ => DEC_SUFFIXES
            .iter()
            .find(|(_, e)| *e == exponent)
            .map_or(String::new(), |(s, _)| (*s).to_string()),
    };
    format!("{amount}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("250m", "250m"),
            ("100Mi", "100Mi"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("100M", "100M"),
            ("1000k", "1M"),
            ("0", "0"),
            ("0000", "0"),
            ("-0.5", "-500m"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("2048Ki", "2Mi"),
            ("10Ki", "10Ki"),
            ("12e6", "12e6"),
            // Go keeps an input that passes its fast-path canonical check verbatim.
            ("1.", "1."),
            ("+1", "+1"),
            (".5", "500m"),
            ("100000000000000000000", "100E"),
        ] {
            assert_eq!(canonical(input).as_deref(), Ok(want), "{input}");
        }
    }

    /// apimachinery `pkg/api/resource/quantity_test.go`, `TestQuantityParseEmit`, with the
    /// negated inputs as upstream checks them too.
    #[test]
    fn upstream_parse_emit_table() {
        for (input, want) in [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
        ] {
            assert_eq!(canonical(input).as_deref(), Ok(want), "{input}");
            let neg = format!("-{want}");
            assert_eq!(
                canonical(&format!("-{input}")).as_deref(),
                Ok(neg.as_str()),
                "-{input}"
            );
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(canonical(""), Err(QuantityError::Format));
        assert_eq!(canonical("1K"), Err(QuantityError::Suffix));
        assert_eq!(canonical("1.2.3"), Err(QuantityError::Format));
        assert_eq!(canonical("abc"), Err(QuantityError::Format));
        assert_eq!(canonical("1Mb"), Err(QuantityError::Format));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_idempotent(s in "[-+]?[0-9]{0,25}(\\.[0-9]{0,12})?([eEinumkKMGTP]{0,2}[-+]?[0-9]{0,3})?") {
            if let Ok(c) = canonical(&s) {
                proptest::prop_assert_eq!(canonical(&c), Ok(c.clone()), "{}", s);
            }
        }
    }
}
