//! Property tests for WHIP offers, what anyone who can reach the port can send: the offer
//! check and str0m's SDP parser behind it answer every body with an offer or a refusal, never
//! a panic. The `whip_offer` fuzz target pushes the same much further (`make fuzz`).

use proptest::prelude::*;
use remotemedia_webrtc::offer::check;
use str0m::change::SdpOffer;

/// Lines an SDP offer is made of, shuffled and mangled.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        Just("o=- 1 2 IN IP4 127.0.0.1".to_owned()),
        Just("s=-".to_owned()),
        Just("t=0 0".to_owned()),
        Just("a=group:BUNDLE 0 1".to_owned()),
        Just("m=audio 9 UDP/TLS/RTP/SAVPF 111".to_owned()),
        Just("m=application 9 UDP/DTLS/SCTP webrtc-datachannel".to_owned()),
        Just("a=rtpmap:111 opus/48000/2".to_owned()),
        Just("a=mid:0".to_owned()),
        Just("a=ice-ufrag:abcd".to_owned()),
        Just("a=ice-pwd:0123456789012345678901".to_owned()),
        Just("a=fingerprint:sha-256 00:11".to_owned()),
        Just("a=setup:actpass".to_owned()),
        Just("c=IN IP4 0.0.0.0".to_owned()),
        "[a-z]=[ -~]{0,40}",
        "[ -~]{0,60}",
    ]
}

fn answer(body: &[u8]) {
    if let Ok(text) = check(body) {
        // What the server does next with an offer that passed the check.
        let _ = SdpOffer::from_sdp_string(text);
    }
}

proptest! {
    #[test]
    fn any_body_is_an_offer_or_a_refusal(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        answer(&body);
    }

    #[test]
    fn sdp_shaped_bodies_are_offers_or_refusals(
        lines in prop::collection::vec(sdp_line(), 0..30),
        crlf in any::<bool>(),
    ) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        answer(body.as_bytes());
    }
}
