//! The date and time formats records hints may name: an allow-list of shapes, each mapped here
//! to a reader and a writer. A format name from a file or a user picks one of these; it is
//! never handed to a formatting library as a pattern.
//!
//! `HH` means `HH24`. Fractions of a second are read when present and written when the value
//! has them (up to microseconds). Two-digit years (`YY`) read as 1970–2069, and a value outside
//! that window, or with seconds a minute-only format cannot show, has no exact text: `write`
//! returns None and the caller refuses it by row and column. Offsets (`OF`) are read as
//! `-05`, `+0000` or `+05:30`, and written as `+HH:MM`; a zoned format without `OF` means UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

macro_rules! allow_list {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every format of this hint, in the order sniffing prefers them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Every name this hint accepts, for messages.
            pub const ALLOWED: &'static str = concat!($($text, "; "),+);

            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

allow_list!(DateFormat {
    YyyyMmDd => "YYYY-MM-DD",
    MmDdYyyy => "MM-DD-YYYY",
    DdMmYyyy => "DD-MM-YYYY",
    MmDdYy => "MM/DD/YY",
    DdMmYy => "DD/MM/YY",
    DdMmYyDash => "DD-MM-YY",
});

allow_list!(TimeFormat {
    Hh24MiSs => "HH24:MI:SS",
    HhMiSs => "HH:MI:SS",
    Hh12MiAm => "HH12:MI AM",
    Hh24Mi => "HH24:MI",
});

allow_list!(DateTimeFormat {
    YyyyMmDdHh24MiSs => "YYYY-MM-DD HH24:MI:SS",
    YyyyMmDdHhMiSs => "YYYY-MM-DD HH:MI:SS",
    YyyyMmDdHh12MiAm => "YYYY-MM-DD HH12:MI AM",
    MmDdYyHh24Mi => "MM/DD/YY HH24:MI",
});

allow_list!(DateTimeTzFormat {
    YyyyMmDdHhMiSsOf => "YYYY-MM-DD HH:MI:SSOF",
    YyyyMmDdHh24MiSsOf => "YYYY-MM-DD HH24:MI:SSOF",
    YyyyMmDdHhMiSs => "YYYY-MM-DD HH:MI:SS",
    MmDdYyHh24Mi => "MM/DD/YY HH24:MI",
});

/// Years a two-digit year can stand for.
const TWO_DIGIT_YEARS: std::ops::RangeInclusive<i32> = 1970..=2069;

impl DateFormat {
    fn pattern(self) -> &'static str {
        match self {
            DateFormat::YyyyMmDd => "%Y-%m-%d",
            DateFormat::MmDdYyyy => "%m-%d-%Y",
            DateFormat::DdMmYyyy => "%d-%m-%Y",
            DateFormat::MmDdYy => "%m/%d/%y",
            DateFormat::DdMmYy => "%d/%m/%y",
            DateFormat::DdMmYyDash => "%d-%m-%y",
        }
    }

    fn two_digit_year(self) -> bool {
        matches!(
            self,
            DateFormat::MmDdYy | DateFormat::DdMmYy | DateFormat::DdMmYyDash
        )
    }

    pub fn read(self, text: &str) -> Option<NaiveDate> {
        if self == DateFormat::YyyyMmDd
            && let Some(d) = iso_date(text.as_bytes())
        {
            return Some(d);
        }
        NaiveDate::parse_from_str(text.trim(), self.pattern()).ok()
    }

    pub fn write(self, date: NaiveDate) -> Option<String> {
        use chrono::Datelike;
        if self.two_digit_year() && !TWO_DIGIT_YEARS.contains(&date.year()) {
            return None;
        }
        if !(0..=9999).contains(&date.year()) {
            return None;
        }
        Some(date.format(self.pattern()).to_string())
    }
}

/// `YYYY-MM-DD` exactly, without the cost of interpreting a pattern for every value (the
/// general path handles everything else, such as surrounding blanks).
fn iso_date(b: &[u8]) -> Option<NaiveDate> {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

/// `HH:MM:SS` with `.ffffff` only when the value has a fraction.
fn clock_with_fraction(t: NaiveTime) -> String {
    match t.nanosecond() / 1000 {
        0 => t.format("%H:%M:%S").to_string(),
        _ => t.format("%H:%M:%S%.6f").to_string(),
    }
}

impl TimeFormat {
    pub fn read(self, text: &str) -> Option<NaiveTime> {
        let text = text.trim();
        match self {
            TimeFormat::Hh24MiSs | TimeFormat::HhMiSs => {
                NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()
            }
            TimeFormat::Hh12MiAm => NaiveTime::parse_from_str(text, "%I:%M %p").ok(),
            TimeFormat::Hh24Mi => NaiveTime::parse_from_str(text, "%H:%M").ok(),
        }
    }

    pub fn write(self, t: NaiveTime) -> Option<String> {
        let minutes_only = t.second() == 0 && t.nanosecond() == 0;
        match self {
            TimeFormat::Hh24MiSs | TimeFormat::HhMiSs => Some(clock_with_fraction(t)),
            TimeFormat::Hh12MiAm => minutes_only.then(|| t.format("%I:%M %p").to_string()),
            TimeFormat::Hh24Mi => minutes_only.then(|| t.format("%H:%M").to_string()),
        }
    }
}

impl DateTimeFormat {
    pub fn read(self, text: &str) -> Option<NaiveDateTime> {
        let text = text.trim();
        let pattern = match self {
            DateTimeFormat::YyyyMmDdHh24MiSs | DateTimeFormat::YyyyMmDdHhMiSs => {
                "%Y-%m-%d %H:%M:%S%.f"
            }
            DateTimeFormat::YyyyMmDdHh12MiAm => "%Y-%m-%d %I:%M %p",
            DateTimeFormat::MmDdYyHh24Mi => "%m/%d/%y %H:%M",
        };
        NaiveDateTime::parse_from_str(text, pattern).ok()
    }

    pub fn write(self, t: NaiveDateTime) -> Option<String> {
        let (date, time) = (t.date(), t.time());
        match self {
            DateTimeFormat::YyyyMmDdHh24MiSs | DateTimeFormat::YyyyMmDdHhMiSs => Some(format!(
                "{} {}",
                DateFormat::YyyyMmDd.write(date)?,
                clock_with_fraction(time)
            )),
            DateTimeFormat::YyyyMmDdHh12MiAm => Some(format!(
                "{} {}",
                DateFormat::YyyyMmDd.write(date)?,
                TimeFormat::Hh12MiAm.write(time)?
            )),
            DateTimeFormat::MmDdYyHh24Mi => Some(format!(
                "{} {}",
                DateFormat::MmDdYy.write(date)?,
                TimeFormat::Hh24Mi.write(time)?
            )),
        }
    }
}

impl DateTimeTzFormat {
    pub fn read(self, text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        match self {
            DateTimeTzFormat::YyyyMmDdHhMiSsOf | DateTimeTzFormat::YyyyMmDdHh24MiSsOf => {
                DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
            DateTimeTzFormat::YyyyMmDdHhMiSs => DateTimeFormat::YyyyMmDdHhMiSs
                .read(text)
                .map(|t| t.and_utc()),
            DateTimeTzFormat::MmDdYyHh24Mi => {
                DateTimeFormat::MmDdYyHh24Mi.read(text).map(|t| t.and_utc())
            }
        }
    }

    pub fn write(self, t: DateTime<Utc>) -> Option<String> {
        let naive = t.naive_utc();
        match self {
            DateTimeTzFormat::YyyyMmDdHhMiSsOf | DateTimeTzFormat::YyyyMmDdHh24MiSsOf => Some(
                format!("{}+00:00", DateTimeFormat::YyyyMmDdHhMiSs.write(naive)?),
            ),
            DateTimeTzFormat::YyyyMmDdHhMiSs => DateTimeFormat::YyyyMmDdHhMiSs.write(naive),
            DateTimeTzFormat::MmDdYyHh24Mi => DateTimeFormat::MmDdYyHh24Mi.write(naive),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn every_date_format_reads_what_it_writes() {
        let names = [
            "YYYY-MM-DD",
            "MM-DD-YYYY",
            "DD-MM-YYYY",
            "MM/DD/YY",
            "DD/MM/YY",
            "DD-MM-YY",
        ];
        for name in names {
            let f = DateFormat::parse(name).unwrap();
            assert_eq!(f.name(), name);
            for d in [date(1970, 1, 1), date(2000, 2, 29), date(2069, 12, 31)] {
                let text = f.write(d).unwrap();
                assert_eq!(f.read(&text), Some(d), "{name}: {text}");
            }
        }
        assert_eq!(DateFormat::MmDdYy.write(date(1900, 1, 1)), None);
        assert_eq!(
            DateFormat::YyyyMmDd.write(date(1, 1, 1)).unwrap(),
            "0001-01-01"
        );
        assert_eq!(
            DateFormat::DdMmYyyy.read("31-12-1999"),
            Some(date(1999, 12, 31))
        );
        assert!(DateFormat::parse("%Y-%m-%d").is_none());
    }

    #[test]
    fn times_with_and_without_fractions_and_twelve_hours() {
        let t = |h, m, s, us| NaiveTime::from_hms_micro_opt(h, m, s, us).unwrap();
        assert_eq!(
            TimeFormat::Hh24MiSs.write(t(13, 5, 9, 0)).unwrap(),
            "13:05:09"
        );
        assert_eq!(
            TimeFormat::HhMiSs.write(t(13, 5, 9, 250)).unwrap(),
            "13:05:09.000250"
        );
        assert_eq!(
            TimeFormat::HhMiSs.read("13:05:09.25"),
            Some(t(13, 5, 9, 250_000))
        );
        assert_eq!(
            TimeFormat::Hh12MiAm.write(t(13, 5, 0, 0)).unwrap(),
            "01:05 PM"
        );
        assert_eq!(TimeFormat::Hh12MiAm.read("01:05 PM"), Some(t(13, 5, 0, 0)));
        assert_eq!(TimeFormat::Hh12MiAm.write(t(13, 5, 1, 0)), None);
        assert_eq!(TimeFormat::Hh24Mi.read("23:59"), Some(t(23, 59, 0, 0)));
    }

    #[test]
    fn offsets_of_every_spelling_read_as_the_same_instant() {
        let f = DateTimeTzFormat::YyyyMmDdHhMiSsOf;
        let want = f.read("2026-01-02 08:04:05+00:00").unwrap();
        for text in [
            "2026-01-02 03:04:05-05",
            "2026-01-02 08:04:05+0000",
            "2026-01-02 13:34:05+05:30",
        ] {
            assert_eq!(f.read(text), Some(want), "{text}");
        }
        assert_eq!(f.write(want).unwrap(), "2026-01-02 08:04:05+00:00");
        // Without an offset: UTC.
        let bq = DateTimeTzFormat::YyyyMmDdHhMiSs;
        assert_eq!(bq.read("2026-01-02 08:04:05"), Some(want));
        assert_eq!(bq.write(want).unwrap(), "2026-01-02 08:04:05");
    }

    #[test]
    fn datetimes_that_a_format_cannot_show_have_no_text() {
        let t = NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(17, 30, 0)
            .unwrap();
        let csv = DateTimeFormat::MmDdYyHh24Mi;
        assert_eq!(csv.write(t).unwrap(), "11/28/26 17:30");
        assert_eq!(csv.read("11/28/26 17:30"), Some(t));
        assert_eq!(csv.write(t.with_second(1).unwrap()), None);
        assert_eq!(
            DateTimeFormat::YyyyMmDdHh12MiAm.write(t).unwrap(),
            "2026-11-28 05:30 PM"
        );
    }
}
