//! Python values <-> pipeline data.
//!
//! | Python                         | pipeline                         |
//! |--------------------------------|----------------------------------|
//! | `remotemedia.Audio`            | audio (samples lent, not copied) |
//! | `str`                          | text                             |
//! | `dict`, `list`                 | JSON                             |
//! | `bytes`, `bytearray`           | binary                           |
//! | `numpy.ndarray`                | tensor (any other array)         |
//!
//! Outputs come back as the same types (binary as `bytes`, tensors as read-only arrays).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use remotemedia_runtime_core::data::{DType, TensorData};
use remotemedia_runtime_core::{RuntimeData, TransportData};
use serde_json::Value;

use crate::audio::Audio;

/// JSON nested deeper than this is refused (a dict that contains itself would recurse forever).
const MAX_JSON_DEPTH: usize = 128;

/// One input item, with the caller's sequence number and metadata.
pub(crate) fn item_from_py(
    item: &Bound<'_, PyAny>,
    sequence: Option<u64>,
    metadata: Option<&Bound<'_, PyDict>>,
) -> PyResult<TransportData> {
    let mut data = TransportData::new(data_from_py(item)?);
    data.sequence = sequence;
    if let Some(metadata) = metadata {
        for (key, value) in metadata.iter() {
            let (Ok(key), Ok(value)) = (key.extract::<String>(), value.extract::<String>()) else {
                return Err(PyTypeError::new_err(format!(
                    "metadata must map str to str; {} -> {} is not",
                    key.repr()?,
                    value.repr()?
                )));
            };
            data.metadata.insert(key, value);
        }
    }
    Ok(data)
}

fn data_from_py(item: &Bound<'_, PyAny>) -> PyResult<RuntimeData> {
    if let Ok(audio) = item.cast::<Audio>() {
        return Ok(RuntimeData::Audio(audio.get().buffer.clone()));
    }
    if let Ok(text) = item.cast::<PyString>() {
        return Ok(RuntimeData::Text(text.to_str()?.to_owned()));
    }
    if item.cast::<PyDict>().is_ok() || item.cast::<PyList>().is_ok() {
        return json_from_py(item, "item").map(RuntimeData::Json);
    }
    if let Ok(bytes) = item.cast::<PyBytes>() {
        return Ok(RuntimeData::Binary(bytes.as_bytes().into()));
    }
    if let Ok(bytes) = item.cast::<PyByteArray>() {
        return Ok(RuntimeData::Binary(bytes.to_vec().into()));
    }
    if is_ndarray(item)? {
        return tensor_from_py(item).map(RuntimeData::Tensor);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {}: items are remotemedia.Audio, str, dict or list (JSON), bytes, or a numpy array (tensor)",
        item.get_type().name()?
    )))
}

fn is_ndarray(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static NDARRAY: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    let ndarray = NDARRAY.import(obj.py(), "numpy", "ndarray")?;
    obj.is_instance(ndarray)
}

/// numpy's dtype names (`arr.dtype.str`, little-endian) of the tensor element types.
const DTYPES: &[(&str, DType)] = &[
    ("<f4", DType::F32),
    ("<f2", DType::F16),
    ("<f8", DType::F64),
    ("|i1", DType::I8),
    ("<i2", DType::I16),
    ("<i4", DType::I32),
    ("<i8", DType::I64),
    ("|u1", DType::U8),
];

fn tensor_from_py(array: &Bound<'_, PyAny>) -> PyResult<TensorData> {
    let dtype_name: String = array.getattr("dtype")?.getattr("str")?.extract()?;
    let Some(&(_, dtype)) = DTYPES.iter().find(|(name, _)| *name == dtype_name) else {
        let supported: Vec<&str> = DTYPES.iter().map(|(n, _)| *n).collect();
        return Err(PyTypeError::new_err(format!(
            "a numpy array of dtype {dtype_name} cannot be a tensor; supported: {}",
            supported.join(", ")
        )));
    };
    let shape: Vec<usize> = array.getattr("shape")?.extract()?;
    // tobytes() gives C order whatever the array's strides are.
    let bytes = array.call_method0("tobytes")?;
    let bytes = bytes.cast::<PyBytes>()?;
    Ok(TensorData {
        bytes: bytes.as_bytes().into(),
        shape,
        dtype,
    })
}

fn tensor_to_py<'py>(py: Python<'py>, tensor: &TensorData) -> PyResult<Bound<'py, PyAny>> {
    let name = DTYPES
        .iter()
        .find(|(_, d)| *d == tensor.dtype)
        .map_or("<f4", |(n, _)| *n);
    let numpy = py.import("numpy")?;
    let bytes = PyBytes::new(py, &tensor.bytes);
    // frombuffer over immutable bytes: a read-only array that shares the bytes object.
    let flat = numpy.call_method1("frombuffer", (bytes, name))?;
    flat.call_method1("reshape", (PyTuple::new(py, &tensor.shape)?,))
}

/// Pipeline data as the Python value of the table above.
pub(crate) fn data_to_py(py: Python<'_>, data: RuntimeData) -> PyResult<Bound<'_, PyAny>> {
    Ok(match data {
        RuntimeData::Audio(buffer) => Bound::new(py, Audio::from_buffer(py, buffer)?)?.into_any(),
        RuntimeData::Text(text) => PyString::new(py, &text).into_any(),
        RuntimeData::Json(value) => json_to_py(py, &value)?,
        RuntimeData::Binary(bytes) => PyBytes::new(py, &bytes).into_any(),
        RuntimeData::Tensor(tensor) => tensor_to_py(py, &tensor)?,
    })
}

/// A Python value as JSON; `path` names it in errors (`item['rows'][3]`).
pub(crate) fn json_from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    json_at(obj, &mut path.to_owned(), 0)
}

fn json_at(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    if depth > MAX_JSON_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{path}: nested deeper than {MAX_JSON_DEPTH} levels (does it contain itself?)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(u.into());
        }
        return Err(PyValueError::new_err(format!(
            "{path}: integer {} does not fit in 64 bits",
            obj.repr()?
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let value = f.value();
        return serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{path}: {value} is not valid JSON")));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{path}: JSON object keys must be str, not {} ({})",
                    key.get_type().name()?,
                    key.repr()?
                )));
            };
            let key = key.to_str()?;
            let len = path.len();
            path.push_str(&format!("['{}']", key.replace('\'', "\\'")));
            let value = json_at(&value, path, depth + 1)?;
            path.truncate(len);
            map.insert(key.to_owned(), value);
        }
        return Ok(Value::Object(map));
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let mut items = Vec::new();
        for (i, value) in obj.try_iter()?.enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            items.push(json_at(&value?, path, depth + 1)?);
            path.truncate(len);
        }
        return Ok(Value::Array(items));
    }
    Err(PyTypeError::new_err(format!(
        "{path}: a {} is not JSON (use dict, list, str, int, float, bool or None)",
        obj.get_type().name()?
    )))
}

/// JSON as plain Python values (dict, list, str, int, float, bool, None).
pub(crate) fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
