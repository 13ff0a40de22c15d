//! `page` / `limit` (or `size`) query parameters.

use rocket::form::FromForm;
use schemars::JsonSchema;

use crate::core::page::{Pagination, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::error::FieldError;
use crate::http::schema::{PageNumber, PageSize};

/// The pagination part of a list's query string, as raw text so that every bad value
/// becomes a 422 naming its parameter. Every value of a repeated parameter is kept, so
/// that `?page=1&page=abc` is a 422 rather than one of them silently taken.
#[derive(Debug, Default, FromForm, JsonSchema)]
pub struct PageQuery {
    #[field(default = Vec::new())]
    #[schemars(with = "Option<PageNumber>")]
    pub page: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<PageSize>")]
    pub limit: Vec<String>,
    /// Synonym of `limit`.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<PageSize>")]
    pub size: Vec<String>,
}

/// The one value of a query parameter that may be given once: repeated with the same
/// value it is that value; with different values, a 422.
pub fn once<'v>(name: &str, values: &'v [String], errors: &mut Vec<FieldError>) -> Option<&'v str> {
    let first = values.first()?;
    if values.iter().any(|v| v != first) {
        errors.push(FieldError::new(
            "query",
            name,
            "Give this parameter once",
            "value_error",
        ));
    }
    Some(first.as_str())
}

/// `parse_u32_param` over every value given for `name`: each must be valid, and a
/// repeat must not differ.
pub fn parse_u32_values(
    name: &str,
    values: &[String],
    max: u32,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    let mut parsed = None;
    for v in values {
        let n = parse_u32_param(name, Some(v), max, errors);
        parsed = parsed.or(n);
    }
    once(name, values, errors);
    parsed
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
        let page = parse_u32_values("page", &self.page, u32::MAX / 2, errors);
        // `size` is another name for `limit`, which wins when both are given; a bad value
        // of either is a 422 all the same.
        let limit = parse_u32_values("limit", &self.limit, MAX_LIMIT, errors);
        let size = parse_u32_values("size", &self.size, MAX_LIMIT, errors);
        Pagination {
            page: page.unwrap_or(1),
            limit: limit.or(size).unwrap_or(DEFAULT_LIMIT),
        }
    }
}

impl PageQuery {
    /// The pagination, or a 422 naming the bad parameters.
    pub fn checked(&self) -> Result<Pagination, crate::http::ApiError> {
        let mut errors = Vec::new();
        let p = self.parse(&mut errors);
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(crate::http::ApiError::Validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_parameter() {
        let mut errors = Vec::new();
        let q = PageQuery {
            page: vec!["0".into()],
            limit: vec![],
            size: vec!["x".into()],
        };
        q.parse(&mut errors);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].loc[1], "page");
        assert_eq!(errors[1].loc[1], "size");
    }

    #[test]
    fn size_is_checked_beside_limit_which_wins() {
        let query = |limit: &str, size: &str| PageQuery {
            page: vec![],
            limit: vec![limit.into()],
            size: vec![size.into()],
        };
        let mut errors = Vec::new();
        query("99", "29559543902143180800").parse(&mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].loc[1], "size");
        let mut errors = Vec::new();
        assert_eq!(query("7", "30").parse(&mut errors).limit, 7);
        assert!(errors.is_empty());
    }

    #[test]
    fn every_value_of_a_repeated_parameter_is_checked() {
        for (page, limit) in [
            (vec!["abc", "1"], vec![]),
            (vec!["1", "abc"], vec![]),
            (vec![], vec!["0", "5"]),
            (vec![], vec!["5", "0"]),
            (vec!["1", "2"], vec![]),
        ] {
            let mut errors = Vec::new();
            PageQuery {
                page: page.iter().map(|s| s.to_string()).collect(),
                limit: limit.iter().map(|s| s.to_string()).collect(),
                size: vec![],
            }
            .parse(&mut errors);
            assert!(!errors.is_empty(), "{page:?} {limit:?}");
        }
        let mut errors = Vec::new();
        let p = PageQuery {
            page: vec!["2".into(), "2".into()],
            ..Default::default()
        }
        .parse(&mut errors);
        assert!(errors.is_empty());
        assert_eq!(p.page, 2);
    }
}
