//! `shopbox seed --demo`: a plausible demo catalog with images and a demo customer.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::account::store::{self as accounts, NewUser};
use crate::commands::Progress;
use crate::core::password::hash_now;
use crate::core::text::slugify;
use crate::core::time::now_micros;
use crate::db::{Backend, Db};
use crate::product::images::demo_png;
use crate::product::model::{Category, Product, PRODUCTS};
use crate::product::store;
use std::path::Path;

const CATEGORIES: &[&str] = &[
    "Shoes",
    "Hats",
    "Bags",
    "Kitchen",
    "Garden",
    "Books",
    "Toys",
    "Lighting",
    "Tea",
    "Outdoor",
    "Stationery",
    "Audio",
];
const ADJECTIVES: &[&str] = &[
    "Red", "Blue", "Green", "Classic", "Vintage", "Compact", "Deluxe", "Handmade", "Organic",
    "Smart", "Rustic", "Modern", "Cozy", "Bold", "Light", "Sturdy", "Elegant", "Tiny", "Grand",
    "Crème",
];
const MATERIALS: &[&str] = &[
    "Leather", "Cotton", "Oak", "Steel", "Ceramic", "Bamboo", "Wool", "Linen", "Copper", "Glass",
    "Canvas", "Walnut",
];
const NOUNS: &[&str] = &[
    "Sneakers",
    "Boots",
    "Cap",
    "Backpack",
    "Tote",
    "Teapot",
    "Mug",
    "Lamp",
    "Notebook",
    "Speaker",
    "Planter",
    "Kettle",
    "Scarf",
    "Wallet",
    "Blanket",
    "Puzzle",
    "Lantern",
    "Journal",
    "Headphones",
    "Basket",
    "Sandals",
    "Slippers",
    "Beanie",
    "Beret",
    "Satchel",
    "Duffel",
    "Teacup",
    "Saucer",
    "Bowl",
    "Platter",
    "Skillet",
    "Whisk",
    "Ladle",
    "Colander",
    "Apron",
    "Trowel",
    "Shears",
    "Rake",
    "Hose",
    "Birdhouse",
    "Novel",
    "Atlas",
    "Cookbook",
    "Diary",
    "Puppet",
    "Kite",
    "Yo-yo",
    "Marbles",
    "Robot",
    "Blocks",
    "Candle",
    "Sconce",
    "Chandelier",
    "Nightlight",
    "Tent",
    "Hammock",
    "Compass",
    "Canteen",
    "Binoculars",
    "Pencil",
    "Eraser",
    "Stapler",
    "Folder",
    "Envelope",
    "Turntable",
    "Amplifier",
    "Radio",
    "Earbuds",
    "Microphone",
    "Tripod",
    "Clock",
    "Vase",
    "Mirror",
    "Rug",
    "Cushion",
    "Throw",
    "Quilt",
    "Pillow",
    "Towel",
    "Robe",
    "Gloves",
    "Mittens",
    "Socks",
    "Belt",
    "Umbrella",
    "Sunglasses",
    "Watch",
    "Bracelet",
    "Necklace",
    "Ring",
    "Brooch",
    "Keychain",
    "Coaster",
    "Trivet",
    "Jar",
    "Bottle",
    "Flask",
    "Thermos",
    "Tumbler",
    "Pitcher",
];
const PHRASES: &[&str] = &[
    "Made to last for years of daily use.",
    "A favourite of our regulars.",
    "Finished by hand in a small workshop.",
    "Light enough to take anywhere.",
    "Easy to clean and easy to love.",
    "Comes gift-wrapped on request.",
    "Pairs well with the rest of the collection.",
    "Ships within two working days.",
];

pub const DEMO_CUSTOMER: &str = "customer@example.com";
pub const DEMO_PASSWORD: &str = "customer password";

/// Seeds the catalog; answers a summary line. A shop that has products already is
/// refused unless `add`: seeding twice would double the catalog.
pub fn seed_demo(
    sled: &Db,
    media: &Path,
    products: u64,
    add: bool,
    progress: &dyn Progress,
) -> Result<String, String> {
    rocket::execute(seed(sled, media, products, add, progress))
}

async fn seed(
    sled: &Db,
    media: &Path,
    products: u64,
    add: bool,
    progress: &dyn Progress,
) -> Result<String, String> {
    let db = Backend::from(sled.clone());
    let err = |e: crate::db::StoreError| e.to_string();
    let existing = sled.tree_len(PRODUCTS).map_err(err)?;
    if existing > 0 && !add {
        return Err(format!(
            "the shop has {existing} product(s) already: add --add to add {products} demo products to them"
        ));
    }
    let mut rng = StdRng::seed_from_u64(42);

    let mut category_ids = Vec::new();
    for name in CATEGORIES {
        let c: Category = match store::category_by_name(&db, name).await.map_err(err)? {
            Some(c) => c,
            None => store::create_category(&db, name).await.map_err(err)?,
        };
        category_ids.push(c.id);
    }

    let progress = progress.bar(products, "products");
    let now = now_micros();
    let mut batch = Vec::with_capacity(300);
    for n in 0..products {
        let id = sled.next_id(PRODUCTS).map_err(err)?;
        let title = format!(
            "{} {} {}",
            ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())],
            MATERIALS[rng.gen_range(0..MATERIALS.len())],
            NOUNS[rng.gen_range(0..NOUNS.len())]
        );
        let description = format!(
            "{} {} {}",
            PHRASES[rng.gen_range(0..PHRASES.len())],
            PHRASES[rng.gen_range(0..PHRASES.len())],
            format_args!("Item number {id}.")
        );
        let image = format!("{}.png", hex::encode(rand::random::<[u8; 16]>()));
        std::fs::write(media.join(&image), demo_png(id, 32))
            .map_err(|e| format!("cannot write an image: {e}"))?;
        let mut cats = vec![category_ids[rng.gen_range(0..category_ids.len())]];
        if rng.gen_bool(0.2) {
            cats.push(category_ids[rng.gen_range(0..category_ids.len())]);
        }
        cats.sort_unstable();
        cats.dedup();
        batch.push(Product {
            id,
            slug: slugify(&title, "product"),
            title,
            description,
            price: rng.gen_range(100..50_000),
            stock_quantity: if rng.gen_bool(0.1) {
                0
            } else {
                rng.gen_range(1..200)
            },
            image: Some(image),
            category_ids: cats,
            rating_sum: 0,
            rating_count: 0,
            archived_at: None,
            referenced: false,
            created_at: now + n as i64,
            updated_at: now + n as i64,
        });
        if batch.len() == 300 {
            store::insert_products_batch(&db, &batch)
                .await
                .map_err(err)?;
            progress.inc(batch.len() as u64);
            batch.clear();
        }
    }
    store::insert_products_batch(&db, &batch)
        .await
        .map_err(err)?;
    progress.inc(batch.len() as u64);
    crate::commands::finish_bar(&progress, None);

    let customer = match accounts::user_by_email(&db, DEMO_CUSTOMER)
        .await
        .map_err(err)?
    {
        Some(_) => format!("demo customer {DEMO_CUSTOMER} already exists"),
        None => {
            accounts::create_user(
                &db,
                NewUser {
                    email: DEMO_CUSTOMER.into(),
                    name: "Demo Customer".into(),
                    hashed_password: hash_now(DEMO_PASSWORD).map_err(|e| e.to_string())?,
                    is_admin: false,
                    is_verified: true,
                },
                now_micros(),
            )
            .await
            .map_err(err)?;
            format!("demo customer {DEMO_CUSTOMER} / {DEMO_PASSWORD}")
        }
    };
    sled.flush_blocking().map_err(err)?;
    Ok(format!(
        "seeded {products} products in {} categories; {customer}",
        CATEGORIES.len()
    ))
}
