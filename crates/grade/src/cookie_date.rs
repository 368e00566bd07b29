//! Cookie `Expires` dates, read with RFC 6265's lenient algorithm (section 5.1.1).

/// Whether `c` separates the tokens of a cookie date.
fn is_delimiter(c: char) -> bool {
    matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~')
}

/// The leading digits of `token` when there are `min..=max` of them (and nothing after, unless
/// `trailing_ok`).
fn digits(token: &str, min: usize, max: usize, trailing_ok: bool) -> Option<i64> {
    let count = token.bytes().take_while(u8::is_ascii_digit).count();
    if count < min || count > max || (!trailing_ok && count != token.len()) {
        return None;
    }
    token.get(..count)?.parse().ok()
}

fn time(token: &str) -> Option<(i64, i64, i64)> {
    let parts: Vec<&str> = token.split(':').collect();
    let [h, m, s] = parts.as_slice() else { return None };
    Some((digits(h, 1, 2, false)?, digits(m, 1, 2, false)?, digits(s, 1, 2, true)?))
}

fn month(token: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let prefix: String = token.chars().take(3).collect::<String>().to_lowercase();
    MONTHS.iter().position(|m| *m == prefix).map(|p| p as i64)
}

/// Days from 1970-01-01 to the first of `month` (0-based) of `year` (a year after 1600).
fn days_to_month(year: i64, month: i64) -> i64 {
    let year = if month < 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 10) % 12) + 2) / 5;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The time a cookie date stands for, in milliseconds since 1970; `None` when it is not a date.
pub(crate) fn parse(date: &str) -> Option<i64> {
    let (mut clock, mut day, mut month_of, mut year) = (None, None, None, None);
    for token in date.split(is_delimiter) {
        let token = crate::jsstr::trim(token);
        if token.is_empty() {
            continue;
        }
        if clock.is_none() {
            if let Some(t) = time(token) {
                clock = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = digits(token, 1, 2, true) {
                day = Some(d);
                continue;
            }
        }
        if month_of.is_none() {
            if let Some(m) = month(token) {
                month_of = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = digits(token, 2, 4, true) {
                year = Some(match y {
                    70..=99 => y + 1900,
                    0..=69 => y + 2000,
                    _ => y,
                });
            }
        }
    }
    let ((hour, minute, second), day, month, year) = (clock?, day?, month_of?, year?);
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_to_month(year, month) + day - 1;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}
