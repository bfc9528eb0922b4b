//! Instants and durations as the engine counts them: whole milliseconds, no wall clock.

use std::fmt;
use std::ops::{Add, Sub};

/// A time or a duration that could not be read or is out of range; the message says what a
/// valid one looks like.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(pub String);

impl From<TimeError> for String {
    fn from(e: TimeError) -> String {
        e.0
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// The engine never asks the operating system for the time; every `Timestamp`
/// it sees comes from its [`Clock`](crate::clock::Clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// A length of time in milliseconds (never negative once parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

impl Timestamp {
    /// Seconds since the epoch as a float, which is how Lua sees time.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses RFC 3339 (`2026-03-02T09:00:00Z`, or with an offset).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        chrono::DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.timestamp_millis())).map_err(|e| {
            TimeError(format!("`{text}` is not an RFC 3339 time ({e}); write it like 2026-03-02T09:00:00Z"))
        })
    }

    /// RFC 3339 in UTC with second precision (milliseconds when there are any).
    pub fn to_rfc3339(self) -> String {
        let mut buf = [0u8; 24];
        match self.write_rfc3339(&mut buf) {
            Some(text) => text.to_string(),
            None => self.to_rfc3339_slow(),
        }
    }

    /// [`Timestamp::to_rfc3339`] for years 0 to 9999 (every time the engine meets), written
    /// into `buf` without allocating: every reply, journal record and snapshot holds many.
    fn write_rfc3339(self, buf: &mut [u8; 24]) -> Option<&str> {
        let (days, ms) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut put = |at: usize, value: i64, digits: u32| {
            for i in 0..digits as usize {
                buf[at + i] = b'0' + (value / 10_i64.pow(digits - 1 - i as u32) % 10) as u8;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, ms / 3_600_000, 2);
        put(14, ms / 60_000 % 60, 2);
        put(17, ms / 1000 % 60, 2);
        put(20, ms % 1000, 3);
        for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
            buf[at] = c;
        }
        let len = if ms % 1000 == 0 { 19 } else { 23 };
        buf[len] = b'Z';
        std::str::from_utf8(&buf[..=len]).ok()
    }

    fn to_rfc3339_slow(self) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_millis(self.0) else {
            return format!("@{}ms", self.0);
        };
        if self.0 % 1000 == 0 {
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

impl Sub for Timestamp {
    type Output = Duration;
    fn sub(self, other: Timestamp) -> Duration {
        Duration(self.0 - other.0)
    }
}

/// `d` before a time (saturating: a window longer than all time starts at the beginning).
impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    /// The longest duration anything may be given: a year and a day. Longer ones are refused
    /// where they are read, so no timer lands where a timestamp could overflow.
    pub const MAX: Duration = Duration(366 * 86_400_000);

    /// A number of seconds as a duration: positive fractions of a millisecond count as one,
    /// so a duration that is not zero never becomes zero. Refuses what is not a finite number
    /// from zero to [`Duration::MAX`].
    pub fn from_secs_checked(secs: f64) -> Result<Self, TimeError> {
        if secs.is_nan() {
            return Err(TimeError("a duration must be a number of seconds, got NaN".into()));
        }
        if secs < 0.0 {
            return Err(TimeError(format!("a duration cannot be negative, got {secs}")));
        }
        if secs * 1000.0 > Duration::MAX.0 as f64 {
            return Err(TimeError(format!(
                "a duration can be at most {} (a year and a day), got {secs} seconds",
                Duration::MAX
            )));
        }
        Ok(Duration(((secs * 1000.0).round() as i64).max((secs > 0.0) as i64)))
    }

    pub fn from_secs(secs: i64) -> Self {
        Duration(secs * 1000)
    }

    pub fn from_secs_f64(secs: f64) -> Self {
        Duration((secs * 1000.0).round() as i64)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a duration written the way people write them: `90s`, `12h`,
    /// `1h30m`, `1d`, `500ms`, or a bare number of seconds (`45`).
    ///
    /// Units: `ms`, `s`, `m`, `h`, `d`. Anything else (`12x`, `h`, `-5s`, ``)
    /// is an error whose text says what a valid duration looks like.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let t = text.trim();
        let bad =
            || TimeError(format!("bad duration `{text}`: use a number with a unit, like 30s, 5m, 12h, 1h30m or 1d"));
        if t.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = t.parse::<f64>() {
            return if secs.is_finite() && secs >= 0.0 { Duration::from_secs_checked(secs) } else { Err(bad()) };
        }
        let bytes = t.as_bytes();
        let mut total: i64 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if start == i {
                return Err(bad());
            }
            let number: f64 = t[start..i].parse().map_err(|_| bad())?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let scale = unit_ms(&t[unit_start..i]).ok_or_else(bad)? as f64;
            total = total.saturating_add((number * scale).round() as i64);
        }
        if total > Duration::MAX.0 {
            return Err(TimeError(format!(
                "duration `{text}` is too long: at most {} (a year and a day)",
                Duration::MAX
            )));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form: `12h`, `1h30m`, `45s`, `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 0 {
            f.write_str("-")?;
            ms = -ms;
        }
        for (unit, size) in UNITS {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        match self.write_rfc3339(&mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.to_rfc3339_slow()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Serializes a duration as whole milliseconds (`#[serde(serialize_with)]`): what the API,
/// the event stream and webhooks carry, in fields named `*_ms`.
pub fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.0)
}

/// Described to API clients as what it serializes to: an RFC 3339 string.
impl schemars::JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The exact form [`Duration`]'s `Display` writes (`1h30m`, `-250ms`), read back without the
/// year-and-a-day cap of [`Duration::parse`]: what a snapshot wrote comes back as it was.
impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse_exact(&text).ok_or_else(|| serde::de::Error::custom(format!("bad duration `{text}`")))
    }
}

impl Duration {
    fn parse_exact(text: &str) -> Option<Duration> {
        let (sign, mut rest) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text),
        };
        if rest == "0s" {
            return Some(Duration(0));
        }
        // Whole numbers only: what `Display` writes, read without the rounding of floats.
        let mut total: i64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0)?;
            let number: i64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            total = total.checked_add(number.checked_mul(unit_ms(&rest[..letters])?)?)?;
            rest = &rest[letters..];
        }
        Some(Duration(sign * total))
    }
}

/// The units of a written duration, largest first, in milliseconds.
const UNITS: [(&str, i64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

fn unit_ms(unit: &str) -> Option<i64> {
    UNITS.iter().find(|(u, _)| *u == unit).map(|(_, ms)| *ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast writer and chrono agree on every kind of instant: before 1970, leap days,
    /// century years, the ends of the range, with and without milliseconds.
    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let mut n: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut samples = vec![0, 1, -1, 999, -999, 1_000, 951_782_400_000, 4_107_542_400_000, -62_135_596_800_000];
        samples.extend([-62_167_219_200_000, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001]);
        for _ in 0..100_000 {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            samples.push((n % 600_000_000_000_000) as i64 - 300_000_000_000_000);
        }
        for ms in samples {
            let t = Timestamp(ms);
            assert_eq!(t.to_rfc3339(), t.to_rfc3339_slow(), "{ms}");
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.to_rfc3339_slow()), "{ms}");
        }
    }

    #[test]
    fn a_duration_reads_back_exactly_what_it_wrote() {
        for ms in [0, 1, 999, 1_000, 61_001, 86_400_000 * 400 + 7, -3_725_000, i64::MAX / 2] {
            let text = serde_json::to_string(&Duration(ms)).unwrap();
            assert_eq!(serde_json::from_str::<Duration>(&text).unwrap(), Duration(ms), "{text}");
        }
        assert!(serde_json::from_str::<Duration>("\"12x\"").is_err());
    }

    #[test]
    fn durations_parse_the_way_people_write_them() {
        let cases = [
            ("12h", 43_200_000),
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("45", 45_000),
            ("1.5", 1_500),
            ("500ms", 500),
            ("1d", 86_400_000),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            assert_eq!(Duration::parse(text), Ok(Duration(ms)), "{text}");
        }
        for bad in ["12x", "", "h", "-5s", "5 m s", "1h-2m", "NaN", "inf"] {
            let err = Duration::parse(bad).unwrap_err();
            assert!(err.0.contains("bad duration"), "{bad}: {err}");
        }
        for long in ["367d", "1e16", "100000000000000000000000d"] {
            let err = Duration::parse(long).unwrap_err();
            assert!(err.0.contains("at most 366d"), "{long}: {err}");
        }
        assert_eq!(Duration::parse("366d"), Ok(Duration::MAX));
        assert_eq!(Duration::from_secs_checked(0.0001), Ok(Duration(1)), "not zero stays not zero");
    }

    #[test]
    fn durations_print_in_their_shortest_exact_form() {
        assert_eq!(Duration(43_200_000).to_string(), "12h");
        assert_eq!(Duration(5_400_000).to_string(), "1h30m");
        assert_eq!(Duration(61_500).to_string(), "1m1s500ms");
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-03-02T09:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-02T09:00:00Z");
        assert_eq!((t + Duration::from_secs(1)).to_string(), "2026-03-02T09:00:01Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
