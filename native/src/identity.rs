//! Line identity: mirrors `collector/transforms/identity.py` (`document_id`) and the numbering of
//! `collector/transforms/position.py` (`StreamCursor._ordinal`).

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

use crate::State;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// identity.py `document_id`: URL-safe base64 of BLAKE2b-120 of `prefix + b"%d/%d" % (ts_ns, ordinal)`.
pub(crate) fn document_id(prefix: &[u8], ts_ns: i64, ordinal: i128) -> [u8; 20] {
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
pub(crate) fn ordinal(state: &mut State, ts_ns: i64) -> i128 {
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
