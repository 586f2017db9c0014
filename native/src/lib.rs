//! servelog's compiled fast path (`collector._native`): CRI lines to encoded `_bulk` documents.
//!
//! `encode_run` encodes, with the interpreter lock released, every line it can handle exactly as
//! the Python assembler (`collector/transforms/assembler.py`) would, and stops at the first line it
//! cannot: the Python assembler handles that one on the reference path and the loop continues.
//! Handled here: a CRI record with tag `F`, stream `stdout`/`stderr`, a `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`
//! timestamp of the current day's index, content within `max_line_bytes` and valid UTF-8, whose
//! level `detect_level` finds without doubt (an ASCII prefix; JSON without exponents, `\u` escapes
//! or deep nesting), and (multiline on) not opening a traceback. Everything else stops the run.
//! Byte-identical output is the contract: `tests/unit/test_native_equivalence.py` proves it.

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

const MAX_TS_NS: i128 = i64::MAX as i128;
const LEVEL_PREFIX: usize = 160; // levels.py _PREFIX (characters; ASCII-checked here)
const JSON_MAX: usize = 64 * 1024; // levels.py _JSON_MAX (characters)
const JSON_MAX_DEPTH: usize = 64; // deeper: let orjson decide
const TRACEBACK_START: &[u8] = b"Traceback (most recent call last):";
const BLOCK: usize = 2048; // lines taken per release of the interpreter lock

/// Why a line cannot be handled here: the caller takes it on the reference path.
struct Fallback;

struct State {
    offset: i64,
    run_ts: i64,
    run_count: i64,
    run_back: i64,
}

struct Config<'a> {
    prefix: &'a [u8],
    base_fragment: &'a [u8],
    day: &'a [u8],
    index: &'a [u8],
    max_line_bytes: usize,
    multiline: bool,
    batch_docs: usize,
    batch_size: usize,
    max_docs: usize,
    max_bytes: usize,
}

struct Run {
    body: Vec<u8>,
    ends: Vec<u8>, // u64 little-endian, absolute in the batch
    docs: usize,
    stdout: usize,
    stderr: usize,
    consumed: usize,
    full: bool,
}

// -- timestamps ---------------------------------------------------------------------------------

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
fn parse_ts(t: &[u8]) -> Result<(i64, [u8; 9]), Fallback> {
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

// -- levels (collector/transforms/levels.py) ------------------------------------------------------

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

fn at(s: &[u8], i: usize) -> u8 {
    if i < s.len() {
        s[i]
    } else {
        0xff // never matches any class used here
    }
}

fn run_of(s: &[u8], mut i: usize, class: fn(u8) -> bool) -> usize {
    while i < s.len() && class(s[i]) {
        i += 1;
    }
    i
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
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

// -- JSON levels: a strict parser that decides only what orjson would decide the same way --------

enum Json {
    Invalid, // orjson.loads raises: no level
}

struct JsonScan<'a> {
    s: &'a [u8],
    i: usize,
}

/// What a top-level key's (last) value was: a plain string (no escapes), or anything else.
#[derive(Clone, Copy)]
enum Seen<'a> {
    Absent,
    Str(&'a [u8]),
    Other,
}

const LEVEL_KEYS: [&[u8]; 5] = [b"level", b"severity", b"levelname", b"lvl", b"log.level"];

impl<'a> JsonScan<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        at(self.s, self.i)
    }

    /// A string at `i` (on its quote); Ok(Some(raw)) when it has no escapes.
    fn string(&mut self) -> Result<Result<Option<&'a [u8]>, Json>, Fallback> {
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        while i < self.s.len() {
            let c = self.s[i];
            if c == b'"' {
                self.i = i + 1;
                return Ok(Ok(if escaped { None } else { Some(&self.s[start..i]) }));
            }
            if c < 0x20 {
                return Ok(Err(Json::Invalid));
            }
            if c == b'\\' {
                escaped = true;
                match at(self.s, i + 1) {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => return Err(Fallback), // surrogates and their pairing: orjson decides
                    _ => return Ok(Err(Json::Invalid)),
                }
                continue;
            }
            i += 1;
        }
        Ok(Err(Json::Invalid))
    }

    fn number(&mut self) -> Result<Result<(), Json>, Fallback> {
        let start = self.i;
        let mut i = self.i;
        if at(self.s, i) == b'-' {
            i += 1;
        }
        match at(self.s, i) {
            b'0' => i += 1,
            b'1'..=b'9' => i = run_of(self.s, i, is_digit),
            _ => return Ok(Err(Json::Invalid)),
        }
        if at(self.s, i) == b'.' {
            if !is_digit(at(self.s, i + 1)) {
                return Ok(Err(Json::Invalid));
            }
            i = run_of(self.s, i + 1, is_digit);
        }
        if matches!(at(self.s, i), b'e' | b'E') || i - start > 18 {
            return Err(Fallback); // overflow to infinity, big integers: orjson decides
        }
        self.i = i;
        Ok(Ok(()))
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Json> {
        if self.s.len() >= self.i + word.len() && &self.s[self.i..self.i + word.len()] == word {
            self.i += word.len();
            Ok(())
        } else {
            Err(Json::Invalid)
        }
    }

    /// Any value at `i`; Ok(Ok(Some(raw))) for an escape-free string.
    fn value(&mut self, depth: usize) -> Result<Result<Option<&'a [u8]>, Json>, Fallback> {
        if depth > JSON_MAX_DEPTH {
            return Err(Fallback);
        }
        match self.peek() {
            b'"' => Ok(match self.string()? {
                Ok(Some(raw)) => Ok(Some(raw)),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }),
            b'{' => Ok(self.object(depth, &mut None)?.map(|_| None)),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Ok(Ok(None));
                }
                loop {
                    self.ws();
                    if let Err(e) = self.value(depth + 1)? {
                        return Ok(Err(e));
                    }
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Ok(Ok(None));
                        }
                        _ => return Ok(Err(Json::Invalid)),
                    }
                }
            }
            b't' => Ok(self.literal(b"true").map(|_| None)),
            b'f' => Ok(self.literal(b"false").map(|_| None)),
            b'n' => Ok(self.literal(b"null").map(|_| None)),
            _ => Ok(self.number()?.map(|_| None)),
        }
    }

    /// An object at `i`; at the top level (`keys` given) records the level keys' last values.
    fn object(&mut self, depth: usize, keys: &mut Option<[Seen<'a>; 5]>) -> Result<Result<(), Json>, Fallback> {
        self.i += 1;
        self.ws();
        if self.peek() == b'}' {
            self.i += 1;
            return Ok(Ok(()));
        }
        loop {
            self.ws();
            if self.peek() != b'"' {
                return Ok(Err(Json::Invalid));
            }
            let key = match self.string()? {
                Ok(Some(raw)) => Some(raw),
                Ok(None) => {
                    if keys.is_some() {
                        return Err(Fallback); // an escaped key might spell a level key
                    }
                    None
                }
                Err(e) => return Ok(Err(e)),
            };
            self.ws();
            if self.peek() != b':' {
                return Ok(Err(Json::Invalid));
            }
            self.i += 1;
            self.ws();
            let is_str = self.peek() == b'"';
            let value = match self.value(depth + 1)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if let (Some(seen), Some(key)) = (keys.as_mut(), key) {
                if let Some(k) = LEVEL_KEYS.iter().position(|lk| *lk == key) {
                    seen[k] = match (is_str, value) {
                        (true, Some(raw)) => Seen::Str(raw),
                        (true, None) => return Err(Fallback), // an escaped string value
                        _ => Seen::Other,
                    };
                }
            }
            self.ws();
            match self.peek() {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(Ok(()));
                }
                _ => return Ok(Err(Json::Invalid)),
            }
        }
    }
}

fn canonical_name(v: &[u8]) -> Result<Option<&'static str>, Fallback> {
    if !v.is_ascii() {
        return Err(Fallback); // str.lower() of non-ASCII text: Python decides
    }
    let lower = v.to_ascii_lowercase();
    Ok(match lower.as_slice() {
        b"debug" | b"trace" => Some("debug"),
        b"info" | b"information" | b"notice" => Some("info"),
        b"warn" | b"warning" => Some("warning"),
        b"error" | b"err" => Some("error"),
        b"critical" | b"fatal" | b"panic" | b"dpanic" | b"emergency" | b"alert" => Some("critical"),
        _ => None,
    })
}

fn json_level(m: &str) -> Result<Option<&'static str>, Fallback> {
    let b = m.as_bytes();
    if b.len() > JSON_MAX && m.chars().count() > JSON_MAX {
        return Ok(None);
    }
    let mut scan = JsonScan { s: b, i: 0 };
    let mut keys = Some([Seen::Absent; 5]);
    if scan.object(0, &mut keys)?.is_err() {
        return Ok(None);
    }
    scan.ws();
    if scan.i != b.len() {
        return Ok(None); // trailing characters: orjson refuses
    }
    for seen in keys.unwrap() {
        match seen {
            Seen::Str(raw) => return canonical_name(raw),
            Seen::Other | Seen::Absent => continue,
        }
    }
    Ok(None)
}

fn detect_level(m: &str) -> Result<Option<&'static str>, Fallback> {
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

// -- encoding -----------------------------------------------------------------------------------

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `orjson.dumps(message)`: `"`, `\`, and control characters escaped, everything else as is.
fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// identity.py `document_id`: URL-safe base64 of BLAKE2b-120 of `prefix + b"%d/%d" % (ts_ns, ordinal)`.
fn document_id(prefix: &[u8], ts_ns: i64, ordinal: i128) -> [u8; 20] {
    let mut hasher = Blake2bVar::new(15).expect("15 is a valid BLAKE2b digest size");
    hasher.update(prefix);
    hasher.update(format!("{ts_ns}/{ordinal}").as_bytes());
    let mut digest = [0u8; 15];
    hasher.finalize_variable(&mut digest).expect("digest size is 15");
    let mut out = [0u8; 20];
    for (k, chunk) in digest.chunks(3).enumerate() {
        let v = ((chunk[0] as u32) << 16) | ((chunk[1] as u32) << 8) | chunk[2] as u32;
        out[k * 4] = B64[(v >> 18) as usize & 63];
        out[k * 4 + 1] = B64[(v >> 12) as usize & 63];
        out[k * 4 + 2] = B64[(v >> 6) as usize & 63];
        out[k * 4 + 3] = B64[v as usize & 63];
    }
    out
}

/// position.py `StreamCursor._ordinal`.
fn ordinal(state: &mut State, ts_ns: i64) -> i128 {
    if ts_ns == state.run_ts {
        state.run_count += 1;
        return (state.run_count - 1) as i128;
    }
    if ts_ns > state.run_ts {
        state.run_ts = ts_ns;
        state.run_count = 1;
        state.run_back = 0;
        return 0;
    }
    state.run_back += 1;
    -((((state.run_ts as i128) - (ts_ns as i128)) << 24) + state.run_back as i128)
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// One line: Ok(Some(stdout?)) encoded, Ok(None) the batch is full before it, Err: reference path.
fn encode_line(raw: &[u8], cfg: &Config, state: &mut State, run: &mut Run) -> Result<Option<bool>, Fallback> {
    if raw.first() == Some(&b'{') {
        return Err(Fallback); // Docker json-file
    }
    let (ts, rest) = split_space(raw).ok_or(Fallback)?;
    let (stream, rest) = split_space(rest).ok_or(Fallback)?;
    let (tag, content) = split_space(rest).ok_or(Fallback)?;
    let stdout = match stream {
        b"stdout" => true,
        b"stderr" => false,
        _ => return Err(Fallback),
    };
    if tag != b"F" || content.len() > cfg.max_line_bytes {
        return Err(Fallback);
    }
    let (ts_ns, frac) = parse_ts(ts)?;
    if &ts[..10] != cfg.day {
        return Err(Fallback); // another day's index: the Python path names it
    }
    let message = std::str::from_utf8(content).map_err(|_| Fallback)?;
    if cfg.multiline && content.starts_with(TRACEBACK_START) {
        return Err(Fallback);
    }
    let level = detect_level(message)?;
    let batch_docs = cfg.batch_docs + run.docs;
    if batch_docs > 0 && batch_docs >= cfg.max_docs {
        return Ok(None);
    }
    let mut next = State { offset: state.offset, run_ts: state.run_ts, run_count: state.run_count, run_back: state.run_back };
    let ord = ordinal(&mut next, ts_ns);
    let id = document_id(cfg.prefix, ts_ns, ord);
    let body = &mut run.body;
    let mark = body.len();
    body.extend_from_slice(b"{\"create\":{\"_index\":\"");
    body.extend_from_slice(cfg.index);
    body.extend_from_slice(b"\",\"_id\":\"");
    body.extend_from_slice(&id);
    body.extend_from_slice(b"\"}}\n{\"timestamp\":\"");
    body.extend_from_slice(&ts[..19]);
    body.push(b'.');
    body.extend_from_slice(&frac);
    body.extend_from_slice(b"Z\",\"doc_id\":\"");
    body.extend_from_slice(&id);
    body.extend_from_slice(b"\",\"message\":");
    json_string(body, content);
    body.extend_from_slice(if stdout { b",\"stream\":\"stdout\"" } else { b",\"stream\":\"stderr\"" });
    if let Some(level) = level {
        body.extend_from_slice(b",\"level\":\"");
        body.extend_from_slice(level.as_bytes());
        body.push(b'"');
    }
    body.extend_from_slice(cfg.base_fragment);
    body.extend_from_slice(b"}\n");
    let piece = body.len() - mark;
    let size_before = cfg.batch_size + mark;
    if batch_docs > 0 && size_before + piece > cfg.max_bytes {
        body.truncate(mark);
        return Ok(None);
    }
    run.ends.extend_from_slice(&((size_before + piece) as u64).to_le_bytes());
    next.offset += raw.len() as i64 + 1;
    *state = next;
    run.docs += 1;
    Ok(Some(stdout))
}

fn encode_block(lines: &[&[u8]], cfg: &Config, state: &mut State, run: &mut Run) -> bool {
    for raw in lines {
        match encode_line(raw, cfg, state, run) {
            Ok(Some(stdout)) => {
                if stdout {
                    run.stdout += 1;
                } else {
                    run.stderr += 1;
                }
                run.consumed += 1;
            }
            Ok(None) => {
                run.full = true;
                return false;
            }
            Err(Fallback) => return false,
        }
    }
    true
}

type RunResult<'py> = (usize, Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize, usize, usize, i64, i64, i64, i64, bool);

/// Encode `lines[start:]` from `offset` and the ordinal state until a line the reference path must
/// take, or the open batch (`batch_docs` documents, `batch_size` bytes) is full.
///
/// Returns (lines consumed, body, document end offsets in the batch as little-endian u64, documents,
/// stdout records, stderr records, offset, run_ts_ns, run_count, run_back, batch full).
#[pyfunction]
#[pyo3(signature = (lines, start, offset, run_ts, run_count, run_back, prefix, base_fragment, day, index,
                    max_line_bytes, multiline, batch_docs, batch_size, max_docs, max_bytes))]
fn encode_run<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
    start: usize,
    offset: i64,
    run_ts: i64,
    run_count: i64,
    run_back: i64,
    prefix: &[u8],
    base_fragment: &[u8],
    day: &[u8],
    index: &[u8],
    max_line_bytes: usize,
    multiline: bool,
    batch_docs: usize,
    batch_size: usize,
    max_docs: usize,
    max_bytes: usize,
) -> PyResult<RunResult<'py>> {
    let cfg = Config {
        prefix, base_fragment, day, index, max_line_bytes, multiline, batch_docs, batch_size, max_docs, max_bytes,
    };
    let mut state = State { offset, run_ts, run_count, run_back };
    let mut run = Run { body: Vec::new(), ends: Vec::new(), docs: 0, stdout: 0, stderr: 0, consumed: 0, full: false };
    let total = lines.len();
    let mut i = start.min(total);
    let mut block = 64; // grows: a run that stops early took few lines for nothing
    while i < total {
        let end = (i + block).min(total);
        let owned: Vec<Bound<'py, PyBytes>> = (i..end)
            .map(|k| lines.get_item(k).and_then(|item| item.downcast_into::<PyBytes>().map_err(PyErr::from)))
            .collect::<PyResult<_>>()
            .map_err(|_| PyTypeError::new_err("encode_run: lines must be a list of bytes"))?;
        let slices: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
        if run.body.capacity() == 0 {
            let guess: usize = slices.iter().map(|s| s.len() + 300).sum();
            run.body.reserve(guess);
        }
        let went_on = py.allow_threads(|| encode_block(&slices, &cfg, &mut state, &mut run));
        if !went_on {
            break;
        }
        i = end;
        block = (block * 4).min(BLOCK);
    }
    let body = PyBytes::new(py, &run.body);
    let ends = PyBytes::new(py, &run.ends);
    Ok((run.consumed, body, ends, run.docs, run.stdout, run.stderr, state.offset, state.run_ts, state.run_count,
        state.run_back, run.full))
}

/// The fast path of the Python assembler (see the crate documentation).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_run, m)?)?;
    Ok(())
}
