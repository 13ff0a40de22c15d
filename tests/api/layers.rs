//! The layers of `src/` depend one way: `scripts/modgraph.py` finds no import cycle among
//! the top-level modules, no lower layer (`core`, `db`, `http`) naming a domain, and no
//! domain naming one above it in `DOMAINS`.

use std::path::Path;
use std::process::Command;

/// The domains, lowest first: each may use the stores of those before it.
const DOMAINS: &str = "mail,account,product,cart,shipping,payment,order,review,checkout";

#[test]
fn modules_form_no_cycle_and_no_upward_edge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/modgraph.py");
    let run = Command::new("python3")
        .arg(&script)
        .args(["--order", DOMAINS])
        .arg(root.join("src"))
        .output();
    let out = match run {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "modgraph.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            eprintln!("skipped: python3 cannot run here ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end()
            .ends_with("0 modules in cycles, 0 upward edges"),
        "the module graph has cycles or upward edges:\n{text}"
    );
}
