//! Any text as a YAML manifest: accepted, or refused with problems; never a panic, a stack
//! overflow or a hang (the size and nesting limits come first). See
//! `remotemedia_fuzz::manifest_round_trip`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_runtime_core::manifest::Format;

fuzz_target!(|data: &[u8]| remotemedia_fuzz::manifest_round_trip(data, Format::Yaml));
