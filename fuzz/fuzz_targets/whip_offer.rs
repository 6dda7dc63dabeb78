//! Any bytes as the body of a WHIP POST: the offer check accepts an SDP offer with Opus audio
//! or refuses it with a reason, and what it accepts goes to str0m's SDP parser, as in the
//! server; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_webrtc::offer::check;
use str0m::change::SdpOffer;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = check(data) {
        let _ = SdpOffer::from_sdp_string(sdp);
    }
});
