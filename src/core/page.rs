//! Pagination: which page of a list, and a page with its totals.

use schemars::JsonSchema;
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            page: 1,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Pagination {
    pub fn offset(&self) -> usize {
        (self.page as usize - 1) * self.limit as usize
    }

    /// Wraps one page of items with the totals.
    pub fn page_of<T>(&self, items: Vec<T>, total: u64) -> Page<T> {
        let limit = u64::from(self.limit);
        Page {
            items,
            total,
            page: self.page,
            limit: self.limit,
            pages: total.div_ceil(limit),
            next: None,
        }
    }

    /// Cuts one page out of a complete, ordered list.
    pub fn slice<T>(&self, all: Vec<T>) -> Page<T> {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(self.offset())
            .take(self.limit as usize)
            .collect();
        self.page_of(items, total)
    }
}

/// A page of a list: `{items, total, page, limit, pages}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub limit: u32,
    /// Number of pages; 0 when `total` is 0.
    pub pages: u64,
    /// Where the list goes on (catalog lists only): pass it as `after` for the items that
    /// follow the last one here; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_up_and_zero_when_empty() {
        let p = Pagination { page: 1, limit: 20 };
        assert_eq!(p.page_of(Vec::<u8>::new(), 0).pages, 0);
        assert_eq!(p.page_of(Vec::<u8>::new(), 41).pages, 3);
        let slice = Pagination { page: 3, limit: 2 }.slice((1..=5).collect::<Vec<_>>());
        assert_eq!(slice.items, vec![5]);
    }
}
