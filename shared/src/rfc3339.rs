//! RFC 3339 timestamps to Unix milliseconds, and back: small, exact, no dependency.
//!
//! Metric samples carry RFC 3339 timestamps and are ordered and bucketed by time, so the core
//! needs them as integers. The grammar is small (RFC 3339 §5.6, `date-time`), so it is parsed
//! here rather than pulling a date library into every component.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, with `t`/`z` in lower case too
//! (§5.6 allows it). Fractions keep millisecond precision (further digits are truncated). A
//! leap second (`:60`) is accepted and maps to the first instant of the next minute, as Unix
//! time has no leap seconds.

use std::fmt;

/// Why a timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339Error;

impl fmt::Display for Rfc3339Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an RFC 3339 date-time such as 2024-05-01T12:00:00Z")
    }
}

impl std::error::Error for Rfc3339Error {}

/// Parses an RFC 3339 `date-time` into milliseconds since the Unix epoch (negative before 1970).
pub fn parse_unix_ms(text: &str) -> Result<i64, Rfc3339Error> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(Rfc3339Error);
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':';
    if !separators_ok
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(Rfc3339Error);
    }
    let mut pos = 19;
    let mut millis = 0;
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let len = pos - start;
        if len == 0 {
            return Err(Rfc3339Error);
        }
        for _ in len..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(pos..) {
        Some([b'Z' | b'z']) => 0,
        Some([sign @ (b'+' | b'-'), rest @ ..]) if rest.len() == 5 && rest[2] == b':' => {
            let off_h = digits(rest, 0, 2)?;
            let off_m = digits(rest, 3, 2)?;
            if off_h > 23 || off_m > 59 {
                return Err(Rfc3339Error);
            }
            let minutes = off_h * 60 + off_m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err(Rfc3339Error),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (years 0000–9999).
pub fn format_unix_ms(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (minute, rest) = (rest / 60_000, rest % 60_000);
    let (second, millis) = (rest / 1_000, rest % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

fn digits(b: &[u8], at: usize, len: usize) -> Result<i64, Rfc3339Error> {
    let slice = b.get(at..at + len).ok_or(Rfc3339Error)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(Rfc3339Error)
        }
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_with_and_without_fraction() {
        assert_eq!(parse_unix_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_unix_ms("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_unix_ms("2024-05-01T12:00:00.5Z"),
            Ok(1_714_564_800_500)
        );
        assert_eq!(
            parse_unix_ms("2024-05-01T12:00:00.123456789z"),
            Ok(1_714_564_800_123)
        );
        assert_eq!(
            parse_unix_ms("2024-05-01t12:00:00.12Z"),
            Ok(1_714_564_800_120)
        );
    }

    #[test]
    fn applies_offsets() {
        assert_eq!(
            parse_unix_ms("2024-05-01T14:30:00+02:30"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_unix_ms("2024-05-01T07:00:00-05:00"),
            Ok(1_714_564_800_000)
        );
    }

    #[test]
    fn handles_dates_before_the_epoch_and_leap_days() {
        assert_eq!(parse_unix_ms("1969-12-31T23:59:59Z"), Ok(-1_000));
        assert!(parse_unix_ms("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_unix_ms("2000-02-29T00:00:00Z").is_ok());
        assert_eq!(parse_unix_ms("2023-02-29T00:00:00Z"), Err(Rfc3339Error));
        assert_eq!(parse_unix_ms("1900-02-29T00:00:00Z"), Err(Rfc3339Error));
    }

    #[test]
    fn accepts_a_leap_second() {
        assert_eq!(
            parse_unix_ms("2016-12-31T23:59:60Z").unwrap(),
            parse_unix_ms("2017-01-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-05-00T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:61Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00+02:60",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00Zjunk",
            "2024/05/01T12:00:00Z",
            "2O24-05-01T12:00:00Z",
            "2024-05-01T12:00:00+aa:00",
        ] {
            assert_eq!(parse_unix_ms(bad), Err(Rfc3339Error), "{bad}");
        }
        assert!(!Rfc3339Error.to_string().is_empty());
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_ms(-1), "1969-12-31T23:59:59.999Z");
        for ms in [
            0,
            1_714_564_800_123,
            -86_400_000 * 365 * 10 - 7,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_unix_ms(&format_unix_ms(ms)), Ok(ms));
        }
    }
}
