//! The byte format of messages on the pod link (iceoryx2 `[u8]` payloads), shared with the
//! Python package, which decodes it with `struct` and `numpy.frombuffer`.
//!
//! All integers are little-endian. A message is a 16-byte header and a body:
//!
//! ```text
//! header  magic "RM" | version u8 (=2) | kind u8 | flags u16 (=0) | reserved u16 (=0) | session u64
//! body    by kind:
//!   Open        manifest-or-empty: str32 (empty: the pipeline the worker serves)
//!   Input       item
//!   EndInput    -
//!   Close       -
//!   Credit      count: u32   (either way: the sender of it took `count` more of the
//!               session's items, so its peer may send that many more; see ipc::link)
//!   Describe    -   (client -> worker, on the control pipe: which node types do you run?)
//!   Opened      manifest: str32 (JSON of the pipeline the session runs)
//!   Output      node: str16, item
//!   Error       node: u8 present + str16 (absent: the session itself failed),
//!               sequence: u8 present + u64, message: str32
//!   Closed      ending (see [`ending`]: completed, aborted with a reason, or refused
//!               with a typed refusal)
//!   Done        -   (a node process -> its host: finished with the last input)
//!   Catalog     catalog: str32 (worker -> client, the answer to Describe: the node catalog's
//!               JSON, see nodes::NodeCatalog)
//! item    sequence: u8 present + u64 | metadata: u32 count, (key str16, value str32)* | data
//! data    tag u8, then
//!   1 Audio   sample_rate u32 | channels u16 | stream_id: u8 present + str16 |
//!             timestamp_us: u8 present + u64 | count u32 | pad to a multiple of 4 bytes from
//!             the message start | count f32 samples (interleaved)
//!   2 Text    str32 (UTF-8)
//!   3 Json    str32 (UTF-8 JSON text; any JSON value, so Json never degrades to Text)
//!   4 Binary  u32 length | bytes
//!   5 Tensor  dtype str16 | ndim u8 | ndim x u64 dims | u32 length | bytes
//! str16 / str32: u16 / u32 byte length, then UTF-8
//! ```
//!
//! Decoding never panics and never reserves memory a message's length does not back: a
//! short, malformed or unknown message is a [`DecodeError`] naming the field and its byte
//! offset.
//!
//! Version 2 typed `Closed` (version 1 carried "completed" or a refusal as JSON in a string)
//! and the session-level `Error` (version 1 used an empty node id).

use std::collections::BTreeMap;
use std::fmt;

use crate::data::{AudioBuffer, DType, RuntimeData, TensorData, TransportData};

mod ending;

pub use ending::{Ending, Refusal};

/// First two bytes of every message.
pub const MAGIC: [u8; 2] = *b"RM";
/// Format version this code reads and writes.
pub const VERSION: u8 = 2;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 16;

/// What a message says.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Client → worker: open `session`, running the worker's pipeline or, when `manifest` is
    /// non-empty, that manifest (if the worker allows client manifests).
    Open {
        /// Manifest text (JSON or YAML), or empty.
        manifest: String,
    },
    /// Client → worker: one input item.
    Input(TransportData),
    /// Client → worker: no more input; flush and finish.
    EndInput,
    /// Client → worker: drop the session now.
    Close,
    /// Either way: the sender took `count` more of this session's items (inputs in the
    /// worker, outputs in the client), so its peer may send that many more. Sessions share
    /// one pipe per client, and these credits keep one slow session from filling it.
    Credit {
        /// How many items were taken.
        count: u32,
    },
    /// Client → worker (on the control pipe): which node types the worker runs. Answered with
    /// [`Message::Catalog`] under the same session id, which opens no session.
    Describe,
    /// Worker → client: the session is open.
    Opened {
        /// JSON of the manifest the session runs, so a client that asked for the worker's
        /// pipeline learns what it is.
        manifest: String,
    },
    /// Worker → client: an output item and the node that produced it.
    Output {
        /// Producing node id.
        node: String,
        /// The item.
        item: TransportData,
    },
    /// Worker → client: a node failed on one item, or the session could not take one; the
    /// session goes on.
    Error {
        /// The failing node id; `None` when the session itself failed on the item (an
        /// undecodable or invalid input).
        node: Option<String>,
        /// Sequence number of the input being processed, when known.
        sequence: Option<u64>,
        /// What went wrong.
        message: String,
    },
    /// Worker → client (and node process → its host): the session ended, or never opened.
    Closed(Ending),
    /// Node process → its host: every output of the last `Input` (or of `EndInput`) has been
    /// sent, so the host can tie them to that input.
    Done,
    /// Worker → client: the answer to [`Message::Describe`].
    Catalog {
        /// JSON of the worker's [`NodeCatalog`](crate::nodes::NodeCatalog).
        catalog: String,
    },
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Self::Open { .. } => 1,
            Self::Input(_) => 2,
            Self::EndInput => 3,
            Self::Close => 4,
            Self::Credit { .. } => 5,
            Self::Describe => 6,
            Self::Opened { .. } => 16,
            Self::Output { .. } => 17,
            Self::Error { .. } => 18,
            Self::Closed(_) => 19,
            Self::Done => 20,
            Self::Catalog { .. } => 21,
        }
    }
}

/// A message with the session it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Session id, chosen by the client, unique per link.
    pub session: u64,
    /// The message.
    pub message: Message,
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// The field being read.
    pub field: &'static str,
    /// What was wrong.
    pub problem: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.field, self.offset, self.problem
        )
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or byte field is longer than its length prefix can say.
    #[error("{field} is {len} bytes, more than the format's {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The largest length the format holds.
        max: usize,
    },
    /// The message is larger than the pod link carries.
    #[error(
        "the item is {len} bytes encoded, more than the pod link's limit of {max} bytes \
         (send audio in shorter frames)"
    )]
    TooLarge {
        /// Its encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Encodes `envelope` into a new buffer.
///
/// # Errors
/// [`EncodeError::TooLong`] when a field exceeds its length prefix.
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer {
        buf: Vec::with_capacity(encoded_len_hint(&envelope.message)),
    };
    w.buf.extend_from_slice(&MAGIC);
    w.buf.push(VERSION);
    w.buf.push(envelope.message.kind());
    w.buf.extend_from_slice(&0u16.to_le_bytes());
    w.buf.extend_from_slice(&0u16.to_le_bytes());
    w.buf.extend_from_slice(&envelope.session.to_le_bytes());
    match &envelope.message {
        Message::Open { manifest } | Message::Opened { manifest } => {
            w.str32("manifest", manifest)?;
        }
        Message::Input(item) => w.item(item)?,
        Message::EndInput | Message::Close | Message::Done | Message::Describe => {}
        Message::Catalog { catalog } => w.str32("catalog", catalog)?,
        Message::Output { node, item } => {
            w.str16("node", node)?;
            w.item(item)?;
        }
        Message::Error {
            node,
            sequence,
            message,
        } => {
            w.opt_str16("node", node.as_deref())?;
            w.opt_u64(*sequence);
            w.str32("message", message)?;
        }
        Message::Closed(ending) => w.ending(ending)?,
        Message::Credit { count } => w.buf.extend_from_slice(&count.to_le_bytes()),
    }
    Ok(w.buf)
}

/// A capacity guess that avoids regrowing for audio, the common large payload.
fn encoded_len_hint(message: &Message) -> usize {
    let item = match message {
        Message::Input(item) | Message::Output { item, .. } => Some(item),
        _ => None,
    };
    let payload = item.map_or(0, |i| match &i.data {
        RuntimeData::Audio(a) => a.samples.len() * 4,
        RuntimeData::Binary(b) => b.len(),
        RuntimeData::Tensor(t) => t.bytes.len(),
        RuntimeData::Text(t) => t.len(),
        RuntimeData::Json(_) => 256,
    });
    HEADER_LEN + 128 + payload
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn len_u16(field: &'static str, len: usize) -> Result<u16, EncodeError> {
        u16::try_from(len).map_err(|_| EncodeError::TooLong {
            field,
            len,
            max: u16::MAX as usize,
        })
    }

    fn len_u32(field: &'static str, len: usize) -> Result<u32, EncodeError> {
        u32::try_from(len).map_err(|_| EncodeError::TooLong {
            field,
            len,
            max: u32::MAX as usize,
        })
    }

    fn str16(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        self.buf
            .extend_from_slice(&Self::len_u16(field, s.len())?.to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn str32(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        self.bytes32(field, s.as_bytes())
    }

    fn bytes32(&mut self, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
        self.buf
            .extend_from_slice(&Self::len_u32(field, b.len())?.to_le_bytes());
        self.buf.extend_from_slice(b);
        Ok(())
    }

    fn opt_str16(&mut self, field: &'static str, value: Option<&str>) -> Result<(), EncodeError> {
        match value {
            Some(s) => {
                self.buf.push(1);
                self.str16(field, s)
            }
            None => {
                self.buf.push(0);
                Ok(())
            }
        }
    }

    fn opt_u64(&mut self, value: Option<u64>) {
        match value {
            Some(v) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            None => self.buf.push(0),
        }
    }

    fn item(&mut self, item: &TransportData) -> Result<(), EncodeError> {
        self.opt_u64(item.sequence);
        let count = Self::len_u32("metadata", item.metadata.len())?;
        self.buf.extend_from_slice(&count.to_le_bytes());
        for (k, v) in &item.metadata {
            self.str16("metadata key", k)?;
            self.str32("metadata value", v)?;
        }
        self.data(&item.data)
    }

    fn data(&mut self, data: &RuntimeData) -> Result<(), EncodeError> {
        match data {
            RuntimeData::Audio(a) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&a.sample_rate.to_le_bytes());
                self.buf.extend_from_slice(&a.channels.to_le_bytes());
                match &a.stream_id {
                    Some(id) => {
                        self.buf.push(1);
                        self.str16("stream_id", id)?;
                    }
                    None => self.buf.push(0),
                }
                match a.timestamp_us {
                    Some(t) => {
                        self.buf.push(1);
                        self.buf.extend_from_slice(&t.to_le_bytes());
                    }
                    None => self.buf.push(0),
                }
                let count = Self::len_u32("samples", a.samples.len())?;
                self.buf.extend_from_slice(&count.to_le_bytes());
                // Samples start 4-aligned, so a reader can view them in place as f32.
                let pad = (4 - self.buf.len() % 4) % 4;
                self.buf.extend(std::iter::repeat_n(0, pad));
                // Sized once and filled in place: the compiler turns this into a plain copy
                // on little-endian machines (pushing sample by sample did not).
                let start = self.buf.len();
                self.buf.resize(start + 4 * a.samples.len(), 0);
                for (out, s) in self.buf[start..].chunks_exact_mut(4).zip(a.samples.iter()) {
                    out.copy_from_slice(&s.to_le_bytes());
                }
            }
            RuntimeData::Text(t) => {
                self.buf.push(2);
                self.str32("text", t)?;
            }
            RuntimeData::Json(v) => {
                self.buf.push(3);
                self.str32("json", &v.to_string())?;
            }
            RuntimeData::Binary(b) => {
                self.buf.push(4);
                self.bytes32("binary", b)?;
            }
            RuntimeData::Tensor(t) => {
                self.buf.push(5);
                self.str16("dtype", dtype_name(t.dtype))?;
                let ndim = u8::try_from(t.shape.len()).map_err(|_| EncodeError::TooLong {
                    field: "shape",
                    len: t.shape.len(),
                    max: 255,
                })?;
                self.buf.push(ndim);
                for d in &t.shape {
                    self.buf.extend_from_slice(&(*d as u64).to_le_bytes());
                }
                self.bytes32("tensor bytes", &t.bytes)?;
            }
        }
        Ok(())
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::F64 => "f64",
        DType::I8 => "i8",
        DType::I16 => "i16",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::U8 => "u8",
    }
}

fn dtype_from_name(name: &str) -> Option<DType> {
    Some(match name {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "f64" => DType::F64,
        "i8" => DType::I8,
        "i16" => DType::I16,
        "i32" => DType::I32,
        "i64" => DType::I64,
        "u8" => DType::U8,
        _ => return None,
    })
}

/// The session a message belongs to, read from its header alone: what a receiver routes
/// by, even when the rest of the message does not decode.
///
/// # Errors
/// A [`DecodeError`] when the header is short or not this format's.
pub fn session_of(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(2, "magic")?;
    if magic != MAGIC {
        return Err(r.error_at(0, "magic", format!("expected \"RM\", found {magic:02x?}")));
    }
    r.pos = 8;
    r.u64("session")
}

/// Decodes one message.
///
/// # Errors
/// A [`DecodeError`] naming the field and byte offset of the first problem.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(2, "magic")?;
    if magic != MAGIC {
        return Err(r.error_at(0, "magic", format!("expected \"RM\", found {magic:02x?}")));
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.error_at(2, "version", format!("version {version} is not {VERSION}")));
    }
    let kind = r.u8("kind")?;
    let _flags = r.u16("flags")?;
    let _reserved = r.u16("reserved")?;
    let session = r.u64("session")?;
    let message = match kind {
        1 => Message::Open {
            manifest: r.str32("manifest")?,
        },
        2 => Message::Input(r.item()?),
        3 => Message::EndInput,
        4 => Message::Close,
        5 => Message::Credit {
            count: r.u32("count")?,
        },
        16 => Message::Opened {
            manifest: r.str32("manifest")?,
        },
        17 => Message::Output {
            node: r.str16("node")?,
            item: r.item()?,
        },
        18 => Message::Error {
            node: if r.flag("node")? {
                Some(r.str16("node")?)
            } else {
                None
            },
            sequence: r.opt_u64("sequence")?,
            message: r.str32("message")?,
        },
        19 => Message::Closed(r.ending()?),
        20 => Message::Done,
        6 => Message::Describe,
        21 => Message::Catalog {
            catalog: r.str32("catalog")?,
        },
        other => return Err(r.error_at(3, "kind", format!("unknown message kind {other}"))),
    };
    if r.pos != bytes.len() {
        return Err(r.error_at(
            r.pos,
            "end",
            format!("{} trailing bytes", bytes.len() - r.pos),
        ));
    }
    Ok(Envelope { session, message })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error_at(&self, offset: usize, field: &'static str, problem: String) -> DecodeError {
        DecodeError {
            offset,
            field,
            problem,
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                self.error_at(
                    self.pos,
                    field,
                    format!("needs {n} bytes, {} left", self.bytes.len() - self.pos),
                )
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error_at(
                at,
                field,
                format!("presence flag must be 0 or 1, is {other}"),
            )),
        }
    }

    fn utf8(&self, at: usize, field: &'static str, raw: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(raw.to_vec())
            .map_err(|e| self.error_at(at, field, format!("not UTF-8: {e}")))
    }

    fn str16(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u16(field)?);
        let at = self.pos;
        let raw = self.take(len, field)?;
        self.utf8(at, field, raw)
    }

    fn str32(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let raw = self.bytes32(field)?;
        let at = self.pos - raw.len();
        self.utf8(at, field, raw)
    }

    fn bytes32(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(if self.flag(field)? {
            Some(self.u64(field)?)
        } else {
            None
        })
    }

    fn item(&mut self) -> Result<TransportData, DecodeError> {
        let sequence = self.opt_u64("sequence")?;
        let count = self.u32("metadata")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..count {
            let key = self.str16("metadata key")?;
            let value = self.str32("metadata value")?;
            metadata.insert(key, value);
        }
        let data = self.data()?;
        Ok(TransportData {
            data,
            sequence,
            metadata,
        })
    }

    fn data(&mut self) -> Result<RuntimeData, DecodeError> {
        let tag_at = self.pos;
        Ok(match self.u8("data tag")? {
            1 => {
                let sample_rate = self.u32("sample_rate")?;
                let channels = self.u16("channels")?;
                let stream_id = if self.flag("stream_id")? {
                    Some(self.str16("stream_id")?)
                } else {
                    None
                };
                let timestamp_us = if self.flag("timestamp_us")? {
                    Some(self.u64("timestamp_us")?)
                } else {
                    None
                };
                let count = self.u32("samples")? as usize;
                let pad = (4 - self.pos % 4) % 4;
                self.take(pad, "samples padding")?;
                let bytes_len = count.checked_mul(4).ok_or_else(|| {
                    self.error_at(self.pos, "samples", format!("{count} samples overflow"))
                })?;
                let raw = self.take(bytes_len, "samples")?;
                // Filled in place, which compiles to a plain copy on little-endian machines,
                // then moved into the shared buffer (a memcpy). Collecting the mapped chunks
                // straight into an Arc went sample by sample: 4.5% of a worker's CPU under load
                // (docs/benchmarks.md, section 7).
                let mut decoded = vec![0.0f32; count];
                for (s, c) in decoded.iter_mut().zip(raw.chunks_exact(4)) {
                    *s = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                let samples: std::sync::Arc<[f32]> = decoded.into();
                let mut audio = AudioBuffer::new(samples, sample_rate, channels);
                audio.stream_id = stream_id;
                audio.timestamp_us = timestamp_us;
                RuntimeData::Audio(audio)
            }
            2 => RuntimeData::Text(self.str32("text")?),
            3 => {
                let at = self.pos + 4;
                let text = self.str32("json")?;
                RuntimeData::Json(
                    serde_json::from_str(&text)
                        .map_err(|e| self.error_at(at, "json", format!("not JSON: {e}")))?,
                )
            }
            4 => RuntimeData::Binary(self.bytes32("binary")?.into()),
            5 => {
                let at = self.pos;
                let name = self.str16("dtype")?;
                let dtype = dtype_from_name(&name)
                    .ok_or_else(|| self.error_at(at, "dtype", format!("unknown dtype {name:?}")))?;
                let ndim = self.u8("shape")?;
                let mut shape = Vec::with_capacity(usize::from(ndim));
                for _ in 0..ndim {
                    let at = self.pos;
                    let d = self.u64("shape")?;
                    shape.push(usize::try_from(d).map_err(|_| {
                        self.error_at(at, "shape", format!("dimension {d} does not fit"))
                    })?);
                }
                let at = self.pos;
                let tensor = TensorData {
                    bytes: self.bytes32("tensor bytes")?.into(),
                    shape,
                    dtype,
                };
                tensor
                    .check_format()
                    .map_err(|e| self.error_at(at, "tensor bytes", e))?;
                RuntimeData::Tensor(tensor)
            }
            other => {
                return Err(self.error_at(tag_at, "data tag", format!("unknown data tag {other}")));
            }
        })
    }
}

#[cfg(test)]
mod tests;
