//! Admin API routes that the dashboard needs beyond the domain APIs: the shop's summary
//! and the outbox. Mounted under `/api/admin`.

use rocket::serde::json::Json;
use rocket::{get, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::account::guard::AdminUser;
use crate::core::money::Money;
use crate::core::time::rfc3339;
use crate::http::pagination::{once, parse_u32_param};
use crate::http::{ApiError, ApiResult, AppState, Page, PageQuery};
use crate::mail::model::Mail;
use crate::order::model::{Order, OrderStatus};

/// How many days the summary's chart covers, today included.
pub const SUMMARY_DAYS: i64 = 30;
const LATEST_ORDERS: usize = 8;
const LOW_STOCK_SHOWN: usize = 10;
const MICROS_PER_SECOND: i64 = 1_000_000;

/// Sales of one UTC day.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct DaySales {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Orders placed that day that are confirmed (paid, not cancelled).
    pub orders: u64,
    /// The total of those orders.
    pub revenue: Money,
    /// Orders placed that day and cancelled since (refunded).
    pub cancelled: u64,
    /// Checkouts that day whose payment failed.
    pub payment_failed: u64,
}

impl DaySales {
    fn add(&mut self, o: &Order) {
        match o.status {
            OrderStatus::Confirmed => {
                self.orders += 1;
                self.revenue.0 += o.total_price;
            }
            OrderStatus::Cancelled => self.cancelled += 1,
            OrderStatus::PaymentFailed => self.payment_failed += 1,
        }
    }
}

/// A product that is running out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LowStockProduct {
    pub id: u64,
    pub title: String,
    pub slug: String,
    pub stock_quantity: i64,
    pub price: Money,
}

/// One line of the latest orders.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderLine {
    pub id: u64,
    pub user_id: u64,
    pub status: OrderStatus,
    pub total_price: Money,
    /// Items in the order, counting quantities.
    pub item_count: i64,
    /// `pending`, `processing`, `shipped`, `delivered` or `cancelled`; null for a failed
    /// payment.
    pub shipping_status: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    /// Today (UTC) so far.
    pub today: DaySales,
    /// The last 30 days, today included, added up (`date` is the first day).
    pub last_30_days: DaySales,
    /// The same 30 days one by one, oldest first; days without orders are there with zeros.
    pub days: Vec<DaySales>,
    /// The stock level at or below which a product is listed in `low_stock`.
    pub low_stock_threshold: i64,
    /// Up to 10 live products with the least stock, at most the threshold.
    pub low_stock: Vec<LowStockProduct>,
    /// The 8 newest orders, whatever their status.
    pub latest_orders: Vec<OrderLine>,
}

fn day_of(micros: i64) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(micros.div_euclid(MICROS_PER_SECOND))
        .ok()
        .map(|t| t.date())
}

fn start_of(day: Date) -> i64 {
    day.midnight().assume_utc().unix_timestamp() * MICROS_PER_SECOND
}

/// Query of the summary.
#[derive(Debug, Default, rocket::form::FromForm, JsonSchema)]
pub struct SummaryQuery {
    /// Products with at most this many in stock are low (default 5).
    #[field(default = Vec::new())]
    #[schemars(schema_with = "low_stock_schema")]
    pub low_stock: Vec<String>,
}

fn low_stock_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    crate::http::schema::optional(crate::http::schema::integer(0.0, 1e9))
}

/// Admin: orders and revenue today and per day over the last 30 days (UTC days), the
/// products running low on stock (at most `low_stock`, default 5), and the latest orders.
/// Reads only the orders of those 30 days (and the 8 newest), never the whole history.
#[openapi(tag = "Admin")]
#[get("/summary?<query..>")]
pub async fn summary(
    state: &State<AppState>,
    _admin: AdminUser,
    query: SummaryQuery,
) -> ApiResult<Json<Summary>> {
    let mut errors = Vec::new();
    // Every value given is checked (a repeat must not differ); 0 is a threshold too.
    let mut threshold = None;
    for raw in &query.low_stock {
        let n = match raw.trim() {
            "0" => Some(0),
            raw => parse_u32_param("low_stock", Some(raw), 1_000_000_000, &mut errors),
        };
        threshold = threshold.or(n);
    }
    once("low_stock", &query.low_stock, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let threshold = i64::from(threshold.unwrap_or(5));
    let today = day_of(state.clock.now())
        .ok_or_else(|| ApiError::Internal("the clock is out of range".into()))?;
    let first = today - Duration::days(SUMMARY_DAYS - 1);
    let mut days: Vec<DaySales> = (0..SUMMARY_DAYS)
        .map(|i| DaySales {
            date: (first + Duration::days(i)).to_string(),
            ..DaySales::default()
        })
        .collect();
    for order in crate::order::store::orders_since(&state.db, start_of(first)).await? {
        let index = day_of(order.created_at).map(|d| (d - first).whole_days());
        if let Some(day) = index
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| days.get_mut(i))
        {
            day.add(&order);
        }
    }
    let mut total = DaySales {
        date: first.to_string(),
        ..DaySales::default()
    };
    for d in &days {
        total.orders += d.orders;
        total.revenue.0 += d.revenue.0;
        total.cancelled += d.cancelled;
        total.payment_failed += d.payment_failed;
    }
    let low = crate::product::store::low_stock(&state.db, threshold, LOW_STOCK_SHOWN)
        .await?
        .into_iter()
        .map(|p| LowStockProduct {
            id: p.id,
            title: p.title,
            slug: p.slug,
            stock_quantity: p.stock_quantity,
            price: Money(p.price),
        })
        .collect();
    let mut latest = Vec::new();
    for o in crate::order::store::latest_orders(&state.db, LATEST_ORDERS).await? {
        let shipping = crate::shipping::store::shipping(&state.db, o.id).await?;
        latest.push(OrderLine {
            id: o.id,
            user_id: o.user_id,
            status: o.status,
            total_price: Money(o.total_price),
            item_count: o.items.iter().map(|i| i.quantity).sum(),
            shipping_status: shipping.map(|s| s.status.as_str().to_string()),
            created_at: rfc3339(o.created_at),
        });
    }
    Ok(Json(Summary {
        today: days.last().cloned().unwrap_or_default(),
        last_30_days: total,
        days,
        low_stock_threshold: threshold,
        low_stock: low,
        latest_orders: latest,
    }))
}

/// An email in the outbox, with its token hidden.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutboxMail {
    pub id: u64,
    pub to: String,
    pub subject: String,
    /// The text, with the link's token replaced by `hidden`.
    pub body: String,
    /// The link the email carried (verify or reset), its token replaced by `hidden`.
    pub link: Option<String>,
    pub created_at: String,
}

/// A link with the value of its `token` parameter replaced.
fn hide_token(link: &str) -> String {
    match link.split_once("token=") {
        Some((head, tail)) => {
            let rest = tail.find('&').map(|i| &tail[i..]).unwrap_or("");
            format!("{head}token=hidden{rest}")
        }
        None => link.to_string(),
    }
}

impl From<Mail> for OutboxMail {
    fn from(m: Mail) -> Self {
        let link = m.link.as_deref().map(hide_token);
        let body = match (&m.link, &link) {
            (Some(real), Some(hidden)) => m.body.replace(real.as_str(), hidden),
            _ => m.body,
        };
        OutboxMail {
            id: m.id,
            to: m.to,
            subject: m.subject,
            body,
            link,
            created_at: rfc3339(m.created_at),
        }
    }
}

/// Admin: the emails the shop sent, newest first, paginated, optionally only those `to`
/// one address (ignoring case). Tokens in links are hidden: whoever reads the outbox must
/// not be able to verify or reset someone else's account. Without SMTP, the full link is
/// in the server's log line for the mail.
#[openapi(tag = "Admin")]
#[get("/outbox?<to>&<page..>")]
pub async fn outbox(
    state: &State<AppState>,
    _admin: AdminUser,
    to: Option<String>,
    page: PageQuery,
) -> ApiResult<Json<Page<OutboxMail>>> {
    let mut errors = Vec::new();
    let pagination = page.parse(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let to = to.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let mails = crate::mail::store::latest(&state.db, to, usize::MAX).await?;
    let out: Vec<OutboxMail> = mails.into_iter().map(OutboxMail::from).collect();
    Ok(Json(pagination.slice(out)))
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: summary, outbox]
}
