//! `remotemedia.Audio`: PCM samples in a numpy array, lent to the runtime without a copy.
//!
//! Going in, a C-contiguous float32 array (what `numpy.ascontiguousarray` returns, without
//! copying, for most arrays) becomes the audio's [`Samples`] as it is: nodes read the array's
//! memory in place. Coming out, audio the runtime made is shown to Python as a read-only array
//! over the runtime's buffer, and audio that was lent comes back as the very array that went in.
//! Either way a minute of audio crosses in constant time (docs/benchmarks.md section 9).

use std::any::Any;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use remotemedia_runtime_core::AudioBuffer;
use remotemedia_runtime_core::data::{SampleSource, Samples};

/// Interleaved float32 PCM with its sample rate and channel count.
#[pyclass(frozen, module = "remotemedia")]
pub(crate) struct Audio {
    pub(crate) buffer: AudioBuffer,
    /// The read-only array `samples` returns, over the same memory as `buffer`.
    array: Py<PyArray1<f32>>,
}

/// A numpy array's memory, lent to the runtime.
///
/// The array is a read-only view made by [`Audio::new`]: Python code holding that view cannot
/// write through it, and numpy will not move or free memory that a live array refers to.
/// Other views of the same memory (the caller's original array) can still be written; the
/// documented contract is that the caller does not do so while the item is in flight, as
/// with any zero-copy buffer API. Samples are plain `f32`, valid for every bit pattern.
struct NumpySamples {
    array: Py<PyArray1<f32>>,
    data: *const f32,
    len: usize,
}

// SAFETY: `data` points into the memory of `array`, which this struct keeps alive; it is only
// read. `Py<T>` is itself Send + Sync, and dropping it without the GIL defers the decref to
// pyo3's reference pool.
#[allow(unsafe_code)]
unsafe impl Send for NumpySamples {}
// SAFETY: as above; shared access only reads.
#[allow(unsafe_code)]
unsafe impl Sync for NumpySamples {}

impl SampleSource for NumpySamples {
    fn samples(&self) -> &[f32] {
        // SAFETY: `data` and `len` describe the C-contiguous float32 buffer of `array`
        // (checked in `Audio::new`), alive for as long as `self` is (see the struct docs).
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.data, self.len)
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Keeps runtime-owned samples alive for the numpy array that shows them to Python.
#[pyclass(frozen)]
struct SampleOwner {
    samples: Samples,
}

/// A read-only numpy array over `samples`, without copying them.
fn array_over(py: Python<'_>, samples: Samples) -> PyResult<Bound<'_, PyArray1<f32>>> {
    if let Some(lent) = samples
        .source()
        .and_then(|s| s.as_any().downcast_ref::<NumpySamples>())
    {
        return Ok(lent.array.bind(py).clone());
    }
    let owner = Bound::new(py, SampleOwner { samples })?;
    let view = numpy::ndarray::ArrayView1::from(&*owner.get().samples);
    // SAFETY: `owner` becomes the array's base object, so the samples outlive the array;
    // `Samples` never reallocates or changes its memory.
    #[allow(unsafe_code)]
    let array = unsafe { PyArray1::borrow_from_array(&view, owner.clone().into_any()) };
    array.readwrite().make_nonwriteable();
    Ok(array)
}

fn numpy_float32(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static FLOAT32: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FLOAT32.import(py, "numpy", "float32")
}

impl Audio {
    /// Audio that came out of a pipeline.
    pub(crate) fn from_buffer(py: Python<'_>, buffer: AudioBuffer) -> PyResult<Self> {
        let array = array_over(py, buffer.samples.clone())?.unbind();
        Ok(Self { buffer, array })
    }
}

fn positive<T: TryFrom<i64>>(value: i64, what: &str, max: &str) -> PyResult<T> {
    T::try_from(value)
        .ok()
        .filter(|_| value > 0)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "Audio {what} must be between 1 and {max}, got {value}"
            ))
        })
}

#[pymethods]
impl Audio {
    /// `samples`: float32 samples, interleaved (1-D) or one row per frame (2-D, frames x
    /// channels); other arrays and sequences are converted (a copy). `channels` defaults to the
    /// array's second dimension, or 1.
    #[new]
    #[pyo3(signature = (samples, sample_rate, channels = None, *, stream_id = None, timestamp_us = None))]
    fn new(
        py: Python<'_>,
        samples: &Bound<'_, PyAny>,
        sample_rate: i64,
        channels: Option<i64>,
        stream_id: Option<String>,
        timestamp_us: Option<u64>,
    ) -> PyResult<Self> {
        let sample_rate: u32 = positive(sample_rate, "sample_rate", "4294967295")?;
        let numpy = py.import("numpy")?;
        // No copy when `samples` already is a C-contiguous float32 array.
        let array = numpy.call_method1("ascontiguousarray", (samples, numpy_float32(py)?))?;
        let shape: Vec<usize> = array.getattr("shape")?.extract()?;
        let channels = match (shape.as_slice(), channels) {
            ([_], Some(c)) => positive::<u16>(c, "channels", "65535")?,
            ([_], None) => 1,
            ([_, per_frame], c) => {
                let per_frame = i64::try_from(*per_frame).unwrap_or(i64::MAX);
                if c.is_some_and(|c| c != per_frame) {
                    return Err(PyValueError::new_err(format!(
                        "Audio samples have {per_frame} columns (frames x channels) but channels={}",
                        c.unwrap_or_default()
                    )));
                }
                positive::<u16>(
                    per_frame,
                    "channels (the array's second dimension)",
                    "65535",
                )?
            }
            (dims, _) => {
                return Err(PyValueError::new_err(format!(
                    "Audio samples must be 1-D (interleaved) or 2-D (frames x channels), got shape {dims:?}"
                )));
            }
        };
        // A read-only view of the flat samples: what the runtime reads and `samples` returns.
        let flat = array.call_method1("reshape", (-1,))?.call_method0("view")?;
        flat.call_method1("setflags", (false,))?; // setflags(write=False)
        let flat = flat.cast_into::<PyArray1<f32>>()?;
        debug_assert!(flat.is_c_contiguous());
        let source = NumpySamples {
            data: flat.data().cast_const(),
            len: flat.len(),
            array: flat.clone().unbind(),
        };
        let buffer = AudioBuffer {
            samples: Samples::lent(Arc::new(source)),
            sample_rate,
            channels,
            stream_id,
            timestamp_us,
        };
        buffer.check_format().map_err(|e| {
            PyValueError::new_err(format!("Audio: {e} (samples has shape {shape:?})"))
        })?;
        Ok(Self {
            buffer,
            array: flat.unbind(),
        })
    }

    /// The samples, interleaved, as a read-only float32 array (no copy).
    #[getter]
    fn samples(&self, py: Python<'_>) -> Py<PyArray1<f32>> {
        self.array.clone_ref(py)
    }

    /// Frames per second.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.buffer.sample_rate
    }

    /// Samples per frame.
    #[getter]
    fn channels(&self) -> u16 {
        self.buffer.channels
    }

    /// Number of frames (samples per channel).
    #[getter]
    fn frames(&self) -> usize {
        self.buffer.frames()
    }

    /// Length in seconds.
    #[getter]
    fn duration(&self) -> f64 {
        self.buffer.frames() as f64 / f64::from(self.buffer.sample_rate)
    }

    /// Which logical stream (speaker, track) the audio belongs to.
    #[getter]
    fn stream_id(&self) -> Option<&str> {
        self.buffer.stream_id.as_deref()
    }

    /// Media time of the first frame, in microseconds.
    #[getter]
    fn timestamp_us(&self) -> Option<u64> {
        self.buffer.timestamp_us
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|other| other.get().buffer == self.buffer)
    }

    fn __repr__(&self) -> String {
        format!(
            "Audio(frames={}, sample_rate={}, channels={}, duration={:.3}s{}{})",
            self.buffer.frames(),
            self.buffer.sample_rate,
            self.buffer.channels,
            self.duration(),
            self.buffer
                .stream_id
                .as_ref()
                .map(|s| format!(", stream_id={s:?}"))
                .unwrap_or_default(),
            self.buffer
                .timestamp_us
                .map(|t| format!(", timestamp_us={t}"))
                .unwrap_or_default(),
        )
    }
}
