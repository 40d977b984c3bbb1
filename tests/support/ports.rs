//! Ports for daemons that must be told theirs before they bind it (nginx, redis-server, the
//! proxies, `--metrics`), and ports where nothing listens.
//!
//! A port probed with `bind(127.0.0.1:0)` and released is free only until someone else binds it:
//! the tests run in parallel, and a second probe (or any server binding port 0, or an outgoing
//! connection) may be handed the same port before the first daemon binds it. Two nginx started
//! together then share a port, and one's readiness probe lands in the other's error log.
//!
//! So leases come from below the kernel's ephemeral range, which neither `bind(…:0)` nor
//! `connect` ever picks, and a counter shared by the whole test process hands each out once. A
//! port something else on the machine holds is skipped: it is bound once to see that it is free.

use std::net::TcpListener;
use std::sync::Mutex;

/// The lowest port leased; below it sit the well-known ports of services a machine may run.
const FLOOR: u16 = 10_000;

/// The next port to try, or `None` before the first lease.
static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// A port on 127.0.0.1 that nothing listened on when leased and that no other lease of this test
/// process gets; nothing in this process binds it unless told to.
pub fn lease() -> u16 {
    let mut next = NEXT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ceiling = ephemeral_low();
    // Another test process (a second `cargo test`) starts elsewhere in the range.
    let mut port = next.unwrap_or_else(|| FLOOR + (std::process::id() % 97) as u16 * 128);
    for _ in FLOOR..ceiling {
        if port >= ceiling {
            port = FLOOR;
        }
        let candidate = port;
        port += 1;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return candidate;
        }
    }
    panic!("no free port in {FLOOR}..{ceiling}");
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`); leases stay
/// below it.
fn ephemeral_low() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = range.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(32_768);
    assert!(low > FLOOR + 1_000, "the ephemeral range starts at {low}: too low to lease ports below it");
    low
}
