//! Product images: recognised by their bytes, capped in size and pixels, stored under the
//! media folder with generated names.

use std::path::{Path, PathBuf};

use crate::http::{ApiError, FieldError};

pub const MAX_SIDE: usize = 10_000;

/// The extension and Content-Type of an accepted image, from its first bytes.
pub fn kind(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    match imagesize::image_type(bytes).ok()? {
        imagesize::ImageType::Png => Some(("png", "image/png")),
        imagesize::ImageType::Jpeg => Some(("jpg", "image/jpeg")),
        imagesize::ImageType::Webp => Some(("webp", "image/webp")),
        imagesize::ImageType::Gif => Some(("gif", "image/gif")),
        _ => None,
    }
}

pub fn content_type_of(file_name: &str) -> Option<&'static str> {
    match file_name.rsplit_once('.')?.1 {
        "png" => Some("image/png"),
        "jpg" => Some("image/jpeg"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

/// Whether a name is one this module generated (so no request can reach another path).
pub fn is_generated_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((stem, ext)) => {
            stem.len() == 32
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && content_type_of(name).is_some()
                && !ext.contains('.')
        }
        None => false,
    }
}

/// Checks an upload and writes it under `media`; answers the generated file name.
pub fn store(media: &Path, bytes: &[u8], max_bytes: u64, field: &str) -> Result<String, ApiError> {
    if bytes.len() as u64 > max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "Image larger than {max_bytes} bytes"
        )));
    }
    let (ext, _) = kind(bytes).ok_or_else(|| {
        ApiError::UnsupportedMediaType("Images must be PNG, JPEG, WebP or GIF".into())
    })?;
    let size = imagesize::blob_size(bytes).map_err(|_| {
        ApiError::validation(FieldError::body(field, "The image could not be read"))
    })?;
    if size.width == 0 || size.height == 0 || size.width > MAX_SIDE || size.height > MAX_SIDE {
        return Err(ApiError::validation(FieldError::body(
            field,
            format!("Images may be at most {MAX_SIDE} pixels a side"),
        )));
    }
    let name = format!("{}.{ext}", hex::encode(rand::random::<[u8; 16]>()));
    write_new(&media.join(&name), bytes)
        .map_err(|e| ApiError::Internal(format!("cannot write image {name}: {e}")))?;
    Ok(name)
}

fn write_new(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Removes a stored image; a missing file is not an error.
pub fn remove(media: &Path, name: &str) {
    if is_generated_name(name) {
        if let Err(e) = std::fs::remove_file(media.join(name)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove image {name}: {e}");
            }
        }
    }
}

/// A small PNG of one colour with a darker band, for demo products.
pub fn demo_png(seed: u64, side: u32) -> Vec<u8> {
    let r = (seed.wrapping_mul(97) % 200 + 40) as u8;
    let g = (seed.wrapping_mul(57) % 200 + 40) as u8;
    let b = (seed.wrapping_mul(31) % 200 + 40) as u8;
    let mut pixels = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for _ in 0..side {
            let band = y > side / 3 && y < side * 2 / 3;
            let f = if band { 2 } else { 1 };
            pixels.extend_from_slice(&[r / f, g / f, b / f]);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        if let Ok(mut writer) = encoder.write_header() {
            let _ = writer.write_image_data(&pixels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_by_bytes_and_names_are_confined() {
        let png = demo_png(3, 8);
        assert_eq!(kind(&png), Some(("png", "image/png")));
        assert_eq!(
            kind(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            Some(("gif", "image/gif"))
        );
        assert_eq!(kind(b"<svg xmlns=...>"), None);
        assert!(is_generated_name("0123456789abcdef0123456789abcdef.png"));
        assert!(!is_generated_name("../../etc/passwd"));
        assert!(!is_generated_name(
            "0123456789abcdef0123456789abcdef.png.exe"
        ));
        assert!(!is_generated_name("0123456789ABCDEF0123456789abcdef.png"));
    }
}
