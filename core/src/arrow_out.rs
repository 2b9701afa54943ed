//! Record batches to Python, and arrays from Python, through the Arrow PyCapsule interface
//! (`__arrow_c_array__`).
//!
//! `pyarrow.record_batch(batch)` (and polars, and pandas through pyarrow) imports the columns without
//! copying their buffers.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{
    make_array, Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{ArrowError, Field, Schema};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

/// One record batch on its way to Python. It can be exported once.
#[pyclass(module = "pmtimeline._core")]
pub struct ArrowBatch {
    batch: Option<RecordBatch>,
}

impl ArrowBatch {
    pub fn new(batch: RecordBatch) -> Self {
        Self { batch: Some(batch) }
    }

    /// A batch of named columns of equal length.
    pub fn from_columns(columns: Vec<(&str, ArrayRef)>) -> Result<Self, ArrowError> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let arrays = columns.into_iter().map(|(_, array)| array).collect();
        Ok(Self::new(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            arrays,
        )?))
    }
}

#[pymethods]
impl ArrowBatch {
    /// Rows in the batch (0 once exported).
    fn __len__(&self) -> usize {
        self.batch.as_ref().map_or(0, RecordBatch::num_rows)
    }

    /// The Arrow PyCapsule protocol: a (schema, array) pair of capsules holding a struct array.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema; // the batch is offered in its own schema only
        let batch = self
            .batch
            .take()
            .ok_or_else(|| PyValueError::new_err("this Arrow batch was already exported"))?;
        let array: StructArray = batch.into();
        let data = array.into_data();
        let schema = FFI_ArrowSchema::try_from(data.data_type())
            .map_err(|err| PyValueError::new_err(err.to_string()))?;
        let ffi_array = FFI_ArrowArray::new(&data);
        let schema_capsule = PyCapsule::new(py, schema, Some(CString::from(c"arrow_schema")))?;
        let array_capsule = PyCapsule::new(py, ffi_array, Some(CString::from(c"arrow_array")))?;
        PyTuple::new(py, [schema_capsule.into_any(), array_capsule.into_any()])
    }
}

/// Import an Arrow array from an object implementing `__arrow_c_array__` (a pyarrow Array).
pub fn import_array(object: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    let pair = object.call_method0("__arrow_c_array__")?;
    let pair = pair.cast::<PyTuple>()?;
    let schema = pair.get_item(0)?;
    let array = pair.get_item(1)?;
    let schema = schema.cast::<PyCapsule>()?;
    let array = array.cast::<PyCapsule>()?;
    let schema_name: &CStr = c"arrow_schema";
    let array_name: &CStr = c"arrow_array";
    let schema_ptr = schema.pointer_checked(Some(schema_name))?;
    let array_ptr = array.pointer_checked(Some(array_name))?;
    // SAFETY: the capsules are named as the Arrow PyCapsule interface names them, so they hold an
    // `ArrowSchema` and an `ArrowArray`. The array is moved out (its release callback is left empty
    // in the capsule, so the capsule's destructor does not release it twice); the schema is borrowed
    // while its capsule is alive.
    let data = unsafe {
        let ffi_array = FFI_ArrowArray::from_raw(array_ptr.cast::<FFI_ArrowArray>().as_ptr());
        let ffi_schema = &*schema_ptr.cast::<FFI_ArrowSchema>().as_ptr();
        from_ffi(ffi_array, ffi_schema)
    }
    .map_err(|err| PyValueError::new_err(err.to_string()))?;
    Ok(make_array(data))
}

/// The rows of a string or large_string array (null rows are None).
pub fn string_rows(array: &ArrayRef) -> PyResult<Vec<Option<&str>>> {
    if let Some(strings) = array.as_any().downcast_ref::<LargeStringArray>() {
        Ok(strings.iter().collect())
    } else if let Some(strings) = array.as_any().downcast_ref::<StringArray>() {
        Ok(strings.iter().collect())
    } else {
        Err(PyTypeError::new_err(format!(
            "expected a string array, got {}",
            array.data_type()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};

    #[test]
    fn columns_make_a_batch_of_their_length() {
        let batch = ArrowBatch::from_columns(vec![
            ("line", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            (
                "text",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ])
        .expect("two equal columns");
        assert_eq!(batch.__len__(), 2);
    }

    #[test]
    fn columns_of_unequal_length_are_refused() {
        let result = ArrowBatch::from_columns(vec![
            ("line", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("text", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ]);
        assert!(result.is_err());
    }
}
