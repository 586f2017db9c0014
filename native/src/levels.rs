//! Log-level detection: mirrors `collector/transforms/levels.py` (`detect_level`).
//!
//! A message opening with `{` is JSON (`json_level.rs`); otherwise the regex `_TEXT` is matched,
//! alternative by alternative and in the regex's backtracking order, on the first 160 bytes, which
//! must be ASCII (Unicode `\d`, `\s`, `\w` and character counts are left to Python: `Fallback`).

use crate::byte_scan::{at, is_digit, run_of};
use crate::json_level::json_level;
use crate::Fallback;

const LEVEL_PREFIX: usize = 160; // levels.py _PREFIX (characters; ASCII-checked here)

const WORDS: [&[u8]; 7] = [b"DEBUG", b"INFO", b"WARNING", b"WARN", b"ERROR", b"CRITICAL", b"FATAL"];

fn canonical_word(w: &[u8]) -> &'static str {
    match w {
        b"DEBUG" => "debug",
        b"INFO" => "info",
        b"WARNING" | b"WARN" => "warning",
        b"ERROR" => "error",
        _ => "critical", // CRITICAL, FATAL
    }
}

fn glog(c: u8) -> &'static str {
    match c {
        b'I' => "info",
        b'W' => "warning",
        b'E' => "error",
        _ => "critical",
    }
}

/// Python's `\s` on ASCII text (str patterns): `[ \t\n\r\f\v]` and the separators `\x1c-\x1f`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_name(c: u8) -> bool {
    is_word(c) || c == b'.' || c == b'-'
}

/// `\d{4}-\d\d-\d\d<sep>\d\d:\d\d:\d\d` at 0; returns the end.
fn text_stamp(s: &[u8], space_only: bool) -> Option<usize> {
    if s.len() < 19 {
        return None;
    }
    let d = |r: std::ops::Range<usize>| s[r].iter().all(u8::is_ascii_digit);
    let sep_ok = if space_only { s[10] == b' ' } else { s[10] == b' ' || s[10] == b'T' };
    if d(0..4) && s[4] == b'-' && d(5..7) && s[7] == b'-' && d(8..10) && sep_ok && d(11..13) && s[13] == b':'
        && d(14..16) && s[16] == b':' && d(17..19)
    {
        Some(19)
    } else {
        None
    }
}

/// `\[?WORD\]?[\s:]` at `p`, alternatives in the pattern's order.
fn bracketed_word(s: &[u8], p: usize) -> Option<&'static str> {
    let starts: &[usize] = if at(s, p) == b'[' { &[1, 0] } else { &[0] };
    for &skip in starts {
        let q = p + skip;
        for w in WORDS {
            if s.len() >= q + w.len() && &s[q..q + w.len()] == w {
                let r = q + w.len();
                if at(s, r) == b']' && (is_space(at(s, r + 1)) || at(s, r + 1) == b':') {
                    return Some(canonical_word(w));
                }
                let c = at(s, r);
                if is_space(c) || c == b':' {
                    return Some(canonical_word(w));
                }
            }
        }
    }
    None
}

/// The regex `_TEXT` of levels.py, matched at 0 on an ASCII prefix (at most 160 bytes).
fn text_level(s: &[u8]) -> Option<&'static str> {
    // alternative a: timestamp, optional pid, optional logger name, [WORD]
    if let Some(mut p) = text_stamp(s, false) {
        if (at(s, p) == b'.' || at(s, p) == b',') && is_digit(at(s, p + 1)) {
            p = run_of(s, p + 1, is_digit);
        }
        let c = at(s, p);
        if c == b'Z' {
            p += 1;
        } else if c == b'+' || c == b'-' {
            let q = p + 1;
            if is_digit(at(s, q)) && is_digit(at(s, q + 1)) {
                let r = if at(s, q + 2) == b':' && is_digit(at(s, q + 3)) && is_digit(at(s, q + 4)) {
                    Some(q + 5)
                } else if is_digit(at(s, q + 2)) && is_digit(at(s, q + 3)) {
                    Some(q + 4)
                } else {
                    None
                };
                if let Some(r) = r {
                    p = r;
                }
            }
        }
        if is_space(at(s, p)) {
            let p = run_of(s, p, is_space);
            // (?:\d+\s+)? then (?:[\w.\-]+\s+)?, each tried matched first, then skipped
            let g1 = {
                let e = run_of(s, p, is_digit);
                if e > p && is_space(at(s, e)) {
                    Some(run_of(s, e, is_space))
                } else {
                    None
                }
            };
            let mut starts: Vec<usize> = Vec::with_capacity(2);
            if let Some(e) = g1 {
                starts.push(e);
            }
            starts.push(p);
            for q in starts {
                let e = run_of(s, q, is_name);
                if e > q && is_space(at(s, e)) {
                    let r = run_of(s, e, is_space);
                    if let Some(level) = bracketed_word(s, r) {
                        return Some(level);
                    }
                }
                if let Some(level) = bracketed_word(s, q) {
                    return Some(level);
                }
            }
        }
    }
    // alternative b: WORD:\s
    for w in WORDS {
        if s.len() >= w.len() && &s[..w.len()] == w && at(s, w.len()) == b':' && is_space(at(s, w.len() + 1)) {
            return Some(canonical_word(w));
        }
    }
    // alternative c: TF-Serving
    if let Some(p) = text_stamp(s, true) {
        if at(s, p) == b'.' && is_digit(at(s, p + 1)) {
            let e = run_of(s, p + 1, is_digit);
            if at(s, e) == b':' && at(s, e + 1) == b' ' && matches!(at(s, e + 2), b'I' | b'W' | b'E' | b'F')
                && at(s, e + 3) == b' '
            {
                return Some(glog(at(s, e + 2)));
            }
        }
    }
    // alternative d: glog
    if s.len() >= 14 && matches!(s[0], b'I' | b'W' | b'E' | b'F') && s[1..5].iter().all(u8::is_ascii_digit)
        && s[5] == b' ' && is_digit(s[6]) && is_digit(s[7]) && s[8] == b':' && is_digit(s[9]) && is_digit(s[10])
        && s[11] == b':' && is_digit(s[12]) && is_digit(s[13])
    {
        return Some(glog(s[0]));
    }
    None
}

pub(crate) fn detect_level(m: &str) -> Result<Option<&'static str>, Fallback> {
    let b = m.as_bytes();
    if b.first() == Some(&b'{') {
        return json_level(m);
    }
    let prefix = &b[..b.len().min(LEVEL_PREFIX)];
    if !prefix.is_ascii() {
        return Err(Fallback); // Unicode \d, \s, \w and character counts: Python decides
    }
    Ok(text_level(prefix))
}
