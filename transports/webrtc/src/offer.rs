//! What a WHIP offer must hold before a session is spent on it, checked on the text so a
//! refusal can name the line: SDP at all, an audio section, and Opus in it.

/// Why an offer is refused (HTTP 400, with this text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The body is empty.
    #[error("the offer is empty: POST an SDP offer (RFC 9725 section 4.2)")]
    Empty,
    /// The body is not UTF-8 text.
    #[error("the offer is not UTF-8 text")]
    NotText,
    /// The first line is not `v=0`.
    #[error("the offer is not SDP: line 1 is {found:?}, SDP starts with \"v=0\"")]
    NotSdp {
        /// What line 1 holds (at most 40 characters).
        found: String,
    },
    /// No `m=audio` section.
    #[error("the offer has no audio section (m=audio): nothing to stream into the pipeline")]
    NoAudio,
    /// The audio section offers no Opus.
    #[error("the audio section (line {line}) offers no Opus (a=rtpmap:<pt> opus/48000/2)")]
    NoOpus {
        /// Line of the `m=audio`.
        line: usize,
    },
    /// str0m could not parse it or could not answer it.
    #[error("the offer was not accepted: {0}")]
    Rejected(String),
}

/// Checks `body`; returns the offer text.
///
/// # Errors
///
/// The first [`OfferError`] found.
pub fn check(body: &[u8]) -> Result<&str, OfferError> {
    let text = std::str::from_utf8(body).map_err(|_| OfferError::NotText)?;
    let mut lines = text.lines().map(str::trim_end).enumerate();
    let Some((_, first)) = lines.by_ref().find(|(_, l)| !l.is_empty()) else {
        return Err(OfferError::Empty);
    };
    if first != "v=0" {
        return Err(OfferError::NotSdp {
            found: first.chars().take(40).collect(),
        });
    }
    let mut audio_line = None;
    let mut opus_in_audio = false;
    let mut section = "";
    for (index, line) in lines {
        if let Some(media) = line.strip_prefix("m=") {
            section = media.split(' ').next().unwrap_or("");
            if section == "audio" && audio_line.is_none() {
                audio_line = Some(index + 1);
            }
        } else if section == "audio"
            && audio_line.is_some()
            && line.starts_with("a=rtpmap:")
            && line.to_ascii_lowercase().contains(" opus/48000")
        {
            opus_in_audio = true;
        }
    }
    match audio_line {
        None => Err(OfferError::NoAudio),
        Some(line) if !opus_in_audio => Err(OfferError::NoOpus { line }),
        Some(_) => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER_LIKE: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:0 PCMU/8000\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn a_browser_like_offer_passes_with_or_without_a_data_channel() {
        assert_eq!(check(BROWSER_LIKE.as_bytes()), Ok(BROWSER_LIKE));
        let no_channel = BROWSER_LIKE.split("m=application").next().unwrap();
        assert_eq!(check(no_channel.as_bytes()), Ok(no_channel));
    }

    #[test]
    fn each_refusal_names_what_is_missing() {
        assert_eq!(check(b""), Err(OfferError::Empty));
        assert_eq!(check(b"\r\n\r\n"), Err(OfferError::Empty));
        assert_eq!(check(&[0xff, 0xfe]), Err(OfferError::NotText));
        assert_eq!(
            check(b"{\"type\":\"offer\"}"),
            Err(OfferError::NotSdp {
                found: "{\"type\":\"offer\"}".to_owned()
            })
        );
        let video_only = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(check(video_only.as_bytes()), Err(OfferError::NoAudio));
        let pcmu_only = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let err = check(pcmu_only.as_bytes()).unwrap_err();
        assert_eq!(err, OfferError::NoOpus { line: 3 });
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn opus_only_counts_inside_the_audio_section() {
        let misplaced = "v=0\r\nm=video 9 RTP 111\r\na=rtpmap:111 opus/48000/2\r\n\
            m=audio 9 RTP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(
            check(misplaced.as_bytes()),
            Err(OfferError::NoOpus { line: 4 })
        );
    }
}
