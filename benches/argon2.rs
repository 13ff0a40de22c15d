//! What argon2id (shopbox's parameters) allows on this machine: password verifications
//! per second with one thread per core, the ceiling for logins/s. Uses the binary's
//! allocator. Run: `cargo bench --bench argon2 [-- SECONDS]`.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let stored = shopbox::core::password::hash_now("bench password").expect("hash");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let done: u64 = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0u64;
                    while Instant::now() < until {
                        assert!(shopbox::core::password::verify_now(
                            "bench password",
                            &stored
                        ));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("thread")).sum()
    });
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "argon2id verifications: {done} in {elapsed:.1} s on {cores} threads = {:.1}/s ({:.1} ms each)",
        done as f64 / elapsed,
        elapsed * 1000.0 * cores as f64 / done as f64
    );
}
