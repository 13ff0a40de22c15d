use super::*;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Thing {
    id: u64,
    name: String,
}

impl Record for Thing {
    const TREE: &'static str = migrate::META;
}

const NAMES: &str = migrate::META;

fn open(dir: &Path) -> Db {
    Db::open(dir, 8 * 1024 * 1024, &Schema::default()).expect("open")
}

/// The version a database of no migrations is at.
const CURRENT: u32 = 1;

fn put_thing(tx: &Tx<'_>, thing: &Thing) -> TxResult<()> {
    tx.claim_unique(
        NAMES,
        format!("name:{}", thing.name).as_bytes(),
        thing.id,
        Unique::Slug,
    )?;
    tx.put(thing.id + 1_000_000, thing)
}

#[test]
fn records_round_trip_with_their_version() {
    let thing = Thing {
        id: 7,
        name: "seven".into(),
    };
    let bytes = encode(&thing).unwrap();
    assert_eq!(bytes[0], Thing::VERSION);
    assert_eq!(decode::<Thing>(&bytes).unwrap(), thing);
    let mut wrong = bytes.clone();
    wrong[0] = 9;
    assert!(matches!(
        decode::<Thing>(&wrong),
        Err(StoreError::Storage(_))
    ));
    assert!(decode::<Thing>(&[]).is_err());
}

#[tokio::test]
async fn unique_conflict_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let a = Thing {
        id: 1,
        name: "apple".into(),
    };
    db.write(|tx| put_thing(tx, &a)).await.unwrap();
    let b = Thing {
        id: 2,
        name: "apple".into(),
    };
    // The record is written first, then the index claim fails: neither may remain.
    let err = db
        .write(|tx| {
            tx.put(b.id + 1_000_000, &b)?;
            tx.claim_unique(NAMES, b"name:apple", b.id, Unique::Slug)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(Unique::Slug)));
    assert!(db.get::<Thing>(1_000_002).unwrap().is_none());
    assert_eq!(db.unique_get(NAMES, b"name:apple").unwrap(), Some(1));
    // Claiming a key again for the same id is not a conflict.
    db.write(|tx| tx.claim_unique(NAMES, b"name:apple", 1, Unique::Slug))
        .await
        .unwrap();
}

#[tokio::test]
async fn one_to_many_index_lists_children_in_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.write(|tx| {
        for child in [3, 1, 300, 2] {
            tx.link(NAMES, 7, child)?;
        }
        tx.link(NAMES, 8, 5)
    })
    .await
    .unwrap();
    assert_eq!(
        db.children(NAMES, 7, KeyOrder::Ascending).unwrap(),
        vec![1, 2, 3, 300]
    );
    assert_eq!(
        db.children(NAMES, 7, KeyOrder::Descending).unwrap(),
        vec![300, 3, 2, 1]
    );
    db.write(|tx| tx.unlink(NAMES, 7, 3)).await.unwrap();
    assert_eq!(
        db.children(NAMES, 7, KeyOrder::Ascending).unwrap(),
        vec![1, 2, 300]
    );
}

#[test]
fn ids_are_dense_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        assert_eq!(db.next_id("orders").unwrap(), 1);
        assert_eq!(db.next_id("orders").unwrap(), 2);
        assert_eq!(db.next_id("users").unwrap(), 1);
        db.bump_sequence("users", 40).unwrap();
        db.flush_blocking().unwrap();
    }
    let db = open(dir.path());
    assert_eq!(db.next_id("orders").unwrap(), 3);
    assert_eq!(db.next_id("users").unwrap(), 41);
}

#[tokio::test]
async fn concurrent_writers_share_flushes_and_all_persist() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let thing = Thing {
                id: i,
                name: format!("t{i}"),
            };
            db.write(|tx| put_thing(tx, &thing)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let shared = db.group_flushes();
    assert!(
        (1..200).contains(&shared),
        "200 writers ran {shared} flushes"
    );
    // One writer at a time: each waits for a flush of its own.
    for i in 200..203u64 {
        let thing = Thing {
            id: i,
            name: format!("t{i}"),
        };
        db.write(|tx| put_thing(tx, &thing)).await.unwrap();
    }
    assert_eq!(db.group_flushes(), shared + 3);
    drop(db);
    let db = open(dir.path());
    for i in 0..200u64 {
        assert_eq!(
            db.get::<Thing>(i + 1_000_000).unwrap().unwrap().name,
            format!("t{i}")
        );
    }
}

#[test]
fn second_open_of_a_folder_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let _db = open(dir.path());
    let err = Db::open(dir.path(), 1024 * 1024, &Schema::default())
        .err()
        .expect("second open must fail");
    assert!(err.0.contains("in use by another process"), "{}", err.0);
    assert!(!err.0.contains('\n'));
}

#[test]
fn unfinished_snapshot_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.write_blocking(|tx| {
            put_thing(
                tx,
                &Thing {
                    id: 1,
                    name: "kept".into(),
                },
            )
        })
        .unwrap();
    }
    drop(open(dir.path()));
    let finished = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
        .count();
    assert!(finished > 0, "sled wrote a snapshot while opening");
    // What a kill during sled's start-up snapshot leaves behind: a truncated file.
    let half = dir
        .path()
        .join("db")
        .join("snap.00000000000FFFFF.generating");
    std::fs::write(&half, b"\x00\x01truncated").unwrap();
    let db = open(dir.path());
    assert!(!half.exists());
    // Only the unfinished snapshot is set aside, not the snapshots sled finished.
    let aside: Vec<String> = std::fs::read_dir(dir.path().join("db").join(UNFINISHED_SNAPSHOTS))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        aside[0].starts_with("snap.00000000000FFFFF.generating."),
        "{aside:?}"
    );
    assert_eq!(db.get::<Thing>(1_000_001).unwrap().unwrap().name, "kept");
}

fn add_suffix(db: &Db) -> StoreResult<()> {
    migrate::rewrite_tree(db, "things", 1, |old| {
        let (mut thing, _): (Thing, usize) =
            bincode::serde::decode_from_slice(old, bincode::config::standard())
                .map_err(|e| StoreError::Storage(e.to_string()))?;
        thing.name.push_str("-v2");
        let mut out = vec![2];
        out.extend(
            bincode::serde::encode_to_vec(&thing, bincode::config::standard())
                .map_err(|e| StoreError::Storage(e.to_string()))?,
        );
        Ok(out)
    })
    .map(|_| ())
}

#[test]
fn migrations_upgrade_old_records_and_refuse_newer_folders() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    assert_eq!(migrate::schema_version(&db).unwrap(), Some(CURRENT));
    let things = db.inner.sled.open_tree("things").unwrap();
    let old = Thing {
        id: 1,
        name: "old".into(),
    };
    things.insert(id_key(1), encode(&old).unwrap()).unwrap();

    let steps = [migrate::Migration {
        from: CURRENT,
        run: add_suffix,
    }];
    migrate::run(&db, &steps, CURRENT + 1).unwrap();
    assert_eq!(migrate::schema_version(&db).unwrap(), Some(CURRENT + 1));
    let stored = things.get(id_key(1)).unwrap().unwrap();
    assert_eq!(stored[0], 2);
    let (upgraded, _): (Thing, usize) =
        bincode::serde::decode_from_slice(&stored[1..], bincode::config::standard()).unwrap();
    assert_eq!(upgraded.name, "old-v2");

    // This build only knows CURRENT: a folder written by a newer one is refused.
    let err = migrate::run(&db, &[], CURRENT).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

const DURABLE_CHILD_DIR: &str = "SHOPBOX_DURABLE_CHILD_DIR";
const DURABLE_CHILD_NONCE: &str = "SHOPBOX_DURABLE_CHILD_NONCE";

/// The child of `acknowledged_writes_survive_kill_9_and_a_change_of_runtime`: three
/// durable writes, each on a runtime of its own, each acknowledged on stdout once `write`
/// returned; then it waits to be killed.
#[test]
#[ignore = "run only as the child of acknowledged_writes_survive_kill_9_and_a_change_of_runtime"]
fn durable_writer_child() {
    let (Ok(dir), Ok(nonce)) = (
        std::env::var(DURABLE_CHILD_DIR),
        std::env::var(DURABLE_CHILD_NONCE),
    ) else {
        return;
    };
    let db = open(Path::new(&dir));
    for i in 0..3u64 {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let thing = Thing {
            id: i,
            name: format!("{nonce}-{i}"),
        };
        runtime
            .block_on(db.write(|tx| put_thing(tx, &thing)))
            .unwrap();
        drop(runtime);
        println!("ack {i} {}", thing.name);
    }
    println!("waiting");
    // Neither dropped nor flushed again: only what `write` made durable survives the kill.
    loop {
        std::thread::park();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_and_a_change_of_runtime() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let nonce = format!("n{}", rand::random::<u64>());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "db::tests::durable_writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DURABLE_CHILD_DIR, dir.path())
        .env(DURABLE_CHILD_NONCE, &nonce)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (lines, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut acked = Vec::new();
    // A generous bound on the event, not a measure of speed: the child needs milliseconds.
    while let Ok(line) = read.recv_timeout(std::time::Duration::from_secs(120)) {
        if line == "waiting" {
            break;
        }
        // libtest may print its own words before the child's first line.
        if let Some((id, name)) = line
            .rsplit_once("ack ")
            .and_then(|(_, rest)| rest.split_once(' '))
        {
            acked.push((id.parse::<u64>().unwrap(), name.to_string()));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 3, "the writer stopped early: {acked:?}");

    let db = open(dir.path());
    for (id, name) in &acked {
        assert_eq!(name, &format!("{nonce}-{id}"));
        let found = db.get::<Thing>(id + 1_000_000).unwrap();
        assert_eq!(
            found.map(|t| t.name).as_ref(),
            Some(name),
            "write {id} lost"
        );
        assert_eq!(
            db.unique_get(NAMES, format!("name:{name}").as_bytes())
                .unwrap(),
            Some(*id)
        );
    }
}

#[tokio::test]
async fn dropping_the_db_lets_the_folder_be_opened_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let thing = Thing {
        id: 1,
        name: "one".into(),
    };
    // A durable write starts the group-commit task, which outlives this call.
    db.write(|tx| put_thing(tx, &thing)).await.unwrap();
    drop(db);
    // No await in between: the task has not run since the drop.
    let again = Db::open(dir.path(), 8 * 1024 * 1024, &Schema::default())
        .expect("the folder is free again");
    assert_eq!(again.get::<Thing>(1_000_001).unwrap(), Some(thing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_see_one_instant_while_writers_keep_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Two keys per write: a snapshot must never see one without the other.
                db.write(|tx| {
                    tx.raw_insert(NAMES, &pair_key(w, n), b"a")?;
                    tx.raw_insert(NAMES, &pair_key(w + 100, n), b"b")
                })
                .await
                .unwrap();
            }
            n
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let (reader, stage) = (
            db.clone(),
            dir.path().join(format!("copy-{}", rand::random::<u32>())),
        );
        let (snapshot, ()) = tokio::task::spawn_blocking(move || reader.snapshot(&stage, || ()))
            .await
            .unwrap()
            .unwrap();
        let meta = snapshot.dump(NAMES).unwrap();
        let pairs: Vec<_> = snapshot::entries(&meta.bytes).map(|p| p.unwrap()).collect();
        let a = pairs.iter().filter(|(_, v)| *v == b"a").count();
        let b = pairs.iter().filter(|(_, v)| *v == b"b").count();
        assert_eq!(a, b);
        assert!(a > 0);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
}

/// A flush that fails (injected through `open_with`'s seam) fails the database for good:
/// the writer waiting for it is refused, `failed` wakes, and no write or flush is taken
/// any more, by any path, even once the disk would take them again.
#[tokio::test]
async fn a_failed_flush_fails_the_database_for_every_later_write_and_flush() {
    use futures_util::FutureExt;
    let dir = tempfile::tempdir().unwrap();
    let trigger = dir.path().join("fail");
    let db = Db::open_with(
        dir.path(),
        8 * 1024 * 1024,
        &Schema::default(),
        Some(trigger.clone()),
    )
    .expect("open");
    let thing = |id: u64| Thing {
        id,
        name: format!("t{id}"),
    };
    db.write(|tx| put_thing(tx, &thing(1))).await.unwrap();
    assert_eq!(db.failure(), None);
    assert!(db.healthy());
    assert!(
        db.failed().now_or_never().is_none(),
        "`failed` resolved before any failure"
    );

    std::fs::write(&trigger, b"").unwrap();
    let refused = db.write(|tx| put_thing(tx, &thing(2))).await;
    assert!(
        matches!(refused, Err(StoreError::Unwritable(_))),
        "{refused:?}"
    );
    let why = db.failure().expect("the database failed");
    assert!(why.contains("injected"), "{why}");
    assert!(!db.healthy());
    assert!(db.failed().now_or_never().is_some());

    // The disk would take writes again; the database still refuses them.
    std::fs::remove_file(&trigger).unwrap();
    let refused = db.write(|tx| put_thing(tx, &thing(3))).await;
    assert!(
        matches!(refused, Err(StoreError::Unwritable(_))),
        "{refused:?}"
    );
    assert_eq!(
        db.get::<Thing>(1_000_003).unwrap(),
        None,
        "a refused write ran"
    );
    assert!(matches!(db.durable().await, Err(StoreError::Unwritable(_))));
    assert!(matches!(
        db.flush_blocking(),
        Err(StoreError::Unwritable(_))
    ));
    let refused = db.write_blocking(|tx| put_thing(tx, &thing(4)));
    assert!(
        matches!(refused, Err(StoreError::Unwritable(_))),
        "{refused:?}"
    );
    assert_eq!(
        db.get::<Thing>(1_000_004).unwrap(),
        None,
        "a refused write ran"
    );
    assert_eq!(db.failure(), Some(why));
}

/// sled refuses every write after an I/O error until the folder is opened again, so such
/// an error of a write fails the database as a failed flush does; any other storage error
/// is that one write's failure only.
#[test]
fn an_io_error_of_a_write_fails_the_database_and_other_errors_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let other = db.storage_error(sled::Error::Unsupported("no such thing".into()));
    assert!(matches!(other, StoreError::Storage(_)), "{other:?}");
    assert_eq!(db.failure(), None);

    let io = db.storage_error(sled::Error::Io(std::io::Error::other("disk on fire")));
    assert_eq!(io, StoreError::Unwritable("disk on fire".into()));
    assert_eq!(db.failure().as_deref(), Some("disk on fire"));
    let thing = Thing {
        id: 1,
        name: "one".into(),
    };
    let refused = db.write_blocking(|tx| put_thing(tx, &thing));
    assert!(
        matches!(refused, Err(StoreError::Unwritable(_))),
        "{refused:?}"
    );
    assert_eq!(
        db.get::<Thing>(1_000_001).unwrap(),
        None,
        "a refused write ran"
    );
}

/// Dropping the `Db` ends its group-commit task: a process that opens folders again and
/// again on one runtime (tests, the CLI) does not pile up idle tasks.
#[tokio::test]
async fn dropping_the_db_ends_its_flush_task() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let db = open(dir.path());
    let thing = Thing {
        id: 1,
        name: "one".into(),
    };
    db.write(|tx| put_thing(tx, &thing)).await.unwrap();
    assert!(metrics.num_alive_tasks() > before, "no flush task runs");
    drop(db);
    // Scheduling turns, not time: the woken task needs a turn to see that it is closing.
    for _ in 0..100 {
        if metrics.num_alive_tasks() == before {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        before,
        "the flush task outlived its Db"
    );
}

/// Ids taken inside transactions (checkout's order ids) continue one sequence with the
/// ones taken outside, are never handed out twice, and survive a reopen.
#[tokio::test]
async fn ids_taken_inside_transactions_are_dense_and_never_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let first = db.write(|tx| tx.next_id("orders")).await.unwrap();
    let three = db.write(|tx| tx.next_ids("orders", 3)).await.unwrap();
    let after = db.write(|tx| tx.next_id("orders")).await.unwrap();
    assert_eq!((first, three, after), (1, 2, 5));
    assert_eq!(db.next_id("orders").unwrap(), 6);
    assert_eq!(db.next_ids("orders", 4).unwrap(), 7);
    assert_eq!(db.write(|tx| tx.next_id("orders")).await.unwrap(), 11);
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.write(|tx| tx.next_id("orders")).await.unwrap(), 12);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Named {
    id: u64,
    name: String,
    group: u64,
}

impl Record for Named {
    const TREE: &'static str = migrate::META;
}

impl Indexed for Named {
    const INDEXES: &'static [&'static str] = &[NAMES];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::unique(NAMES, format!("named:{}", self.name), self.id, Unique::Slug),
            IndexEntry::key(
                NAMES,
                format!("group:{}:{}", self.group, self.id).into_bytes(),
                Vec::new(),
            ),
        ]
    }
}

/// `Tx::save` writes a new record's index entries, keeps the unchanged ones of a changed
/// record, moves the changed ones, refuses a unique key another record holds, and
/// `Tx::delete` takes them all away.
#[tokio::test]
async fn save_and_delete_keep_index_entries_in_step_with_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut a = Named {
        id: 2_000_001,
        name: "a".into(),
        group: 1,
    };
    db.write(|tx| tx.save(&a)).await.unwrap();
    assert_eq!(db.unique_get(NAMES, b"named:a").unwrap(), Some(a.id));
    assert!(db.raw_get(NAMES, b"group:1:2000001").unwrap().is_some());

    a.group = 2;
    db.write(|tx| tx.save(&a)).await.unwrap();
    assert_eq!(db.unique_get(NAMES, b"named:a").unwrap(), Some(a.id));
    assert!(db.raw_get(NAMES, b"group:1:2000001").unwrap().is_none());
    assert!(db.raw_get(NAMES, b"group:2:2000001").unwrap().is_some());

    let b = Named {
        id: 2_000_002,
        name: "a".into(),
        group: 2,
    };
    assert_eq!(
        db.write(|tx| tx.save(&b)).await,
        Err(StoreError::Duplicate(Unique::Slug))
    );
    assert_eq!(db.get::<Named>(b.id).unwrap(), None);

    assert_eq!(
        db.write(|tx| tx.delete::<Named>(a.id)).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(db.unique_get(NAMES, b"named:a").unwrap(), None);
    assert!(db.raw_get(NAMES, b"group:2:2000001").unwrap().is_none());
    assert_eq!(db.get::<Named>(a.id).unwrap(), None);
}
