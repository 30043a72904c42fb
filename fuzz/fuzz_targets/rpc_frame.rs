//! Fuzzes the RPC framing on the server port: arbitrary bytes from a peer are read as length-prefixed
//! frames of RPC requests; each read gives a request, a clean end, or an error — never a panic and never
//! an allocation beyond the frame limit.
#![no_main]

use conclave::rpc::frame::read_frame;
use conclave::raft::messages::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let mut stream = data;
        for _ in 0..8 {
            match read_frame::<_, Request>(&mut stream).await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    });
});
