//! Words for search and slugs: Unicode word boundaries, lower case, accents folded.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Lower-cases and strips accents (`Crème` -> `creme`).
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        // Nothing to decompose: the same answer, without the Unicode tables.
        return text.to_ascii_lowercase();
    }
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The searchable words of a text, folded, at most 40 bytes each.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .unicode_words()
        .filter(|w| w.len() <= 40)
        .map(str::to_string)
        .collect()
}

/// Segments of the routes that a slug must never equal.
pub const RESERVED_SLUGS: &[&str] = &["search", "category", "reviews", "mine", "image"];

/// Whether `slug` is 1 to `max` bytes of lowercase ASCII letters, digits and dashes.
pub fn slug_shaped(slug: &str, max: usize) -> bool {
    !slug.is_empty()
        && slug.len() <= max
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether a slug would be shadowed: a number reads as an id, a reserved word as a route.
pub fn slug_reserved(slug: &str) -> bool {
    slug.bytes().all(|b| b.is_ascii_digit()) || RESERVED_SLUGS.contains(&slug)
}

/// A URL slug from a title: ASCII letters and digits joined by single dashes, never a
/// number or a word the routes use (those get `-item`).
pub fn slugify(title: &str, fallback: &str) -> String {
    let mut slug = String::new();
    for c in fold(title).chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_string();
    slug.truncate(80);
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        return fallback.to_string();
    }
    if slug_reserved(&slug) {
        return format!("{slug}-item");
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_accents() {
        assert_eq!(
            words("Crème Brûlée, ÉCLAIR's!"),
            vec!["creme", "brulee", "eclair's"]
        );
        assert_eq!(words("Red-Shoes 42"), vec!["red", "shoes", "42"]);
    }

    #[test]
    fn slugs_are_ascii_and_never_route_words_or_numbers() {
        assert_eq!(
            slugify("Crème  Brûlée -- Deluxe!", "p"),
            "creme-brulee-deluxe"
        );
        assert_eq!(slugify("Search", "p"), "search-item");
        assert_eq!(slugify("2024", "p"), "2024-item");
        assert_eq!(slugify("日本", "product"), "product");
    }
}
