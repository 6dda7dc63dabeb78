//! Opus both ways, with libopus (`opus` 0.3.1 on Debian's libopus 1.3.1).
//!
//! * [`Decoding`]: RTP payloads from the client to 48 kHz float frames; a gap in the sequence
//!   numbers is concealed (libopus packet-loss concealment) so the pipeline's clock does not
//!   jump.
//! * [`Encoding`]: a pipeline's audio output (any length, at a rate Opus takes) cut into 20 ms
//!   packets, with the RTP time of each at the 48 kHz clock Opus always uses on the wire.

use remotemedia_runtime_core::AudioBuffer;

/// The RTP clock of Opus (RFC 7587), whatever rate the audio is coded at.
pub const RTP_CLOCK_HZ: u32 = 48_000;
/// Rates the Opus encoder and decoder work at.
pub const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// Packet duration we send: what browsers send and expect (`minptime=10`, 20 ms default).
const PACKET_MS: u32 = 20;
/// The longest Opus packet is 120 ms: at 48 kHz stereo, the largest decode output.
const MAX_DECODED_SAMPLES: usize = 48 * 120 * 2;
/// An Opus packet for 20 ms of voice is ~80 bytes; libopus recommends 4000 as the ceiling.
const MAX_PACKET_BYTES: usize = 4_000;

/// A codec failure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// libopus refused the data or a setting.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A pipeline produced audio Opus cannot carry.
    #[error(
        "node '{node_id}' produced {sample_rate} Hz audio with {channels} channel(s); the WebRTC \
         transport sends Opus, which takes 8, 12, 16, 24 or 48 kHz with 1 or 2 channels (add a \
         FastResampleNode / ChannelMixerNode before it)"
    )]
    UnsupportedFormat {
        /// The node whose output it was.
        node_id: String,
        /// Its rate.
        sample_rate: u32,
        /// Its channels.
        channels: u16,
    },
}

/// Decodes one client's Opus stream to mono 48 kHz audio.
pub struct Decoding {
    decoder: opus::Decoder,
    /// Sequence number of the last packet decoded, to detect losses.
    last_seq: Option<u64>,
    scratch: Vec<f32>,
}

impl std::fmt::Debug for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoding")
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

/// Lost packets concealed at most per gap: beyond this a gap is a pause (the client muted,
/// or the network dropped out), not something to paper over.
const MAX_CONCEALED_PACKETS: u64 = 5;

impl Decoding {
    /// A decoder for mono 48 kHz output (browsers send a microphone: mono content in a
    /// stereo-capable Opus stream, which libopus downmixes).
    ///
    /// # Errors
    ///
    /// When libopus cannot create a decoder.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: opus::Decoder::new(RTP_CLOCK_HZ, opus::Channels::Mono)?,
            last_seq: None,
            scratch: vec![0.0; MAX_DECODED_SAMPLES],
        })
    }

    /// Decodes the packet with RTP sequence number `seq` (extended to 64 bits): first the
    /// concealment of up to 5 packets lost before it, then the packet itself.
    /// Late or repeated packets (sequence not after the last) are skipped: empty output.
    ///
    /// # Errors
    ///
    /// When libopus cannot decode the packet (corrupt data); the decoder stays usable.
    pub fn decode(&mut self, seq: u64, payload: &[u8]) -> Result<Vec<f32>, CodecError> {
        let lost = match self.last_seq {
            Some(last) if seq <= last => return Ok(Vec::new()),
            Some(last) => (seq - last - 1).min(MAX_CONCEALED_PACKETS),
            None => 0,
        };
        self.last_seq = Some(seq);
        let mut out = Vec::new();
        if lost > 0 {
            // Concealment fills the buffer it is given: give it one packet's worth (the
            // duration of the last packet) per packet lost.
            let per_packet = (self.decoder.get_last_packet_duration()? as usize).max(1);
            for _ in 0..lost {
                let buf = &mut self.scratch[..per_packet];
                let n = self.decoder.decode_float(&[], buf, false)?;
                out.extend_from_slice(&self.scratch[..n]);
            }
        }
        let n = self
            .decoder
            .decode_float(payload, &mut self.scratch, false)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(out)
    }
}

/// One encoded packet and its RTP time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The Opus payload.
    pub payload: Vec<u8>,
    /// RTP time of its first sample at [`RTP_CLOCK_HZ`].
    pub rtp_time: u64,
}

/// Encodes a pipeline's audio output stream into 20 ms Opus packets.
///
/// The format is fixed by the first audio; if a later buffer differs (another node's output,
/// a rate change), the encoder is rebuilt for it and timing continues.
pub struct Encoding {
    encoder: Option<(opus::Encoder, u32, u16)>,
    /// Samples waiting to fill a packet (interleaved).
    pending: Vec<f32>,
    /// RTP time of the next packet.
    next_rtp_time: u64,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoding")
            .field("format", &self.encoder.as_ref().map(|(_, r, c)| (r, c)))
            .field("pending", &self.pending.len())
            .field("next_rtp_time", &self.next_rtp_time)
            .finish()
    }
}

impl Default for Encoding {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoding {
    /// An encoder that takes its format from the first audio it is given.
    #[must_use]
    pub fn new() -> Self {
        Self {
            encoder: None,
            pending: Vec::new(),
            next_rtp_time: 0,
        }
    }

    /// Adds `audio` (from `node_id`) and returns every whole 20 ms packet now available; the
    /// remainder waits for more audio.
    ///
    /// # Errors
    ///
    /// [`CodecError::UnsupportedFormat`] for a rate or channel count Opus cannot carry (the
    /// audio is dropped, the encoder keeps its state), or a libopus failure.
    pub fn push(&mut self, node_id: &str, audio: &AudioBuffer) -> Result<Vec<Packet>, CodecError> {
        let (rate, channels) = (audio.sample_rate, audio.channels);
        if !OPUS_RATES.contains(&rate) || !(1..=2).contains(&channels) {
            return Err(CodecError::UnsupportedFormat {
                node_id: node_id.to_owned(),
                sample_rate: rate,
                channels,
            });
        }
        if self
            .encoder
            .as_ref()
            .is_none_or(|(_, r, c)| (*r, *c) != (rate, channels))
        {
            self.encoder = Some((new_encoder(rate, channels)?, rate, channels));
            self.pending.clear();
        }
        self.pending.extend_from_slice(&audio.samples);
        let Some((encoder, _, _)) = self.encoder.as_mut() else {
            unreachable!("set just above");
        };
        let packet_samples = (rate * PACKET_MS / 1000) as usize * usize::from(channels);
        let ticks = u64::from(RTP_CLOCK_HZ * PACKET_MS / 1000);
        let mut packets = Vec::with_capacity(self.pending.len() / packet_samples);
        let mut consumed = 0;
        let mut out = [0u8; MAX_PACKET_BYTES];
        while self.pending.len() - consumed >= packet_samples {
            let frame = &self.pending[consumed..consumed + packet_samples];
            let n = encoder.encode_float(frame, &mut out)?;
            packets.push(Packet {
                payload: out[..n].to_vec(),
                rtp_time: self.next_rtp_time,
            });
            self.next_rtp_time += ticks;
            consumed += packet_samples;
        }
        self.pending.drain(..consumed);
        Ok(packets)
    }
}

fn new_encoder(rate: u32, channels: u16) -> Result<opus::Encoder, CodecError> {
    let layout = if channels == 1 {
        opus::Channels::Mono
    } else {
        opus::Channels::Stereo
    };
    let mut encoder = opus::Encoder::new(rate, layout, opus::Application::Voip)?;
    // Browsers' default for voice, and what they ask for in fmtp (useinbandfec=1).
    encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
    encoder.set_inband_fec(true)?;
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, rate: u32) -> Vec<f32> {
        (0..frames)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn audio_survives_an_encode_decode_round_trip() {
        let mut enc = Encoding::new();
        let input = tone(48_000, 48_000);
        // Odd-sized pushes: packets are cut at 20 ms regardless.
        let mut packets = Vec::new();
        for chunk in input.chunks(700) {
            let audio = AudioBuffer::new(chunk.to_vec(), 48_000, 1);
            packets.extend(enc.push("src", &audio).unwrap());
        }
        assert_eq!(packets.len(), 50, "1 s is fifty 20 ms packets");
        assert!(
            packets
                .windows(2)
                .all(|w| w[1].rtp_time - w[0].rtp_time == 960)
        );
        let mut dec = Decoding::new().unwrap();
        let mut decoded = Vec::new();
        for (seq, p) in packets.iter().enumerate() {
            decoded.extend(dec.decode(seq as u64, &p.payload).unwrap());
        }
        assert_eq!(decoded.len(), 48_000);
        // Skip the codec's start-up; the tone's level comes through (0.5 peak = 0.354 RMS).
        let level = rms(&decoded[4_800..]);
        assert!((level - 0.354).abs() < 0.05, "rms {level}");
    }

    #[test]
    fn sixteen_khz_output_is_sent_at_the_48_khz_rtp_clock() {
        let mut enc = Encoding::new();
        let packets = enc
            .push("tts", &AudioBuffer::new(tone(16_000, 16_000), 16_000, 1))
            .unwrap();
        assert_eq!(packets.len(), 50);
        assert_eq!(packets[1].rtp_time, 960);
    }

    #[test]
    fn a_rate_opus_cannot_take_is_refused_with_the_node_named() {
        let mut enc = Encoding::new();
        let err = enc
            .push("resampler", &AudioBuffer::new(vec![0.0; 441], 44_100, 1))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("'resampler'") && text.contains("44100 Hz"),
            "{text}"
        );
        // Still usable afterwards.
        assert_eq!(
            enc.push("ok", &AudioBuffer::new(vec![0.0; 960], 48_000, 1))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn lost_packets_are_concealed_and_late_ones_skipped() {
        let mut enc = Encoding::new();
        let packets = enc
            .push("src", &AudioBuffer::new(tone(9_600, 48_000), 48_000, 1))
            .unwrap();
        let mut dec = Decoding::new().unwrap();
        assert_eq!(dec.decode(0, &packets[0].payload).unwrap().len(), 960);
        // Packets 1 and 2 lost: concealed, so 3 packets' worth come out with packet 3.
        assert_eq!(dec.decode(3, &packets[3].payload).unwrap().len(), 3 * 960);
        // Packet 2 arriving late is skipped.
        assert!(dec.decode(2, &packets[2].payload).unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_packet_is_an_error_and_the_decoder_goes_on() {
        let mut enc = Encoding::new();
        let packets = enc
            .push("src", &AudioBuffer::new(tone(1_920, 48_000), 48_000, 1))
            .unwrap();
        let mut dec = Decoding::new().unwrap();
        // A TOC byte announcing a code-3 packet with zero frames: invalid.
        assert!(dec.decode(0, &[0x03, 0x00]).is_err());
        assert_eq!(dec.decode(1, &packets[1].payload).unwrap().len(), 960);
    }
}
