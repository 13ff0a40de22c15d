//! The whole shop as plain records: read out of a database, checked as a whole, and
//! written into a new one with every index rebuilt. The PostgreSQL export and import move
//! a `ShopData` between sled and SQL; nothing here knows about SQL.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex};

use crate::account::model::{email_key, User, USERS};
use crate::cart::model::{Cart, CARTS};
use crate::core::money::MAX_CENTS;
use crate::core::text::{fold, slug_reserved, slug_shaped};
use crate::db::index::{entries_of, Entries, TreeEntries as Trees};
use crate::db::{encode, id_key, Db, KeyOrder, Record, StoreError, StoreResult};
use crate::order::model::{Order, OrderStatus, ORDERS, ORDER_ITEMS};
use crate::payment::model::{Payment, PAYMENTS};
use crate::product::model::{Category, Product, CATEGORIES, PRODUCTS};
use crate::product::store;
use crate::review::model::{Review, REVIEWS};
use crate::shipping::model::{Address, Shipping, ADDRESSES, SHIPPING};

/// Every record a shop keeps that outlives a session: no sessions, tokens, outbox or
/// idempotency keys. Derived values (ratings, counts, `referenced`, the review's author
/// name, the order's payment id) are recomputed by `check`.
#[derive(Debug, Clone, Default)]
pub struct ShopData {
    pub users: Vec<User>,
    pub categories: Vec<Category>,
    pub products: Vec<Product>,
    pub carts: Vec<Cart>,
    pub addresses: Vec<Address>,
    pub orders: Vec<Order>,
    pub payments: Vec<Payment>,
    pub shippings: Vec<Shipping>,
    pub reviews: Vec<Review>,
}

/// The problems `check` found, each naming the table, the id and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<String>);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 20;
        for line in self.0.iter().take(SHOWN) {
            writeln!(f, "  {line}")?;
        }
        if self.0.len() > SHOWN {
            writeln!(f, "  ... and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Whether a database holds no shop data yet (sessions and mail alone do not count).
pub fn is_empty(db: &Db) -> StoreResult<bool> {
    for tree in [
        USERS, CATEGORIES, PRODUCTS, ORDERS, ADDRESSES, REVIEWS, CARTS,
    ] {
        if db.tree_len(tree)? > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

impl ShopData {
    /// Users, the catalog, carts and reviews (the sales tables left empty). What the API
    /// no longer shows is left out: cart lines of deleted products, and the deleted
    /// categories that archived products still name.
    pub fn read_catalog(db: &Db) -> StoreResult<ShopData> {
        let categories: Vec<Category> = db.scan(KeyOrder::Ascending)?;
        let known: HashSet<u64> = categories.iter().map(|c| c.id).collect();
        let mut products: Vec<Product> = db.scan(KeyOrder::Ascending)?;
        for p in &mut products {
            p.category_ids.retain(|c| known.contains(c));
        }
        let live: HashSet<u64> = products
            .iter()
            .filter(|p| p.archived_at.is_none())
            .map(|p| p.id)
            .collect();
        let mut carts: Vec<Cart> = db.scan(KeyOrder::Ascending)?;
        for cart in &mut carts {
            cart.lines.retain(|l| live.contains(&l.product_id));
        }
        carts.retain(|c| !c.lines.is_empty());
        Ok(ShopData {
            users: db.scan(KeyOrder::Ascending)?,
            categories,
            products,
            carts,
            reviews: db.scan(KeyOrder::Ascending)?,
            ..ShopData::default()
        })
    }

    /// Addresses, orders, payments and shipping (the rest left empty), so an export can
    /// decode them while the catalog is on its way.
    pub fn read_sales(db: &Db) -> StoreResult<ShopData> {
        Ok(ShopData {
            addresses: db.scan(KeyOrder::Ascending)?,
            orders: db.scan(KeyOrder::Ascending)?,
            payments: db.scan(KeyOrder::Ascending)?,
            shippings: db.scan(KeyOrder::Ascending)?,
            ..ShopData::default()
        })
    }

    pub fn add_sales(&mut self, sales: ShopData) {
        self.addresses = sales.addresses;
        self.orders = sales.orders;
        self.payments = sales.payments;
        self.shippings = sales.shippings;
    }

    /// How many rows these records make in the PostgreSQL layout, table by table.
    pub fn row_counts(&self) -> Vec<(&'static str, u64)> {
        let len = |n: usize| n as u64;
        vec![
            ("users", len(self.users.len())),
            ("categories", len(self.categories.len())),
            ("products", len(self.products.len())),
            (
                "product_categories",
                self.products
                    .iter()
                    .map(|p| p.category_ids.len() as u64)
                    .sum(),
            ),
            (
                "cart_items",
                self.carts.iter().map(|c| c.lines.len() as u64).sum(),
            ),
            ("shipping_addresses", len(self.addresses.len())),
            ("orders", len(self.orders.len())),
            (
                "order_items",
                self.orders.iter().map(|o| o.items.len() as u64).sum(),
            ),
            ("payments", len(self.payments.len())),
            ("shipping_statuses", len(self.shippings.len())),
            (
                "shipping_status_history",
                self.shippings.iter().map(|s| s.history.len() as u64).sum(),
            ),
            ("reviews", len(self.reviews.len())),
        ]
    }

    pub fn total_rows(&self) -> u64 {
        self.row_counts().iter().map(|(_, n)| n).sum()
    }

    /// Checks the records as a whole (every rule the API keeps, every reference, every
    /// unique key) and fills in what is derived. Nothing is written; on error the list
    /// names each bad row.
    pub fn check(&mut self) -> Result<(), Invalid> {
        let mut bad = Vec::new();
        sort_by_id(self);
        check_users(&self.users, &mut bad);
        check_catalog(&self.categories, &self.products, &mut bad);
        let users: HashMap<u64, &User> = self.users.iter().map(|u| (u.id, u)).collect();
        let products: HashMap<u64, &Product> = self.products.iter().map(|p| (p.id, p)).collect();

        let mut line_ids = HashSet::new();
        let mut cart_users = HashSet::new();
        for cart in &self.carts {
            let id = cart.user_id;
            if !users.contains_key(&id) {
                bad.push(format!("cart_items of user {id}: no such user"));
            }
            if !cart_users.insert(id) {
                bad.push(format!("cart_items of user {id}: the user has two carts"));
            }
            let mut in_cart = HashSet::new();
            for line in &cart.lines {
                let lid = line.id;
                if !line_ids.insert(lid) {
                    bad.push(format!("cart_items id {lid}: the id is used twice"));
                }
                match products.get(&line.product_id) {
                    None => bad.push(format!(
                        "cart_items id {lid}: product {} does not exist",
                        line.product_id
                    )),
                    Some(p) if p.archived_at.is_some() => bad.push(format!(
                        "cart_items id {lid}: product {} is archived",
                        line.product_id
                    )),
                    Some(_) => {}
                }
                if !in_cart.insert(line.product_id) {
                    bad.push(format!(
                        "cart_items id {lid}: product {} is in the cart twice",
                        line.product_id
                    ));
                }
                if line.quantity < 1 {
                    bad.push(format!(
                        "cart_items id {lid}: quantity {} is below 1",
                        line.quantity
                    ));
                }
            }
        }

        let addresses = duplicate_ids(
            "shipping_addresses",
            self.addresses.iter().map(|a| a.id),
            &mut bad,
        );
        duplicate_ids("orders", self.orders.iter().map(|o| o.id), &mut bad);
        duplicate_ids("payments", self.payments.iter().map(|p| p.id), &mut bad);
        duplicate_ids(
            "shipping_statuses",
            self.shippings.iter().map(|s| s.id),
            &mut bad,
        );
        duplicate_ids("reviews", self.reviews.iter().map(|r| r.id), &mut bad);
        for a in &self.addresses {
            if !users.contains_key(&a.user_id) {
                bad.push(format!(
                    "shipping_addresses id {}: user {} does not exist",
                    a.id, a.user_id
                ));
            }
        }

        // Payments first: an order finds its payment by order id.
        let order_ids: HashMap<u64, (u64, OrderStatus)> = self
            .orders
            .iter()
            .map(|o| (o.id, (o.user_id, o.status)))
            .collect();
        let mut payment_of: HashMap<u64, u64> = HashMap::new();
        for p in &self.payments {
            match order_ids.get(&p.order_id) {
                None => bad.push(format!(
                    "payments id {}: order {} does not exist",
                    p.id, p.order_id
                )),
                Some((user, _)) if *user != p.user_id => bad.push(format!(
                    "payments id {}: user {} is not the order's user {user}",
                    p.id, p.user_id
                )),
                Some(_) => {}
            }
            if p.amount < 0 || p.amount > MAX_CENTS {
                bad.push(format!("payments id {}: amount is out of range", p.id));
            }
            if let Some(other) = payment_of.insert(p.order_id, p.id) {
                bad.push(format!(
                    "payments id {}: order {} already has payment {other}",
                    p.id, p.order_id
                ));
            }
        }

        let mut item_ids = HashSet::new();
        let mut referenced = HashSet::new();
        for o in &mut self.orders {
            let id = o.id;
            if !users.contains_key(&o.user_id) {
                bad.push(format!("orders id {id}: user {} does not exist", o.user_id));
            }
            // An order keeps its own copy of the address; the id only has to point somewhere.
            if !addresses.contains(&o.shipping_address_id) {
                bad.push(format!(
                    "orders id {id}: shipping address {} does not exist",
                    o.shipping_address_id
                ));
            }
            match payment_of.get(&id) {
                Some(&p) => o.payment_id = p,
                None => bad.push(format!("orders id {id}: it has no payment")),
            }
            if o.total_price < 0 || o.total_price > MAX_CENTS {
                bad.push(format!("orders id {id}: total_price is out of range"));
            }
            for item in &o.items {
                if !item_ids.insert(item.id) {
                    bad.push(format!("order_items id {}: the id is used twice", item.id));
                }
                if item.product_id != 0 && !products.contains_key(&item.product_id) {
                    bad.push(format!(
                        "order_items id {}: product {} does not exist",
                        item.id, item.product_id
                    ));
                }
                if item.quantity < 1 {
                    bad.push(format!(
                        "order_items id {}: quantity {} is below 1",
                        item.id, item.quantity
                    ));
                }
                if item.price < 0 || item.price > MAX_CENTS {
                    bad.push(format!("order_items id {}: price is out of range", item.id));
                }
                referenced.insert(item.product_id);
            }
        }

        let mut shipped = HashSet::new();
        for s in &mut self.shippings {
            match order_ids.get(&s.order_id) {
                None => bad.push(format!(
                    "shipping_statuses id {}: order {} does not exist",
                    s.id, s.order_id
                )),
                Some((_, OrderStatus::PaymentFailed)) => bad.push(format!(
                    "shipping_statuses id {}: order {} failed its payment and cannot ship",
                    s.id, s.order_id
                )),
                Some(_) => {}
            }
            if !shipped.insert(s.order_id) {
                bad.push(format!(
                    "shipping_statuses id {}: order {} has two shipping statuses",
                    s.id, s.order_id
                ));
            }
            if s.history.is_empty() {
                s.history.push((s.status, s.updated_at));
            }
        }
        for o in &self.orders {
            if o.status != OrderStatus::PaymentFailed && !shipped.contains(&o.id) {
                bad.push(format!("orders id {}: it has no shipping status", o.id));
            }
        }

        let mut authored = HashSet::new();
        let mut ratings: HashMap<u64, (u64, u64)> = HashMap::new();
        for r in &mut self.reviews {
            match users.get(&r.user_id) {
                Some(u) => r.user_name = u.name.clone(),
                None => bad.push(format!(
                    "reviews id {}: user {} does not exist",
                    r.id, r.user_id
                )),
            }
            if !products.contains_key(&r.product_id) {
                bad.push(format!(
                    "reviews id {}: product {} does not exist",
                    r.id, r.product_id
                ));
            }
            if !(1..=5).contains(&r.rating) {
                bad.push(format!(
                    "reviews id {}: rating {} is not 1 to 5",
                    r.id, r.rating
                ));
            }
            if !authored.insert((r.user_id, r.product_id)) {
                bad.push(format!(
                    "reviews id {}: user {} reviewed product {} twice",
                    r.id, r.user_id, r.product_id
                ));
            }
            let entry = ratings.entry(r.product_id).or_default();
            entry.0 += u64::from(r.rating);
            entry.1 += 1;
        }

        if !bad.is_empty() {
            return Err(Invalid(bad));
        }
        for p in &mut self.products {
            (p.rating_sum, p.rating_count) = ratings.get(&p.id).copied().unwrap_or((0, 0));
            p.referenced = referenced.contains(&p.id);
        }
        Ok(())
    }

    /// Writes checked records into a database that holds nothing yet, with every index
    /// (search included) and every id sequence past the largest id; `step` is told each
    /// tree as it is written. Flushed before it returns.
    ///
    /// The trees are made and written by one worker per core (see `Workers`), so that
    /// encoding records and building indexes overlap with sled's inserting; the catalog's
    /// indexes come first, being the longest to make.
    pub fn write_new(&self, db: &Db, step: &(dyn Fn(&str) + Sync)) -> StoreResult<()> {
        let one = |tree: &'static str, entries: Entries| Ok(vec![(tree, entries)]);
        let jobs: Vec<Job> = vec![
            Box::new(|| store::catalog_entries(&self.categories, &self.products)),
            Box::new(|| Ok(store::search_entries(&self.categories, &self.products))),
            Box::new(|| one(PRODUCTS, records(&self.products, |p| p.id)?)),
            Box::new(|| one(ORDERS, records(&self.orders, |o| o.id)?)),
            Box::new(|| one(PAYMENTS, records(&self.payments, |p| p.id)?)),
            Box::new(|| one(SHIPPING, records(&self.shippings, |s| s.order_id)?)),
            Box::new(|| Ok([entries_of(&self.orders), entries_of(&self.payments)].concat())),
            Box::new(|| {
                let mut trees = vec![
                    (USERS, records(&self.users, |u| u.id)?),
                    (CARTS, records(&self.carts, |c| c.user_id)?),
                    (ADDRESSES, records(&self.addresses, |a| a.id)?),
                    (REVIEWS, records(&self.reviews, |r| r.id)?),
                ];
                trees.extend(entries_of(&self.users));
                trees.extend(entries_of(&self.addresses));
                trees.extend(entries_of(&self.reviews));
                Ok(trees)
            }),
        ];
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Workers::new(jobs).run(workers, &|tree, entries| {
            step(tree);
            db.replace_tree(tree, entries).map(|_| ())
        })?;

        let max = |ids: &mut dyn Iterator<Item = u64>| ids.max().unwrap_or(0);
        let sequences = [
            (USERS, max(&mut self.users.iter().map(|u| u.id))),
            (CATEGORIES, max(&mut self.categories.iter().map(|c| c.id))),
            (PRODUCTS, max(&mut self.products.iter().map(|p| p.id))),
            (
                CARTS,
                max(&mut self.carts.iter().flat_map(|c| c.lines.iter().map(|l| l.id))),
            ),
            (ADDRESSES, max(&mut self.addresses.iter().map(|a| a.id))),
            (ORDERS, max(&mut self.orders.iter().map(|o| o.id))),
            (
                ORDER_ITEMS,
                max(&mut self
                    .orders
                    .iter()
                    .flat_map(|o| o.items.iter().map(|i| i.id))),
            ),
            (PAYMENTS, max(&mut self.payments.iter().map(|p| p.id))),
            (SHIPPING, max(&mut self.shippings.iter().map(|s| s.id))),
            (REVIEWS, max(&mut self.reviews.iter().map(|r| r.id))),
        ];
        for (sequence, id) in sequences {
            db.bump_sequence(sequence, id)?;
        }
        db.flush_blocking()
    }
}

fn sort_by_id(data: &mut ShopData) {
    data.users.sort_by_key(|r| r.id);
    data.categories.sort_by_key(|r| r.id);
    data.products.sort_by_key(|r| r.id);
    data.carts.sort_by_key(|r| r.user_id);
    data.addresses.sort_by_key(|r| r.id);
    data.orders.sort_by_key(|r| r.id);
    data.payments.sort_by_key(|r| r.id);
    data.shippings.sort_by_key(|r| r.order_id);
    data.reviews.sort_by_key(|r| r.id);
    for p in &mut data.products {
        p.category_ids.sort_unstable();
    }
}

/// Finds ids used twice in one table.
fn duplicate_ids(
    table: &str,
    ids: impl Iterator<Item = u64>,
    bad: &mut Vec<String>,
) -> HashSet<u64> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            bad.push(format!("{table} id {id}: the id is used twice"));
        }
        if id == 0 {
            bad.push(format!("{table} id 0: ids start at 1"));
        }
    }
    seen
}

fn check_users(users: &[User], bad: &mut Vec<String>) {
    duplicate_ids("users", users.iter().map(|u| u.id), bad);
    let mut emails: HashMap<Vec<u8>, u64> = HashMap::new();
    for u in users {
        let mut errors = Vec::new();
        crate::account::model::check_email("email", &u.email, &mut errors);
        if !errors.is_empty() {
            bad.push(format!(
                "users id {}: {:?} is not a valid email",
                u.id, u.email
            ));
        }
        if let Some(other) = emails.insert(email_key(&u.email), u.id) {
            bad.push(format!(
                "users id {}: email {} is also user {other}'s (emails are unique ignoring case)",
                u.id, u.email
            ));
        }
        if u.hashed_password.is_empty() {
            bad.push(format!("users id {}: the password hash is empty", u.id));
        }
    }
}

fn check_catalog(categories: &[Category], products: &[Product], bad: &mut Vec<String>) {
    let category_ids = duplicate_ids("categories", categories.iter().map(|c| c.id), bad);
    let mut names: HashMap<String, u64> = HashMap::new();
    let mut slugs: HashMap<&str, u64> = HashMap::new();
    for c in categories {
        let len = c.name.trim().chars().count();
        if len == 0 || len > 100 {
            bad.push(format!(
                "categories id {}: the name must be 1 to 100 characters",
                c.id
            ));
        }
        if let Some(other) = names.insert(fold(&c.name), c.id) {
            bad.push(format!(
                "categories id {}: name {:?} is also category {other}'s",
                c.id, c.name
            ));
        }
        check_slug("categories", c.id, &c.slug, bad);
        if let Some(other) = slugs.insert(&c.slug, c.id) {
            bad.push(format!(
                "categories id {}: slug {:?} is also category {other}'s",
                c.id, c.slug
            ));
        }
    }
    duplicate_ids("products", products.iter().map(|p| p.id), bad);
    let mut slugs: HashMap<&str, u64> = HashMap::new();
    for p in products {
        let id = p.id;
        // The API takes 200; the reference backend's column held 255, and a longer title
        // is no harm to anything shopbox keeps.
        let len = p.title.trim().chars().count();
        if len == 0 || len > 255 {
            bad.push(format!(
                "products id {id}: the title must be 1 to 255 characters"
            ));
        }
        check_slug("products", id, &p.slug, bad);
        if let Some(other) = slugs.insert(&p.slug, id) {
            bad.push(format!(
                "products id {id}: slug {:?} is also product {other}'s",
                p.slug
            ));
        }
        if p.price < 0 || p.price > MAX_CENTS {
            bad.push(format!(
                "products id {id}: price {:.2} is out of range",
                p.price as f64 / 100.0
            ));
        }
        if p.stock_quantity < 0 {
            bad.push(format!(
                "products id {id}: stock_quantity {} is negative",
                p.stock_quantity
            ));
        }
        for c in &p.category_ids {
            if !category_ids.contains(c) {
                bad.push(format!(
                    "product_categories of product {id}: category {c} does not exist"
                ));
            }
        }
        if p.category_ids.windows(2).any(|w| w[0] == w[1]) {
            bad.push(format!(
                "product_categories of product {id}: a category appears twice"
            ));
        }
    }
}

/// Given slugs are at most 80 bytes; `-2`, `-3`... suffixes may add a few.
pub const MAX_SLUG: usize = 100;

fn check_slug(table: &str, id: u64, slug: &str, bad: &mut Vec<String>) {
    if !slug_shaped(slug, MAX_SLUG) {
        bad.push(format!(
            "{table} id {id}: slug {slug:?} is not lowercase letters, digits and dashes"
        ));
    } else if slug_reserved(slug) {
        bad.push(format!(
            "{table} id {id}: slug {slug:?} is a number or a reserved word"
        ));
    }
}

/// Makes some trees' entries.
type Job<'a> = Box<dyn FnOnce() -> StoreResult<Trees> + Send + 'a>;

/// What `write_new`'s workers share: jobs that make trees, and made trees to write.
struct Workers<'a> {
    state: Mutex<Queue<'a>>,
    changed: Condvar,
}

struct Queue<'a> {
    jobs: VecDeque<Job<'a>>,
    made: VecDeque<(&'static str, Entries)>,
    /// Jobs taken and not finished: their trees may still come.
    making: usize,
    failed: bool,
}

enum Task<'a> {
    Make(Job<'a>),
    Write(&'static str, Entries),
}

impl<'a> Workers<'a> {
    fn new(jobs: Vec<Job<'a>>) -> Self {
        Workers {
            state: Mutex::new(Queue {
                jobs: jobs.into(),
                made: VecDeque::new(),
                making: 0,
                failed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Runs every job and writes every tree they make with `write`, on `threads`
    /// threads. A made tree is written before the next job starts, so that at most a
    /// few trees wait in memory; the first error stops every thread and is answered.
    fn run(
        &self,
        threads: usize,
        write: &(dyn Fn(&'static str, Entries) -> StoreResult<()> + Sync),
    ) -> StoreResult<()> {
        std::thread::scope(|scope| {
            let running: Vec<_> = (0..threads.max(1))
                .map(|_| scope.spawn(|| self.work(write)))
                .collect();
            let mut outcome = Ok(());
            for thread in running {
                let done = thread
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Storage("a writer thread failed".into())));
                if outcome.is_ok() {
                    outcome = done;
                }
            }
            outcome
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<'a>> {
        // A thread that panicked holds no invariant the others need: its job is lost and
        // its panic is answered by `run`.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next(&self) -> Option<Task<'a>> {
        let mut queue = self.lock();
        loop {
            if queue.failed {
                return None;
            }
            if let Some((tree, entries)) = queue.made.pop_front() {
                return Some(Task::Write(tree, entries));
            }
            if let Some(job) = queue.jobs.pop_front() {
                queue.making += 1;
                return Some(Task::Make(job));
            }
            if queue.making == 0 {
                return None;
            }
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn work(
        &self,
        write: &(dyn Fn(&'static str, Entries) -> StoreResult<()> + Sync),
    ) -> StoreResult<()> {
        while let Some(task) = self.next() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match task {
                Task::Make(job) => {
                    let trees = job();
                    let mut queue = self.lock();
                    queue.making -= 1;
                    queue.made.extend(trees?);
                    self.changed.notify_all();
                    Ok(())
                }
                Task::Write(tree, entries) => write(tree, entries),
            }))
            .unwrap_or_else(|_| Err(StoreError::Storage("a writer thread failed".into())));
            if let Err(e) = outcome {
                self.lock().failed = true;
                self.changed.notify_all();
                return Err(e);
            }
        }
        Ok(())
    }
}

fn records<R: Record>(items: &[R], key: impl Fn(&R) -> u64) -> StoreResult<Entries> {
    items
        .iter()
        .map(|r| Ok((id_key(key(r)).to_vec(), encode(r)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tree(name: &'static str, n: u8) -> Trees {
        vec![(name, (0..n).map(|i| (vec![i], Vec::new())).collect())]
    }

    #[test]
    fn workers_write_every_tree_that_every_job_makes() {
        let written = Mutex::new(Vec::new());
        let jobs: Vec<Job> = vec![
            Box::new(|| Ok([tree("a", 3), tree("b", 1)].concat())),
            Box::new(|| Ok(tree("c", 2))),
            Box::new(|| Ok(Vec::new())),
        ];
        Workers::new(jobs)
            .run(2, &|name, entries| {
                written.lock().unwrap().push((name, entries.len()));
                Ok(())
            })
            .unwrap();
        let mut written = written.into_inner().unwrap();
        written.sort();
        assert_eq!(written, vec![("a", 3), ("b", 1), ("c", 2)]);
    }

    #[test]
    fn the_first_failure_stops_the_workers_and_is_answered() {
        let writes = AtomicUsize::new(0);
        let jobs: Vec<Job> = (0..50)
            .map(|i| -> Job {
                Box::new(move || {
                    if i == 3 {
                        Err(StoreError::Storage("job 3 failed".into()))
                    } else {
                        Ok(tree("t", 1))
                    }
                })
            })
            .collect();
        let outcome = Workers::new(jobs).run(2, &|_, _| {
            writes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        assert_eq!(outcome, Err(StoreError::Storage("job 3 failed".into())));
        assert!(
            writes.load(Ordering::Relaxed) < 49,
            "work went on after the failure"
        );
    }

    #[test]
    fn a_panicking_job_is_an_error_not_a_hang() {
        let jobs: Vec<Job> = vec![
            Box::new(|| panic!("broken job")),
            Box::new(|| Ok(tree("t", 1))),
        ];
        let outcome = Workers::new(jobs).run(2, &|_, _| Ok(()));
        assert_eq!(
            outcome,
            Err(StoreError::Storage("a writer thread failed".into()))
        );
    }
}
