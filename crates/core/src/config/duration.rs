//! Go `time.Duration` text form, as used by `metav1.Duration` fields such as `kms.timeout`, duration flags
//! (`--cluster-signing-duration`) and kubectl's `--request-timeout`: the one Go duration parser of the workspace.

use std::fmt;

/// A duration written the way Go's `time.ParseDuration` reads it (`3s`, `1m30s`, `300ms`, `-1.5h`).
///
/// Stored as signed nanoseconds, like Go. [`fmt::Display`] prints Go's `Duration.String()` form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GoDuration {
    /// Signed nanoseconds.
    pub nanos: i64,
}

impl GoDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        GoDuration {
            nanos: secs * 1_000_000_000,
        }
    }

    /// As a [`std::time::Duration`]; `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Parses Go's duration syntax (same rules as `time.ParseDuration` in Go's `src/time/format.go`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let orig = s;
        let bad = || format!("time: invalid duration {orig:?}");
        let mut rest = s;
        let mut neg = false;
        if let Some(r) = rest.strip_prefix('-') {
            neg = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        }
        if rest == "0" {
            return Ok(GoDuration { nanos: 0 });
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            // integer part
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(r) = rest.strip_prefix('.') {
                let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &r[..frac_len];
                rest = &r[frac_len..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(bad());
            }
            let unit_len = rest
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map(|(i, _)| i)
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60 * 1_000_000_000,
                "h" => 3600 * 1_000_000_000,
                "" => return Err(format!("time: missing unit in duration {orig:?}")),
                _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
            };
            let int_val: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| bad())?
            };
            let mut v = int_val.checked_mul(scale).ok_or_else(bad)?;
            if !frac_part.is_empty() {
                // fraction * scale, truncated like Go
                let mut num: u128 = 0;
                let mut den: u128 = 1;
                for d in frac_part.bytes().take(30) {
                    num = num * 10 + u128::from(d - b'0');
                    den *= 10;
                }
                v += num * scale / den;
            }
            total = total.checked_add(v).ok_or_else(bad)?;
            if total > i64::MAX as u128 + u128::from(neg) {
                return Err(bad());
            }
        }
        let nanos = if neg {
            (total as i128).wrapping_neg() as i64
        } else {
            total as i64
        };
        Ok(GoDuration { nanos })
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`: `0s`, `300ms`, `1.5µs`, `3s`, `1m30s`, `2h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.nanos < 0;
        let u = self.nanos.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000_000_000 {
            let (unit, div) = if u < 1_000 {
                ("ns", 1u64)
            } else if u < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{sign}{}{unit}", frac(u, div));
        }
        let secs_total = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total % 3600) / 60;
        let s = secs_total % 60;
        let s_text = frac(s * 1_000_000_000 + sub, 1_000_000_000);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s_text}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s_text}s")
        } else {
            write!(f, "{sign}{s_text}s")
        }
    }
}

/// `v / div` with the fraction printed without trailing zeros.
fn frac(v: u64, div: u64) -> String {
    let int = v / div;
    let rem = v % div;
    if rem == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(GoDuration::parse("3s").unwrap(), GoDuration::from_secs(3));
        assert_eq!(GoDuration::parse("1m30s").unwrap().nanos, 90_000_000_000);
        assert_eq!(GoDuration::parse("1.5h").unwrap().nanos, 5_400_000_000_000);
        assert_eq!(GoDuration::parse("300ms").unwrap().nanos, 300_000_000);
        assert_eq!(GoDuration::parse("-1s").unwrap().nanos, -1_000_000_000);
        assert_eq!(GoDuration::parse("0").unwrap().nanos, 0);
        assert_eq!(GoDuration::parse("2µs").unwrap().nanos, 2_000);
        assert!(GoDuration::parse("3").unwrap_err().contains("missing unit"));
        assert!(
            GoDuration::parse("3d")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(GoDuration::parse("").is_err());
        assert!(GoDuration::parse(".s").is_err());
        assert!(GoDuration::parse("9999999999999h").is_err());
        // Flags as kube-controller-manager writes its default, and what Go refuses.
        assert_eq!(
            GoDuration::parse("8760h0m0s").unwrap(),
            GoDuration::from_secs(8760 * 3600)
        );
        assert_eq!(GoDuration::parse("1h30m").unwrap().nanos, 5_400_000_000_000);
        assert_eq!(
            GoDuration::parse("+600s").unwrap(),
            GoDuration::from_secs(600)
        );
        assert_eq!(GoDuration::parse("3us").unwrap().nanos, 3_000);
        for bad in ["10", "5d", "1..2s", "1 s", "s", "-", "1.5.h"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converts_to_std() {
        assert_eq!(
            GoDuration::parse("1.5s").unwrap().to_std(),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            GoDuration { nanos: 0 }.to_std(),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(GoDuration::parse("-1ns").unwrap().to_std(), None);
    }

    #[test]
    fn prints_like_go() {
        for (n, s) in [
            (0, "0s"),
            (3_000_000_000, "3s"),
            (90_000_000_000, "1m30s"),
            (7_200_000_000_000, "2h0m0s"),
            (300_000_000, "300ms"),
            (1_500, "1.5µs"),
            (1_500_000_000, "1.5s"),
            (-1_000_000_000, "-1s"),
        ] {
            assert_eq!(GoDuration { nanos: n }.to_string(), s);
            assert_eq!(GoDuration::parse(s).unwrap().nanos, n);
        }
    }
}
