//! JSON levels: mirrors the JSON branch of `collector/transforms/levels.py` (`orjson.loads`, then the
//! first of the level keys holding a string).
//!
//! A strict parser that decides only what orjson would decide the same way: invalid JSON has no
//! level; exponents, long numbers, `\u` escapes, escaped level keys or values, nesting deeper than 64
//! and non-ASCII level values are a `Fallback` (orjson and Python decide them).

use crate::byte_scan::{at, is_digit, run_of};
use crate::Fallback;

const JSON_MAX: usize = 64 * 1024; // levels.py _JSON_MAX (characters)
const JSON_MAX_DEPTH: usize = 64; // deeper: let orjson decide

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

pub(crate) fn json_level(m: &str) -> Result<Option<&'static str>, Fallback> {
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
