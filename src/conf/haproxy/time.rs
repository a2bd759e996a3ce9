//! Times and numbers as HAProxy writes them.

use std::time::Duration;

/// `100` (milliseconds), `100ms`, `10s`, `1m`, `2h`, `1d`, `500us`.
pub(super) fn parse_time(text: &str) -> Result<Duration, String> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits_end == 0 {
        return Err(format!("invalid time value '{text}' (expected a number with an optional unit)"));
    }
    let value: u64 = text[..digits_end].parse().map_err(|_| format!("time value '{text}' is too large"))?;
    let duration = match &text[digits_end..] {
        "" | "ms" => Duration::from_millis(value),
        "us" => Duration::from_micros(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        "h" => Duration::from_secs(value.saturating_mul(3600)),
        "d" => Duration::from_secs(value.saturating_mul(86400)),
        unit => {
            return Err(format!(
                "unexpected character '{unit}' in time value '{text}' (units: us, ms, s, m, h, d)"
            ))
        }
    };
    // HAProxy keeps times as signed 32-bit milliseconds.
    if duration.as_millis() > i32::MAX as u128 {
        return Err(format!(
            "timer overflow in argument '{text}' (maximum value is 2147483647 ms or ~24.8 days)"
        ));
    }
    Ok(duration)
}

/// A non-negative integer that fits in `T`, with the keyword in the message.
pub(super) fn parse_number<T: std::str::FromStr>(keyword: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("'{keyword}' expects an integer argument, got '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_time("5000"), Ok(Duration::from_millis(5000)));
        assert_eq!(parse_time("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_time("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_time("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_time("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_time("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_time("1d"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn bad_times() {
        assert!(parse_time("fast").is_err());
        assert!(parse_time("10x").unwrap_err().contains("'x'"));
        assert!(parse_time("").is_err());
        assert!(parse_time("30d").unwrap_err().contains("timer overflow"));
        assert_eq!(parse_time("24d"), Ok(Duration::from_secs(24 * 86400)));
        assert!(parse_number::<u32>("retries", "-1").is_err());
    }
}
