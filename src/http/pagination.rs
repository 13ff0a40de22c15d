//! `page` / `limit` (or `size`) query parameters and the paginated answer.

use rocket::form::FromForm;
use schemars::JsonSchema;
use serde::Serialize;

use crate::core::error::FieldError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The pagination part of a list's query string, as raw text so that every bad value
/// becomes a 422 naming its parameter.
#[derive(Debug, Default, FromForm, JsonSchema)]
pub struct PageQuery {
    /// Page number, from 1.
    #[schemars(with = "Option<u32>")]
    pub page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[schemars(with = "Option<u32>")]
    pub limit: Option<String>,
    /// Synonym of `limit`.
    #[schemars(with = "Option<u32>")]
    pub size: Option<String>,
}

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

/// Parses a positive integer query parameter in `min..=max`, recording a field error if not.
pub fn parse_u32_param(
    name: &str,
    raw: Option<&str>,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    let raw = raw?;
    match raw.trim().parse::<u32>() {
        Ok(n) if n >= 1 && n <= max => Some(n),
        Ok(_) => {
            errors.push(FieldError::new(
                "query",
                name,
                format!("Input should be between 1 and {max}"),
                "value_error",
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                "query",
                name,
                "Input should be a valid integer",
                "int_parsing",
            ));
            None
        }
    }
}

impl PageQuery {
    pub fn parse(&self, errors: &mut Vec<FieldError>) -> Pagination {
        let page = parse_u32_param("page", self.page.as_deref(), u32::MAX / 2, errors);
        let limit = match (&self.limit, &self.size) {
            (Some(l), _) => parse_u32_param("limit", Some(l), MAX_LIMIT, errors),
            (None, Some(s)) => parse_u32_param("size", Some(s), MAX_LIMIT, errors),
            (None, None) => None,
        };
        Pagination {
            page: page.unwrap_or(1),
            limit: limit.unwrap_or(DEFAULT_LIMIT),
        }
    }
}

impl PageQuery {
    /// The pagination, or a 422 naming the bad parameters.
    pub fn checked(&self) -> Result<Pagination, crate::core::ApiError> {
        let mut errors = Vec::new();
        let p = self.parse(&mut errors);
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(crate::core::ApiError::Validation(errors))
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

    #[test]
    fn bad_values_name_their_parameter() {
        let mut errors = Vec::new();
        let q = PageQuery {
            page: Some("0".into()),
            limit: None,
            size: Some("x".into()),
        };
        q.parse(&mut errors);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].loc[1], "page");
        assert_eq!(errors[1].loc[1], "size");
    }
}
