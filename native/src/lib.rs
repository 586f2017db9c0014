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
//!
//! Modules, each mirroring one part of the Python reference path: `timestamp` (CRI timestamps,
//! `cri.py`), `levels` and `json_level` (`levels.py`; `byte_scan` holds their shared helpers),
//! `json_escape` (`orjson.dumps` of the message), `identity` (`identity.py` `document_id`,
//! `position.py` ordinals). This file keeps the CRI record split, the document encoding and the
//! Python entry point.

mod byte_scan;
mod identity;
mod json_escape;
mod json_level;
mod levels;
mod timestamp;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use identity::{document_id, ordinal};
use json_escape::json_string;
use levels::detect_level;
use timestamp::parse_ts;

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
#[allow(clippy::too_many_arguments)] // one flat call from fastpath.py: no per-run object to build
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
