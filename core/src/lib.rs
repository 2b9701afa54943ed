//! pmtimeline's reading core, built by maturin into the Python module `pmtimeline._core`.
//!
//! Every function exported to Python runs its work through [`guard::guarded`]: a panic (a bug, never
//! an expected outcome) becomes `pmtimeline.errors.CoreFaultError` naming the source, never an abort of the
//! interpreter. Record batches leave through the Arrow C data interface ([`arrow_out`]) without a copy.

pub mod arrow_out;
// The generic reader (issue 18 item 5): a catalogue of timestamp layouts and the reader that learns one.
pub mod generic;
pub mod guard;
pub mod layouts;
// The line reader (rawio): opening and decompression, splitting and decoding, the Python iterator.
pub mod line_blocks;
pub mod lines;
pub mod open;
// Regex extraction for the formats' patterns, and the common timestamp layouts.
pub mod extract;
pub mod times;
// JSON lines: decoding, flattening and key mapping of JSON-lines blocks.
pub mod json_lines;

use pyo3::prelude::*;

/// The version of the crate, so the Python side can tell a stale build from the sources it runs with.
#[pyfunction]
fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Panics on purpose, inside the guard: the test that a panic reaches Python as `CoreFaultError`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>, source: &str) -> PyResult<()> {
    guard::guarded(py, source, || -> PyResult<()> {
        panic!("deliberate panic for the test")
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    guard::quiet_panics();
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_class::<arrow_out::ArrowBatch>()?;
    // The line reader (rawio).
    m.add_class::<line_blocks::LineBlocks>()?;
    // generic: the generic reader with a learned timestamp layout.
    m.add_function(wrap_pyfunction!(generic::generic_layouts, m)?)?;
    m.add_function(wrap_pyfunction!(generic::generic_learn, m)?)?;
    m.add_function(wrap_pyfunction!(generic::generic_parse, m)?)?;
    m.add_function(wrap_pyfunction!(generic::generic_render, m)?)?;
    // Regex extraction and the common timestamp layouts.
    m.add_function(wrap_pyfunction!(extract::extract_groups, m)?)?;
    m.add_function(wrap_pyfunction!(extract::regex_search, m)?)?;
    m.add_function(wrap_pyfunction!(extract::regex_error, m)?)?;
    m.add_function(wrap_pyfunction!(extract::regex_group_names, m)?)?;
    m.add_function(wrap_pyfunction!(times::parse_layout, m)?)?;
    // JSON lines.
    m.add_function(wrap_pyfunction!(json_lines::parse_json_lines, m)?)?;
    Ok(())
}
