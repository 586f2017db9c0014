//! Byte-scanning helpers shared by the text level patterns (`levels.rs`) and the JSON scanner
//! (`json_level.rs`).

pub(crate) fn at(s: &[u8], i: usize) -> u8 {
    if i < s.len() {
        s[i]
    } else {
        0xff // never matches any class used here
    }
}

pub(crate) fn run_of(s: &[u8], mut i: usize, class: fn(u8) -> bool) -> usize {
    while i < s.len() && class(s[i]) {
        i += 1;
    }
    i
}

pub(crate) fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}
