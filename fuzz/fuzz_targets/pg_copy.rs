#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mover_gateway::fuzzing::pg_copy(data));
