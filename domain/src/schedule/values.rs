//! The plain values of a schedule as the API writes them: ISO 8601
//! durations, local times of day and weekdays.

use std::fmt;

use chrono::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::period::MAX_PERIOD_DAYS;

/// An ISO 8601 duration of weeks, days, hours, minutes and whole seconds
/// (`P2D`, `PT1H30M`, `P1W`). Years and months are refused: they have no
/// fixed length. Written back in canonical form (`P1DT2H`, `PT0S`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDuration(i64);

impl IsoDuration {
    pub fn from_seconds(seconds: i64) -> IsoDuration {
        IsoDuration(seconds)
    }
    pub fn seconds(self) -> i64 {
        self.0
    }
    pub fn delta(self) -> Duration {
        Duration::seconds(self.0)
    }

    /// Parses `P[nW][nD][T[nH][nM][nS]]`, at most [`MAX_PERIOD_DAYS`] days.
    pub fn parse(text: &str) -> Result<IsoDuration, String> {
        let bad = || format!("`{text}` is not an ISO 8601 duration such as PT1H or P2D");
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        let (date_part, time_part) = match rest.split_once('T') {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        if date_part.is_empty() && time_part.is_none() {
            return Err(bad());
        }
        let mut total: i64 = 0;
        let mut add = |part: &str, units: &[(char, i64)]| -> Result<(), String> {
            let mut number = String::new();
            let mut next_unit = 0;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                    continue;
                }
                if c == 'Y' || (c == 'M' && units[0].0 == 'W') {
                    return Err(format!(
                        "`{text}`: years and months have no fixed length; use weeks or days"
                    ));
                }
                let at = units[next_unit..]
                    .iter()
                    .position(|(u, _)| *u == c)
                    .ok_or_else(bad)?;
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                total = n
                    .checked_mul(units[next_unit + at].1)
                    .and_then(|s| total.checked_add(s))
                    .ok_or_else(bad)?;
                next_unit += at + 1;
            }
            if number.is_empty() {
                Ok(())
            } else {
                Err(bad())
            }
        };
        add(date_part, &[('W', 7 * 86_400), ('D', 86_400)])?;
        if let Some(t) = time_part {
            add(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
        }
        if total > MAX_PERIOD_DAYS * 86_400 {
            return Err(format!("`{text}` is longer than {MAX_PERIOD_DAYS} days"));
        }
        Ok(IsoDuration(total))
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s == 0 {
            return f.write_str("PT0S");
        }
        let (days, rest) = (s / 86_400, s % 86_400);
        f.write_str("P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if rest > 0 {
            f.write_str("T")?;
            let (h, m, sec) = (rest / 3600, rest % 3600 / 60, rest % 60);
            if h > 0 {
                write!(f, "{h}H")?;
            }
            if m > 0 {
                write!(f, "{m}M")?;
            }
            if sec > 0 {
                write!(f, "{sec}S")?;
            }
        }
        Ok(())
    }
}

impl Serialize for IsoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        IsoDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A local wall-clock time of day, `"HH:MM"`, `"00:00"` to `"24:00"` (the
/// end of the day), kept as minutes since midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(u16);

impl LocalTime {
    pub fn minutes(self) -> u16 {
        self.0
    }
    pub fn parse(text: &str) -> Result<LocalTime, String> {
        let bad = || format!("`{text}` is not a time of day HH:MM (00:00 to 24:00)");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(LocalTime(h * 60 + m))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LocalTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<chrono::Weekday> for Weekday {
    fn from(d: chrono::Weekday) -> Self {
        use chrono::Weekday as W;
        match d {
            W::Mon => Weekday::Mon,
            W::Tue => Weekday::Tue,
            W::Wed => Weekday::Wed,
            W::Thu => Weekday::Thu,
            W::Fri => Weekday::Fri,
            W::Sat => Weekday::Sat,
            W::Sun => Weekday::Sun,
        }
    }
}
