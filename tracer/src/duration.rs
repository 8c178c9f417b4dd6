//! Durations as people write them: `500ms`, `5s`, `2m`, `1h30m`, `1.5s`.

use std::time::Duration;

/// Parses a human duration; the error names what is wrong and the accepted forms. A bare
/// number is seconds, as in `docker stop -t 10`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {text:?}: write it like 500ms, 5s, 2m or 1h30m");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = rest.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| err())?;
        let scale = match unit.trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| err())?;
        rest = tail;
    }
    Ok(total)
}

/// `2.3 s`, `41 ms`, `850 µs`, `3 m 05 s`, for people.
pub fn human(ns: u64) -> String {
    Human(ns).to_string()
}

/// [`human`] as a `Display`, to write into a line without a `String` of its own.
pub struct Human(pub u64);

impl Human {
    /// Appends the text to `out`; nanoseconds without going through `fmt`.
    pub fn push_to(&self, out: &mut String) {
        if self.0 < 1_000 {
            out.push_str(itoa::Buffer::new().format(self.0));
            out.push_str(" ns");
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "{self}");
        }
    }
}

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        let secs = ns as f64 / 1e9;
        if ns < 1_000 {
            f.write_str(itoa::Buffer::new().format(ns))?;
            f.write_str(" ns")
        } else if ns < 1_000_000 {
            write!(f, "{:.0} µs", ns as f64 / 1e3)
        } else if ns < 1_000_000_000 {
            write!(f, "{:.0} ms", ns as f64 / 1e6)
        } else if secs < 60.0 {
            write!(f, "{secs:.1} s")
        } else if secs < 3600.0 {
            write!(
                f,
                "{} m {:02} s",
                (secs / 60.0) as u64,
                (secs % 60.0) as u64
            )
        } else {
            write!(
                f,
                "{} h {:02} m",
                (secs / 3600.0) as u64,
                ((secs % 3600.0) / 60.0) as u64
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        for bad in ["", "-1", "s", "5 parsecs", "-1s", "1.2.3s", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prints_for_people() {
        for ns in [
            0,
            1,
            999,
            1_000,
            1_499,
            1_500,
            2_500,
            999_999,
            5_000_000_000,
            1 << 40,
        ] {
            let mut pushed = String::new();
            Human(ns).push_to(&mut pushed);
            assert_eq!(pushed, human(ns));
        }
        assert_eq!(human(0), "0 ns");
        assert_eq!(human(999), "999 ns");
        assert_eq!(human(2_300_000_000), "2.3 s");
        assert_eq!(human(41_000_000), "41 ms");
        assert_eq!(human(185_000_000_000), "3 m 05 s");
    }
}
