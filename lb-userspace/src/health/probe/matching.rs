//! What a reply must contain (`expect`, `expect_body`).

/// Whether `needle` occurs in `haystack` (an empty needle always does).
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_a_needle_anywhere() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(contains(b"anything", b""));
        assert!(!contains(b"o", b"ok"));
        assert!(!contains(b"status: ko", b"ok"));
    }
}
