//! Panics become Python exceptions that name the source being read.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use pyo3::prelude::*;

static QUIET: Once = Once::new();

/// Keep Rust's panic hook from printing to stderr: the panic is reported once, as a `CoreFaultError`.
pub fn quiet_panics() {
    QUIET.call_once(|| panic::set_hook(Box::new(|_| {})));
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Build `pmtimeline.errors.CoreFaultError(message)`; falls back to `RuntimeError` if that cannot be imported.
pub fn core_fault(py: Python<'_>, source: &str, detail: &str) -> PyErr {
    let message = format!("internal error in the reading core while reading {source}: {detail}");
    match py
        .import("pmtimeline.errors")
        .and_then(|module| module.getattr("CoreFaultError"))
        .and_then(|class| class.call1((message.clone(),)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
    }
}

/// Run `work`, turning a panic into `CoreFaultError` naming `source`.
pub fn guarded<T>(py: Python<'_>, source: &str, work: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => Err(core_fault(py, source, &panic_text(payload.as_ref()))),
    }
}
