//! PostgreSQL export and import throughput: a shop of 100,000 products and 100,000 orders
//! with their items (written straight into a fresh data folder), then the release binary's
//! `export-pg` into a new database and `import-pg` back into a new folder.
//! Run: `cargo bench --bench pg [-- PRODUCTS ORDERS]`; PostgreSQL from
//! `SHOPBOX_TEST_PG_URL` (default: the local server's `test` database). `EXPORTS=N` runs
//! the export N times (with `--drop-existing`), to see it with warm caches too.

use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shopbox::account::model::User;
use shopbox::cart::model::{Cart, CartLine};
use shopbox::order::model::{Order, OrderItem, OrderStatus};
use shopbox::payment::model::{Payment, PaymentStatus};
use shopbox::product::model::{Category, Product};
use shopbox::review::model::Review;
use shopbox::shipping::model::{Address, AddressFields, ShipState, Shipping};
use shopbox::transfer::ShopData;

const WORDS: &[&str] = &[
    "brass", "linen", "oak", "paper", "glass", "wool", "lamp", "mug", "chair", "vase", "table",
    "rug", "bowl", "kettle", "shelf", "clock", "blue", "red", "small", "tall",
];

fn phrase(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn shop(products: u64, orders: u64) -> ShopData {
    let mut rng = StdRng::seed_from_u64(7);
    let now = 1_750_000_000_000_000i64;
    let users = 2_000u64;
    let mut data = ShopData::default();
    for id in 1..=users {
        data.users.push(User {
            id,
            email: format!("user{id}@example.com"),
            hashed_password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            name: format!("User {id}"),
            is_active: true,
            is_admin: id == 1,
            is_verified: true,
            created_at: now,
            updated_at: now,
            tokens_valid_after: 0,
        });
        data.addresses.push(Address {
            id,
            user_id: id,
            fields: AddressFields {
                name: format!("User {id}"),
                phone: "+1 555 0100".into(),
                address_line1: format!("{id} Main St"),
                address_line2: String::new(),
                city: "Town".into(),
                state: "ST".into(),
                postal_code: "12345".into(),
                country: "US".into(),
            },
            deleted: id % 50 == 0,
        });
    }
    for id in 1..=12 {
        data.categories.push(Category {
            id,
            name: format!("Category {id}"),
            slug: format!("category-{id}"),
            product_count: 0,
        });
    }
    for id in 1..=products {
        let title = format!("{} {id}", phrase(&mut rng, 3));
        let mut category_ids = vec![rng.gen_range(1..=12)];
        if rng.gen_bool(0.3) {
            category_ids.push(rng.gen_range(1..=12));
        }
        category_ids.sort_unstable();
        category_ids.dedup();
        data.products.push(Product {
            id,
            slug: title.replace(' ', "-"),
            title,
            description: phrase(&mut rng, 12),
            price: rng.gen_range(100..100_000),
            stock_quantity: rng.gen_range(0..500),
            image: None,
            category_ids,
            rating_sum: 0,
            rating_count: 0,
            archived_at: (id % 100 == 0).then_some(now),
            referenced: false,
            created_at: now + id as i64,
            updated_at: now + id as i64,
        });
    }
    let mut item_id = 0;
    for id in 1..=orders {
        let user_id = rng.gen_range(1..=users);
        let items: Vec<OrderItem> = (0..rng.gen_range(1..=4))
            .map(|_| {
                item_id += 1;
                let product = rng.gen_range(1..=products);
                OrderItem {
                    id: item_id,
                    product_id: product,
                    title: data.products[product as usize - 1].title.clone(),
                    quantity: rng.gen_range(1..4),
                    price: data.products[product as usize - 1].price,
                }
            })
            .collect();
        let total = items.iter().map(|i| i.quantity * i.price).sum();
        let status = match id % 10 {
            0 => OrderStatus::PaymentFailed,
            1 => OrderStatus::Cancelled,
            _ => OrderStatus::Confirmed,
        };
        let at = now + id as i64 * 1_000;
        data.orders.push(Order {
            id,
            user_id,
            status,
            total_price: total,
            created_at: at,
            updated_at: at,
            shipping_address_id: user_id,
            address: data.addresses[user_id as usize - 1].fields.clone(),
            items,
            payment_id: id,
        });
        data.payments.push(Payment {
            id,
            order_id: id,
            user_id,
            amount: total,
            status: match status {
                OrderStatus::PaymentFailed => PaymentStatus::Failed,
                OrderStatus::Cancelled => PaymentStatus::Refunded,
                OrderStatus::Confirmed => PaymentStatus::Success,
            },
            payment_gateway: "mock".into(),
            transaction_id: format!("mock_{id:016x}"),
            is_paid: status == OrderStatus::Confirmed,
            created_at: at,
        });
        if status != OrderStatus::PaymentFailed {
            let mut history = vec![(ShipState::Pending, at)];
            let last = if status == OrderStatus::Cancelled {
                ShipState::Cancelled
            } else if id % 3 == 0 {
                ShipState::Shipped
            } else {
                ShipState::Pending
            };
            if last != ShipState::Pending {
                history.push((last, at + 500));
            }
            data.shippings.push(Shipping {
                id,
                order_id: id,
                status: last,
                updated_at: history.last().map(|h| h.1).unwrap_or(at),
                history,
            });
        }
    }
    for id in 1..=5_000u64 {
        data.reviews.push(Review {
            id,
            product_id: id,
            user_id: id % users + 1,
            user_name: String::new(),
            rating: (id % 5 + 1) as u8,
            title: "Fine".into(),
            body: "Does what it says.".into(),
            created_at: now,
            updated_at: now,
        });
    }
    for user_id in 1..=500u64 {
        data.carts.push(Cart {
            user_id,
            lines: vec![CartLine {
                id: user_id,
                product_id: user_id * 2 + 1,
                quantity: 1,
            }],
        });
    }
    data
}

fn run(args: &[&str]) -> String {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shopbox"))
        .args(args)
        .output()
        .expect("run shopbox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!(
        "$ shopbox {}  ({:.2} s wall)\n{text}\n",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    text
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let products = args.first().copied().unwrap_or(100_000);
    let orders = args.get(1).copied().unwrap_or(100_000);
    let base = std::env::var("SHOPBOX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or(base.clone());
    let url = format!("{server}/shopbox_bench");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        client
            .batch_execute("DROP DATABASE IF EXISTS shopbox_bench WITH (FORCE)")
            .await
            .expect("drop");
        client
            .batch_execute("CREATE DATABASE shopbox_bench")
            .await
            .expect("create");
    });

    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    let copy = work.path().join("copy");
    let started = Instant::now();
    let mut data = shop(products, orders);
    data.check().expect("a valid generated shop");
    let config = shopbox::config::Config {
        data_dir: source.clone(),
        cache_capacity_mb: std::env::var("CACHE_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        ..Default::default()
    };
    let db = shopbox::open_data(&config).expect("open");
    data.write_new(&db, &|_| {}).expect("write");
    drop(db);
    println!(
        "generated {products} products, {orders} orders: {} rows in {:.1} s\n",
        data.total_rows(),
        started.elapsed().as_secs_f64()
    );
    let source = source.to_string_lossy().to_string();
    let copy = copy.to_string_lossy().to_string();
    run(&["export-pg", "--url", &url, "--data", &source]);
    for _ in 1..std::env::var("EXPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
    {
        run(&[
            "export-pg",
            "--url",
            &url,
            "--data",
            &source,
            "--drop-existing",
        ]);
    }
    run(&["import-pg", "--url", &url, "--data", &copy]);
}
