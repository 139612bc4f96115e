//! Go duration strings ("3s", "100ms", "1m30s", "-1") as used throughout the Go guide.

use std::time::Duration;

/// A parsed Go duration: signed, because the Go config uses negative values
/// (`retentionTime = "-1"`, a negative `readLagInterval`) to mean "disabled".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedDuration {
    pub(crate) negative: bool,
    pub(crate) magnitude: Duration,
}

impl SignedDuration {
    /// The duration when it is zero or positive, `None` when negative.
    pub(crate) fn non_negative(self) -> Option<Duration> {
        (!self.negative || self.magnitude.is_zero()).then_some(self.magnitude)
    }
}

/// Parses the syntax of Go's `time.ParseDuration`: an optional sign, then one or
/// more decimal numbers each followed by a unit (ns, us, µs, ms, s, m, h). A bare
/// "0" (or "-1", as the Go guide writes for "disabled") is accepted without unit
/// only when it is a whole number, matching how ego reads such strings.
pub(crate) fn parse_go_duration(text: &str) -> Result<SignedDuration, String> {
    let trimmed = text.trim();
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if body.is_empty() {
        return Err("an empty duration".to_string());
    }
    if body.bytes().all(|b| b.is_ascii_digit()) {
        // Unit-less whole numbers: "0" is zero; "-1" means disabled in the Go guide.
        // Any other bare number is ambiguous (Go would read nanoseconds), so refuse it.
        return match body.parse::<u64>() {
            Ok(0) => Ok(SignedDuration {
                negative,
                magnitude: Duration::ZERO,
            }),
            Ok(_) if negative => Ok(SignedDuration {
                negative,
                magnitude: Duration::from_nanos(1),
            }),
            _ => Err(format!(
                "a number without unit; write e.g. \"{body}s\" or \"{body}ms\""
            )),
        };
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("a missing unit after \"{rest}\""))?;
        if number_len == 0 {
            return Err(format!("expected a number at \"{rest}\""));
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("\"{}\" is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(format!(
                    "unknown unit \"{other}\" (valid units: ns, us, ms, s, m, h)"
                ))
            }
        };
        total_nanos += value * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err("a duration that is too large".to_string());
    }
    Ok(SignedDuration {
        negative,
        magnitude: Duration::from_nanos(total_nanos.round() as u64),
    })
}

/// Formats a duration the way the Go guide writes them, for error messages and docs.
pub(crate) fn format_go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if duration.is_zero() {
        "0s".to_string()
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{millis}ms")
    } else {
        format!("{}us", duration.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Duration {
        parse_go_duration(text).unwrap().non_negative().unwrap()
    }

    #[test]
    fn parses_the_forms_used_in_the_go_guide() {
        assert_eq!(parse("3s"), Duration::from_secs(3));
        assert_eq!(parse("100ms"), Duration::from_millis(100));
        assert_eq!(parse("1m30s"), Duration::from_secs(90));
        assert_eq!(parse("1h"), Duration::from_secs(3600));
        assert_eq!(parse("1.5s"), Duration::from_millis(1500));
        assert_eq!(parse("250us"), Duration::from_micros(250));
        assert_eq!(parse("0"), Duration::ZERO);
    }

    #[test]
    fn minus_one_is_negative_meaning_disabled() {
        assert_eq!(parse_go_duration("-1").unwrap().non_negative(), None);
        assert_eq!(parse_go_duration("-5s").unwrap().non_negative(), None);
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(parse_go_duration("").unwrap_err().contains("empty"));
        assert!(parse_go_duration("10")
            .unwrap_err()
            .contains("without unit"));
        assert!(parse_go_duration("3 days").unwrap_err().contains("unit"));
        assert!(parse_go_duration("5d")
            .unwrap_err()
            .contains("unknown unit \"d\""));
        assert!(parse_go_duration("s").is_err());
    }

    #[test]
    fn formats_round_values() {
        assert_eq!(format_go_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
