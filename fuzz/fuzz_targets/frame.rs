//! Bytes as `dirk::__fuzz::frame` reads them: see `runtime/__fuzz.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| dirk::__fuzz::frame(bytes));
