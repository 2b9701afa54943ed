//! pmtimeline's reading core, built by maturin into the Python module `pmtimeline._core`.
//!
//! Every function exported to Python runs its work through [`guard::guarded`]: a panic (a bug, never
//! an expected outcome) becomes `pmtimeline.errors.CoreFaultError` naming the source, never an abort of the
//! interpreter. Record batches leave through the Arrow C data interface ([`arrow_out`]) without a copy.

pub mod arrow_out;
pub mod guard;
// JSON lines (h-json): decoding, flattening and key mapping of JSON-lines blocks.
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
    // JSON lines (h-json).
    m.add_function(wrap_pyfunction!(json_lines::parse_json_lines, m)?)?;
    Ok(())
}
