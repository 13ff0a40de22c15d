//! `page` / `limit` (or `size`) query parameters.

use rocket::form::FromForm;
use schemars::JsonSchema;

use crate::core::page::{Pagination, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::error::FieldError;

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
