//! [`Samples`]: the sample memory of an [`AudioBuffer`](super::AudioBuffer), owned by the
//! runtime or lent by its caller.
//!
//! Audio is the one payload large enough for copies to matter: a minute of 48 kHz stereo is
//! 23 MB. Inside the runtime it is shared (`Arc<[f32]>`), so fan-out does not copy. At the
//! edge a transport may also hand in memory it does not own, such as a Python numpy array,
//! through [`SampleSource`]: nodes read it in place and the owner is released when the last
//! item referring to it is dropped.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sample memory owned by someone else (a numpy array, a memory-mapped file), lent to the
/// runtime for as long as this value lives.
///
/// Implementations must return the same samples on every call, and the memory must not change
/// while the source is alive.
pub trait SampleSource: Send + Sync + 'static {
    /// The interleaved samples.
    fn samples(&self) -> &[f32];

    /// The source itself, so the transport that lent it can recognise it on the way out (and
    /// hand its caller the original object back instead of a copy).
    fn as_any(&self) -> &dyn Any;
}

/// Interleaved `f32` samples, cheap to clone: every clone refers to the same memory.
///
/// Dereferences to `[f32]`, so nodes read it like a slice.
#[derive(Clone)]
pub struct Samples(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Arc<[f32]>),
    Lent(Arc<dyn SampleSource>),
}

impl Samples {
    /// Samples lent by `source` (read in place, never copied by the runtime).
    #[must_use]
    pub fn lent(source: Arc<dyn SampleSource>) -> Self {
        Self(Repr::Lent(source))
    }

    /// The lending source, when these samples were lent rather than owned by the runtime.
    #[must_use]
    pub fn source(&self) -> Option<&Arc<dyn SampleSource>> {
        match &self.0 {
            Repr::Lent(source) => Some(source),
            Repr::Shared(_) => None,
        }
    }
}

impl Deref for Samples {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.0 {
            Repr::Shared(shared) => shared,
            Repr::Lent(source) => source.samples(),
        }
    }
}

impl AsRef<[f32]> for Samples {
    fn as_ref(&self) -> &[f32] {
        self
    }
}

impl From<Arc<[f32]>> for Samples {
    fn from(shared: Arc<[f32]>) -> Self {
        Self(Repr::Shared(shared))
    }
}

impl From<Vec<f32>> for Samples {
    fn from(samples: Vec<f32>) -> Self {
        Self(Repr::Shared(samples.into()))
    }
}

impl From<&[f32]> for Samples {
    fn from(samples: &[f32]) -> Self {
        Self(Repr::Shared(samples.into()))
    }
}

impl<const N: usize> From<[f32; N]> for Samples {
    fn from(samples: [f32; N]) -> Self {
        Self(Repr::Shared(Arc::new(samples)))
    }
}

impl PartialEq for Samples {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for Samples {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Samples {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<f32>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Borrowed(Vec<f32>);

    impl SampleSource for Borrowed {
        fn samples(&self) -> &[f32] {
            &self.0
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn lent_samples_are_read_in_place_and_compare_by_value() {
        let source = Arc::new(Borrowed(vec![0.25, -0.5]));
        let lent = Samples::lent(source.clone());
        assert_eq!(lent.as_ptr(), source.0.as_ptr(), "no copy was made");
        assert_eq!(lent, Samples::from(vec![0.25, -0.5]));
        let back = lent
            .source()
            .expect("lent")
            .as_any()
            .downcast_ref::<Borrowed>();
        assert!(back.is_some(), "the lender recognises its own source");
        assert!(Samples::from([1.0]).source().is_none());
    }

    #[test]
    fn serializes_as_a_plain_list() {
        let samples = Samples::from(vec![0.5, 1.0]);
        let json = serde_json::to_string(&samples).unwrap();
        assert_eq!(json, "[0.5,1.0]");
        let back: Samples = serde_json::from_str(&json).unwrap();
        assert_eq!(back, samples);
    }
}
