//! CRI timestamps: `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` to nanoseconds since the epoch.
//!
//! Mirrors `collector/transforms/cri.py` (`parse_timestamp`) for the one form the fast path takes:
//! upper-case `T` and `Z`, two-digit hour, up to nine fraction digits, day checked against the month,
//! the instant within OpenSearch's `date_nanos` (after the epoch, at most `i64::MAX` ns). Every other
//! form is a `Fallback`: the Python rules decide it.

use crate::Fallback;

const MAX_TS_NS: i128 = i64::MAX as i128;

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` -> (ns since epoch, 9 fraction digits); anything else: Fallback.
pub(crate) fn parse_ts(t: &[u8]) -> Result<(i64, [u8; 9]), Fallback> {
    let n = t.len();
    if !(20..=30).contains(&n) || t[n - 1] != b'Z' {
        return Err(Fallback);
    }
    if t[4] != b'-' || t[7] != b'-' || t[10] != b'T' || t[13] != b':' || t[16] != b':' {
        return Err(Fallback);
    }
    let year = digits(&t[0..4]).ok_or(Fallback)?;
    let month = digits(&t[5..7]).ok_or(Fallback)?;
    let day = digits(&t[8..10]).ok_or(Fallback)?;
    let hour = digits(&t[11..13]).ok_or(Fallback)?;
    let minute = digits(&t[14..16]).ok_or(Fallback)?;
    let second = digits(&t[17..19]).ok_or(Fallback)?;
    let mut frac = *b"000000000";
    if n > 20 {
        if t[19] != b'.' || n < 22 {
            return Err(Fallback);
        }
        let f = &t[20..n - 1];
        if !f.iter().all(u8::is_ascii_digit) {
            return Err(Fallback);
        }
        frac[..f.len()].copy_from_slice(f);
    }
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(Fallback);
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Fallback);
    }
    let seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    let nanos = digits(&frac).ok_or(Fallback)?;
    let ts_ns = seconds as i128 * 1_000_000_000 + nanos as i128;
    if ts_ns <= 0 || ts_ns > MAX_TS_NS {
        return Err(Fallback);
    }
    Ok((ts_ns as i64, frac))
}
