//! `kill -9` while writing and while starting never leaves a folder that fails to open,
//! and never loses a write that was acknowledged.
//!
//! The writer is this test binary itself, started again as a child (`crash_writer_child`),
//! so that it can use the storage layer directly and be killed at any instruction.

use crate::common;

use rand::Rng;
use serde::{Deserialize, Serialize};
use shopbox::db::{Db, KeyOrder, Record, Tx, TxResult, Unique};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHILD_DIR: &str = "SHOPBOX_CRASH_CHILD_DIR";
const TREE: &str = "meta";
const OFFSET: u64 = 1 << 40;

#[derive(Serialize, Deserialize)]
struct Entry {
    id: u64,
    text: String,
}

impl Record for Entry {
    const TREE: &'static str = TREE;
}

fn write_entry(tx: &Tx<'_>, e: &Entry) -> TxResult<()> {
    tx.put(OFFSET + e.id, e)?;
    tx.claim_unique(
        TREE,
        format!("entry:{}", e.text).as_bytes(),
        e.id,
        Unique::Slug,
    )?;
    tx.link(TREE, OFFSET * 2, e.id)
}

/// The child: writes entries as fast as it can, printing the id of each acknowledged one.
#[test]
#[ignore = "run only as the child of kill_9_during_writes_and_start_up"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let db = Db::open(Path::new(&dir), 4 * 1024 * 1024, &shopbox::schema()).expect("child open");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..16 {
            let db = db.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let id = db.next_id("entries").unwrap();
                    let entry = Entry {
                        id,
                        text: format!("entry number {id} {}", "x".repeat(200)),
                    };
                    db.write(|t| write_entry(t, &entry)).await.unwrap();
                    if tx.send(id).is_err() {
                        return;
                    }
                }
            });
        }
        use std::io::Write;
        let mut out = std::io::stdout();
        while let Some(id) = rx.recv().await {
            writeln!(out, "ack {id}").unwrap();
            out.flush().unwrap();
        }
    });
}

fn check_consistent(dir: &Path, acked: &[u64]) {
    let db = Db::open(dir, 4 * 1024 * 1024, &shopbox::schema())
        .unwrap_or_else(|e| panic!("reopen failed: {e}"));
    for id in acked {
        let entry: Entry = db
            .get(OFFSET + id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged entry {id} lost"));
        assert_eq!(entry.id, *id);
    }
    // Every index entry points at a record and every record has its index entries.
    let linked = db.children(TREE, OFFSET * 2, KeyOrder::Ascending).unwrap();
    for id in &linked {
        let entry: Entry = db
            .get(OFFSET + id)
            .unwrap()
            .expect("index points at a record");
        let key = format!("entry:{}", entry.text);
        assert_eq!(db.unique_get(TREE, key.as_bytes()).unwrap(), Some(*id));
    }
    for id in acked {
        assert!(linked.contains(id), "entry {id} missing from its index");
    }
}

#[test]
fn kill_9_during_writes_and_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<u64> = Vec::new();
    let mut rng = rand::thread_rng();

    for round in 0..15 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, recv) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line
                    .strip_prefix("ack ")
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    if send.send(id).is_err() {
                        return;
                    }
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment.
        let first = recv.recv_timeout(Duration::from_secs(30));
        assert!(
            first.is_ok(),
            "round {round}: the writer never acknowledged"
        );
        acked.push(first.unwrap());
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(recv.try_iter());
        check_consistent(dir.path(), &acked);
    }
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );

    // Now kill the real server while it starts (when sled writes its snapshot).
    for round in 0..20 {
        let mut server = common::Server::start(dir.path(), &[]);
        let delay = if round % 4 == 3 {
            400
        } else {
            rng.gen_range(0..120)
        };
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
    }
    check_consistent(dir.path(), &acked);
    let mut server = common::Server::start(dir.path(), &[]);
    server.wait_ready();
}
